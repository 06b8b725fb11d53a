"""Celery entry points of the portal shell (thin: each calls one service)."""

from __future__ import annotations

import logging

from celery import shared_task

from portal import selectors, services

logger = logging.getLogger(__name__)


@shared_task(name="portal.verify_activity_log", acks_late=True)
def verify_activity_log() -> dict:
    """Walk the activity log's hash chain, anchored at what the previous run saw; the result
    (kept by django-celery-results, shown on the dashboard) says whether it is intact and, if
    not, which entry is the first broken one."""
    checked, problem = services.activity_log_verify(anchor=selectors.activity_log_last_anchor())
    head_seq, head_hash = services.activity_log_head()
    if problem is not None:
        logger.error("activity log BROKEN: %s (%d entries verified before it)", problem.reason, checked)
    return {
        "ok": problem is None,
        "checked": checked,
        "first_broken_seq": problem.seq if problem else None,
        "problem": problem.reason if problem else None,
        "head_seq": head_seq,
        "head_hash": head_hash,
    }
