"""Health checks, the dashboard callback, and JSON error pages for the API."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


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
        folder = app.conf.broker_transport_options["data_folder_in"]
        if not os.access(folder, os.W_OK):
            raise OSError(f"broker folder {folder} is not writable")
        return
    with app.connection_for_write() as conn:
        # No retries: a refused connection is reported at once, a silent one by the timeout.
        conn.ensure_connection(max_retries=0, timeout=settings.USHER["READYZ_TIMEOUT_SECONDS"])


# Checks run in threads so a dependency that never answers cannot hold the request past the
# timeout; a stuck check keeps its thread, which is why the pool is small and shared.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def _run_check(name: str, fn: Callable[[], None]) -> dict:
    def wrapped() -> None:
        try:
            fn()
        finally:
            connection.close()

    future = _executor.submit(wrapped)
    try:
        future.result(timeout=settings.USHER["READYZ_TIMEOUT_SECONDS"])
        return {"ok": True}
    except FutureTimeout:
        error = f"timed out after {settings.USHER['READYZ_TIMEOUT_SECONDS']}s"
    except Exception as exc:  # any failure means not ready
        error = f"{type(exc).__name__}: {exc}"[:300]
    log.warning("readyz: %s not ready: %s", name, error)
    return {"ok": False, "error": error}


def _may_see_errors(request: HttpRequest) -> bool:
    """Error texts name hosts, ports and exceptions: for signed-in operators and admins only."""
    from portal.permissions import user_roles

    try:
        user = getattr(request, "user", None)
        return bool(user is not None and user_roles(user) & {"operator", "admin"})
    except Exception:  # noqa: BLE001 - the database (sessions, roles) may be the thing that is down
        return False


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Each dependency checked with a bounded timeout; 503 when any fails. Anonymous callers (a load
    balancer) get the ok flags only; a signed-in operator or admin also gets each error text."""
    futures = {"database": _check_database, "broker": _check_broker}
    checks = {name: _run_check(name, fn) for name, fn in futures.items()}
    ready = all(c["ok"] for c in checks.values())
    if not _may_see_errors(request):
        checks = {name: {"ok": c["ok"]} for name, c in checks.items()}
    body = {"ready": ready, "checks": checks}
    if checks["database"]["ok"] and request.user.is_authenticated:  # detail for the signed in, not readiness
        from portal.contrib import app_modules

        for module in app_modules("health"):
            body.update(module.readiness_detail())
    return JsonResponse(body, status=200 if ready else 503)


def dashboard_callback(request: HttpRequest, context: dict) -> dict:
    """Figures for the dashboard (the admin index), read from the database."""
    from portal import dashboard

    context.update(dashboard.dashboard_context(request))
    return context


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: JSON in the API's error shape under /api/, the usual page elsewhere."""
    if _wants_json(request):
        return JsonResponse({"error": "not found", "detail": request.path}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON in the API's error shape under /api/, the usual page elsewhere."""
    if _wants_json(request):
        return JsonResponse({"error": "internal server error", "detail": None}, status=500)
    return defaults.server_error(request)
