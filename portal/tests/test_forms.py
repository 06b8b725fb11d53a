"""The shell's portal forms (a review's decision, a schedule): a refused form comes back (400) with
what was typed, the error beside its field and a summary at the top, and nothing stored; the API
refuses the same value with a 400 naming the same field (one rule, in the service). Also the
shared pieces: ``portal.forms`` and ``portal.form_testing``."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from portal.errors import Conflict, ValidationError
from portal.form_testing import read_form
from portal.forms import PortalForm, TextInput
from portal.services import review_request_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(users, review_kind):
    return review_request_create(kind=review_kind.name, target=("demo.model", 7, "model v7"), title="Promote v7",
                                 requester=users["operator"])


@pytest.mark.parametrize("decision", ["reject", "request_changes"])
def test_a_decision_without_its_comment_keeps_the_page_and_decides_nothing(review, web_client_for, client_for,
                                                                          decision):
    response = web_client_for("reviewer").post(reverse("portal:review", args=[review.pk]),
                                               {"decision": decision, "comment": "  "})
    form = read_form(response.content.decode(), "decide-form")
    assert response.status_code == 400
    assert "a comment is required to reject or request changes" in form.error("comment")
    assert "a comment is required" in form.summary
    review.refresh_from_db()
    assert review.status == "pending"

    answer = client_for("reviewer").post(f"/api/v1/reviews/{review.pk}/decide", {"decision": decision},
                                         format="json")
    assert answer.status_code == 400 and "a comment is required" in answer.json()["error"]
    review.refresh_from_db()
    assert review.status == "pending"


SCHEDULE = {"action": "create", "name": "nightly", "task": "portal.verify_activity_log", "kwargs": "{}",
            "kind": "interval", "every": "2", "period": "hours", "minute": "*", "hour": "*", "day_of_month": "*",
            "month_of_year": "*", "day_of_week": "*", "timezone": "UTC", "enabled": "on", "description": "mine"}


@pytest.mark.parametrize("changes, field, words, api", [
    ({"every": "-5"}, "every", "greater than or equal to 1", {"interval": {"every": -5, "period": "hours"}}),
    ({"kind": "crontab", "minute": "75"}, "minute", "crontab minute",
     {"crontab": {"minute": "75"}}),
])
def test_a_refused_schedule_keeps_what_was_typed(web_client_for, client_for, changes, field, words, api):
    before = PeriodicTask.objects.count()
    data = {**SCHEDULE, **changes}
    response = web_client_for("operator").post("/portal/schedules/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "schedule-form")
    assert words in form.error(field) and words in form.summary
    for name in ("name", "task", "kind", "every", "period", "minute", "description"):
        assert form.value(name) == data[name], name
    assert form.fields["enabled"].checked == ["on"]
    assert PeriodicTask.objects.count() == before

    answer = client_for("operator").post("/api/v1/schedules", {"name": "nightly", "task": "portal.verify_activity_log",
                                                               **api}, format="json")
    assert answer.status_code == 400
    assert field in str(answer.json())
    assert PeriodicTask.objects.count() == before


# --- the shared pieces ---------------------------------------------------------------------------------------


class _Form(PortalForm):
    from django import forms

    seconds = forms.IntegerField(required=False, widget=TextInput())
    steps = forms.CharField(required=False, widget=TextInput())
    service_fields = {"interval_seconds": "seconds", "plan": "steps"}


def test_a_service_refusal_lands_on_the_field_it_names():
    form = _Form({"seconds": "5", "steps": "x"})
    assert form.submit(lambda data: (_ for _ in ()).throw(ValidationError("too short", field="interval_seconds"))) \
        is None
    assert form.errors == {"seconds": ["too short"]} and form.status == 400

    form = _Form({"seconds": "5"})
    form.submit(lambda data: (_ for _ in ()).throw(ValidationError("bad step", field="plan.2")))
    assert form.errors == {"steps": ["bad step"]}  # a prefix names the field

    form = _Form({"seconds": "5"})
    form.submit(lambda data: (_ for _ in ()).throw(Conflict("already open", detail={"field": "elsewhere"})))
    assert form.non_field_errors() == ["already open"] and form.status == 409


def test_a_role_that_may_not_is_refused_before_the_fields_are_read(users):
    form = _Form({"seconds": "not a number"})
    called = []
    assert form.submit(called.append, actor=users["viewer"], work="schedule.manage") is None
    assert form.status == 403 and "this needs the role" in form.non_field_errors()[0] and called == []
