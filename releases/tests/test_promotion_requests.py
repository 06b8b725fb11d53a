"""Promotion requests: who may ask, what is refused with a clear error, and what is recorded."""

from __future__ import annotations

import pytest

from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.models import ActivityLogEntry
from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases import services
from releases.models import PromotionRequest

pytestmark = pytest.mark.django_db


def test_a_data_scientist_requests_and_the_gate_is_queued(users, django_capture_on_commit_callbacks):
    version = VersionFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        promotion = services.promotion_request_create(version=version, actor=users["data_scientist"],
                                                      reason="better NDCG", canary_steps=[10, 50, 100])
    assert promotion.status == PromotionRequest.Status.GATE_PENDING
    assert promotion.canary_steps == [10, 50, 100]
    assert promotion.requested_label == users["data_scientist"].username
    entry = ActivityLogEntry.objects.get(action="release.promotion.requested")
    assert entry.data["reason"] == "better NDCG" and entry.target_id == str(promotion.pk)
    assert len(callbacks) == 1  # the gate task is sent after the commit


def test_a_request_made_while_the_broker_is_down_waits_and_its_gate_is_queued_by_the_repair(
        users, broker_down, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from releases.services.repair import releases_repair

    # Given Redis refusing connections, the request still succeeds (the gate task cannot be sent):
    with django_capture_on_commit_callbacks(execute=True):
        promotion = services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"],
                                                      reason="better NDCG")
    assert PromotionRequest.objects.get(pk=promotion.pk).status == PromotionRequest.Status.GATE_PENDING
    # When the broker is back, the repair pass (beat, every minute) queues the gate again.
    broker_down()
    report = releases_repair(now=timezone.now() + timedelta(minutes=5))
    assert report["gates_requeued"] == [promotion.pk]
    assert ActivityLogEntry.objects.filter(action="release.gate.requeued", target_id=str(promotion.pk)).exists()


@pytest.mark.parametrize("role", ["viewer", "reviewer", "admin"])
def test_other_roles_cannot_request(users, role):
    # WORK["promotion.request"]: data scientists and operators; a reviewer or an admin decides instead.
    with pytest.raises(PermissionDenied, match="data_scientist or operator"):
        services.promotion_request_create(version=VersionFactory(), actor=users[role], reason="x")
    assert not PromotionRequest.objects.exists()
    refused = ActivityLogEntry.objects.get(action="permission.refused")
    assert refused.actor_label == f"{role}_user" and refused.data["work"] == "promotion.request"


@pytest.mark.parametrize("steps, interval, message", [
    ([5, 25, 50], None, "ending at 100"),
    ([50, 25, 100], None, "must increase"),
    ([0, 100], None, "1–100"),
    (["a", 100], None, "whole percents"),
    ([5, 100], 3, "canary_interval_seconds: the seconds between steps must be from 10 to 604800"),
    ([5, 100], 0, "canary_interval_seconds: .* got 0"),  # refused, never replaced by the default
    ([5, 100], -60, "canary_interval_seconds: .* got -60"),
    ([5, 100], "60", "canary_interval_seconds: .* whole number"),
])
def test_bad_canary_plans_are_refused(users, steps, interval, message):
    with pytest.raises(ValidationError, match=message):
        services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"], reason="x",
                                          canary_steps=steps, canary_interval_seconds=interval)


def test_refusals_name_what_was_wrong(users):
    ds = users["data_scientist"]
    with pytest.raises(ValidationError, match="reason"):
        services.promotion_request_create(version=VersionFactory(), actor=ds, reason="  ")
    with pytest.raises(ValidationError, match="rejected"):
        services.promotion_request_create(version=VersionFactory(status=ModelVersion.Status.REJECTED), actor=ds,
                                          reason="x")
    version = VersionFactory()
    first = services.promotion_request_create(version=version, actor=ds, reason="x")
    with pytest.raises(Conflict, match=f"#{first.pk}"):
        services.promotion_request_create(version=version, actor=ds, reason="again")
    assert PromotionRequest.objects.count() == 1


def test_a_cancelled_request_frees_the_version_for_a_new_one(users):
    ds, version = users["data_scientist"], VersionFactory()
    first = services.promotion_request_create(version=version, actor=ds, reason="x")
    services.promotion_cancel(promotion=first, actor=ds, reason="wrong snapshot")
    second = services.promotion_request_create(version=version, actor=ds, reason="retry")
    assert PromotionRequest.objects.get(pk=first.pk).status == "cancelled" and second.status == "gate_pending"
    with pytest.raises(PermissionDenied):  # someone else's request needs an operator to cancel it
        services.promotion_cancel(promotion=second, actor=users["reviewer"], reason="no")


