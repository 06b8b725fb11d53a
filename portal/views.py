"""The portal's pages: dashboard figures, the review inbox, the activity log; and health checks."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers."""
    return HttpResponse("ok\n", content_type="text/plain")


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    from portal.celery import app

    url = app.conf.broker_url
    if url.startswith("filesystem://"):
        import os

        folder = app.conf.broker_transport_options["data_folder_in"]
        if not os.access(folder, os.W_OK):
            raise OSError(f"broker folder {folder} is not writable")
        return
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.USHER["READYZ_TIMEOUT_SECONDS"])


_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def _run_check(fn) -> dict:
    def wrapped():
        try:
            fn()
        finally:
            connection.close()

    future = _executor.submit(wrapped)
    try:
        future.result(timeout=settings.USHER["READYZ_TIMEOUT_SECONDS"])
        return {"ok": True}
    except FutureTimeout:
        return {"ok": False, "error": "timed out"}
    except (Exception, socket.timeout) as exc:  # noqa: BLE001 - any failure means not ready
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Each dependency checked with a bounded timeout; 503 when any fails."""
    checks = {"database": _run_check(_check_database), "broker": _run_check(_check_broker)}
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


def dashboard_callback(request: HttpRequest, context: dict) -> dict:
    """Figures for the dashboard (the admin index), read from the database."""
    from portal import dashboard

    context.update(dashboard.dashboard_context(request))
    return context


__all__ = ["healthz", "readyz", "dashboard_callback", "json"]
