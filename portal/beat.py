"""Celery beat's scheduler for Usher: django-celery-beat's database scheduler, with a check at the
moment a schedule becomes an entry to send.

The schedule service already refuses custom headers and unlisted tasks; this is defence in depth
for rows written around it (an old row, a shell, SQL). An entry:
- carries only the ``periodic_task_name`` header: Celery merges an entry's headers over the
  message's own, so ``{"task": "recommender.retrain"}`` in a row would run retraining under the
  name of another task;
- carries no queue, exchange, routing-key or priority override;
- exists only for a listed task whose arguments pass its checks; any other row is skipped with a
  logged error (it stays in the database, visible on the Schedules page).

Configured by ``CELERY_BEAT_SCHEDULER = "portal.beat:UsherDatabaseScheduler"``.
"""

from __future__ import annotations

import json
import logging

from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from portal.errors import ValidationError
from portal.schedules import schedulable_task_get

logger = logging.getLogger(__name__)

DROPPED_OPTIONS = ("queue", "exchange", "routing_key", "priority")
_logged: set[tuple[str, str]] = set()


def _error_once(name: str, problem: str, message: str, *args) -> None:
    """Log a schedule's problem once per beat process (an entry is rebuilt at every run)."""
    if (name, problem) not in _logged:
        _logged.add((name, problem))
        logger.error(message, *args)


class UsherModelEntry(ModelEntry):
    """A beat entry built from a ``PeriodicTask`` row, refused unless its task is listed, and sent
    with beat's own header only."""

    def __init__(self, model, app=None):
        listed = schedulable_task_get(model.task)
        if listed is None:
            _error_once(model.name, f"unlisted {model.task}",
                        "beat: schedule %r names task %r, which is not listed in portal.schedules: skipped",
                        model.name, model.task)
            raise ValueError(f"task {model.task!r} is not listed")
        try:
            args, kwargs = json.loads(model.args or "[]"), json.loads(model.kwargs or "{}")
            if args != []:
                raise ValidationError("positional arguments are not accepted")
            listed.clean_kwargs(kwargs)
        except (ValueError, ValidationError) as exc:
            reason = exc.message if isinstance(exc, ValidationError) else f"not JSON: {exc}"
            _error_once(model.name, f"arguments {reason}",
                        "beat: schedule %r (%s) has arguments its task does not accept (%s): skipped",
                        model.name, model.task, reason)
            raise ValueError(reason) from None
        super().__init__(model, app=app)
        custom = {k: v for k, v in self.options.get("headers", {}).items() if k != "periodic_task_name"}
        if custom:
            _error_once(model.name, f"headers {sorted(custom)}",
                        "beat: schedule %r carries custom headers %s: dropped (only periodic_task_name is sent)",
                        model.name, sorted(custom))
        self.options["headers"] = {"periodic_task_name": model.name}
        for option in DROPPED_OPTIONS:
            if self.options.pop(option, None) is not None:
                _error_once(model.name, option, "beat: schedule %r carries a %s override: dropped", model.name, option)


class UsherDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler building ``UsherModelEntry`` entries (rows it refuses are
    left out of the schedule: ``all_as_schedule`` skips an entry that raises ``ValueError``)."""

    Entry = UsherModelEntry
