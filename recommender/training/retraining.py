"""Scheduled retraining: snapshot → train the production configuration → evaluate → candidate →
compare with production → when it wins beyond the noise, a promotion request of the releases
(release gate → four-eyes review → canary), like a data scientist's.

Champion and challenger are scored on the release gate's evaluation set (``comparison.evaluation_set``:
the candidate's held-out rows of the new snapshot — temporal split, the newest 10 % — less every row
production was fitted on, viewers both know, a seeded sample), and the gain gets a paired bootstrap
interval over viewers (``comparison.compare_on_set``). The candidate wins when the point gain is at
least ``PROMOTION_MARGIN`` and the whole interval of the gain is above zero. Lower-is-better metrics
(rmse, mae) use the models' rating predictions; the others use their top-k lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.errors import UsherError
from portal.permissions import require
from portal.services import activity_log_record
from recommender.models import ModelVersion, TrainingRun
from recommender.registry import selectors as registry_selectors
from recommender.training import comparison
from recommender.training import evaluation as ev
from recommender.training.runs import training_run_create
from recommender.training.snapshots import snapshot_create

logger = logging.getLogger(__name__)

SYSTEM = "recommender.retrain"
RETRAIN_SPLIT = {"kind": "temporal", "test_fraction": 0.1}
LOWER_IS_BETTER = {"rmse", "mae"}


# Who files the promotion request of a winning retrain: registered by the app that owns promotions
# (``releases``, in its ``ready()``); training does not import it.
_promotion_requester: Callable[..., object] | None = None


def retraining_promotion_requester_register(requester: Callable[..., object] | None) -> None:
    """``requester(version=, actor=, system=, on_behalf_of=, reason=)`` files a promotion request and
    returns it (raising ``UsherError`` when it refuses); None removes it."""
    global _promotion_requester
    _promotion_requester = requester


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


def retraining_conclude(*, run: TrainingRun) -> dict | None:
    """What follows a run's execution (the ``recommender.train`` task calls it): a scheduled run that
    succeeded is compared with production (``retraining_compare``); any other run, None. The run
    stands whatever the comparison does: its failure is logged, never the run's."""
    if run.origin != TrainingRun.Origin.SCHEDULED or run.status != TrainingRun.Status.SUCCEEDED:
        return None
    try:
        return retraining_compare(run=run)
    except Exception:  # noqa: BLE001 - the run itself succeeded; the comparison is logged apart
        logger.exception("comparing scheduled run %s with production failed", run.pk)
        return None


def _decide(*, metric: str, figures: dict, margin: float, confidence: float) -> dict:
    """The gain (better is positive), its interval, and the outcome: ``candidate wins`` when the point
    gain is ≥ ``margin`` and the interval's lower end is above 0 (strictly: an identical model has the
    interval [0, 0] and must not win with a margin ≤ 0), else ``production holds``; ``why`` in words."""
    lower = metric.split("_at_")[0] in LOWER_IS_BETTER
    low, high = figures["interval"]
    gain = -figures["difference"] if lower else figures["difference"]
    gain_interval = [-high, -low] if lower else [low, high]
    level = f"{round(100 * confidence)} % interval {gain_interval[0]:.4f} to {gain_interval[1]:.4f}"
    if gain < margin:
        why = f"gain {gain:.4f} < margin {margin} ({level})"
    elif gain_interval[0] <= 0:
        why = f"gain {gain:.4f} ≥ margin {margin}, but its {level} reaches 0: not beyond the noise"
    else:
        why = f"gain {gain:.4f} ≥ margin {margin} and its {level} is above 0"
    wins = gain >= margin and gain_interval[0] > 0
    return {"gain": gain, "gain_interval": gain_interval, "outcome": "candidate wins" if wins else "production holds",
            "why": why}


