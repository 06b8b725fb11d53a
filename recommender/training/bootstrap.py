"""Bootstrap step of the training side: train a first model and put it in production, only while
nothing is in production (the one alias move that needs no promotion review; it is logged)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from django.conf import settings

SYSTEM = "bootstrap"


def first_model_step() -> Iterator[str]:
    """Snapshot everything, train ``RETRAIN_ALGORITHM`` in this process, and deploy it as production."""
    from portal.errors import UsherError
    from recommender.models import Rating, TrainingRun
    from recommender.registry.selectors import model_alias_version
    from recommender.registry.services import model_alias_move
    from recommender.training.runs import training_run_create, training_run_execute
    from recommender.training.snapshots import snapshot_create

    production = model_alias_version(alias="production")
    if production is not None:
        yield f"bootstrap: {production} is in production; first-model training skipped"
        return
    if Rating.objects.count() < settings.RECOMMENDER["TRAINING_MIN_RATINGS"]:
        yield "bootstrap: too few ratings to train a first model yet; skipped"
        return
    started = time.monotonic()
    algorithm = settings.RECOMMENDER["RETRAIN_ALGORITHM"]
    try:
        snapshot = snapshot_create(actor=None, system=SYSTEM, name="bootstrap")
        run = training_run_create(actor=None, system=SYSTEM, snapshot=snapshot, algorithm=algorithm,
                                  origin=TrainingRun.Origin.BOOTSTRAP, enqueue=False)
    except UsherError as exc:
        yield f"bootstrap: first model not trained: {exc.message}"
        return
    yield f"bootstrap: training a first model ({algorithm}, run #{run.pk} on snapshot #{snapshot.pk}) ..."
    run = training_run_execute(run_id=run.pk) or run
    run.refresh_from_db()
    if run.status != TrainingRun.Status.SUCCEEDED:
        yield f"bootstrap: first model run #{run.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}"
        return
    version = run.model_version
    try:
        model_alias_move(alias="production", version=version, actor=None, system=SYSTEM,
                         reason="bootstrap: first model of a fresh install, nothing was in production")
    except UsherError as exc:
        yield f"bootstrap: {version} registered but not deployed: {exc.message}"
        return
    metrics = run.metrics
    yield (f"bootstrap: {version} ({algorithm}) in production: RMSE {metrics.get('rmse', 0):.3f}, "
           f"NDCG@20 {metrics.get('ndcg_at_20') or 0:.3f}, in {time.monotonic() - started:.0f} s")
