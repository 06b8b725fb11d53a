"""API surface: walk the URL configuration and verify that every endpoint requires authentication.

The endpoints allowed to answer anonymously are named in ``AUDITS['PUBLIC_URL_NAMES']`` and
``AUDITS['PUBLIC_PATH_PATTERNS']`` (by default ``/recommend/<userid>``, the health checks
``/healthz`` and ``/readyz``, the Prometheus ``/metrics`` scrape, and the login and logout pages).

Every other endpoint found by walking the resolver is verified, not assumed:
- DRF views: their permission classes are evaluated for an anonymous request (static), and the
  endpoint is probed;
- views the admin site wraps itself (``admin_site``/``model_admin`` on the callback) are protected
  by ``AdminSite.admin_view``;
- everything else is probed: an anonymous in-process GET (POST when GET is not allowed) with sample
  path arguments. 401/403, or a redirect to the login page, means "requires authentication"; an
  answer (2xx, 400, 5xx) means "open"; a 404/405/other redirect is "inconclusive".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize

from audits.checks.base import CheckOutcome, FindingDraft

SAMPLE_VALUES = ("1", "x")
_CONVERTER_SAMPLES = {
    "IntConverter": "1",
    "StringConverter": "x",
    "SlugConverter": "x",
    "PathConverter": "x",
    "UUIDConverter": "00000000-0000-0000-0000-000000000001",
}


@dataclass
class Endpoint:
    """One routable endpoint found by walking the resolver."""

    route: str  # the pattern, e.g. api/v1/reviews/<int:review_id>
    name: str  # the namespaced URL name ('' when unnamed)
    callback: Any
    sample_path: str | None  # a concrete path that resolves to it, when one could be built

    @property
    def view_label(self) -> str:
        cls = getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)
        if cls is not None:
            return f"{cls.__module__}.{cls.__qualname__}"
        func = getattr(self.callback, "__wrapped__", self.callback)
        return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _route_sample(pattern: RoutePattern) -> str:
    route = str(pattern._route)
    for name, converter in pattern.converters.items():
        sample = _CONVERTER_SAMPLES.get(type(converter).__name__, "1")
        try:
            sample = converter.to_url(converter.to_python(sample))
        except (ValueError, TypeError):
            pass
        route = re.sub(rf"<(?:\w+:)?{re.escape(name)}>", sample, route)
    return route


def _regex_samples(pattern: RegexPattern) -> list[str]:
    regex = pattern._regex.lstrip("^").rstrip("$").replace("\\Z", "")
    try:
        forms = normalize(regex)
    except ValueError:
        return []
    samples = []
    for fmt, params in forms[:1]:
        for value in SAMPLE_VALUES:
            samples.append(fmt % {p: value for p in params})
    return samples


def _pattern_samples(pattern: Any) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return [_route_sample(pattern)]
    if isinstance(pattern, RegexPattern):
        return _regex_samples(pattern)
    return []


def walk_endpoints(resolver: URLResolver | None = None) -> Iterator[Endpoint]:
    """Every URLPattern reachable from the root resolver, with its full route, name and a sample path."""
    resolver = resolver or get_resolver()

    def _walk(patterns, route_prefix: str, sample_prefixes: list[str], namespace: str) -> Iterator[Endpoint]:
        for entry in patterns:
            own_route = str(entry.pattern)
            samples = [p + s for p in sample_prefixes for s in _pattern_samples(entry.pattern)]
            if isinstance(entry, URLResolver):
                ns = namespace
                if entry.namespace:
                    ns = f"{namespace}{entry.namespace}:"
                yield from _walk(entry.url_patterns, route_prefix + own_route, samples, ns)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}{entry.name}" if entry.name else ""
                sample = None
                for candidate in samples:
                    try:
                        match = resolve("/" + candidate)
                    except Resolver404:
                        continue
                    if match.func == entry.callback:
                        sample = "/" + candidate
                        break
                yield Endpoint(route=route_prefix + own_route, name=name, callback=entry.callback, sample_path=sample)

    yield from _walk(resolver.url_patterns, "", [""], "")


def _is_public(endpoint: Endpoint, public_names: set[str], public_patterns: list[re.Pattern]) -> bool:
    if endpoint.name and endpoint.name in public_names:
        return True
    route = endpoint.route.lstrip("^")
    return any(p.search(route) for p in public_patterns)


def _drf_static(endpoint: Endpoint) -> str | None:
    """For a DRF view: 'denied' when its permissions refuse an anonymous GET and POST, 'allowed' if not."""
    cls = getattr(endpoint.callback, "cls", None)
    if cls is None:
        return None
    factory = RequestFactory()
    verdicts = []
    for method in ("get", "post"):
        if not hasattr(cls, method):
            continue
        request = getattr(factory, method)("/")
        request.user = AnonymousUser()
        view = cls(**(getattr(endpoint.callback, "initkwargs", None) or {}))
        view.request = request
        view.format_kwarg = None
        view.args, view.kwargs = (), {}
        drf_request = view.initialize_request(request)
        drf_request._user = AnonymousUser()
        drf_request._auth = None
        verdicts.append(all(p.has_permission(drf_request, view) for p in view.get_permissions()))
    if not verdicts:
        return None
    return "allowed" if any(verdicts) else "denied"


def _login_paths() -> list[str]:
    from django.shortcuts import resolve_url

    paths = []
    for target in (settings.LOGIN_URL, "admin:login"):
        try:
            paths.append(resolve_url(target))
        except Exception:  # noqa: BLE001 - a missing login route simply isn't a candidate
            continue
    return paths


def _probe_client() -> tuple[Client, str]:
    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*",) and not h.startswith(".")]
    host = "testserver" if ("*" in settings.ALLOWED_HOSTS or not hosts) else hosts[0]
    return Client(raise_request_exception=False, HTTP_HOST=host), host


def _is_login(location: str, login_paths: list[str]) -> bool:
    target = urlsplit(location).path
    return any(target == p for p in login_paths)


def _probe(client: Client, path: str, login_paths: list[str]) -> tuple[str, int, str]:
    """(verdict, status, detail) for an anonymous request to ``path``."""
    request_logger = logging.getLogger("django.request")
    level = request_logger.level
    request_logger.setLevel(logging.ERROR)  # the expected 401/403/404 answers are not worth a warning each
    try:
        response = client.get(path, secure=True)
        method = "GET"
        if response.status_code == 405:
            response = client.post(path, data={}, secure=True)
            method = "POST"
        status = response.status_code
        hops = []
        # Follow same-site redirects a few hops: a redirect serves nothing, where it leads matters.
        while 300 <= response.status_code < 400 and len(hops) < 3:
            location = response.get("Location", "")
            hops.append(location)
            if _is_login(location, login_paths) or urlsplit(location).netloc:
                break
            response = client.get(urlsplit(location).path, secure=True)
    finally:
        request_logger.setLevel(level)
    if status in (401, 403):
        return "requires_auth", status, f"{method} answered {status}"
    if hops:
        chain = " → ".join(h[:120] for h in hops)
        if _is_login(hops[-1], login_paths):
            return "requires_auth", status, f"{method} redirects to the login page ({chain})"
        return "inconclusive", status, f"{method} redirects to {chain}"
    if status in (404, 405):
        return "inconclusive", status, f"{method} answered {status} for the sample path"
    if status == 429:
        return "inconclusive", status, f"{method} was throttled"
    return "open", status, f"{method} answered {status} without credentials"


def api_surface(config: dict[str, Any]) -> CheckOutcome:
    """Walk, classify and probe every endpoint; one finding per endpoint that answers anonymously."""
    public_names = set(config["PUBLIC_URL_NAMES"])
    public_patterns = [re.compile(p) for p in config["PUBLIC_PATH_PATTERNS"]]
    login_paths = _login_paths()
    client, host = _probe_client()
    rows: list[dict[str, Any]] = []
    findings: list[FindingDraft] = []
    for endpoint in walk_endpoints():
        row: dict[str, Any] = {"route": endpoint.route, "name": endpoint.name, "view": endpoint.view_label,
                               "sample_path": endpoint.sample_path, "status": None}
        callback = endpoint.callback
        if _is_public(endpoint, public_names, public_patterns):
            row.update(verdict="public_by_policy", how="allow-list")
        elif getattr(callback, "admin_site", None) is not None or getattr(callback, "model_admin", None) is not None:
            row.update(verdict="requires_auth", how="static: wrapped by AdminSite.admin_view")
        elif isinstance(getattr(callback, "__self__", None), AdminSite):
            row.update(verdict="requires_auth", how="static: admin site's own view (catch-all answers 404)")
        else:
            static = _drf_static(endpoint)
            verdict, status, detail = ("inconclusive", None, "no sample path resolves to this pattern")
            if endpoint.sample_path is not None:
                verdict, status, detail = _probe(client, endpoint.sample_path, login_paths)
            if static == "allowed":
                verdict = "open"
                detail = f"its DRF permissions admit an anonymous request; probe: {detail}"
            elif static == "denied" and verdict != "open":
                verdict = "requires_auth"
                detail = f"its DRF permissions refuse an anonymous request; probe: {detail}"
            row.update(verdict=verdict, how="static+probe" if static else "probe", status=status, detail=detail)
        rows.append(row)
        if row["verdict"] == "open":
            route = endpoint.route.lstrip("^")
            severity = "high" if route.startswith(("api/v1/", "portal/")) else "medium"
            findings.append(FindingDraft(
                check="security.api_surface", subject=route, severity=severity,
                title=f"/{route} answers without authentication ({row.get('detail', '')[:120]})",
                evidence={"route": route, "name": endpoint.name, "view": endpoint.view_label,
                          "sample_path": endpoint.sample_path, "status": row.get("status"),
                          "detail": row.get("detail"), "host": host},
            ))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    outcome = CheckOutcome(name="security.api_surface", findings=findings)
    outcome.results = {"endpoints": rows, "counts": counts, "public_url_names": sorted(public_names),
                       "public_path_patterns": [p.pattern for p in public_patterns]}
    outcome.summary = (f"{len(rows)} endpoints: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return outcome
