"""Writes of the beat schedules (django-celery-beat ``PeriodicTask`` rows): the only way a schedule
is created, changed, enabled or disabled, deleted or run now, from the API, the portal's page, the
admin or code.

Each call checks ``schedule.manage`` first, then the whole resulting schedule: a listed task
(``portal.schedules``), its keyword arguments (unknown keys, types, ranges), no positional
arguments, no custom headers (Celery merges them over its own: ``{"task": ...}`` would run another
task than the one shown) and no queue, exchange, routing-key or priority overrides, and an
interval or a crontab that can happen and is not more frequent than the task's floor. Interval and
crontab rows can be shared by several schedules, so they are never edited: the wanted row is
found or created. Every change writes an activity-log entry with the schedule before and after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from portal.errors import Conflict, NotFound, ValidationError
from portal.permissions import require
from portal.schedules import (
    CRONTAB_FIELDS,
    MIN_INTERVAL_SECONDS,
    PERIOD_SECONDS,
    SchedulableTask,
    schedulable_task_require,
    schedule_spec,
)
from portal.services.activity import activity_log_record

WORK = "schedule.manage"
NAME_MAX = 200
DESCRIPTION_MAX = 2000
ROUTING_OPTIONS = ("queue", "exchange", "routing_key", "priority")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class _Wanted:
    """A checked schedule, ready to be written."""

    name: str
    task: str
    kwargs: dict[str, Any]
    kind: str  # "interval" | "crontab"
    spec: dict[str, Any]
    enabled: bool
    description: str


# --- checks -----------------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name is required", detail={"field": "name"})
    name = name.strip()
    if "\x00" in name:
        raise ValidationError("name may not contain a NUL character", detail={"field": "name"})
    if len(name) > NAME_MAX:
        raise ValidationError(f"name is longer than {NAME_MAX} characters", detail={"field": "name"})
    return name


def _check_description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ValidationError("description must be a text", detail={"field": "description"})
    if "\x00" in description:
        raise ValidationError("description may not contain a NUL character", detail={"field": "description"})
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError(f"description is longer than {DESCRIPTION_MAX} characters",
                              detail={"field": "description"})
    return description


def _check_args(args: Any) -> None:
    if args in (None, [], ()):
        return
    raise ValidationError("positional arguments are not accepted: give every argument by name in kwargs",
                          detail={"field": "args"})


def _is_empty_headers(headers: Any) -> bool:
    if headers in (None, "", {}):
        return True
    if isinstance(headers, str):
        try:
            return json.loads(headers) in (None, {})
        except ValueError:
            return False
    return False


def _check_options(headers: Any = None, **routing: Any) -> None:
    if not _is_empty_headers(headers):
        raise ValidationError(
            "custom headers are not allowed: Celery merges them over the task's own message headers, so they "
            "could run another task than the one the schedule shows; leave headers empty ({})",
            detail={"field": "headers"},
        )
    for option, value in routing.items():
        if value not in (None, ""):
            raise ValidationError(
                f"a {option} override is not allowed: listed tasks are sent where the configuration routes them",
                detail={"field": option},
            )


def _check_interval(task: SchedulableTask, interval: Any) -> dict[str, Any]:
    if not isinstance(interval, dict):
        raise ValidationError('interval must be an object such as {"every": 10, "period": "minutes"}',
                              detail={"field": "interval"})
    unknown = sorted(set(interval) - {"every", "period"})
    if unknown:
        raise ValidationError(f"unknown interval field '{unknown[0]}' (it has: every, period)",
                              detail={"field": f"interval.{unknown[0]}"})
    every, period = interval.get("every"), interval.get("period")
    if period not in PERIOD_SECONDS:
        raise ValidationError(f"interval period must be one of {', '.join(PERIOD_SECONDS)}; got {period!r}",
                              detail={"field": "interval.period", "allowed": list(PERIOD_SECONDS)})
    if isinstance(every, str) and every.strip().isdigit():
        every = int(every.strip())
    if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= 10**6:
        raise ValidationError(f"interval every must be a whole number from 1 to 1000000; got {every!r}",
                              detail={"field": "interval.every"})
    seconds = every * PERIOD_SECONDS[period]
    floor = max(MIN_INTERVAL_SECONDS, task.min_interval_seconds)
    if seconds < floor:
        raise ValidationError(
            f"{task.name} may run at most every {_seconds_words(floor)}; every {every} {period} is too often",
            detail={"field": "interval", "min_seconds": floor},
        )
    return {"every": every, "period": period}


def _seconds_words(seconds: int) -> str:
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def _check_crontab(task: SchedulableTask, crontab: Any) -> dict[str, Any]:
    from celery.schedules import crontab as celery_crontab
    from django_celery_beat import validators

    if not isinstance(crontab, dict):
        raise ValidationError('crontab must be an object such as {"minute": "30", "hour": "2"}',
                              detail={"field": "crontab"})
    unknown = sorted(set(crontab) - set(CRONTAB_FIELDS) - {"timezone"})
    if unknown:
        raise ValidationError(f"unknown crontab field '{unknown[0]}' (it has: {', '.join(CRONTAB_FIELDS)}, timezone)",
                              detail={"field": f"crontab.{unknown[0]}"})
    spec: dict[str, Any] = {}
    for name in CRONTAB_FIELDS:
        value = crontab.get(name, "*")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"crontab {name} must be a cron field such as '*', '5', '*/15' or '1-5'",
                                  detail={"field": f"crontab.{name}"})
        value = value.strip()
        if len(value) > CrontabSchedule._meta.get_field(name).max_length:
            raise ValidationError(f"crontab {name} is too long", detail={"field": f"crontab.{name}"})
        try:
            getattr(validators, f"{name}_validator")(value)
        except DjangoValidationError as exc:
            raise ValidationError(f"crontab {name} {value!r} is not valid: {' '.join(exc.messages)}",
                                  detail={"field": f"crontab.{name}"}) from None
        spec[name] = value
    tz = crontab.get("timezone") or "UTC"
    try:
        ZoneInfo(str(tz))
    except Exception:
        raise ValidationError(f"crontab timezone {tz!r} is not a known time zone",
                              detail={"field": "crontab.timezone"}) from None
    spec["timezone"] = str(tz)
    try:
        parsed = celery_crontab(**{name: spec[name] for name in CRONTAB_FIELDS})
    except ValueError as exc:
        # e.g. day_of_month 31 with month_of_year 2: a schedule that never runs.
        raise ValidationError(f"crontab cannot run: {exc}", detail={"field": "crontab"}) from None
    floor = max(MIN_INTERVAL_SECONDS, task.min_interval_seconds)
    gap = _crontab_min_gap_seconds(parsed)
    if gap < floor:
        raise ValidationError(
            f"{task.name} may run at most every {_seconds_words(floor)}; this crontab runs every "
            f"{_seconds_words(gap)} at its most frequent",
            detail={"field": "crontab", "min_seconds": floor},
        )
    return spec


def _crontab_min_gap_seconds(parsed) -> int:
    """The shortest time between two runs within a day's grid of hours × minutes (a day boundary
    counted as if the next day ran too, which can only make the gap shorter)."""
    times = sorted(h * 60 + m for h in parsed.hour for m in parsed.minute)
    if len(times) == 1:
        return 86400
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)] + [times[0] + 1440 - times[-1]]
    return min(gaps) * 60


def _check(*, name: Any, task: Any, kwargs: Any, args: Any, interval: Any, crontab: Any, enabled: Any,
           description: Any, headers: Any, routing: dict[str, Any]) -> _Wanted:
    """The whole schedule checked; the first problem is raised as a ValidationError naming it."""
    name = _check_name(name)
    listed = schedulable_task_require(task)
    _check_args(args)
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs) if kwargs.strip() else {}
        except ValueError as exc:
            raise ValidationError(f"kwargs is not valid JSON: {exc}", detail={"field": "kwargs"}) from None
    clean_kwargs = listed.clean_kwargs(kwargs)
    _check_options(headers, **routing)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", detail={"field": "enabled"})
    if interval is not None and crontab is not None:
        raise ValidationError("give an interval or a crontab, not both", detail={"field": "schedule"})
    if interval is not None:
        kind, spec = "interval", _check_interval(listed, interval)
    elif crontab is not None:
        kind, spec = "crontab", _check_crontab(listed, crontab)
    else:
        raise ValidationError("a schedule needs an interval or a crontab", detail={"field": "schedule"})
    return _Wanted(name=name, task=listed.name, kwargs=clean_kwargs, kind=kind, spec=spec, enabled=enabled,
                   description=_check_description(description))


def schedule_check(*, name: Any, task: Any, kwargs: Any = None, args: Any = None, interval: Any = None,
                   crontab: Any = None, enabled: Any = True, description: Any = "", headers: Any = None,
                   **routing: Any) -> None:
    """Check a schedule without writing it (forms show the service's own message beside the field)."""
    _check(name=name, task=task, kwargs=kwargs, args=args, interval=interval, crontab=crontab, enabled=enabled,
           description=description, headers=headers, routing=_routing(routing))


def _routing(routing: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(routing) - set(ROUTING_OPTIONS))
    if unknown:
        raise ValidationError(f"unknown schedule option '{unknown[0]}'", detail={"field": unknown[0]})
    return {k: routing.get(k) for k in ROUTING_OPTIONS}


# --- rows -------------------------------------------------------------------------------------


def _schedule_row(kind: str, spec: dict[str, Any]) -> IntervalSchedule | CrontabSchedule:
    """The interval or crontab row for ``spec``: an existing equal one, else a new one. Never
    edited: other schedules may point at the same row."""
    if kind == "interval":
        row = IntervalSchedule.objects.filter(**spec).order_by("pk").first()
        return row or IntervalSchedule.objects.create(**spec)
    fields = {f: spec[f] for f in CRONTAB_FIELDS}
    tz = spec["timezone"]
    for row in CrontabSchedule.objects.filter(**fields).order_by("pk"):
        if str(row.timezone) == tz:
            return row
    return CrontabSchedule.objects.create(**fields, timezone=ZoneInfo(tz))


def _snapshot(row: PeriodicTask) -> dict[str, Any]:
    from portal.schedules import schedule_words

    def loads(text: str | None, default: Any) -> Any:
        try:
            return json.loads(text) if text else default
        except ValueError:
            return text

    snap = {
        "name": row.name, "task": row.task, "args": loads(row.args, []), "kwargs": loads(row.kwargs, {}),
        "schedule": schedule_spec(row), "schedule_text": schedule_words(row), "enabled": row.enabled,
        "description": row.description,
    }
    if not _is_empty_headers(row.headers):
        snap["headers"] = loads(row.headers, {})
    for option in ROUTING_OPTIONS:
        if getattr(row, option) not in (None, ""):
            snap[option] = getattr(row, option)
    return snap


def _write(row: PeriodicTask, wanted: _Wanted) -> None:
    row.name = wanted.name
    row.task = wanted.task
    row.args = "[]"
    row.kwargs = json.dumps(wanted.kwargs, sort_keys=True)
    row.headers = "{}"
    row.queue = row.exchange = row.routing_key = None
    row.priority = None
    row.interval = row.crontab = row.solar = row.clocked = None
    setattr(row, wanted.kind, _schedule_row(wanted.kind, wanted.spec))
    row.enabled = wanted.enabled
    row.description = wanted.description
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(f"a schedule named {wanted.name!r} already exists", detail={"field": "name"}) from None


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = set(before) | set(after)
    return sorted(k for k in keys if k != "schedule_text" and before.get(k) != after.get(k))


def _locked(schedule: PeriodicTask | int) -> PeriodicTask:
    pk = schedule if isinstance(schedule, int) else schedule.pk
    # Lock the task's own row only: PostgreSQL refuses FOR UPDATE on the nullable side of the outer
    # joins to its schedule rows (which are shared, never edited here).
    row = (PeriodicTask.objects.select_for_update(of=("self",))
           .select_related("interval", "crontab", "solar", "clocked").filter(pk=pk).first())
    if row is None:
        raise NotFound(f"schedule #{pk} does not exist")
    return row


def _current_spec(row: PeriodicTask) -> tuple[Any, Any]:
    spec = schedule_spec(row)
    return spec.get("interval"), spec.get("crontab")


# --- services ---------------------------------------------------------------------------------


def schedule_create(*, actor: Any | None, name: str, task: str, kwargs: dict | str | None = None,
                    args: list | None = None, interval: dict | None = None, crontab: dict | None = None,
                    enabled: bool = True, description: str = "", headers: Any = None, system: str | None = None,
                    **routing: Any) -> PeriodicTask:
    """A new schedule of a listed task."""
    require(actor, WORK, system=system, target=("django_celery_beat.periodictask", "", str(name)[:200]))
    wanted = _check(name=name, task=task, kwargs=kwargs, args=args, interval=interval, crontab=crontab,
                    enabled=enabled, description=description, headers=headers, routing=_routing(routing))
    with transaction.atomic():
        if PeriodicTask.objects.filter(name=wanted.name).exists():
            raise Conflict(f"a schedule named {wanted.name!r} already exists", detail={"field": "name"})
        row = PeriodicTask()
        _write(row, wanted)
        activity_log_record(actor=actor, system=system, action="schedule.created", target=row,
                            data={"before": None, "after": _snapshot(row)})
    return row


def schedule_update(*, actor: Any | None, schedule: PeriodicTask | int, name: Any = UNSET, task: Any = UNSET,
                    kwargs: Any = UNSET, args: Any = UNSET, interval: Any = UNSET, crontab: Any = UNSET,
                    enabled: Any = UNSET, description: Any = UNSET, headers: Any = UNSET,
                    system: str | None = None, **routing: Any) -> PeriodicTask:
    """Change a schedule; what is not given stays. Giving ``interval`` or ``crontab`` replaces the
    schedule (the other kind is dropped). The result is checked as a whole, like a new one."""
    require(actor, WORK, system=system, target=schedule if isinstance(schedule, PeriodicTask) else None)
    routing = {k: v for k, v in _routing(routing).items() if v is not UNSET}
    with transaction.atomic():
        row = _locked(schedule)
        before = _snapshot(row)
        cur_interval, cur_crontab = _current_spec(row)
        if interval is not UNSET and interval is not None:
            new_interval, new_crontab = interval, (None if crontab is UNSET else crontab)
        elif crontab is not UNSET and crontab is not None:
            new_interval, new_crontab = (None if interval is UNSET else interval), crontab
        else:
            new_interval, new_crontab = cur_interval, cur_crontab
        wanted = _check(
            name=row.name if name is UNSET else name,
            task=row.task if task is UNSET else task,
            kwargs=row.kwargs if kwargs is UNSET else kwargs,
            args=json.loads(row.args or "[]") if args is UNSET else args,
            interval=new_interval, crontab=new_crontab,
            enabled=row.enabled if enabled is UNSET else enabled,
            description=row.description if description is UNSET else description,
            headers=None if headers is UNSET else headers,  # a legacy row's headers are cleared on save
            routing={k: routing.get(k) for k in ROUTING_OPTIONS},
        )
        if wanted.name != row.name and PeriodicTask.objects.filter(name=wanted.name).exclude(pk=row.pk).exists():
            raise Conflict(f"a schedule named {wanted.name!r} already exists", detail={"field": "name"})
        _write(row, wanted)
        after = _snapshot(row)
        fields = _changed_fields(before, after)
        if fields:
            activity_log_record(actor=actor, system=system, action="schedule.changed", target=row,
                                data={"before": before, "after": after, "fields": fields})
    return row


def schedule_set_enabled(*, actor: Any | None, schedule: PeriodicTask | int, enabled: bool,
                         system: str | None = None) -> PeriodicTask:
    """Enable or disable a schedule. Enabling checks the whole schedule (an unlisted task, custom
    headers or an impossible crontab stay off); disabling always works."""
    require(actor, WORK, system=system, target=schedule if isinstance(schedule, PeriodicTask) else None)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", detail={"field": "enabled"})
    with transaction.atomic():
        row = _locked(schedule)
        if row.enabled == enabled:
            return row
        before = _snapshot(row)
        if enabled:
            cur_interval, cur_crontab = _current_spec(row)
            _check(name=row.name, task=row.task, kwargs=row.kwargs, args=json.loads(row.args or "[]"),
                   interval=cur_interval, crontab=cur_crontab, enabled=True, description=row.description,
                   headers=row.headers, routing={k: getattr(row, k) for k in ROUTING_OPTIONS})
        row.enabled = enabled
        row.save()
        activity_log_record(actor=actor, system=system, action="schedule.enabled" if enabled else "schedule.disabled",
                            target=row, data={"before": before, "after": _snapshot(row), "fields": ["enabled"]})
    return row


def schedule_delete(*, actor: Any | None, schedule: PeriodicTask | int, system: str | None = None) -> None:
    """Delete a schedule (its interval or crontab row stays: others may use it)."""
    require(actor, WORK, system=system, target=schedule if isinstance(schedule, PeriodicTask) else None)
    with transaction.atomic():
        row = _locked(schedule)
        before = _snapshot(row)
        target = ("django_celery_beat.periodictask", row.pk, str(row))
        row.delete()
        activity_log_record(actor=actor, system=system, action="schedule.deleted", target=target,
                            data={"before": before, "after": None})


def schedule_run_now(*, actor: Any | None, schedule: PeriodicTask | int, system: str | None = None) -> PeriodicTask:
    """Send a schedule's task once, now, with its checked arguments (after commit), and log it.
    Only a schedule that could be enabled may run: a listed task, valid arguments, no headers."""
    require(actor, WORK, system=system, target=schedule if isinstance(schedule, PeriodicTask) else None)
    with transaction.atomic():
        row = _locked(schedule)
        cur_interval, cur_crontab = _current_spec(row)
        wanted = _check(name=row.name, task=row.task, kwargs=row.kwargs, args=json.loads(row.args or "[]"),
                        interval=cur_interval, crontab=cur_crontab, enabled=True, description=row.description,
                        headers=row.headers, routing={k: getattr(row, k) for k in ROUTING_OPTIONS})
        activity_log_record(actor=actor, system=system, action="schedule.run_now", target=row,
                            data={"task": wanted.task, "kwargs": wanted.kwargs})
        name, task_name, task_kwargs = row.name, wanted.task, wanted.kwargs
        transaction.on_commit(lambda: _send(task_name, task_kwargs, name))
    return row


def _send(task_name: str, kwargs: dict[str, Any], periodic_task_name: str) -> None:
    from celery import current_app

    # Only our own header: the same one beat adds to a scheduled run.
    headers = {"periodic_task_name": periodic_task_name}
    current_app.loader.import_default_modules()  # registers the apps' tasks (autodiscovery is lazy)
    task = current_app.tasks.get(task_name)
    if task is not None:
        task.apply_async(kwargs=kwargs, headers=headers)
    else:
        current_app.send_task(task_name, kwargs=kwargs, headers=headers)

