"""A real Celery worker killed (SIGKILL) in the middle of a canary step: the rollout resumes from its
recorded state, the traffic split is never left half-changed, and the step happens exactly once.

Runs with PostgreSQL, Redis and a worker process (``DATABASE_URL``/``REDIS_URL`` set)."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.testing import wait_until
from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases import integrations, services
from releases.models import PromotionRequest, Rollout, RolloutStep
from releases.tests.factories import approved_promotion, in_production
from releases.tests.helpers import served

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]


def _blocked_backend() -> int | None:
    """The pid of a database session (the worker's) waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        row = cursor.fetchone()
    return row[0] if row else None


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def test_a_worker_killed_mid_step_leaves_the_recorded_state_and_the_step_resumes_once(
        transactional_db, users, settings, start_worker, monkeypatch):
    import psycopg2

    from portal.celery import app

    # A plan the 300 canary lists below cover (a harm of 0.3 needs fewer than the floor of 100), here
    # and in the worker processes (they read their settings from the environment).
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"CANARY_MIN_TRIALS": 100,
                                                                  "CANARY_MIN_DETECTABLE_DEGRADATION": 0.3}}
    monkeypatch.setenv("CANARY_MIN_TRIALS", "100")
    monkeypatch.setenv("CANARY_MIN_DETECTABLE_DEGRADATION", "0.3")
    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    candidate = VersionFactory()
    promotion = approved_promotion(candidate, baseline=production, status=PromotionRequest.Status.APPROVED,
                                   canary_steps=[5, 25, 50, 100], canary_interval_seconds=3600)
    t0 = timezone.now() - timedelta(hours=3)
    rollout = services.rollout_start(promotion=promotion, actor=users["operator"], now=t0)
    served(route="production", version_id=production.pk, lists=600, successes=180, start=t0 + timedelta(minutes=1))
    served(route="canary", version_id=candidate.pk, lists=300, successes=90, start=t0 + timedelta(minutes=1))
    Rollout.objects.filter(pk=rollout.pk).update(next_check_at=timezone.now() - timedelta(minutes=1))

    # Hold the deployment row, so the worker stops inside the step's transaction, rollout row locked.
    db = settings.DATABASES["default"]
    holder = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432)
    cursor = holder.cursor()
    cursor.execute("SELECT id FROM recommender_deployment WHERE name = 'default' FOR UPDATE")
    first = start_worker("releases-crash")
    try:
        app.send_task("recommender.releases.rollout_evaluate", args=[rollout.pk, 1])
        backend = wait_until(_blocked_backend, 60, "the worker to block inside the step")
        os.killpg(first.pid, signal.SIGKILL)  # the worker dies mid-step, its transaction open
        first.wait(10)
    finally:
        holder.rollback()  # the orphaned session now finds its client gone and PostgreSQL rolls it back
        holder.close()
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    wait_until(lambda: not _backend_alive(backend), 30, "PostgreSQL to end the dead worker's session")

    rollout.refresh_from_db()
    assert (rollout.revision, rollout.applied_percent, rollout.state) == (1, 5, "running")
    assert integrations.deployment_state()["canary_percent"] == 5  # the split is exactly as recorded
    assert RolloutStep.objects.filter(rollout=rollout).count() == 1

    # A new worker and the beat tick: the step runs again from the recorded state, once.
    second = start_worker("releases-crash")
    try:
        app.send_task("recommender.releases.rollouts_tick")
        wait_until(lambda: Rollout.objects.get(pk=rollout.pk).revision == 2, 90, "the step to be redone")
        app.send_task("recommender.releases.rollout_evaluate", args=[rollout.pk, 1])  # a duplicate: no-op
        app.send_task("recommender.releases.rollouts_tick")
        time.sleep(3)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)
    rollout.refresh_from_db()
    assert (rollout.revision, rollout.applied_percent) == (2, 25)
    assert integrations.deployment_state()["canary_percent"] == 25
    assert list(RolloutStep.objects.filter(rollout=rollout).order_by("revision").values_list("outcome", flat=True)) \
        == ["started", "advanced"]
