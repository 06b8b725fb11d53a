"""Every portal page answers with the Content-Security-Policy (docs/security.md, "Pages").

The pages are found in the URL resolver (every route under /portal/ that takes no argument), so a
new page cannot be missed. The browser side (the policy blocks nothing of the portal's own, and
planted labels run nothing) is portal/tests/test_browser_xss.py."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def _routes(patterns, prefix: str = "") -> list[str]:
    out: list[str] = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            out += _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and not entry.pattern.regex.groups:
            out.append(route)
    return out


def _portal_pages() -> list[str]:
    """Argument-free routes under portal/ (regex routes unescaped), logout excluded (POST only)."""
    pages = []
    for route in _routes(get_resolver().url_patterns):
        path = route.lstrip("^").rstrip("$").replace("\\", "")
        if path.startswith("portal/") and not any(c in path for c in "()[]?*+") and not path.endswith("logout/"):
            pages.append("/" + path)
    return sorted(set(pages))


def _directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_the_resolver_yields_the_portal_pages():
    pages = _portal_pages()
    for expected in ("/portal/", "/portal/monitoring/", "/portal/catalog/", "/portal/activity/", "/portal/inbox/",
                     "/portal/audits/", "/portal/registry/", "/portal/monitoring/notificationchannel/"):
        assert expected in pages
    assert len(pages) > 40


def test_every_portal_page_carries_the_policy(web_client_for):
    client = web_client_for("admin")
    answered = 0
    for path in _portal_pages():
        response = client.get(path)
        if response.status_code >= 500:
            pytest.fail(f"{path} answered {response.status_code}")
        header = response.headers.get("Content-Security-Policy")
        assert header, f"{path} ({response.status_code}) has no Content-Security-Policy"
        policy = _directives(header)
        # Scripts: Usher's own files only; never inline (no 'unsafe-inline', no inline handlers)
        assert "'self'" in policy["script-src"] and "'unsafe-inline'" not in policy["script-src"], path
        assert policy["script-src-attr"] == ["'none'"], path
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], path
        assert policy["default-src"] == ["'self'"] and policy["connect-src"] == ["'self'"], path
        answered += response.status_code == 200
    assert answered > 30


def test_the_api_docs_carry_the_policy_and_serve_their_script_as_a_file(web_client_for):
    client = web_client_for("viewer")
    page = client.get("/api/docs/")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    html = page.content.decode()
    assert "<script>" not in html  # no inline script: the init script is a file
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
