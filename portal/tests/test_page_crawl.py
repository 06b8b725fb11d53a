"""The screenshot crawl: each role signs in through the login form, opens every page of its sidebar
and the detail pages reachable from them (a training run, a version, a snapshot, an audit run, a
finding, a review, an incident, a drift report, a promotion, a rollout, an experiment), saves a
screenshot of each under ``USHER_CRAWL_DIR`` (default: the test's tmp folder), and fails on what a
reader should never see: an HTTP error, a console error, Django's debug page, a float with more
than four decimals, a Python dict or list repr, a status badge showing a machine name (``rolled_back``) instead of its
label, or a chart with no data and no message.

The world is small (one real training run and its version, the attack suite's one object of each
kind, a drift report with a drifted feature, a running rollout, an audit sign-off review with its
evidence) and is built in about a second; the ~215 page loads with their screenshots take 2–2½
minutes on a shared two-core machine (run with ``-s`` to see the figures).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from portal.roles import ROLE_NAMES

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

# A float with five or more decimals (0.6325110689437059, 258392064.00000); version strings and
# dates do not match (digits on both sides of one dot, not preceded by another dot or digit group).
RAW_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?![\w.])")
# A Python repr of a dict or a list of strings: {'a': …}, ['a', …], 'a': 1
PY_REPR = re.compile(r"\{'|\['|': ")
# A machine name shown in a status badge (``{% status_badge %}``, data-testid="status"): awaiting_review,
# rolled_back. A badge shows the field's label ("Canary running", "Rolled back").
SNAKE_CASE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
BADGES_JS = "() => [...document.querySelectorAll('[data-testid=status]')].map(b => b.innerText)"
DEBUG_PAGE = ("Traceback (most recent call last)", "Using the URLconf defined in",
              "You're seeing this error because you have DEBUG = True", "Request Method:")

# Detail pages every crawl opens (pk from the world), besides the sidebar's links.
DETAILS = {
    "run": "/portal/training/runs/{run}/", "version": "/portal/registry/versions/{version}/",
    "snapshot": "/portal/training/snapshots/{snapshot}/", "lineage": "/portal/registry/versions/{version}/lineage/",
    "audit run": "/portal/audits/runs/{audit_run}/", "audit report": "/portal/audits/runs/{audit_run}/report/",
    "finding": "/portal/audits/findings/{finding}/",
    "review": "/portal/inbox/{review}/", "review with evidence": "/portal/inbox/{signoff}/",
    "incident": "/portal/monitoring/incidents/{incident}/",
    "drift report": "/portal/monitoring/drift/{drift_report}/",
    "promotion": "/portal/releases/promotions/{promotion}/", "rollout": "/portal/releases/rollouts/{rollout}/",
    "experiment": "/portal/releases/experiments/{experiment}/",
}

# Every <canvas> is a chart: drawn with at least one data point, or explained. The chart helper
# (portal/charts.js, templates/portal/_chart.html) hides the canvas of a chart with no point and shows
# a [data-chart-empty] message in its [data-chart] container; a [data-empty] ancestor also explains.
CHARTS_JS = """() => [...document.querySelectorAll('canvas')].map(c => {
  let drawn = false;
  try {
    const chart = window.Chart && Chart.getChart(c);
    drawn = !!chart && chart.data.datasets.some(d => (d.data || []).some(v => v !== null && v !== undefined));
  } catch (e) {}
  const box = c.closest('[data-chart]') || c.parentElement;
  const message = box && box.querySelector('[data-chart-empty]');
  const explained = !!c.closest('[data-empty]')
    || !!(message && message.getClientRects().length && message.innerText.trim());
  return {id: c.id || c.getAttribute('data-chart-config') || '?', drawn, explained};
})"""
# Charts are drawn after load: wait until each canvas is drawn or its container says why not.
CHARTS_SETTLED_JS = """() => [...document.querySelectorAll('canvas')].every(c =>
  (window.Chart && Chart.getChart(c)) || c.closest('[data-empty]')
  || (c.closest('[data-chart]') && c.closest('[data-chart]').querySelector('[data-chart-empty]')))"""


def _world(users) -> dict[str, int]:
    from monitoring.models import DriftReport, DriftResult
    from portal.tests.attack_world import build_world
    from recommender.models import ModelVersion
    from recommender.tests.factories_training import synthetic_ratings
    from recommender.training.runs import training_run_create, training_run_execute_inline
    from recommender.training.snapshots import snapshot_create
    from releases.models import Rollout

    world = build_world(users)
    # A real training run: its metrics, timings and memory are what the run and version pages show.
    synthetic_ratings(n_users=30, n_items=25, density=0.4)
    snapshot = snapshot_create(actor=None, system="test", name="crawl")
    run = training_run_execute_inline(run=training_run_create(
        actor=None, system="test", snapshot=snapshot, algorithm="svd", enqueue=False,
        split={"kind": "random", "test_fraction": 0.2, "seed": 0}))
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(training_run=run)
    # The finding's evidence as checks record it: nested, with floats and ids.
    finding = world["finding"]
    finding.evidence = {"group": "attack", "ratio": 0.6325110689437059, "band": [0.8, 1.25],
                        "groups": [{"group": "F", "share": 0.41234567, "n": 12}, {"group": "M", "share": 0.58765433,
                                                                                   "n": 17}],
                        "model_version": version.pk, "window": {"hours": 24.0, "events": 30}}
    finding.save(update_fields=["evidence"])
    incident = world["incident"]
    incident.evidence = {"value": 0.5123456789, "threshold": 0.5, "window_seconds": 300.0, "samples": [1, 2, 3]}
    incident.save(update_fields=["evidence"])
    # A review with evidence as the audits write it (run, findings, report) for the review page.
    from audits.services import audit_run_signoff_request

    signoff = audit_run_signoff_request(run=world["audit_run"], actor=users["data_scientist"], comment="please check")
    now = timezone.now()
    report = DriftReport.objects.create(status="drifted", current_since=now - dt.timedelta(hours=1),
                                        reference={"kind": "snapshot", "snapshot": snapshot.pk},
                                        current_until=now, drifted_features=1, tested_features=2,
                                        duration_ms=12.3456789)
    DriftResult.objects.create(report=report, feature="age", kind="numeric", test="ks", statistic=0.31234567,
                               p_value=1.2345e-11, score=0.31234567, threshold=0.1, drifted=True,
                               n_reference=500, n_current=480)
    DriftResult.objects.create(report=report, feature="genre", kind="categorical", test="chi2",
                               statistic=1.0123456, p_value=0.6123456, score=0.6123456, threshold=0.01,
                               drifted=False, n_reference=500, n_current=480)
    rollout = Rollout.objects.create(promotion=world["promotion"], version=world["version"],
                                     baseline_version=world["production"], steps=[5, 25, 50, 100],
                                     interval_seconds=600, step_started_at=now, next_check_at=now + dt.timedelta(minutes=10),
                                     started_by_label="system:test", applied_percent=5,
                                     last_decision={"by": "system:recommender.releases", "reason": "not enough data yet",
                                                    "canary_rate": 0.123456789})
    return {"run": run.pk, "version": version.pk, "snapshot": snapshot.pk, "audit_run": world["audit_run"].pk,
            "finding": finding.pk, "review": world["review"].pk, "signoff": signoff.pk, "incident": incident.pk,
            "drift_report": report.pk, "promotion": world["promotion"].pk, "rollout": rollout.pk,
            "experiment": world["experiment"].pk}


def _sidebar_links(user) -> list[str]:
    """The links of the portal's own sidebar for ``user`` (``portal/navigation.py`` and every app's
    ``navigation.py``); the admin's model lists are Unfold's own pages and not crawled here."""
    from django.test import RequestFactory

    from portal.navigation import sidebar_navigation

    request = RequestFactory().get("/portal/")
    request.user = user
    links = []
    for section in sidebar_navigation(request):
        for item in section.get("items", []):
            link = str(item.get("link") or "")
            if link.startswith("/portal/") and link not in links:
                links.append(link)
    return links


def _problems(page, url: str, status: int | None, console: list[str]) -> list[str]:
    found = []
    if status is None or status >= 400:
        found.append(f"HTTP {status}")
    text = page.inner_text("body")
    for marker in DEBUG_PAGE:
        if marker in text:
            found.append(f"debug page ({marker!r})")
    for match in RAW_FLOAT.finditer(text):
        found.append(f"raw float {match.group(0)!r} in …{text[max(0, match.start() - 40):match.end() + 10]!r}")
    for match in PY_REPR.finditer(text):
        found.append(f"Python repr in …{text[max(0, match.start() - 40):match.end() + 30]!r}")
    for badge in page.evaluate(BADGES_JS):
        if SNAKE_CASE.search(badge):
            found.append(f"machine name in a status badge: {badge!r}")
    for chart in page.evaluate(CHARTS_JS):
        if not chart["drawn"] and not chart["explained"]:
            found.append(f"empty chart {chart['id']} with no message")
    found += [f"console error: {message}" for message in console]
    return found


def _shot_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("USHER_CRAWL_DIR") or tmp_path / "crawl")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_page_of_every_role_reads_well(page, browser_login, users, tmp_path):
    import time

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    t0 = time.perf_counter()
    ids = _world(users)
    print(f"world built in {time.perf_counter() - t0:.1f} s")
    shots = _shot_dir(tmp_path)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    problems: dict[str, list[str]] = {}
    opened = 0
    shot_seconds = 0.0
    for role in ROLE_NAMES:
        page.context.clear_cookies()
        browser_login(users[role])
        links = _sidebar_links(users[role])
        assert links, f"{role}: no sidebar links found"
        urls = ["/portal/", *links, *(u.format(**ids) for u in DETAILS.values())]
        for url in dict.fromkeys(urls):
            console.clear()
            response = page.goto(url)
            page.wait_for_load_state("load")
            try:
                page.wait_for_function(CHARTS_SETTLED_JS, timeout=1500)
            except PlaywrightTimeout:
                pass  # reported below as a chart with no data and no message
            status = response.status if response else None
            # a page a role may not open answers 403 by design: no screenshot, not a problem
            if status == 403:
                continue
            opened += 1
            name = f"{role}-{re.sub(r'[^a-z0-9]+', '-', url.lower()).strip('-') or 'portal'}.png"
            t1 = time.perf_counter()
            page.screenshot(path=str(shots / name), full_page=True, animations="disabled")
            shot_seconds += time.perf_counter() - t1
            found = _problems(page, url, status, console)
            if found:
                problems[f"{role} {url}"] = found
    print(f"{opened} pages in {time.perf_counter() - t0:.1f} s (screenshots {shot_seconds:.1f} s)")
    assert opened >= 5 * 20, opened
    assert not problems, "\n".join(f"{where}: {'; '.join(p[:4])}" for where, p in problems.items())
