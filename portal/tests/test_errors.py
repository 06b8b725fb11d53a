"""Errors as a product: every API error is JSON in the documented shape, every portal error a page in
the portal's style, never Django's debug page; one trailing-slash convention across the API."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path
from rest_framework.test import APIClient
from rest_framework.views import APIView

from portal.urls import handler400, handler403, handler404, handler500  # noqa: F401 - this module is a URLconf too


class BoomApi(APIView):
    """An API view with a bug in it."""

    def get(self, request):
        raise RuntimeError("secret-internal-detail")


def boom_page(request):
    raise RuntimeError("secret-internal-detail")


# The test URLconf: the real one plus two views that raise (pytest.mark.urls below).
urlpatterns = [
    path("api/v1/test-boom", BoomApi.as_view()),
    path("portal/test-boom", boom_page),
    path("", include("portal.urls")),
]

JSON_SHAPE = {"error", "detail"}


def _assert_api_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == JSON_SHAPE and isinstance(body["error"], str) and body["error"]
    return body


def _assert_portal_page(response, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert f'data-status="{status}"' in html  # templates/error.html
    assert "unfold/css/styles.css" in html  # the portal's stylesheet: a page in its style
    for leak in ("URLconf", "Traceback", "secret-internal-detail", "DEBUG = True", "Request Method"):
        assert leak not in html
    return html


@pytest.mark.parametrize("url", ["/api/v1/nonexistent", "/api/v1/training-runs/abc", "/api/v1/no/such/thing/",
                                 "/api/v2/whatever"])
def test_unknown_api_path_is_a_json_404(client_for, url):
    body = _assert_api_error(client_for("viewer").get(url), 404)
    assert body["detail"] == "not_found" and url in body["error"]


def test_unknown_api_path_is_json_for_anonymous_callers_too():
    _assert_api_error(APIClient().get("/api/v1/nonexistent"), 404)


def test_missing_object_is_a_json_404(client_for):
    body = _assert_api_error(client_for("viewer").get("/api/v1/training-runs/999999999"), 404)
    assert body["detail"] == "not_found"


def test_wrong_method_is_a_json_405(client_for):
    body = _assert_api_error(client_for("admin").delete("/api/v1/activity"), 405)
    assert body["detail"] == "method_not_allowed"


def test_wrong_content_type_is_a_json_415(client_for):
    response = client_for("data_scientist").post("/api/v1/training-runs", "<run/>", content_type="application/xml")
    body = _assert_api_error(response, 415)
    assert body["detail"] == "unsupported_media_type"


@pytest.mark.urls("portal.tests.test_errors")
def test_a_view_raising_is_a_json_500_without_a_traceback(users, settings):
    assert settings.DEBUG is False
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(users["viewer"])
    body = _assert_api_error(client.get("/api/v1/test-boom"), 500)
    assert body == {"error": "internal server error", "detail": "server_error"}


@pytest.mark.urls("portal.tests.test_errors")
def test_a_page_raising_is_the_portals_500_page(users):
    client = Client(raise_request_exception=False)
    client.force_login(users["viewer"])
    html = _assert_portal_page(client.get("/portal/test-boom"), 500)
    assert "Something went wrong" in html


@pytest.mark.parametrize("url", ["/portal/no-such-page/", "/portal/serving/nothing-here/", "/nonexistent"])
def test_unknown_portal_url_is_a_styled_404_page(web_client_for, url):
    html = _assert_portal_page(web_client_for("viewer").get(url), 404)
    assert "Page not found" in html and 'href="/portal/"' in html


def test_unknown_url_is_a_styled_404_page_for_anonymous_visitors(db):
    _assert_portal_page(Client().get("/no/such/page"), 404)


def test_refused_form_post_is_the_portals_403_page(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    html = _assert_portal_page(client.post("/portal/account/token/", {}), 403)
    assert "Reload the page" in html


def test_disallowed_host_is_a_400_page(db, settings):
    settings.ALLOWED_HOSTS = ["usher.example.com"]
    _assert_portal_page(Client().get("/portal/", HTTP_HOST="evil.example.org"), 400)
    _assert_api_error(APIClient().get("/api/v1/me", HTTP_HOST="evil.example.org"), 400)


# --- one trailing-slash convention ----------------------------------------------------------------

def _api_routes() -> list[str]:
    """Every /api/v1/ route's pattern, from Django's resolver."""
    out: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                out.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "")
    return [r for r in out if r.startswith("api/v1/")]


def test_no_api_route_ends_with_a_slash():
    routes = _api_routes()
    assert len(routes) > 100  # the walk found the API
    assert [r for r in routes if r.endswith("/")] == []


def test_schema_paths_follow_the_same_convention(client_for):
    schema = client_for("viewer").get("/api/schema/", {"format": "json"}).json()
    paths = [p for p in schema["paths"] if p.startswith("/api/v1/")]
    assert paths and [p for p in paths if p.endswith("/")] == []
    assert "/api/v1/provenance" in schema["paths"] and "/api/v1/deployments/{name}" in schema["paths"]


@pytest.mark.parametrize("url, target", [
    ("/api/v1/training-runs/", "/api/v1/training-runs"),
    ("/api/v1/provenance/?viewer=7&limit=5", "/api/v1/provenance?viewer=7&limit=5"),
    ("/api/v1/deployments/default/", "/api/v1/deployments/default"),
    ("/api/v1/me/", "/api/v1/me"),
])
def test_the_other_slash_form_redirects_permanently(client_for, url, target):
    client = client_for("viewer")
    response = client.get(url)
    assert response.status_code == 308 and response["Location"] == target
    followed = client.get(url, follow=True)
    direct = client.get(target)
    assert followed.status_code == direct.status_code == 200
    if "provenance" not in url:  # the prediction log's answer carries its own timing
        assert followed.json() == direct.json()


def test_a_post_to_the_other_slash_form_is_redirected_keeping_the_method(client_for):
    client = client_for("operator")
    response = client.post("/api/v1/auth/token/")
    assert response.status_code == 308 and response["Location"] == "/api/v1/auth/token"
    assert client.post("/api/v1/auth/token/", follow=True).status_code == 201


def test_an_unknown_path_with_a_slash_is_still_a_404_not_a_redirect(client_for):
    _assert_api_error(client_for("viewer").get("/api/v1/nonexistent/"), 404)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_404_page_looks_like_the_portal_in_a_browser(page, browser_login, users, tmp_path):
    # Given a signed-in operator, when they open an address that does not exist
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)
    browser_login(users["operator"])
    response = page.goto("/portal/no-such-page/")
    # Then the portal's own error page: its stylesheet applied, the heading and the way back visible
    assert response.status == 404
    page.screenshot(path=str(tmp_path / "404.png"), full_page=True)
    heading = page.locator("[data-testid=error-page] h1")
    assert heading.inner_text() == "Page not found"
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("Inter")
    link = page.get_by_role("link", name="Go to the dashboard")
    assert link.is_visible()
    assert "URLconf" not in page.content()
    # no console error besides the browser's own note of the 404 status (the CSP holds on this page too)
    assert [m for m in messages if "404" not in m] == []
    link.click()
    page.wait_for_load_state("load")
    assert page.url.rstrip("/").endswith("/portal")
