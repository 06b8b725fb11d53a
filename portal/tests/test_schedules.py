"""The schedule service: listed tasks only, arguments checked per task, no custom headers or routing
overrides, crontabs that can happen, intervals above the floor; every change logged with before
and after; shared interval and crontab rows never edited."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.models import ActivityLogEntry
from portal.schedules import schedulable_task_names
from portal.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_run_now,
    schedule_set_enabled,
    schedule_update,
)

pytestmark = pytest.mark.django_db


def _entries(action: str | None = None):
    qs = ActivityLogEntry.objects.filter(action__startswith="schedule.").order_by("seq")
    return list(qs.filter(action=action) if action else qs)


def _state() -> list[tuple]:
    """Everything a refused call must leave as it was."""
    return (list(PeriodicTask.objects.order_by("pk").values_list(
        "name", "task", "args", "kwargs", "headers", "enabled", "interval_id", "crontab_id", "queue"))
        + list(IntervalSchedule.objects.order_by("pk").values_list("every", "period"))
        + list(CrontabSchedule.objects.order_by("pk").values_list("minute", "hour", "day_of_month", "month_of_year")))


def _audit(users, **extra) -> PeriodicTask:
    return schedule_create(actor=users["operator"], name="nightly fairness", task="audits.scheduled_audit",
                           kwargs={"kind": "fairness"}, crontab={"minute": "30", "hour": "2"}, **extra)


def test_every_seeded_schedule_names_a_listed_task():
    seeded = set(PeriodicTask.objects.values_list("task", flat=True))
    assert seeded and seeded <= set(schedulable_task_names())


def test_operator_creates_a_schedule_and_the_log_shows_what_runs(users):
    row = _audit(users, description="why")
    row.refresh_from_db()
    assert (row.task, json.loads(row.kwargs), row.headers, row.enabled) == (
        "audits.scheduled_audit", {"kind": "fairness"}, "{}", True)
    assert (row.crontab.minute, row.crontab.hour, str(row.crontab.timezone)) == ("30", "2", "UTC")
    [entry] = _entries("schedule.created")
    assert entry.actor_label == users["operator"].username and entry.target_id == str(row.pk)
    after = entry.data["after"]
    assert after["task"] == "audits.scheduled_audit" and after["kwargs"] == {"kind": "fairness"}
    assert after["schedule"]["crontab"]["minute"] == "30" and after["enabled"] is True
    assert entry.data["before"] is None


@pytest.mark.parametrize(("changes", "message"), [
    ({"task": "recommender.train"}, "task 'recommender.train' may not be scheduled; the listed tasks are: "),
    ({"task": "celery.chord_unlock"}, "may not be scheduled"),
    ({"headers": {"task": "recommender.retrain"}}, "custom headers are not allowed"),
    ({"headers": '{"task": "recommender.retrain"}'}, "custom headers are not allowed"),
    ({"queue": "celery"}, "a queue override is not allowed"),
    ({"exchange": "x"}, "a exchange override is not allowed"),
    ({"routing_key": "k"}, "a routing_key override is not allowed"),
    ({"priority": 9}, "a priority override is not allowed"),
    ({"kwargs": {"kind": "fairness", "overrides": {}}}, "unknown argument 'overrides' for audits.scheduled_audit"),
    ({"kwargs": {}}, "argument 'kind' is required for audits.scheduled_audit"),
    ({"kwargs": {"kind": "everything"}}, "argument 'kind' must be one of fairness, security"),
    ({"kwargs": {"kind": "security", "window_hours": "12"}}, "argument 'window_hours' must be a number"),
    ({"kwargs": {"kind": "security", "window_hours": 10**6}}, "argument 'window_hours' must be at most"),
    ({"kwargs": {"kind": "security", "window_hours": True}}, "argument 'window_hours' must be a number"),
    ({"kwargs": "{not json"}, "kwargs is not valid JSON"),
    ({"kwargs": ["fairness"]}, "must be a JSON object of named arguments"),
    ({"args": ["fairness"]}, "positional arguments are not accepted"),
    ({"crontab": {"minute": "0", "hour": "0", "day_of_month": "31", "month_of_year": "2"}},
     "crontab cannot run: Invalid crontab: day_of_month '31' never occurs in month_of_year '2'"),
    ({"crontab": {"minute": "61"}}, "crontab minute '61' is not valid"),
    ({"crontab": {"minute": "0", "hour": "2", "timezone": "Mars/Olympus"}}, "not a known time zone"),
    ({"crontab": {"minute": "0", "second": "1"}}, "unknown crontab field 'second'"),
    ({"crontab": {"minute": "*/2"}}, "audits.scheduled_audit may run at most every 5 minutes"),
    ({"crontab": None, "interval": {"every": 5, "period": "seconds"}}, "may run at most every 5 minutes"),
    ({"crontab": {"minute": "1"}, "interval": {"every": 1, "period": "days"}}, "not both"),
    ({"crontab": None}, "needs an interval or a crontab"),
    ({"crontab": None, "interval": {"every": 1, "period": "fortnights"}}, "interval period must be one of"),
    ({"crontab": None, "interval": {"every": 0, "period": "days"}}, "interval every must be a whole number"),
    ({"name": "  "}, "name is required"),
    ({"name": "x" * 201}, "name is longer than 200"),
    ({"name": "a\x00b"}, "name may not contain a NUL character"),
    ({"description": "a\x00b"}, "description may not contain a NUL character"),
])
def test_create_refusals_name_the_problem_and_change_nothing(users, changes, message):
    before, log = _state(), _entries()
    params = {"name": "s", "task": "audits.scheduled_audit", "kwargs": {"kind": "fairness"},
              "crontab": {"minute": "30", "hour": "2"}, **changes}
    with pytest.raises(ValidationError) as exc:
        schedule_create(actor=users["operator"], **params)
    assert message in exc.value.message
    assert _state() == before and _entries() == log


def test_an_unknown_task_is_refused_with_the_allowed_list(users):
    with pytest.raises(ValidationError) as exc:
        schedule_create(actor=users["operator"], name="s", task="celery.backend_cleanupX",
                        interval={"every": 1, "period": "days"})
    assert "portal.verify_activity_log" in exc.value.message and "audits.scheduled_audit" in exc.value.detail["allowed"]


def test_the_interval_floor_is_ten_seconds_and_per_task(users):
    with pytest.raises(ValidationError, match="may run at most every 10 seconds"):
        schedule_create(actor=users["operator"], name="s", task="portal.verify_activity_log",
                        interval={"every": 9, "period": "seconds"})
    row = schedule_create(actor=users["operator"], name="s", task="portal.verify_activity_log",
                          interval={"every": 10, "period": "seconds"})
    assert row.interval.every == 10
    with pytest.raises(ValidationError, match="recommender.retrain may run at most every 1 hours"):
        schedule_create(actor=users["operator"], name="r", task="recommender.retrain",
                        interval={"every": 59, "period": "minutes"})


@pytest.mark.parametrize("role", ["viewer", "data_scientist", "reviewer"])
def test_roles_without_schedule_manage_are_refused_and_logged(users, role):
    row = PeriodicTask.objects.get(name="audits: security hourly")
    before = _state()
    calls = [
        lambda: _audit(users | {"operator": users[role]}),
        lambda: schedule_update(actor=users[role], schedule=row, kwargs={"kind": "fairness"}),
        lambda: schedule_set_enabled(actor=users[role], schedule=row, enabled=False),
        lambda: schedule_delete(actor=users[role], schedule=row),
        lambda: schedule_run_now(actor=users[role], schedule=row),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="operator or admin"):
            call()
    assert _state() == before and _entries() == []
    refused = ActivityLogEntry.objects.filter(action="permission.refused", actor_label=users[role].username)
    assert refused.count() == len(calls) and all(e.data["work"] == "schedule.manage" for e in refused)


def test_disable_and_enable_are_logged(users):
    row = PeriodicTask.objects.get(name="audits: security hourly")
    schedule_set_enabled(actor=users["operator"], schedule=row, enabled=False)
    row.refresh_from_db()
    assert row.enabled is False
    [off] = _entries("schedule.disabled")
    assert (off.data["before"]["enabled"], off.data["after"]["enabled"]) == (True, False)
    assert off.data["after"]["task"] == "audits.scheduled_audit" and off.data["after"]["kwargs"] == {"kind": "security"}
    schedule_set_enabled(actor=users["operator"], schedule=row, enabled=False)  # no change, no entry
    schedule_set_enabled(actor=users["admin"], schedule=row, enabled=True)
    row.refresh_from_db()
    assert row.enabled is True
    assert [e.action for e in _entries()] == ["schedule.disabled", "schedule.enabled"]


def test_a_schedule_change_makes_its_own_row_and_never_edits_a_shared_one(users):
    # The seeded hourly security audit and another schedule share the same crontab row.
    security = PeriodicTask.objects.get(name="audits: security hourly")
    shared = security.crontab
    other = schedule_create(actor=users["operator"], name="other", task="portal.verify_activity_log",
                            crontab={"minute": "15", "hour": "*"})
    assert other.crontab_id == shared.pk  # found, not duplicated
    schedule_update(actor=users["operator"], schedule=other, crontab={"minute": "45", "hour": "*"})
    shared.refresh_from_db()
    security.refresh_from_db()
    other.refresh_from_db()
    assert (shared.minute, security.crontab_id) == ("15", shared.pk)
    assert other.crontab_id != shared.pk and other.crontab.minute == "45"
    [entry] = _entries("schedule.changed")
    assert entry.data["before"]["schedule"]["crontab"]["minute"] == "15"
    assert entry.data["after"]["schedule"]["crontab"]["minute"] == "45"
    assert entry.data["fields"] == ["schedule"]


def test_chain_verification_cannot_move_to_31_february(users):
    verify = PeriodicTask.objects.get(task="portal.verify_activity_log")
    before = _state()
    with pytest.raises(ValidationError, match="never occurs"):
        schedule_update(actor=users["operator"], schedule=verify,
                        crontab={"minute": "17", "hour": "3", "day_of_month": "31", "month_of_year": "2"})
    assert _state() == before and _entries() == []


def test_update_switches_interval_to_crontab_and_checks_the_new_task_against_the_old_arguments(users):
    row = PeriodicTask.objects.get(name="audits: security hourly")
    with pytest.raises(ValidationError, match="unknown argument 'kind' for portal.verify_activity_log"):
        schedule_update(actor=users["operator"], schedule=row, task="portal.verify_activity_log")
    schedule_update(actor=users["operator"], schedule=row, task="portal.verify_activity_log", kwargs={},
                    interval={"every": 2, "period": "hours"})
    row.refresh_from_db()
    assert (row.task, row.kwargs, row.crontab_id, row.interval.every) == ("portal.verify_activity_log", "{}", None, 2)
    [entry] = _entries("schedule.changed")
    assert entry.data["fields"] == ["kwargs", "schedule", "task"]


def test_update_without_change_writes_no_entry_and_names_are_unique(users):
    row = _audit(users)
    schedule_update(actor=users["operator"], schedule=row, kwargs={"kind": "fairness"})
    assert [e.action for e in _entries()] == ["schedule.created"]
    with pytest.raises(Conflict, match="already exists"):
        schedule_update(actor=users["operator"], schedule=row, name="audits: security hourly")
    with pytest.raises(Conflict, match="already exists"):
        _audit(users)


def test_a_legacy_row_with_headers_and_an_unlisted_task_cannot_be_enabled_or_run(users):
    row = PeriodicTask.objects.create(name="legacy", task="portal.verify_activity_log", enabled=False,
                                      headers=json.dumps({"task": "recommender.retrain"}),
                                      interval=IntervalSchedule.objects.create(every=10, period="seconds"))
    with pytest.raises(ValidationError, match="custom headers are not allowed"):
        schedule_set_enabled(actor=users["operator"], schedule=row, enabled=True)
    with pytest.raises(ValidationError, match="custom headers are not allowed"):
        schedule_run_now(actor=users["operator"], schedule=row)
    # Saving it through the service clears the headers; then it may run.
    schedule_update(actor=users["operator"], schedule=row, description="cleaned")
    row.refresh_from_db()
    assert row.headers == "{}"
    [entry] = _entries("schedule.changed")
    assert entry.data["before"]["headers"] == {"task": "recommender.retrain"} and "headers" not in entry.data["after"]
    unlisted = PeriodicTask.objects.create(name="cleanup2", task="celery.chord_unlock", enabled=False,
                                           interval=IntervalSchedule.objects.get(every=10, period="seconds"))
    with pytest.raises(ValidationError, match="may not be scheduled"):
        schedule_set_enabled(actor=users["operator"], schedule=unlisted, enabled=True)
    schedule_set_enabled(actor=users["operator"], schedule=unlisted, enabled=False)  # off is always allowed
    assert PeriodicTask.objects.get(pk=unlisted.pk).enabled is False


def test_delete_is_logged_with_what_was_deleted(users):
    row = _audit(users)
    pk, crontab_id = row.pk, row.crontab_id
    schedule_delete(actor=users["operator"], schedule=row)
    assert not PeriodicTask.objects.filter(pk=pk).exists()
    assert CrontabSchedule.objects.filter(pk=crontab_id).exists()
    [entry] = _entries("schedule.deleted")
    assert entry.target_id == str(pk) and entry.data["before"]["task"] == "audits.scheduled_audit"


def test_run_now_sends_the_listed_task_once_and_logs_it(users, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    from celery import current_app

    current_app.loader.import_default_modules()
    task = current_app.tasks["portal.verify_activity_log"]
    monkeypatch.setattr(task, "apply_async", lambda **kw: sent.append(kw))
    row = PeriodicTask.objects.get(task="portal.verify_activity_log")
    with django_capture_on_commit_callbacks(execute=True):
        schedule_run_now(actor=users["operator"], schedule=row)
    assert sent == [{"kwargs": {}, "headers": {"periodic_task_name": row.name}}]
    [entry] = _entries("schedule.run_now")
    assert entry.data == {"task": "portal.verify_activity_log", "kwargs": {}}


def test_a_missing_schedule_is_not_found(users):
    from portal.errors import NotFound

    with pytest.raises(NotFound):
        schedule_set_enabled(actor=users["operator"], schedule=10**9, enabled=False)


def test_a_system_caller_is_logged_under_its_name():
    row = schedule_create(actor=None, system="bootstrap", name="x", task="audits.expire_waivers",
                          interval={"every": 10, "period": "minutes"})
    [entry] = _entries("schedule.created")
    assert entry.actor_label == "system:bootstrap" and entry.target_id == str(row.pk)
