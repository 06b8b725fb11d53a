"""Request middleware of the portal shell.

``ApiSlashMiddleware``: the API's paths end without a slash (``/api/v1/training-runs``, docs/api.md).
A request under ``/api/`` that matches no route but would match with the trailing slash added or
removed is answered ``308 Permanent Redirect`` to that form (query string kept; 308 keeps the method
and body, so a POST is repeated as a POST). Anything else under ``/api/`` that matches no route is
a JSON 404 (``portal.views.page_not_found``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls.base import is_valid_path
from django.utils.encoding import escape_uri_path

API_PREFIX = "/api/"


class HttpResponsePermanentRedirectKeepMethod(HttpResponsePermanentRedirect):
    status_code = 308


def other_slash_form(path: str) -> str:
    """``/a/b`` ↔ ``/a/b/``."""
    return path[:-1] if path.endswith("/") else f"{path}/"


class ApiSlashMiddleware:
    """Redirect the other trailing-slash form of an API path to the routed one (308)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path_info.startswith(API_PREFIX)
            and getattr(request, "resolver_match", None) is None  # no route matched (not a view's own 404)
        ):
            other = other_slash_form(request.path_info)
            if other != API_PREFIX and is_valid_path(other, getattr(request, "urlconf", None)):
                location = escape_uri_path(other_slash_form(request.path))
                query = request.META.get("QUERY_STRING", "")
                return HttpResponsePermanentRedirectKeepMethod(f"{location}?{query}" if query else location)
        return response
