"""Deployment changes: validation, revisions, history, the activity log, routing of canary and arms."""

from __future__ import annotations

from collections import Counter

import pytest

from portal.errors import Conflict, NotFound, ValidationError
from portal.models import ActivityLogEntry
from recommender.models import Deployment, DeploymentChange, ModelAlias
from recommender.serving import bucketing
from recommender.serving.runtime import get_runtime
from recommender.serving.services import deployment_rollback, deployment_update
from recommender.serving.tests.conftest import make_version

pytestmark = pytest.mark.django_db


def test_a_change_moves_the_alias_bumps_the_revision_and_is_logged(users):
    version = make_version("v1")
    deployment = deployment_update(actor=users["operator"], reason="first model", production=version)
    assert deployment.revision == 2
    assert ModelAlias.objects.get(name="production").version == version
    change = DeploymentChange.objects.get(deployment=deployment, revision=2)
    assert change.actor_label == users["operator"].username and change.reason == "first model"
    assert change.before["production"] is None and change.after["production"]["id"] == version.pk
    actions = list(ActivityLogEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["model_alias.moved", "deployment.changed"]


def test_the_same_state_again_is_not_a_new_revision(users):
    version = make_version("v1")
    deployment_update(actor=users["operator"], reason="first", production=version)
    again = deployment_update(actor=users["operator"], reason="again", production=version)
    assert again.revision == 2 and DeploymentChange.objects.count() == 1


@pytest.mark.parametrize("kwargs,error", [
    ({"reason": ""}, "reason is required"),
    ({"canary_percent": 10}, "needs a canary version"),
    ({"canary_percent": "abc"}, "must be a number"),
    ({"canary_percent": 150}, "between 0 and 100"),
    ({"salt": ""}, "salt"),
    ({"arms": [{"name": "a b", "version": 1, "percent": 10}]}, "letters, digits"),
    ({"arms": "x"}, "must be a list"),
])
def test_bad_changes_are_refused_with_a_clear_error(users, kwargs, error):
    kwargs = {"reason": "r", **kwargs}
    with pytest.raises(ValidationError, match=error):
        deployment_update(actor=users["operator"], **kwargs)
    assert not DeploymentChange.objects.exists()


def test_allocations_over_100_percent_and_unknown_versions_are_refused(users):
    v1, v2 = make_version("v1"), make_version("v2")
    with pytest.raises(ValidationError, match="more than 100%"):
        deployment_update(actor=users["operator"], reason="r", canary=v1, canary_percent=60,
                          arms=[{"name": "a", "version": v2.pk, "percent": 50}])
    with pytest.raises(NotFound):
        deployment_update(actor=users["operator"], reason="r", production=987654)
    assert ModelAlias.objects.filter(name="canary", version__isnull=False).count() == 0  # nothing half-done


def test_production_takes_only_a_version_with_an_approved_promotion(users):
    candidate = make_version("cand", status="candidate")
    with pytest.raises(Conflict, match="approved promotion"):
        deployment_update(actor=users["operator"], reason="r", production=candidate)
    # The registry status alone is not enough: approval comes from a promotion's review.
    status_only = make_version("status-only", status="approved", promoted=False)
    with pytest.raises(Conflict, match="has no promotion request"):
        deployment_update(actor=users["operator"], reason="r", production=status_only)


def test_canary_and_arms_route_viewers_deterministically(users):
    prod, canary, arm = make_version("p", seed=1), make_version("c", seed=2), make_version("a", seed=3)
    deployment_update(actor=users["operator"], reason="split", production=prod, canary=canary, canary_percent=20,
                      arms=[{"name": "exp-1", "version": arm.pk, "percent": 30, "experiment": "svd-vs-pop"}])
    runtime = get_runtime()
    runtime.refresh_deployment()
    deployment = Deployment.objects.get(name="default")
    layout = bucketing.build_layout(salt=deployment.salt, canary_percent=20, arms=[("exp-1", 30)])
    served = Counter()
    for viewer in range(1, 61):
        answer = runtime.recommend(viewer, 5)
        assert answer.arm == layout.route(viewer)
        served[(answer.arm, answer.version.version_id)] += 1
        assert runtime.recommend(viewer, 5).items == answer.items  # stable per viewer
    assert set(served) <= {("production", prod.pk), ("canary", canary.pk), ("arm:exp-1", arm.pk)}
    assert len(served) == 3


def test_shadow_computes_off_the_request_path_and_is_compared(users):
    from recommender.serving.shadow import shadow_observer_register, shadow_observer_unregister

    prod, shadow = make_version("p", seed=1), make_version("s", seed=1)  # same factors: full agreement
    deployment_update(actor=users["operator"], reason="shadow", production=prod, shadow=shadow)
    runtime = get_runtime()
    runtime.refresh_deployment()
    seen = []
    shadow_observer_register(seen.append)
    try:
        answer = runtime.recommend(3, 10)
        item = runtime.shadow._queue.get_nowait()
        comparison = runtime.shadow.process(*item)
    finally:
        shadow_observer_unregister(seen.append)
    assert answer.version.version_id == prod.pk
    assert comparison.shadow == tuple(answer.items) and comparison.overlap == 1.0
    assert comparison.rank_correlation == pytest.approx(1.0) and seen == [comparison]
    assert comparison.request_id == answer.request_id and comparison.latency_ms >= 0
    assert runtime.shadow.summary()["mean_overlap"] == 1.0


def test_rollback_puts_the_previous_production_version_back(users):
    v1, v2 = make_version("v1"), make_version("v2")
    deployment_update(actor=users["operator"], reason="one", production=v1)
    deployment_update(actor=users["operator"], reason="two", production=v2)
    deployment = deployment_rollback(actor=users["operator"], reason="v2 hurts")
    assert ModelAlias.objects.get(name="production").version == v1
    assert deployment.reason == "rollback: v2 hurts"


def test_rollback_with_no_history_is_a_conflict(users):
    with pytest.raises(Conflict, match="no earlier production"):
        deployment_rollback(actor=users["operator"], reason="r")