def test_a_review_of_the_registrys_old_shape_is_no_promotion_and_deciding_it_changes_nothing(users):
    """One promotion path: a ``model_promotion`` review that targets a version (the registry's removed
    path; the migration closes pending ones) approves nothing: deciding it is refused, names the
    promotion request to file, and leaves the review and the version as they were."""
    from portal.errors import Conflict
    from portal.models import ReviewRequest
    from portal.services import review_request_decide

    version = VersionFactory()
    review = ReviewRequest.objects.create(kind="model_promotion", title="old shape", target_type="recommender.modelversion",
                                          target_id=str(version.pk), requester_label="system:recommender.retrain",
                                          assigned_role="reviewer")
    with pytest.raises(Conflict, match="promotions/new"):
        review_request_decide(review=review, actor=users["reviewer"], decision="approve", comment="ok")
    review.refresh_from_db()
    version.refresh_from_db()
    assert review.status == "pending" and version.status == "candidate"
    assert not PromotionRequest.objects.filter(version=version).exists()


def test_the_gate_task_records_every_check_and_fails_a_version_it_cannot_verify(users, django_capture_on_commit_callbacks):
    """The Celery entry point runs the real checks: this version has no snapshot data for a fairness
    audit and no artifact on disk, so those checks fail with their reasons, the request ends
    ``gate_failed`` and the requester is told why."""
    from monitoring.models import Notification
    from releases.tasks import release_gate

    users["data_scientist"].email = "ds@example.com"
    users["data_scientist"].save()
    promotion = services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"],
                                                  reason="try")
    with django_capture_on_commit_callbacks(execute=True):
        assert release_gate(promotion.pk) == "gate_failed"
    promotion.refresh_from_db()
    checks = {c.name: c for c in promotion.checks.all()}
    assert set(checks) == {"offline_metrics", "fairness_audit", "security_checks", "artifact_integrity"}
    assert checks["artifact_integrity"].outcome == "failed" and "manifest" in checks["artifact_integrity"].summary
    assert checks["fairness_audit"].outcome in ("error", "failed")
    assert promotion.review_id is None  # nothing reaches the inbox
    assert ActivityLogEntry.objects.filter(action="release.gate.failed", target_id=str(promotion.pk)).exists()
    note = Notification.objects.get(event="release.promotion.gate_failed")
    assert "ds@example.com" in note.target and "artifact_integrity" in note.payload["text"]
    assert release_gate(promotion.pk) is None  # finished gates are left alone


def test_a_requester_approving_their_own_promotion_is_refused_and_the_attempt_logged(users):
    from django.contrib.auth.models import Group

    from conftest import make_user
    from portal.errors import PermissionDenied as Refused
    from portal.services import review_request_create

    # A data scientist without the reviewer's role is refused by the role check itself.
    promotion = services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"],
                                                  reason="mine")
    review = review_request_create(kind="model_promotion", target=promotion, title="Promote",
                                   requester=users["data_scientist"])
    PromotionRequest.objects.filter(pk=promotion.pk).update(status="awaiting_review", review=review)
    promotion.refresh_from_db()
    with pytest.raises(Refused, match="reviewer or admin"):
        services.promotion_decide(promotion=promotion, actor=users["data_scientist"], decision="approve")
    assert ActivityLogEntry.objects.get(action="permission.refused").data["work"] == "review.decide"
    # One person holding both roles still may not decide their own request: four eyes.
    both = make_user("data_scientist", "ds_and_reviewer")
    both.groups.add(Group.objects.get(name="reviewer"))
    own = services.promotion_request_create(version=VersionFactory(), actor=both, reason="mine too")
    own_review = review_request_create(kind="model_promotion", target=own, title="Promote", requester=both)
    PromotionRequest.objects.filter(pk=own.pk).update(status="awaiting_review", review=own_review)
    own.refresh_from_db()
    with pytest.raises(Refused, match="Four eyes"):
        services.promotion_decide(promotion=own, actor=both, decision="approve")
    refused = ActivityLogEntry.objects.get(action="review.refused")
    assert refused.actor_label == "ds_and_reviewer" and "four eyes" in refused.data["reason"]
    assert PromotionRequest.objects.get(pk=own.pk).status == "awaiting_review"
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "awaiting_review"
    decided = services.promotion_decide(promotion=promotion, actor=users["reviewer"], decision="reject",
                                        comment="metrics regress for new viewers")
    assert decided.status == "rejected" and decided.decided_by == users["reviewer"]
    assert ActivityLogEntry.objects.filter(action="release.promotion.rejected").exists()


def test_history_written_before_releases_had_its_own_app_is_still_read_and_linked(users):
    """Entries of the hash-chained activity log keep the name they were written with
    (``recommender.promotionrequest``); the promotion's history reads both names and links both."""
    from portal.reviews import target_url
    from portal.services import activity_log_record
    from releases.selectors import release_history

    promotion = PromotionRequest.objects.create(version=VersionFactory(), reason="old", requested_label="ds")
    activity_log_record(actor=None, system="before-the-move", action="promotion.requested",
                        target=("recommender.promotionrequest", promotion.pk, str(promotion)))
    activity_log_record(actor=None, system="after-the-move", action="promotion.gate_started", target=promotion)
    history = list(release_history(target=promotion))
    assert [e.target_type for e in history] == ["recommender.promotionrequest", "releases.promotionrequest"]
    page = f"/portal/releases/promotions/{promotion.pk}/"
    assert target_url("recommender.promotionrequest", promotion.pk) == target_url(
        "releases.promotionrequest", promotion.pk) == page
