"""Every way into the schedules goes through the schedule service: the portal's Schedules page,
the REST API, the admin (its form, the inherited enable/disable/toggle/run actions, delete), and
the data migration that cleans existing rows."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from portal.models import ActivityLogEntry

pytestmark = pytest.mark.django_db

SECURITY = "audits: security hourly"


def _schedule_entries(action: str | None = None) -> list[ActivityLogEntry]:
    qs = ActivityLogEntry.objects.filter(action__startswith="schedule.").order_by("seq")
    return list(qs.filter(action=action) if action else qs)


def _state() -> list[tuple]:
    return (list(PeriodicTask.objects.order_by("pk").values_list(
        "name", "task", "args", "kwargs", "headers", "enabled", "interval_id", "crontab_id"))
        + list(CrontabSchedule.objects.order_by("pk").values_list("minute", "hour", "day_of_month", "month_of_year"))
        + list(IntervalSchedule.objects.order_by("pk").values_list("every", "period")))


FORM = {"action": "create", "name": "fairness at 04:00", "task": "audits.scheduled_audit",
        "kwargs": '{"kind": "fairness"}', "kind": "crontab", "minute": "0", "hour": "4", "day_of_month": "*",
        "month_of_year": "*", "day_of_week": "*", "timezone": "UTC", "enabled": "on", "every": "", "period": "minutes",
        "description": ""}


# --- the portal page --------------------------------------------------------------------------


def test_the_page_lists_schedules_in_words_and_filters_by_app(web_client_for):
    html = web_client_for("viewer").get("/portal/schedules/?app=audits").content.decode()
    assert SECURITY in html and "audits.scheduled_audit" in html and "At 15 minutes past the hour" in html
    assert "monitoring.evaluate_alerts" not in html.split('data-testid="listed-tasks"')[0]
    assert 'data-testid="schedule-form"' not in html and 'value="disable"' not in html  # read only for a viewer


def test_the_page_is_in_the_sidebar(rf, users):
    from portal.navigation import sidebar_navigation

    request = rf.get("/portal/")
    request.user = users["viewer"]
    links = [str(item["link"]) for section in sidebar_navigation(request) for item in section["items"]]
    assert "/portal/schedules/" in links and "/portal/schedules/?app=audits" in links


def test_operator_creates_disables_runs_and_edits_on_the_page(web_client_for, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from portal.services import schedules as service

    sent = []
    monkeypatch.setattr(service, "_send", lambda *a: sent.append(a))
    client = web_client_for("operator")
    response = client.post("/portal/schedules/", FORM, follow=True)
    assert "Schedule &#x27;fairness at 04:00&#x27; created." in response.content.decode()
    row = PeriodicTask.objects.get(name="fairness at 04:00")
    assert (row.task, json.loads(row.kwargs), row.crontab.hour) == ("audits.scheduled_audit", {"kind": "fairness"}, "4")
    client.post("/portal/schedules/", {"action": "disable", "schedule": row.pk})
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/portal/schedules/", {"action": "run", "schedule": row.pk})
    edit = {**FORM, "minute": "30", "kwargs": '{"kind": "security", "window_hours": 12}'}
    edit.pop("action")
    edit.pop("enabled")
    response = client.post(f"/portal/schedules/{row.pk}/", edit, follow=True)
    assert "Schedule saved." in response.content.decode()
    row.refresh_from_db()
    assert (row.enabled, row.crontab.minute, json.loads(row.kwargs)) == (
        False, "30", {"kind": "security", "window_hours": 12.0})
    assert [e.action for e in _schedule_entries()] == [
        "schedule.created", "schedule.disabled", "schedule.run_now", "schedule.changed"]
    assert sent == [("audits.scheduled_audit", {"kind": "fairness"}, "fairness at 04:00")]
    history = client.get(f"/portal/schedules/{row.pk}/").content.decode()
    assert "schedule.changed" in history and "schedule.disabled" in history


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"task": "recommender.train"}, "task", "Select a valid choice"),
    ({"kwargs": '{"kind": "fairness", "overrides": {}}'}, "kwargs", "unknown argument &#x27;overrides&#x27;"),
    ({"kwargs": "{oops"}, "kwargs", "not valid JSON"),
    ({"day_of_month": "31", "month_of_year": "2"}, "kind", "never occurs in month_of_year"),
    ({"minute": "75"}, "minute", "crontab minute &#x27;75&#x27; is not valid"),
    ({"kind": "interval", "every": "5", "period": "seconds"}, "kind", "may run at most every 5 minutes"),
])
def test_the_page_shows_the_services_refusal_beside_the_field(web_client_for, changes, field, message):
    before = _state()
    html = web_client_for("operator").post("/portal/schedules/", {**FORM, **changes}).content.decode()
    assert f'data-testid="error-{field}"' in html and message in html
    assert _state() == before and _schedule_entries() == []


@pytest.mark.parametrize("role", ["viewer", "data_scientist"])
def test_roles_without_the_work_are_refused_on_the_page_and_nothing_changes(web_client_for, users, role):
    row = PeriodicTask.objects.get(name=SECURITY)
    before = _state()
    client = web_client_for(role)
    posts = [("/portal/schedules/", FORM), ("/portal/schedules/", {"action": "disable", "schedule": row.pk}),
             ("/portal/schedules/", {"action": "delete", "schedule": row.pk}),
             ("/portal/schedules/", {"action": "run", "schedule": row.pk}),
             (f"/portal/schedules/{row.pk}/", {**FORM, "minute": "1"})]
    for url, data in posts:
        response = client.post(url, data, follow=True)
        assert "this needs the role: operator or admin" in response.content.decode()
    assert _state() == before and _schedule_entries() == []
    assert ActivityLogEntry.objects.filter(action="permission.refused", actor_label=users[role].username).count() == 5


# --- the REST API -----------------------------------------------------------------------------


def test_api_lists_and_reads_for_every_role(client_for):
    response = client_for("viewer").get("/api/v1/schedules?app=audits")
    assert response.status_code == 200
    names = {s["name"] for s in response.json()["results"]}
    assert SECURITY in names and all(s["task"].startswith("audits.") for s in response.json()["results"])
    one = next(s for s in response.json()["results"] if s["name"] == SECURITY)
    assert one["schedule"]["crontab"]["minute"] == "15" and one["kwargs"] == {"kind": "security"} and one["listed"]
    assert client_for("viewer").get(f"/api/v1/schedules/{one['id']}").json()["name"] == SECURITY
    assert client_for("viewer").get("/api/v1/schedules?app=nope").status_code == 400


def test_api_list_query_count_is_flat(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    client.get("/api/v1/schedules")  # warm the session's role lookups
    with django_assert_max_num_queries(6):
        assert client.get("/api/v1/schedules").status_code == 200


def test_api_create_patch_enable_disable_and_delete_are_logged(client_for):
    client = client_for("operator")
    created = client.post("/api/v1/schedules", {"name": "every 10 s", "task": "portal.verify_activity_log",
                                                 "interval": {"every": 10, "period": "seconds"}}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["schedule_text"] == "every 10 seconds"
    assert client.patch(f"/api/v1/schedules/{pk}", {"enabled": False}, format="json").json()["enabled"] is False
    patched = client.patch(f"/api/v1/schedules/{pk}", {"crontab": {"minute": "17", "hour": "3"}}, format="json")
    assert patched.status_code == 200 and patched.json()["schedule"]["crontab"]["hour"] == "3"
    assert client.delete(f"/api/v1/schedules/{pk}").status_code == 204
    assert [e.action for e in _schedule_entries()] == [
        "schedule.created", "schedule.disabled", "schedule.changed", "schedule.deleted"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"headers": {"task": "recommender.retrain"}}, 400, "custom headers are not allowed"),
    ({"task": "celery.chord_unlock"}, 400, "may not be scheduled"),
    ({"queue": "fast"}, 400, "queue override is not allowed"),
    ({"kwargs": {"nope": 1}}, 400, "unknown argument 'nope'"),
    ({"interval": {"every": 1, "period": "seconds"}}, 400, "at most every 10 seconds"),
    ({"solar": {"event": "sunrise"}}, 400, "invalid input"),
    ({"name": "audits: security hourly"}, 409, "already exists"),
])
def test_api_refusals_name_the_problem_and_change_nothing(client_for, body, status, message):
    before = _state()
    base = {"name": "new", "task": "portal.verify_activity_log", "interval": {"every": 1, "period": "hours"}}
    response = client_for("operator").post("/api/v1/schedules", {**base, **body}, format="json")
    assert response.status_code == status
    assert message in json.dumps(response.json())
    assert _state() == before and _schedule_entries() == []


@pytest.mark.parametrize("role", ["viewer", "data_scientist", "reviewer"])
def test_api_writes_are_refused_for_roles_without_the_work(client_for, role):
    row = PeriodicTask.objects.get(name=SECURITY)
    before = _state()
    client = client_for(role)
    assert client.post("/api/v1/schedules", {"name": "x", "task": "portal.verify_activity_log",
                                              "interval": {"every": 1, "period": "hours"}}, format="json").status_code == 403
    assert client.patch(f"/api/v1/schedules/{row.pk}", {"enabled": False}, format="json").status_code == 403
    assert client.delete(f"/api/v1/schedules/{row.pk}").status_code == 403
    assert _state() == before


def test_the_schedules_api_is_in_the_schema(client_for):
    schema = client_for("viewer").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/schedules"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/v1/schedules/{schedule_id}"])


# --- the admin --------------------------------------------------------------------------------


def _changelist_action(client, action: str, rows) -> None:
    client.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                {"action": action, "_selected_action": [r.pk for r in rows]})


def test_admin_actions_go_through_the_service_and_are_logged(web_client_for, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    from portal.services import schedules as service

    sent = []
    monkeypatch.setattr(service, "_send", lambda *a: sent.append(a))
    client = web_client_for("admin")
    security = PeriodicTask.objects.get(name=SECURITY)
    verify = PeriodicTask.objects.get(task="portal.verify_activity_log")
    _changelist_action(client, "disable_tasks", [security])
    _changelist_action(client, "toggle_tasks", [security, verify])
    _changelist_action(client, "enable_tasks", [verify])
    with django_capture_on_commit_callbacks(execute=True):
        _changelist_action(client, "run_tasks", [verify])
    security.refresh_from_db()
    verify.refresh_from_db()
    assert (security.enabled, verify.enabled) == (True, True)
    entries = [(e.action, e.target_id) for e in _schedule_entries()]
    assert entries[0] == ("schedule.disabled", str(security.pk))
    assert sorted(entries[1:3]) == [("schedule.disabled", str(verify.pk)), ("schedule.enabled", str(security.pk))]
    assert entries[3:] == [("schedule.enabled", str(verify.pk)), ("schedule.run_now", str(verify.pk))]
    assert sent == [("portal.verify_activity_log", {}, verify.name)]
    _changelist_action(client, "delete_selected", [security])
    client.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                {"action": "delete_selected", "_selected_action": [security.pk], "post": "yes"})
    assert not PeriodicTask.objects.filter(pk=security.pk).exists()
    assert _schedule_entries()[-1].action == "schedule.deleted"


def test_admin_run_now_refuses_an_unlisted_task(web_client_for, monkeypatch):
    from portal.services import schedules as service

    sent = []
    monkeypatch.setattr(service, "_send", lambda *a: sent.append(a))
    row = PeriodicTask.objects.create(name="old", task="celery.chord_unlock", enabled=False,
                                      interval=IntervalSchedule.objects.create(every=1, period="hours"))
    response = web_client_for("admin").post(reverse("admin:django_celery_beat_periodictask_changelist"),
                                             {"action": "run_tasks", "_selected_action": [row.pk]}, follow=True)
    assert "may not be scheduled" in response.content.decode() and sent == []
    assert _schedule_entries() == []


ADMIN_FORM = {"name": "via admin", "task": "portal.verify_activity_log", "kwargs": "{}", "kind": "interval",
              "every": "2", "period": "hours", "minute": "*", "hour": "*", "day_of_month": "*", "month_of_year": "*",
              "day_of_week": "*", "timezone": "UTC", "enabled": "on", "description": ""}


def test_admin_form_saves_through_the_service_and_refuses_headers_and_impossible_dates(web_client_for):
    client = web_client_for("admin")
    add = reverse("admin:django_celery_beat_periodictask_add")
    assert client.get(add).status_code == 200
    # The old form's execution options are gone: a headers payload is not a field, and never stored.
    response = client.post(add, {**ADMIN_FORM, "headers": '{"task": "recommender.retrain"}'})
    assert response.status_code == 302, response.content.decode()[:3000]
    row = PeriodicTask.objects.get(name="via admin")
    assert (row.headers, row.interval.every, row.interval.period) == ("{}", 2, "hours")
    change = reverse("admin:django_celery_beat_periodictask_change", args=[row.pk])
    assert 'value="via admin"' in client.get(change).content.decode()
    before = _state()
    response = client.post(change, {**ADMIN_FORM, "kind": "crontab", "minute": "0", "hour": "0",
                                    "day_of_month": "31", "month_of_year": "2"})
    assert response.status_code == 200 and "never occurs in month_of_year" in response.content.decode()
    response = client.post(change, {**ADMIN_FORM, "task": "celery.chord_unlock"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert _state() == before
    response = client.post(change, {**ADMIN_FORM, "kind": "crontab", "minute": "5", "hour": "1"})
    assert response.status_code == 302
    assert [e.action for e in _schedule_entries()] == ["schedule.created", "schedule.changed"]


def test_interval_and_crontab_rows_are_read_only_in_the_admin(web_client_for):
    client = web_client_for("admin")
    crontab = PeriodicTask.objects.get(name=SECURITY).crontab
    assert client.get(reverse("admin:django_celery_beat_crontabschedule_changelist")).status_code == 200
    assert client.get(reverse("admin:django_celery_beat_crontabschedule_add")).status_code == 403
    client.post(reverse("admin:django_celery_beat_crontabschedule_change", args=[crontab.pk]),
                {"minute": "0", "hour": "0", "day_of_month": "31", "month_of_year": "2", "day_of_week": "*",
                 "timezone": "UTC"})
    crontab.refresh_from_db()
    assert (crontab.minute, crontab.day_of_month) == ("15", "*")
    from django.contrib import admin
    from django_celery_beat.models import ClockedSchedule, SolarSchedule

    assert not admin.site.is_registered(SolarSchedule) and not admin.site.is_registered(ClockedSchedule)


def test_a_viewer_gets_no_admin_actions_that_change_schedules(web_client_for):
    row = PeriodicTask.objects.get(name=SECURITY)
    before = _state()
    client = web_client_for("viewer")
    for action in ("disable_tasks", "toggle_tasks", "delete_selected", "run_tasks"):
        client.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                    {"action": action, "_selected_action": [row.pk], "post": "yes"})
    assert _state() == before and _schedule_entries() == []


# --- the data migration -----------------------------------------------------------------------


def test_the_migration_clears_headers_and_disables_unlisted_tasks_with_a_log_entry():
    from importlib import import_module

    from django.apps import apps

    from portal.schedules import schedulable_task_names
    from portal.services.activity import activity_log_verify

    migration = import_module("portal.migrations.0007_schedules_clear_headers_disable_unlisted")
    interval = IntervalSchedule.objects.create(every=10, period="seconds")
    forged = PeriodicTask.objects.create(name="innocent", task="portal.verify_activity_log", interval=interval,
                                         headers=json.dumps({"task": "recommender.retrain"}), queue="q")
    unlisted = PeriodicTask.objects.create(name="cleanup", task="celery.chord_unlock", interval=interval)
    cleanup = PeriodicTask.objects.create(name="celery.backend_cleanup", task="celery.backend_cleanup",
                                          interval=interval)
    seeded = list(PeriodicTask.objects.exclude(pk__in=[forged.pk, unlisted.pk, cleanup.pk]).values_list(
        "pk", "headers", "enabled"))
    migration.clean_schedules(apps, None)
    forged.refresh_from_db()
    unlisted.refresh_from_db()
    cleanup.refresh_from_db()
    assert (forged.headers, forged.queue, forged.enabled) == ("{}", None, True)
    assert unlisted.enabled is False and cleanup.enabled is True
    entries = ActivityLogEntry.objects.filter(action="schedule.cleaned").order_by("seq")
    assert [(e.target_id, e.data["fields"]) for e in entries] == [
        (str(forged.pk), ["headers", "queue"]), (str(unlisted.pk), ["enabled"])]
    assert entries[0].data["before"]["headers"] == {"task": "recommender.retrain"}
    assert entries[0].actor_label == "system:migration:portal.0007"
    assert activity_log_verify()[1] is None  # the entries are chained like any other
    assert migration.LISTED == set(schedulable_task_names())  # frozen, and still the same list
    assert list(PeriodicTask.objects.exclude(pk__in=[forged.pk, unlisted.pk, cleanup.pk]).values_list(
        "pk", "headers", "enabled")) == seeded  # the seeded schedules were clean already


def test_the_migration_is_applied():
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder(connection).applied_migrations()
    assert ("portal", "0007_schedules_clear_headers_disable_unlisted") in applied
