"""Queueing Celery tasks when the broker may be down.

A service that records work (a training run, a release gate, an audit) and then queues a task for
it must not fail the user's request, nor leave the record half-done, because Redis is away for a
moment: the record is committed first, and the send happens after the commit. ``task_send``
returns the task id, or None when the broker could not be reached (logged as a warning); the
record then stays in its queued state, and the app's beat repair pass sends it again once the
broker is back (``training_run_requeue_unsent``, ``releases_repair``, ``audit_runs_fail_stuck``).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

# Publishing retries briefly (a blip), then gives up: the request that queued the task must answer.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.5, "interval_max": 1.0}


def task_send(task: Any, *, args: tuple | list = (), kwargs: dict | None = None, what: str = "") -> str | None:
    """Queue ``task`` (a task object, or a registered task's name) and return its id; None when the
    broker cannot be reached."""
    from portal.celery import app

    if isinstance(task, str) and app.conf.task_always_eager:
        # ``send_task`` ignores eager mode; a registered task named here runs in this process then,
        # as one passed as an object does (CELERY_TASK_ALWAYS_EAGER: tests and one-process demos).
        # Services name tasks without importing their modules: load the autodiscovered tasks
        # modules as a worker does when it starts, once, if this one is not registered yet.
        if task not in app.tasks:
            app.loader.import_default_modules()
        task = app.tasks[task]
    try:
        if isinstance(task, str):
            result = app.send_task(task, args=list(args), kwargs=kwargs or {}, retry=True, retry_policy=RETRY_POLICY)
        else:
            result = task.apply_async(args=list(args), kwargs=kwargs or {}, retry=True, retry_policy=RETRY_POLICY)
    except (BrokerError, OSError) as exc:
        name = task if isinstance(task, str) else task.name
        logger.warning("could not queue %s%s: broker unreachable (%s); the repair pass will queue it again",
                       name, f" for {what}" if what else "", exc)
        return None
    return result.id
