"""What may be scheduled, and how a schedule reads: the listed set of tasks operators may put on
Celery beat, each with the keyword arguments it accepts, and the reads of the schedules.

The listed set is this module's ``PORTAL_TASKS`` plus each domain app's ``<app>.schedules.TASKS``
(found like the sidebar's sections, so an app lists its own tasks and imports still run one way).
A task not listed here cannot be scheduled, enabled or run from a schedule: the schedule service
refuses it and the beat scheduler (``portal.beat``) skips it. Positional arguments are never
accepted (every listed task takes its arguments by name), nor are custom message headers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db.models import QuerySet

from portal.errors import ValidationError

# The smallest interval any schedule may have; a task may ask for a larger floor of its own.
MIN_INTERVAL_SECONDS = 10
PERIOD_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# The apps whose tasks may be listed (a task's app is its name's first part): the list's filter.
SCHEDULE_APPS = ("portal", "recommender", "monitoring", "audits", "celery")


@dataclass(frozen=True)
class Arg:
    """One keyword argument of a listed task: its type, whether it must be given, its bounds."""

    type: type  # str, int, float or bool
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def clean(self, key: str, value: Any) -> Any:
        kind = self.type
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ValidationError(f"argument '{key}' must be {_type_words(kind)}, not {value!r}",
                                  detail={"argument": key})
        if self.choices and value not in self.choices:
            raise ValidationError(f"argument '{key}' must be one of {', '.join(map(str, self.choices))}; got {value!r}",
                                  detail={"argument": key, "allowed": list(self.choices)})
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(f"argument '{key}' must be at least {self.minimum}; got {value!r}",
                                  detail={"argument": key})
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(f"argument '{key}' must be at most {self.maximum}; got {value!r}",
                                  detail={"argument": key})
        return value


def _type_words(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}.get(kind, kind.__name__)


@dataclass(frozen=True)
class SchedulableTask:
    """A task operators may schedule: its Celery name, what it does, and the arguments it takes."""

    name: str
    label: str
    kwargs: dict[str, Arg] = field(default_factory=dict)
    min_interval_seconds: int = MIN_INTERVAL_SECONDS

    def clean_kwargs(self, kwargs: Any) -> dict[str, Any]:
        """The kwargs checked against this task's arguments: unknown keys, types and ranges."""
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise ValidationError(f"arguments of {self.name} must be a JSON object of named arguments")
        unknown = sorted(set(kwargs) - set(self.kwargs))
        if unknown:
            accepted = ", ".join(sorted(self.kwargs)) or "none"
            raise ValidationError(
                f"unknown argument '{unknown[0]}' for {self.name} (it accepts: {accepted})",
                detail={"argument": unknown[0], "accepted": sorted(self.kwargs)},
            )
        clean = {}
        for key, arg in self.kwargs.items():
            if key not in kwargs:
                if arg.required:
                    raise ValidationError(f"argument '{key}' is required for {self.name}", detail={"argument": key})
                continue
            clean[key] = arg.clean(key, kwargs[key])
        return clean


PORTAL_TASKS = [
    SchedulableTask("portal.verify_activity_log", "Verify the activity log's hash chain"),
    # Installed by beat itself when results expire (django-celery-results keeps them in the
    # database; this deletes the expired ones). Listed so that the default entry keeps running.
    SchedulableTask("celery.backend_cleanup", "Delete expired task results", min_interval_seconds=3600),
]


@lru_cache(maxsize=1)
def _registry() -> dict[str, SchedulableTask]:
    from portal.contrib import app_modules

    tasks: list[SchedulableTask] = list(PORTAL_TASKS)
    for module in app_modules("schedules"):
        tasks.extend(module.TASKS)
    registry: dict[str, SchedulableTask] = {}
    for task in tasks:
        if task.name in registry:
            raise RuntimeError(f"schedulable task {task.name} is listed twice")
        registry[task.name] = task
    return registry


def schedulable_tasks() -> list[SchedulableTask]:
    """Every listed task, by name."""
    return sorted(_registry().values(), key=lambda t: t.name)


def schedulable_task_names() -> list[str]:
    return [t.name for t in schedulable_tasks()]


def schedulable_task_get(name: str) -> SchedulableTask | None:
    return _registry().get(name)


def schedulable_task_require(name: Any) -> SchedulableTask:
    """The listed task called ``name``, or a ValidationError naming the allowed list."""
    task = schedulable_task_get(name) if isinstance(name, str) else None
    if task is None:
        allowed = schedulable_task_names()
        raise ValidationError(f"task {name!r} may not be scheduled; the listed tasks are: {', '.join(allowed)}",
                              detail={"task": name, "allowed": allowed})
    return task


# --- reads ------------------------------------------------------------------------------------


def schedule_list(*, filters: dict | None = None) -> QuerySet:
    """The beat schedules (django-celery-beat rows), by name; ``filters``: ``app`` (task prefix
    ``<app>.``), ``task`` (exact), ``enabled`` (bool)."""
    from django_celery_beat.models import PeriodicTask

    filters = filters or {}
    qs = PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").order_by("name")
    if filters.get("app"):
        qs = qs.filter(task__startswith=f"{filters['app']}.")
    if filters.get("task"):
        qs = qs.filter(task=filters["task"])
    if filters.get("enabled") is not None:
        qs = qs.filter(enabled=filters["enabled"])
    return qs


def schedule_spec(periodic_task) -> dict[str, Any]:
    """The schedule of a row as data: ``{"interval": {...}}``, ``{"crontab": {...}}`` or another kind."""
    if periodic_task.interval_id:
        i = periodic_task.interval
        return {"interval": {"every": i.every, "period": i.period}}
    if periodic_task.crontab_id:
        c = periodic_task.crontab
        return {"crontab": {**{f: getattr(c, f) for f in CRONTAB_FIELDS}, "timezone": str(c.timezone)}}
    if periodic_task.solar_id:
        return {"solar": str(periodic_task.solar)}
    if periodic_task.clocked_id:
        return {"clocked": str(periodic_task.clocked)}
    return {}


def schedule_words(periodic_task) -> str:
    """The schedule in words: "every 10 minutes", "At 02:30 AM UTC"."""
    if periodic_task.interval_id:
        return str(periodic_task.interval)
    if periodic_task.crontab_id:
        return periodic_task.crontab.human_readable
    return str(periodic_task.solar or periodic_task.clocked or "no schedule")


def _loads(text: str | None, default: Any) -> Any:
    import json

    try:
        return json.loads(text) if text else default
    except ValueError:
        return text


def schedule_as_dict(periodic_task) -> dict[str, Any]:
    """A row as the activity log, the API and the pages show it."""
    return {
        "id": periodic_task.pk,
        "name": periodic_task.name,
        "task": periodic_task.task,
        "listed": schedulable_task_get(periodic_task.task) is not None,
        "args": _loads(periodic_task.args, []),
        "kwargs": _loads(periodic_task.kwargs, {}),
        "schedule": schedule_spec(periodic_task),
        "schedule_text": schedule_words(periodic_task),
        "enabled": periodic_task.enabled,
        "description": periodic_task.description,
        "last_run_at": periodic_task.last_run_at,
        "total_run_count": periodic_task.total_run_count,
    }

