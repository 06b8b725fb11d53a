"""Scheduled retraining: snapshot → train the production configuration → evaluate → candidate →
compare with production on the candidate's own test split → when it wins by the margin, a promotion
request of the releases (release gate → four-eyes review → canary), like a data scientist's.

Champion and challenger are scored on the same test users of the new snapshot (temporal split: the
newest 10 % of ratings), so the comparison is like for like. Lower-is-better metrics (rmse, mae) use
the models' rating predictions; the others use their top-20 lists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.errors import UsherError
from portal.permissions import require
from portal.services import activity_log_record
from recommender.models import ModelVersion, TrainingRun
from recommender.registry import selectors as registry_selectors
from recommender.training import evaluation as ev
from recommender.training.snapshots import snapshot_create, snapshot_load_ratings

SYSTEM = "recommender.retrain"
RETRAIN_SPLIT = {"kind": "temporal", "test_fraction": 0.1}
LOWER_IS_BETTER = {"rmse", "mae"}


def retraining_config() -> dict:
    """What the schedule trains: the production version's configuration, else the default algorithm."""
    production = registry_selectors.model_alias_version(alias="production")
    if production is not None:
        run = production.training_run
        snapshot = run.snapshot
        return {"algorithm": run.algorithm, "hyperparameters": run.hyperparameters, "seed": run.seed,
                "include_implicit": snapshot.include_implicit, "filters": snapshot.filters,
                "registered_model_name": production.registered_model.name, "production": production.pk}
    return {"algorithm": settings.RECOMMENDER["RETRAIN_ALGORITHM"], "hyperparameters": {}, "seed": 0,
            "include_implicit": False, "filters": {}, "registered_model_name": "", "production": None}


def retraining_start(*, system: str = SYSTEM, actor: Any | None = None) -> TrainingRun | None:
    """Snapshot the latest data and queue a scheduled run; None (logged) when there is nothing to train.

    A person starting it needs ``model.build`` (refused before anything is snapshotted)."""
    from recommender.training.runs import training_run_create

    require(actor, "model.build", system=system)

    config = retraining_config()
    days = settings.RECOMMENDER["RETRAIN_WINDOW_DAYS"]
    now = timezone.now()
    try:
        snapshot = snapshot_create(
            actor=actor, system=system, name=f"scheduled {now:%Y-%m-%d %H:%M}",
            window_start=now - timedelta(days=days) if days else None, window_end=now,
            include_implicit=config["include_implicit"], filters=config["filters"],
        )
        return training_run_create(
            actor=actor, system=system, snapshot=snapshot, algorithm=config["algorithm"],
            hyperparameters=config["hyperparameters"], seed=config["seed"], split=dict(RETRAIN_SPLIT),
            registered_model_name=config["registered_model_name"], origin=TrainingRun.Origin.SCHEDULED,
        )
    except UsherError as exc:
        activity_log_record(actor=actor, system=system, action="retraining.skipped",
                            target=("recommender.trainingrun", "", "scheduled retraining"),
                            data={"reason": exc.message, "config": config})
        return None


def _score(model, *, metric: str, train, test, users: list[int], relevant: dict, k: int) -> float | None:
    if metric in LOWER_IS_BETTER:
        errors = []
        for user, item, rating in zip(test["user_id"], test["movie_id"], test["rating"], strict=True):
            predicted = model.predict(int(user), str(item))
            if predicted is not None:
                errors.append(predicted - rating)
        if not errors:
            return None
        return ev.rmse(errors) if metric == "rmse" else ev.mae(errors)
    lists = ev.ranking_lists(model, users, k)
    return ev.ranking_metrics(lists, relevant, k).get(metric)


def retraining_compare(*, run: TrainingRun) -> dict:
    """Compare a scheduled run's candidate with production; file a promotion request when it wins."""
    knobs = settings.RECOMMENDER
    metric, margin, k = knobs["PROMOTION_METRIC"], knobs["PROMOTION_MARGIN"], knobs["EVAL_K"]
    candidate = ModelVersion.objects.filter(training_run=run).first()
    production = registry_selectors.model_alias_version(alias="production")
    result: dict = {"metric": metric, "margin": margin, "candidate_version": candidate.pk if candidate else None,
                    "production_version": production.pk if production else None, "promotion": None}
    if candidate is None or production is None or production.pk == candidate.pk:
        result["outcome"] = "nothing to compare" if candidate else "no candidate registered"
    else:
        try:
            ratings = snapshot_load_ratings(snapshot=run.snapshot)
            train, test = ev.split_frame(ratings, run.split)[0]
            users = ev.evaluation_users(train, test, seed=run.seed, limit=knobs["EVAL_MAX_USERS"])
            relevant = ev.relevant_items(test)
            scores = {}
            for label, version in (("candidate", candidate), ("production", production)):
                model = registry_selectors.model_version_load(version=version)
                scores[label] = _score(model, metric=metric, train=train, test=test, users=users,
                                       relevant=relevant, k=k)
            result.update({"candidate_score": scores["candidate"], "production_score": scores["production"]})
            if scores["candidate"] is None or scores["production"] is None:
                result["outcome"] = f"{metric} could not be computed for both models"
            else:
                gain = (scores["production"] - scores["candidate"]) if metric in LOWER_IS_BETTER else (
                    scores["candidate"] - scores["production"])
                result["gain"] = gain
                result["outcome"] = "candidate wins" if gain >= margin else "production holds"
        except UsherError as exc:
            result["outcome"] = f"comparison failed: {exc.message}"
    if result.get("outcome") == "candidate wins":
        # The one promotion path: the releases' promotion request, filed by the schedule and recorded
        # for the person who started the run (if any), so four eyes keeps them from deciding it.
        from recommender.releases.services import promotion_request_create

        try:
            promotion = promotion_request_create(
                version=candidate, actor=None, system=SYSTEM, on_behalf_of=run.created_by,
                reason=f"scheduled retraining: {metric} {result['candidate_score']:.4f} vs production "
                       f"{result['production_score']:.4f} (gain {result['gain']:.4f} ≥ margin {margin})",
            )
            result["promotion"] = promotion.pk
        except UsherError as exc:
            result["promotion_refused"] = exc.message
    activity_log_record(actor=None, system=SYSTEM, action="retraining.compared", target=run,
                        data=ev.sanitize(result))
    return result
