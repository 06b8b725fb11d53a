"""Charts in a real browser: the monitoring dashboard, the drift report and the portal's dashboard
draw every chart with y-axis tick values, axis titles, a legend and the portal's colours, and a chart
without data shows its message instead of a blank canvas; no console error."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import DriftReport, DriftResult
from monitoring.selectors import DRIFT_CHART_CAP
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import make_catalog, request_line
from recommender.models import RecommendationRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every chart container carries data points or a visible message: what the page crawl checks too.
UNEXPLAINED = """Array.from(document.querySelectorAll('[data-chart]')).filter((box) => {
  const empty = box.querySelector('[data-chart-empty]');
  const said = empty && empty.offsetParent !== null && empty.textContent.trim().length > 0;
  return !(Number(box.dataset.chartPoints) > 0) && !said;
}).map((box) => box.dataset.chart)"""

DRAWN = """(id) => { const c = Chart.getChart(document.getElementById(id));
  return c ? {ticks: c.scales.y.ticks.length, title: c.options.scales.y.title.text, xTitle: c.options.scales.x.title.text,
              legend: c.options.plugins.legend.display, colour: c.data.datasets[0].borderColor,
              primary: UsherCharts.colour('primary-600'), data: c.data.datasets.map((d) => d.data)} : null; }"""


def _world(now) -> DriftReport:
    make_catalog()
    RecommendationRequest.objects.bulk_create([
        request_line(time=now - timedelta(minutes=m, seconds=s), viewer=1 + s, items=["movie+1+2000"])
        for m in range(5, 30) for s in range(3)])
    telemetry_rollup(since=now - timedelta(hours=2), until=now + timedelta(minutes=1))
    report = DriftReport.objects.create(status="drift", reference={"kind": "test"}, current_since=now - timedelta(hours=1),
                                        current_until=now, drifted_features=1, tested_features=2)
    common = {"kind": "categorical", "n_reference": 900, "n_current": 900,
              "histogram": {"labels": ["1", "2", "3"], "reference": [0.2, 0.3, 0.5], "current": [0.6, 0.3, 0.1]}}
    DriftResult.objects.create(report=report, feature="rating", test="chi2", statistic=900.0, p_value=1e-200,
                               score=1e-200, threshold=0.01, drifted=True, **common)
    DriftResult.objects.create(report=report, feature="viewer_gender", test="chi2", statistic=0.5, p_value=0.4,
                               score=0.4, threshold=0.01, drifted=False, **common)
    return report


def _shots() -> Path:
    path = Path(os.environ.get("USHER_SCREENSHOTS", "/tmp/usher-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_charts_have_y_ticks_titles_colours_and_empty_states(page, browser_login, users):
    now = timezone.now().replace(second=0, microsecond=0)
    report = _world(now)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(users["operator"])

    # The monitoring dashboard: charts fed by the JSON API
    page.goto(reverse("monitoring:dashboard"))
    page.wait_for_function("document.querySelector('[data-chart=chart-traffic]').dataset.chartPoints > 0")
    page.wait_for_function("document.querySelector('[data-chart=chart-drift]').dataset.chartPoints > 0")
    traffic = page.evaluate(DRAWN, "chart-traffic")
    assert traffic["ticks"] > 0 and traffic["legend"] is True
    assert traffic["title"] == "requests (per point)" and traffic["xTitle"] == "time (UTC)"
    assert traffic["colour"] == traffic["primary"] and traffic["colour"] != "rgb(54, 162, 235)"  # not Chart.js's
    drift = page.evaluate(DRAWN, "chart-drift")
    assert drift["ticks"] > 0 and drift["title"] == f"drift score (capped at {DRIFT_CHART_CAP:g})"
    rating = drift["data"][0]
    assert rating == [DRIFT_CHART_CAP]  # 100, capped; the other feature keeps its true 0.2
    assert drift["data"][1][0] == pytest.approx(0.199, abs=0.001)
    # Nothing made feedback snapshots: that chart says so, with no canvas drawn
    feedback = page.locator("[data-chart=chart-feedback] [data-chart-empty]")
    assert feedback.is_visible() and feedback.inner_text().startswith("No data yet — ")
    assert page.evaluate("Chart.getChart(document.getElementById('chart-feedback')) === undefined")
    assert page.evaluate(UNEXPLAINED) == []
    page.screenshot(path=str(_shots() / "monitoring-dashboard.png"), full_page=True)
    # unfold's dark theme: the axes take the dark neutral colours
    page.evaluate("document.documentElement.classList.add('dark')")
    page.wait_for_function("""Chart.getChart(document.getElementById('chart-traffic')).options.scales.y.ticks.color
                              === UsherCharts.colour('base-400')""")
    page.screenshot(path=str(_shots() / "monitoring-dashboard-dark.png"), full_page=True)
    page.evaluate("document.documentElement.classList.remove('dark')")

    # The drift report: the score chart and the histograms, drawn from their specs
    page.goto(reverse("monitoring:drift_report", args=[report.pk]))
    scores = page.evaluate(DRAWN, "drift-scores")
    assert scores["ticks"] > 0 and scores["xTitle"] == "feature"
    assert scores["data"][0] == [DRIFT_CHART_CAP, pytest.approx(0.199, abs=0.001)]
    histogram = page.evaluate(DRAWN, "drift-histogram-rating")
    assert histogram["ticks"] > 0 and histogram["title"] == "share of observations (%)"
    assert page.evaluate(UNEXPLAINED) == []
    page.screenshot(path=str(_shots() / "drift-report.png"), full_page=True)

    # The portal's dashboard: each app's charts, and the empty ones say why
    page.goto(reverse("admin:index"))
    boxes = page.locator("[data-chart]")
    assert boxes.count() >= 5
    ids = page.evaluate("Array.from(document.querySelectorAll('[data-chart]')).map((box) => box.dataset.chart)")
    requests = page.evaluate(DRAWN, next(i for i in ids if i.startswith("dashboard-monitoring-recommendation-requests")))
    assert requests and requests["ticks"] > 0 and requests["title"] == "requests (per hour)"
    assert page.evaluate(UNEXPLAINED) == []
    assert page.locator("[data-chart-empty]").count() >= 1  # no audit finding, no review: said, not blank
    page.screenshot(path=str(_shots() / "portal-dashboard.png"), full_page=True)
    assert errors == []
