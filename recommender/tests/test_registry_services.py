"""Registry services: version numbering, aliases moved only with a reason and logged (through the one door to
live traffic), and no promotion path of its own."""

from __future__ import annotations

import pytest

from portal.errors import Conflict, ValidationError
from portal.models import ActivityLogEntry
from recommender.models import ModelAlias, ModelVersion
from recommender.registry import services
from recommender.tests.factories_training import RunFactory, VersionFactory
from releases.tests.factories import approved_promotion

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
    version = approved_promotion(VersionFactory(status=ModelVersion.Status.APPROVED)).version
    other = VersionFactory(status=ModelVersion.Status.CANDIDATE)
    services.model_alias_move(alias="production", version=version, actor=users["operator"], reason="first")
    # A canary alias at 0% serves no viewer: it needs no promotion until its share goes up.
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


def test_the_registry_has_no_promotion_path_of_its_own_and_the_review_kind_is_registered_once():
    """One promotion path: the releases' promotion request. The ``model_promotion`` kind is the releases'
    (registered once, deciding promotion requests), not the registry's version-status review."""
    from portal.reviews import get_review_kind

    assert not hasattr(services, "model_version_request_promotion")
    assert not hasattr(services, "model_promotion_decided")
    kind = get_review_kind("model_promotion")
    assert kind.on_decision == "releases.services.promotions.promotion_review_decided"
    assert kind.four_eyes and kind.decider_role == "reviewer"


def test_archiving_a_deployed_version_is_refused(users):
    version = approved_promotion(VersionFactory(status="approved")).version
    services.model_alias_move(alias="production", version=version, actor=users["operator"], reason="go")
    with pytest.raises(Conflict, match="deployed"):
        services.model_version_set_status(version=version, status="archived", actor=users["data_scientist"], reason="old")
