"""Every /api/v1/ endpoint × every role × every method it implements: no 5xx, anonymous 401/403,
viewer writes 403.

The endpoints are found by walking Django's URL resolver, so endpoints added by any app are
covered without touching this file. Path parameters get a value that names nothing (an id that
does not exist), so a 404 is an acceptable answer for a signed-in role.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize
from rest_framework.permissions import AllowAny

from portal.roles import ROLE_NAMES

API_PREFIX = "api/v1/"
WRITE_METHODS = ("post", "put", "patch", "delete")
SAMPLES = ["999999999", "no-such-thing", str(uuid.UUID(int=0)), "no+such+thing+1999", "zz"]


@dataclass(frozen=True)
class Endpoint:
    path: str
    callback: object

    @property
    def view_class(self):
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    @property
    def methods(self) -> list[str]:
        actions = getattr(self.callback, "actions", None)  # a DRF ViewSet routed by a router
        if actions:
            return sorted(m for m in actions if m in ("get", *WRITE_METHODS))
        cls = self.view_class
        if cls is None:
            return ["get", "post"]
        return [m for m in ("get", *WRITE_METHODS) if m in cls.http_method_names and hasattr(cls, m)]

    @property
    def is_public(self) -> bool:
        cls = self.view_class
        return cls is not None and any(p is AllowAny for p in getattr(cls, "permission_classes", []))

    @property
    def viewer_may_write(self) -> bool:
        return "viewer" in (getattr(self.view_class, "write_roles", None) or ())


def _sample_for(pattern, name: str) -> list[str]:
    if name == "format":
        return ["json"]
    converter = getattr(pattern, "converters", {}).get(name)
    candidates = SAMPLES
    if converter is not None:
        regex = re.compile(f"^(?:{converter.regex})$")
        candidates = [c for c in SAMPLES if regex.match(c)]
    return candidates


def _fill(pattern) -> list[str]:
    """Candidate concrete strings for one pattern (route or regex) with sample parameters."""
    if isinstance(pattern, RoutePattern):
        route = pattern._route
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        if not names:
            return [route]
        options = []
        for i in range(len(SAMPLES)):
            filled, ok = route, True
            for n in names:
                samples = _sample_for(pattern, n)
                if not samples:
                    ok = False
                    break
                filled = re.sub(rf"<(?:\w+:)?{n}>", samples[min(i, len(samples) - 1)], filled, count=1)
            if ok:
                options.append(filled)
        return list(dict.fromkeys(options))
    if isinstance(pattern, RegexPattern):
        options = []
        for fmt, params in normalize(pattern._regex):
            if "format" in params:
                continue  # DRF's format-suffix duplicates
            for sample in SAMPLES:
                options.append(fmt % {p: sample for p in params})
        return list(dict.fromkeys(options))
    return [str(pattern)]


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        for piece in _fill(entry.pattern):
            path = prefix + piece
            if isinstance(entry, URLResolver):
                if API_PREFIX.startswith(path) or path.startswith(API_PREFIX):
                    yield from _walk(entry.url_patterns, path)
            elif isinstance(entry, URLPattern) and path.startswith(API_PREFIX):
                yield path, entry.callback


def api_endpoints() -> list[Endpoint]:
    """Every routed /api/v1/ view, each with one concrete path that resolves to it."""
    found: dict[object, Endpoint] = {}
    for path, callback in _walk(get_resolver().url_patterns):
        if callback in found:
            continue
        try:
            match = resolve("/" + path)
        except Exception:
            continue
        if match.func is callback:
            found[callback] = Endpoint("/" + path, callback)
    return sorted(found.values(), key=lambda e: e.path)


ENDPOINTS = api_endpoints()

# Findings in other apps' endpoints, reported to their owners; each entry goes when it is fixed
# (the test then XPASSes). Portal's own endpoints never appear here.
KNOWN_ISSUES: dict[str, str] = {}


def _params():
    for e in ENDPOINTS:
        marks = [pytest.mark.xfail(reason=KNOWN_ISSUES[e.path], strict=False)] if e.path in KNOWN_ISSUES else []
        yield pytest.param(e, id=e.path, marks=marks)


def test_the_walk_finds_the_portal_endpoints():
    paths = {e.path for e in ENDPOINTS}
    assert {"/api/v1/me", "/api/v1/auth/token", "/api/v1/activity", "/api/v1/reviews",
            "/api/v1/reviews/inbox", "/api/v1/reviews/999999999", "/api/v1/reviews/999999999/decide"} <= paths


def _call(client, method: str, path: str):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, {}, format="json")


def _shape_problem(response) -> str | None:
    if response.status_code < 400 or "json" not in response.get("Content-Type", ""):
        return None
    body = response.json()
    if not isinstance(body, dict) or set(body) != {"error", "detail"}:
        return f"error body is not {{error, detail}}: {str(body)[:200]}"
    return None


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(_params()))
def test_permission_matrix(endpoint, users, api_client, client_for):
    problems: list[str] = []
    for method in endpoint.methods:
        # Anonymous: refused (unless the view says it is public), never a 5xx
        response = _call(api_client, method, endpoint.path)
        if response.status_code >= 500 or (not endpoint.is_public and response.status_code not in (401, 403)):
            problems.append(f"anonymous {method.upper()} → {response.status_code}")
        if (p := _shape_problem(response)) is not None:
            problems.append(f"anonymous {method.upper()}: {p}")
        for role in ROLE_NAMES:
            response = _call(client_for(role), method, endpoint.path)
            code = response.status_code
            if code >= 500 or code == 401:
                problems.append(f"{role} {method.upper()} → {code}")
            if role == "viewer" and method in WRITE_METHODS and not endpoint.viewer_may_write and code != 403:
                problems.append(f"viewer {method.upper()} → {code}, expected 403 (viewers are read-only)")
            if (p := _shape_problem(response)) is not None:
                problems.append(f"{role} {method.upper()}: {p}")
    assert not problems, f"{endpoint.path}: " + "; ".join(problems)
