"""Queueing a task while the broker is down: the caller gets None and a warning, never an exception."""

from __future__ import annotations

import logging

from portal.queue import task_send
from portal.tasks import verify_activity_log


def test_a_refused_broker_is_a_warning_and_none(broker_down, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.queue"):
        assert task_send(verify_activity_log, what="a test") is None
        assert task_send("portal.verify_activity_log") is None
    assert "could not queue portal.verify_activity_log for a test: broker unreachable" in caplog.text


def test_with_the_broker_back_the_task_is_queued(broker_down):
    broker_down()  # restore
    assert task_send(verify_activity_log)
