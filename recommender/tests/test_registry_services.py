"""Registry services: version numbering, aliases moved only with a reason and logged, promotion reviews."""

from __future__ import annotations

import pytest

from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.models import ActivityLogEntry, ReviewRequest
from portal.services import review_request_decide
from recommender.models import ModelAlias, ModelVersion
from recommender.registry import services
from recommender.tests.factories_training import RunFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_register_numbers_versions_and_refuses_a_second_registration_of_a_run():
    run1, run2 = RunFactory(), RunFactory()
    kwargs = dict(artifact_path="models/a", artifact_sha256="a" * 64, artifact_size=10, artifact_kind="factors",
                  metrics={"rmse": 0.9}, system="test")
    v1 = services.model_version_register(run=run1, **kwargs)
    v2 = services.model_version_register(run=run2, **kwargs)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.registered_model.name == "movie-recommender"
    with pytest.raises(Conflict, match="already registered"):
        services.model_version_register(run=run1, **kwargs)
    assert ModelVersion.objects.count() == 2
    assert ActivityLogEntry.objects.filter(action="model_version.registered").count() == 2


def test_alias_move_logs_before_and_after(users):
    version = VersionFactory(status=ModelVersion.Status.APPROVED)
    other = VersionFactory(status=ModelVersion.Status.CANDIDATE)
    services.model_alias_move(alias="production", version=version, actor=users["operator"], reason="first")
    services.model_alias_move(alias="canary", version=other, actor=users["operator"], reason="try it")
    alias = ModelAlias.objects.get(name="production")
    assert alias.version == version and alias.moved_by == users["operator"]
    entry = ActivityLogEntry.objects.filter(action="model_alias.moved").order_by("seq").first()
    assert entry.data["before"]["version_id"] is None
    assert entry.data["after"]["version_id"] == version.pk
    assert entry.actor_label == users["operator"].username


@pytest.mark.parametrize(
    "alias,status,reason,error",
    [
        ("staging", "approved", "x", ValidationError),
        ("production", "approved", " ", ValidationError),
        ("production", "candidate", "x", Conflict),
        ("canary", "rejected", "x", Conflict),
        ("shadow", "archived", "x", Conflict),
    ],
)
def test_alias_move_refusals(users, alias, status, reason, error):
    version = VersionFactory(status=status)
    with pytest.raises(error):
        services.model_alias_move(alias=alias, version=version, actor=users["operator"], reason=reason)
    assert not ModelAlias.objects.filter(version=version).exists()


def test_bootstrap_may_put_a_candidate_in_production_only_while_empty():
    first, second = VersionFactory(), VersionFactory()
    services.model_alias_move(alias="production", version=first, actor=None, reason="bootstrap", system="bootstrap")
    assert ModelAlias.objects.get(name="production").version == first
    with pytest.raises(Conflict):
        services.model_alias_move(alias="production", version=second, actor=None, reason="b", system="bootstrap")
    assert ActivityLogEntry.objects.get(action="model_alias.moved").actor_label == "system:bootstrap"


def test_promotion_review_four_eyes_and_decision_sets_status(users):
    version = VersionFactory()
    review = services.model_version_request_promotion(version=version, actor=users["data_scientist"], reason="better")
    assert review.kind == "model_promotion" and review.evidence["metrics"]["rmse"] == 0.95
    with pytest.raises(Conflict, match="already pending"):
        services.model_version_request_promotion(version=version, actor=users["data_scientist"], reason="again")
    review_request_decide(review=review, actor=users["reviewer"], decision="approve", comment="ok")
    version.refresh_from_db()
    assert version.status == "approved"
    assert ReviewRequest.objects.get(pk=review.pk).status == "approved"


def test_requester_cannot_approve_own_promotion(users):
    version = VersionFactory()
    review = services.model_version_request_promotion(version=version, actor=users["admin"], reason="mine")
    with pytest.raises(PermissionDenied):
        review_request_decide(review=review, actor=users["admin"], decision="approve")
    version.refresh_from_db()
    assert version.status == "candidate"


def test_archiving_a_deployed_version_is_refused(users):
    version = VersionFactory(status="approved")
    services.model_alias_move(alias="production", version=version, actor=users["operator"], reason="go")
    with pytest.raises(Conflict, match="deployed"):
        services.model_version_set_status(version=version, status="archived", actor=users["data_scientist"], reason="old")
