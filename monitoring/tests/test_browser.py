"""The monitoring dashboard in a real browser: Chart.js charts drawn from the JSON API, refreshed
in place (no page reload) when new telemetry arrives."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import make_catalog, request_line
from recommender.models import RecommendationRequest


def _traffic(now, minutes: range, per_minute: int) -> None:
    RecommendationRequest.objects.bulk_create([
        request_line(time=now - timedelta(minutes=m) + timedelta(seconds=s), viewer=1 + s, items=["movie+1+2000"])
        for m in minutes for s in range(per_minute)])
    telemetry_rollup(since=now - timedelta(hours=2), until=now + timedelta(minutes=1))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_charts_refresh_without_a_reload(browser, live_server, settings, tmp_path):
    from conftest import make_user

    settings.MONITORING = {**settings.MONITORING, "DASHBOARD_REFRESH_SECONDS": 1}
    make_catalog()
    now = timezone.now().replace(second=0, microsecond=0)
    _traffic(now, range(5, 15), 3)  # 30 requests in the last hour
    user = make_user("viewer", "dashboard_viewer")
    user.set_password("a-long-browser-password-1")
    user.save()
    page = browser.new_page()
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", "dashboard_viewer")
    page.fill("input[name=password]", "a-long-browser-password-1")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}{reverse('monitoring:dashboard')}")
    requests_card = page.locator("[data-field=requests]")
    page.wait_for_function("document.querySelector('[data-field=requests]').textContent === '30'", timeout=15000)
    assert page.evaluate("Chart.getChart(document.getElementById('chart-traffic')) !== undefined")
    page.evaluate("window.__notReloaded = true")
    # 20 more arrive (written from another thread: Playwright runs an event loop in this one)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_traffic, now, range(1, 5), 5).result()
    page.wait_for_function("document.querySelector('[data-field=requests]').textContent === '50'", timeout=15000)
    assert requests_card.inner_text() == "50"
    assert page.evaluate("window.__notReloaded === true")  # same page: refreshed in place
    points = page.evaluate("Chart.getChart(document.getElementById('chart-traffic')).data.datasets[0].data")
    assert sum(p for p in points if p) == 50
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    page.context.close()
