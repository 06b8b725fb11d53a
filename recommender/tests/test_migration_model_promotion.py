"""The data migration of the one promotion path: pending reviews of the registry's removed shape (a
``model_promotion`` review targeting a model version) become promotion requests that go through the
release gate, or are closed with a reason; nothing else is touched."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from portal.models import ReviewRequest
from recommender.models import ModelAlias
from recommender.tests.factories_training import VersionFactory
from releases.models import PromotionRequest
from releases.services.repair import releases_repair

pytestmark = pytest.mark.django_db
migration = importlib.import_module("recommender.migrations.0012_model_promotion_reviews_to_promotion_requests")


def _historical_apps():
    """The models as that migration saw them (releases' models were still the recommender's)."""
    loader = MigrationLoader(connection)
    return loader.project_state(("recommender", "0012_model_promotion_reviews_to_promotion_requests")).apps


def _old_review(version, *, requester=None, status="pending") -> ReviewRequest:
    return ReviewRequest.objects.create(
        kind="model_promotion", title=f"Promote {version} (svd) to production", target_type="recommender.modelversion",
        target_id=str(version.pk), requester=requester,
        requester_label=requester.get_username() if requester else "system:recommender.retrain",
        assigned_role="reviewer", status=status, evidence={"reason": "NDCG up by 0.02"},
    )


def test_pending_old_reviews_become_promotion_requests_or_are_closed_with_a_reason(users, monkeypatch):
    production = VersionFactory(status="approved")
    ModelAlias.objects.create(name="production", version=production)
    movable, retrained, archived, superseded = (VersionFactory(), VersionFactory(), VersionFactory(status="archived"),
                                                VersionFactory())
    open_one = PromotionRequest.objects.create(version=superseded, reason="already filed", requested_label="ds")
    moved = _old_review(movable, requester=users["data_scientist"])
    from_schedule = _old_review(retrained)
    closed = [_old_review(archived), _old_review(production), _old_review(superseded)]
    decided = _old_review(VersionFactory(), status="approved")

    migration.move_pending_registry_reviews(_historical_apps(), None)

    promotion = PromotionRequest.objects.get(version=movable)
    assert promotion.status == "gate_pending" and promotion.requested_by == users["data_scientist"]
    assert promotion.baseline_version == production
    assert promotion.reason == f"moved from the registry's promotion review #{moved.pk}: NDCG up by 0.02"
    moved.refresh_from_db()
    assert moved.status == "cancelled" and f"moved to promotion request #{promotion.pk}" in moved.decision_comment
    scheduled = PromotionRequest.objects.get(version=retrained)
    assert scheduled.requested_by is None and scheduled.requested_label == "system:recommender.retrain"
    from_schedule.refresh_from_db()
    assert from_schedule.status == "cancelled"
    reasons = []
    for review in closed:
        review.refresh_from_db()
        assert review.status == "cancelled" and review.decided_at is not None
        assert review.decision_comment.startswith("closed by migration (one promotion path")
        reasons.append(review.decision_comment.rsplit("): ", 1)[1])
    assert reasons == ["the version is archived", "the version is already in production",
                       f"superseded by promotion request #{open_one.pk}"]
    assert PromotionRequest.objects.filter(version__in=[archived, production]).count() == 0
    decided.refresh_from_db()
    assert decided.status == "approved"  # history stays as it was
    assert not ReviewRequest.objects.filter(kind="model_promotion", target_type="recommender.modelversion",
                                            status="pending").exists()

    # The repair pass queues the moved requests' release gates: nothing skips the gate.
    sent = []
    monkeypatch.setattr("portal.queue.task_send", lambda name, **kw: sent.append((name, tuple(kw["args"]))) or "id")
    from datetime import timedelta

    from django.utils import timezone

    releases_repair(now=timezone.now() + timedelta(hours=1))
    assert ("recommender.releases.release_gate", (promotion.pk,)) in sent
    assert ("recommender.releases.release_gate", (scheduled.pk,)) in sent


def test_running_it_again_changes_nothing(users):
    version = VersionFactory()
    _old_review(version, requester=users["data_scientist"])
    migration.move_pending_registry_reviews(_historical_apps(), None)
    migration.move_pending_registry_reviews(_historical_apps(), None)
    assert PromotionRequest.objects.filter(version=version).count() == 1
