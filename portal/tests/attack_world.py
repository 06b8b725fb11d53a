"""The attack suite's world: one object of every kind a route acts on, each with the same primary
key (``ATTACK_ID``), so any ``<int:…_id>`` in a URL names a real object whatever its model.

Requests of a refused role must leave all of it exactly as it was; the objects are in the states
that make a change possible (a queued run to cancel, a candidate to archive, an open finding to
resolve, a pending promotion to decide, a draft experiment to start, an open incident …), so a
route that forgot its check would really change something.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.utils import timezone

ATTACK_ID = 4242
MOVIE_ID = "attack+movie+2000"


def _version(*, pk: int, run, registered, status: str, number: int):
    from recommender.models import ModelVersion
    from recommender.registry.artifacts import artifact_root, write_artifact

    relative = f"models/attack/{pk}"
    arrays = {
        "item_ids": np.array([MOVIE_ID, *[f"movie+{i}+2000" for i in range(19)]]),
        "item_scores": np.linspace(1, 0, 20).astype("float32"),
        "user_ids": np.arange(1, 11, dtype="int64"),
        "seen_indptr": np.zeros(11, dtype="int64"),
        "seen_indices": np.zeros(0, dtype="int32"),
    }
    sha, size = write_artifact(directory=artifact_root() / relative,
                               manifest={"kind": "ranking", "algorithm": "popularity", "constants": {}}, arrays=arrays)
    return ModelVersion.objects.create(
        id=pk, registered_model=registered, version=number, training_run=run, algorithm="popularity",
        artifact_path=relative, artifact_sha256=sha, artifact_size=size, artifact_kind="ranking",
        metrics={"ndcg_at_20": 0.1, "rmse": 0.95}, status=status,
    )


def build_world(users: dict) -> dict:
    """Create the world; return its objects by name."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from audits.models import AuditFinding, AuditRun
    from monitoring.models import SLO, AlertRule, DriftFeature, Incident, NotificationChannel
    from portal.models import ReviewRequest
    from recommender.models import (
        DatasetSnapshot,
        IngestSource,
        ModelAlias,
        Movie,
        RegisteredModel,
        TrainingRun,
        Viewer,
    )
    from recommender.serving.services import deployment_get_or_create
    from releases.models import Experiment, PromotionRequest

    now = timezone.now()
    scientist = users["data_scientist"]
    world: dict = {}
    world["viewer"] = Viewer.objects.create(id=ATTACK_ID, age=30, gender="F", occupation="writer")
    world["movie"] = Movie.objects.create(id=MOVIE_ID, title="Attack Movie", runtime=90)
    world["snapshot"] = DatasetSnapshot.objects.create(
        id=ATTACK_ID, name="attack snapshot", window_end=now, rating_count=1000,
        content_sha256="a" * 64, storage_path="snapshots/attack", viewer_count=5, movie_count=5,
    )
    # Enough ratings for a data scientist's snapshot and run to go through (the control test).
    from recommender.models import Rating

    for v in range(5):
        Viewer.objects.get_or_create(id=ATTACK_ID + 10 + v, defaults={"age": 20 + v, "gender": "MF"[v % 2]})
    for m in range(5):
        Movie.objects.get_or_create(id=f"attack+{m}+2001", defaults={"title": f"Attack {m}"})
    Rating.objects.bulk_create([Rating(viewer_id=ATTACK_ID + 10 + v, movie_id=f"attack+{m}+2001", rating=1 + (v + m) % 5,
                                       time=now - dt.timedelta(hours=1)) for v in range(5) for m in range(5)])
    registered, _ = RegisteredModel.objects.get_or_create(name="movie-recommender")
    trained = TrainingRun.objects.create(id=ATTACK_ID + 1, snapshot=world["snapshot"], algorithm="popularity",
                                         status=TrainingRun.Status.SUCCEEDED, created_by=scientist)
    former = TrainingRun.objects.create(id=ATTACK_ID + 2, snapshot=world["snapshot"], algorithm="popularity",
                                        status=TrainingRun.Status.SUCCEEDED, created_by=scientist)
    world["run"] = TrainingRun.objects.create(id=ATTACK_ID, snapshot=world["snapshot"], algorithm="popularity",
                                              status=TrainingRun.Status.QUEUED, created_by=scientist)
    world["production"] = _version(pk=ATTACK_ID + 1, run=former, registered=registered, status="approved", number=1)
    world["version"] = _version(pk=ATTACK_ID, run=trained, registered=registered, status="candidate", number=2)
    fresh = TrainingRun.objects.create(id=ATTACK_ID + 3, snapshot=world["snapshot"], algorithm="popularity",
                                       status=TrainingRun.Status.SUCCEEDED, created_by=scientist)
    # a candidate nobody has asked to promote yet
    world["fresh"] = _version(pk=ATTACK_ID + 2, run=fresh, registered=registered, status="candidate", number=3)
    ModelAlias.objects.update_or_create(name="production", defaults={"version": world["production"],
                                                                      "reason": "attack suite world"})
    world["deployment"] = deployment_get_or_create()

    world["review"] = ReviewRequest.objects.create(
        id=ATTACK_ID, kind="model_promotion", title="Promote the attack candidate", target_type="releases.promotionrequest",
        target_id=str(ATTACK_ID), requester=scientist, requester_label=scientist.username, assigned_role="reviewer",
    )
    world["promotion"] = PromotionRequest.objects.create(
        id=ATTACK_ID, version=world["version"], baseline_version=world["production"], reason="attack suite",
        requested_by=scientist, requested_label=scientist.username, review=world["review"],
        status=PromotionRequest.Status.AWAITING_REVIEW, gate_attempt=1, gate_passed=True, gate_finished_at=now,
        canary_steps=[5, 25, 50, 100], canary_interval_seconds=600,
    )
    world["experiment"] = Experiment.objects.create(id=ATTACK_ID, name="attack experiment",
                                                    created_by=users["operator"])
    world["experiment"].arms.create(name="control", version=world["production"], allocation=50, is_control=True)
    # an A/A test of the production version: the one door lets it start (arms of unreviewed versions
    # are refused, see recommender/serving/tests/test_live_traffic.py)
    world["experiment"].arms.create(name="treatment", version=world["production"], allocation=50)

    world["audit_run"] = AuditRun.objects.create(
        id=ATTACK_ID, kind=AuditRun.Kind.FAIRNESS, target=AuditRun.Target.MODEL_VERSION,
        target_repr=str(world["version"]), trigger=AuditRun.Trigger.MANUAL, status=AuditRun.Status.SUCCEEDED,
        passed=False, requested_label=scientist.username, window_start=now - dt.timedelta(days=1), window_end=now,
        finished_at=now,
    )
    world["finding"] = AuditFinding.objects.create(
        id=ATTACK_ID, run=world["audit_run"], kind=world["audit_run"].kind, check_name="fairness.disparity",
        fingerprint="fairness.disparity:attack", severity="high", title="Disparity for the attack group",
        evidence={"group": "attack"}, first_seen_at=now, last_seen_at=now,
    )
    world["finding"].runs.add(world["audit_run"])

    world["channel"] = NotificationChannel.objects.create(
        id=ATTACK_ID, name="attack channel", kind=NotificationChannel.Kind.WEBHOOK, target="http://127.0.0.1:9/hook",
    )
    world["rule"] = AlertRule.objects.create(id=ATTACK_ID, name="attack rule", metric="error_rate", threshold=0.5)
    world["incident"] = Incident.objects.create(
        id=ATTACK_ID, rule=world["rule"], title="Attack incident", severity="warning", opened_at=now, last_fired_at=now,
    )
    world["slo"] = SLO.objects.create(id=ATTACK_ID, name="attack-slo", kind=SLO.Kind.AVAILABILITY, objective=0.99)
    world["feature"] = DriftFeature.objects.create(
        id=ATTACK_ID, name="attack-feature", label="Attack", kind=DriftFeature.Kind.NUMERIC,
        large_metric=DriftFeature.Metric.values[0], large_threshold=0.1,
    )
    world["source"] = IngestSource.objects.create(id=ATTACK_ID, name="attack source", kind="file")
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    world["schedule"] = PeriodicTask.objects.create(
        id=ATTACK_ID, name="attack schedule", task="portal.verify_activity_log", interval=every_hour,
    )
    return world
