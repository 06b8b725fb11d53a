"""Helpers for tests that drive real processes (Celery workers): shared by every app's tests."""

from __future__ import annotations

import time
from collections.abc import Callable


def database_url_of_this_run() -> str:
    """The URL of the database this test run uses (the test database, not the configured one)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(predicate: Callable, timeout: float, what: str, log_path=None):
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what``, with
    the end of the worker's log when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = f"\n{log_path.read_text()[-3000:]}" if log_path is not None else ""
    raise AssertionError(f"timed out waiting for {what}{tail}")
