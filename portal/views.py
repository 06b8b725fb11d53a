"""Health checks, the dashboard callback, and the error answers (JSON for the API, pages for the portal)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers (nothing else is touched; a restart is the cure when it does not).
    Whether it can do its work is ``/readyz``."""
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


def _checks() -> dict[str, Callable[[], None]]:
    """The database and the broker, then each app's own (``<app>.health.readiness_checks()``: the
    recommender's ``serving``, which is not ready until /recommend can answer by the contract)."""
    from portal.contrib import app_modules

    checks: dict[str, Callable[[], None]] = {"database": _check_database, "broker": _check_broker}
    for module in app_modules("health"):
        if hasattr(module, "readiness_checks"):
            checks.update(module.readiness_checks())
    return checks


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Can this process do its work: each check (the database, the broker, each app's: serving has a
    model or a fallback list) with a bounded timeout; 503 when any fails. Anonymous callers (a load
    balancer) get the ok flags only; a signed-in operator or admin also gets each error text."""
    checks = {name: _run_check(name, fn) for name, fn in _checks().items()}
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


# --- error pages: JSON under /api/, the portal's own page elsewhere (handler400/403/404/500) ------
# Each answer is in the API's documented shape (docs/api.md, "Errors"): {"error": sentence, "detail": code}.

ERROR_PAGES = {
    400: ("Bad request", "The request could not be understood. Check the address or the form and try again."),
    403: ("Not allowed", "Your account may not open this page or take this action. An admin can give your "
                         "account the role it needs."),
    404: ("Page not found", "There is no page at this address. It may have moved, or the link may be wrong."),
    500: ("Something went wrong", "The server failed to answer this request. The error is logged; try again in a "
                                  "moment, and tell an operator if it keeps happening."),
}
_API_ERRORS = {
    400: ("bad request", "bad_request"),
    403: ("You do not have permission to perform this action.", "permission_denied"),
    404: ("not found", "not_found"),
    500: ("internal server error", "server_error"),
}


def _wants_json(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _api_error(request: HttpRequest, status: int, sentence: str | None = None) -> JsonResponse:
    default, code = _API_ERRORS[status]
    return JsonResponse({"error": sentence or default, "detail": code}, status=status)


def _shell_context(request: HttpRequest) -> dict:
    """The portal shell's branding and colours, when they can be had (never raises: this renders errors)."""
    from django.contrib import admin

    try:
        return admin.site.each_context(request)
    except Exception:  # noqa: BLE001 - the failure being reported may be the very thing each_context needs
        log.warning("error page rendered without the portal's context", exc_info=True)
        return {"site_title": "Usher", "site_header": "Usher", "site_url": "/"}


def _error_page(request: HttpRequest, status: int, *, detail: str = "") -> HttpResponse:
    """The portal-styled page for ``status`` (``templates/<status>.html``, which extends ``error.html``)."""
    from django.template import loader

    title, message = ERROR_PAGES[status]
    context = {"status": status, "title": title, "message": message, "detail": detail,
               "portal_url": "/portal/", "request_path": request.path}
    try:
        context = {**_shell_context(request), **context}
        body = loader.render_to_string(f"{status}.html", context, request=request)
    except Exception:  # noqa: BLE001 - an error page must answer even when templates or the database fail
        log.exception("error page %s failed to render", status)
        body = f"<!doctype html><title>{status} {title}</title><h1>{status} {title}</h1><p>{message}</p>"
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: JSON in the API's error shape under /api/ (naming the path), the portal's page elsewhere."""
    if _wants_json(request):
        from django.urls import Resolver404

        if isinstance(exception, Resolver404):
            return _api_error(request, 404, f"No such path: {request.path_info[:200]} (/api/schema/ lists every path)")
        return _api_error(request, 404, "Not found.")
    return _error_page(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON in the API's error shape under /api/, the portal's page elsewhere; never a traceback."""
    if _wants_json(request):
        return _api_error(request, 500)
    return _error_page(request, 500)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 raised outside DRF (Django's PermissionDenied in a page)."""
    if _wants_json(request):
        return _api_error(request, 403)
    return _error_page(request, 403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 raised outside DRF (a SuspiciousOperation, e.g. a Host header not in ALLOWED_HOSTS)."""
    if _wants_json(request):
        return _api_error(request, 400)
    return _error_page(request, 400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form post refused by the CSRF check (``CSRF_FAILURE_VIEW``): usually an expired page."""
    if _wants_json(request):
        return _api_error(request, 403, f"CSRF check failed: {reason}")
    return _error_page(request, 403, detail="The form had expired or came from another site. Reload the page "
                                             "and submit it again.")


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """django-axes' answer while a username is locked out for a client (``AXES_LOCKOUT_CALLABLE``):
    the API's JSON 429 under /api/ (``POST /api/v1/auth/token``), the lockout page elsewhere."""
    from django.shortcuts import render

    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if _wants_json(request):
        response = JsonResponse({"error": f"Too many failed logins: this account is locked for this client for up "
                                          f"to {seconds // 60} minutes. Try again later or ask an admin.",
                                 "detail": "locked_out"}, status=429)
    else:
        response = render(request, settings.AXES_LOCKOUT_TEMPLATE, {"cooloff_minutes": seconds // 60}, status=429)
    response["Retry-After"] = str(seconds)
    return response