def retraining_compare(*, run: TrainingRun) -> dict:
    """Compare a scheduled run's candidate with production on one evaluation set (the release gate's:
    no row production was fitted on), with a paired bootstrap interval of the gain over viewers; file
    a promotion request when it wins beyond the noise (``_decide``). The result — figures, interval,
    the evaluation set and why — is returned and logged (``retraining.compared``)."""
    knobs = settings.RECOMMENDER
    metric, margin, k = knobs["PROMOTION_METRIC"], knobs["PROMOTION_MARGIN"], knobs["EVAL_K"]
    confidence = float(knobs["PROMOTION_CONFIDENCE"])
    resamples, seed = int(knobs["PROMOTION_BOOTSTRAP_RESAMPLES"]), int(knobs["PROMOTION_SEED"])
    minimum = int(knobs["PROMOTION_MIN_VIEWERS"])
    candidate = ModelVersion.objects.filter(training_run=run).first()
    production = registry_selectors.model_alias_version(alias="production")
    result: dict = {"metric": metric, "margin": margin, "candidate_version": candidate.pk if candidate else None,
                    "production_version": production.pk if production else None, "promotion": None,
                    "rule": "candidate wins when its gain ≥ margin and the whole interval of the gain is above 0",
                    "method": "paired bootstrap over viewers", "confidence": confidence, "resamples": resamples,
                    "seed": seed}
    if candidate is None or production is None or production.pk == candidate.pk:
        result["outcome"] = "nothing to compare" if candidate else "no candidate registered"
    else:
        try:
            common = comparison.evaluation_set(candidate=candidate, production=production,
                                               max_viewers=int(knobs["PROMOTION_MAX_VIEWERS"]), seed=seed,
                                               limit_name="PROMOTION_MAX_VIEWERS")
            described = result["evaluation_set"] = common["description"]
            if described["viewers"] < minimum:
                left_out = "; ".join(f"{x['rows']} {x['why']}" for x in described["excluded"]) or "none"
                result["outcome"] = "production holds"
                result["why"] = (f"the evaluation set has {described['viewers']} viewers (PROMOTION_MIN_VIEWERS = "
                                 f"{minimum}): too few to tell the candidate from production (left out: {left_out})")
            else:
                compared = comparison.compare_on_set(common=common, metrics=[metric], resamples=resamples, seed=seed,
                                                     confidence=confidence, default_k=k)
                figures = compared["metrics"][metric]
                result.update({"candidate_score": figures["candidate"], "production_score": figures["production"],
                               "difference": figures["difference"], "interval": figures["interval"],
                               "viewers": figures["viewers"], "scored": compared["scored"]})
                if figures["interval"] is None:
                    result["outcome"] = f"{metric} could not be computed for both models"
                else:
                    result.update(_decide(metric=metric, figures=figures, margin=margin, confidence=confidence))
        except UsherError as exc:
            result["outcome"] = f"comparison failed: {exc.message}"
        except (LookupError, OSError, ValueError, KeyError) as exc:  # comparison.NoCommonSet is a LookupError
            result["outcome"] = f"comparison failed: {exc}"[:500]
    if result.get("outcome") == "candidate wins":
        # The one promotion path: the promotion request of the app above (releases: gate → review →
        # canary), filed by the schedule and recorded for the person who started the run (if any), so
        # four eyes keeps them from deciding it.
        low, high = result["gain_interval"]
        try:
            if _promotion_requester is None:
                raise UsherError("no release process is installed to ask for this version's promotion")
            promotion = _promotion_requester(
                version=candidate, actor=None, system=SYSTEM, on_behalf_of=run.created_by,
                reason=f"scheduled retraining: {metric} {result['candidate_score']:.4f} vs production "
                       f"{result['production_score']:.4f} on the same {result['evaluation_set']['viewers']} viewers "
                       f"of snapshot #{result['evaluation_set']['snapshot']} (gain {result['gain']:.4f} ≥ margin "
                       f"{margin}; {round(100 * confidence)} % interval {low:.4f} to {high:.4f}, above 0)",
            )
            result["promotion"] = promotion.pk
        except UsherError as exc:
            result["promotion_refused"] = exc.message
    activity_log_record(actor=None, system=SYSTEM, action="retraining.compared", target=run,
                        data=ev.sanitize(result))
    return result
