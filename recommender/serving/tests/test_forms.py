"""The deployments page's forms: a refused change comes back (400) with what was chosen and typed,
the error beside its field, and nothing changed; the API refuses the same value with a 400 naming
the same field (one rule, in ``deployment_update``)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.form_testing import read_form
from recommender.models import DeploymentChange

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("changes, field, words, api", [
    ({"canary_percent": "150"}, "canary_percent", "canary_percent must be between 0 and 100",
     {"canary_percent": "150"}),
    ({"canary_percent": "five"}, "canary_percent", "canary_percent must be a number between 0 and 100", None),
    ({"reason": " "}, "reason", "a reason is required to change a deployment", {"reason": " "}),
])
def test_a_refused_deployment_change_keeps_what_was_typed(users, client_for, changes, field, words, api):
    data = {"action": "change", "production": "keep", "canary": "none", "shadow": "keep", "canary_percent": "0",
            "shadow_enabled": "on", "reason": "try", **changes}
    response = signed_in(users["operator"]).post("/portal/serving/deployments/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "change-deployment")
    assert words in form.error(field) and words in form.summary
    for name in ("production", "canary", "shadow", "canary_percent", "reason"):
        assert form.value(name) == data[name], name
    assert form.fields["shadow_enabled"].checked == ["on"]
    assert not DeploymentChange.objects.exists()

    if api is not None:
        body = {"reason": "try", **api}
        answer = client_for("operator").post(reverse("api-deployment-change", args=["default"]), body, format="json")
        assert answer.status_code == 400 and words in str(answer.json())
        assert not DeploymentChange.objects.exists()


def test_an_emergency_rollback_without_a_reason_is_refused_beside_the_reason(users):
    response = signed_in(users["operator"]).post("/portal/serving/deployments/", {"action": "rollback", "reason": ""})
    form = read_form(response.content.decode(), "rollback")
    assert response.status_code in (400, 404, 409) and form.summary
    assert not DeploymentChange.objects.exists()
