"""No upstream text runs script in the portal (docs/security.md, "Pages").

Labels that reach pages from outside (the platform's movie and viewer metadata, event lines,
names people type: algorithms, descriptions, tags, incident titles, findings) carry two classic
payloads: one that closes a <script> element and one that breaks out of an attribute. A real
Chromium visits every page that shows them and checks that nothing ran, that the
Content-Security-Policy had nothing of the page's own to block (so the policy is not in the way of
the portal), and that the charts still draw."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT_BREAKOUT = "</script><script>window.__pwned=1</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror="window.__pwned=1">'
EVIL = f"{SCRIPT_BREAKOUT} {ATTRIBUTE_BREAKOUT}"
# For the fields PostgreSQL holds to fewer characters: an occupation is at most 64, a movie's status
# and an algorithm's name at most 32.
EVIL_64 = SCRIPT_BREAKOUT
EVIL_32 = '"><img src=x onerror=__pwned=1>'

# Installed before any page script: every CSP violation and uncaught error of the page is kept.
WATCH = """
window.__csp = [];
window.__errors = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
    {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
"""


def _plant() -> dict:
    """Every upstream text field that reaches a page, holding both payloads; the ids to visit."""
    from audits.tests.factories import AuditFindingFactory, AuditRunFactory
    from monitoring.models import AlertRule, DriftReport, DriftResult, Incident
    from monitoring.tests.factories import prediction, watch
    from portal.models import ReviewRequest
    from portal.services import activity_log_record
    from recommender.models import Movie, QuarantinedLine, Rating, RegisteredModel, Viewer, WatchSession
    from recommender.models.serving import PredictionLog
    from recommender.tests.factories_training import RunFactory, VersionFactory

    now = timezone.now()
    # gender is one character (M/F): it cannot carry a payload on PostgreSQL, which enforces the length
    viewer = Viewer.objects.create(id=4242, age=30, gender="F", occupation=EVIL_64, enriched_at=now)
    movie = Movie.objects.create(id="evil+movie+2000", title=EVIL, original_title=EVIL, genres=[EVIL, "Drama"],
                                 status=EVIL_32, original_language="en", runtime=90, extra={"tagline": EVIL})
    Rating.objects.create(viewer=viewer, movie=movie, rating=4, time=now - timedelta(hours=2))
    QuarantinedLine.objects.create(source=EVIL, position="1", raw=f"2026-01-01T00:00,1,{EVIL}", reason=EVIL,
                                   reason_code="planted")
    registered = RegisteredModel.objects.create(name=EVIL)
    run = RunFactory(algorithm=EVIL_32, hyperparameters={"n_factors": 10, EVIL: EVIL})
    version = VersionFactory(registered_model=registered, training_run=run, algorithm=EVIL_32, description=EVIL,
                             tags=[EVIL, "ok"])
    rule = AlertRule.objects.create(name=EVIL, description=EVIL, metric="error_rate", threshold=0.1)
    incident = Incident.objects.create(rule=rule, title=EVIL, severity="critical", opened_at=now, last_fired_at=now,
                                       value=0.5, evidence={EVIL: EVIL})
    report = DriftReport.objects.create(status="drifted", current_since=now - timedelta(hours=24), current_until=now,
                                        reference={"kind": EVIL}, tested_features=1, drifted_features=1)
    DriftResult.objects.create(report=report, feature="viewer_occupation", kind="categorical", test="chi2",
                               statistic=9.0, p_value=0.001, score=0.3, threshold=0.1, drifted=True, n_reference=50,
                               n_current=50, note=EVIL,
                               histogram={"labels": [EVIL, "writer"], "reference": [0.5, 0.5],
                                          "current": [0.8, 0.2]})
    audit_run = AuditRunFactory(target_repr=EVIL, requested_label=EVIL)
    finding = AuditFindingFactory(run=audit_run, title=EVIL, evidence={"client": EVIL, EVIL: 1})
    review = ReviewRequest.objects.create(kind="audit_waiver", title=EVIL, target_type="audits.auditfinding",
                                          target_id=str(finding.pk), target_repr=EVIL, evidence={EVIL: EVIL},
                                          requester_label=EVIL, assigned_role="reviewer")
    activity_log_record(actor=None, system=EVIL, action="planted.label",
                        target=("monitoring.incident", incident.pk, EVIL), data={"label": EVIL})
    # Served lists of the planted version, watched, so online quality and the dashboard chart it
    served = now - timedelta(hours=3)
    PredictionLog.objects.bulk_create([
        prediction(time=served + timedelta(minutes=i), viewer=viewer.pk, items=[movie.pk], version_id=version.pk)
        for i in range(5)])
    WatchSession.objects.bulk_create([watch(viewer=viewer.pk, movie=movie.pk, started_at=served + timedelta(minutes=1))])
    return {"movie": movie.pk, "viewer": viewer.pk, "version": version.pk, "run": run.pk, "incident": incident.pk,
            "drift": report.pk, "audit_run": audit_run.pk, "finding": finding.pk, "review": review.pk}


def _pages(ids: dict) -> list[tuple[str, bool]]:
    """(path, draws a chart) for every page that shows a planted label."""
    return [
        (reverse("admin:index"), False),
        (reverse("monitoring:dashboard"), True),
        (reverse("monitoring:drift_report", args=[ids["drift"]]), True),
        (reverse("monitoring:feedback"), True),
        (reverse("monitoring:online_quality"), True),
        (reverse("monitoring:incidents"), False),
        (reverse("monitoring:incident", args=[ids["incident"]]), False),
        (reverse("monitoring:rules"), False),
        (reverse("recommender:catalog"), False),
        (reverse("recommender:catalog_movie", args=[ids["movie"]]), True),
        (reverse("recommender:catalog_viewers"), False),
        (reverse("recommender:catalog_viewer", args=[ids["viewer"]]), False),
        (reverse("recommender:catalog_quarantine"), True),
        (reverse("recommender:registry"), False),
        (reverse("recommender:registry_version", args=[ids["version"]]), False),
        (reverse("recommender:registry_lineage", args=[ids["version"]]), False),
        (reverse("recommender:training_runs"), False),
        (reverse("recommender:training_run", args=[ids["run"]]), False),
        (reverse("audits:overview"), False),
        (reverse("audits:run", args=[ids["audit_run"]]), False),
        (reverse("audits:findings"), False),
        (reverse("audits:finding", args=[ids["finding"]]), False),
        (reverse("portal:activity"), False),
        (reverse("portal:inbox"), False),
        (reverse("portal:review", args=[ids["review"]]), False),
        # The admin's own lists of the same rows
        (reverse("admin:recommender_movie_changelist"), False),
        (reverse("admin:recommender_viewer_changelist"), False),
        (reverse("admin:recommender_quarantinedline_changelist"), False),
        (reverse("admin:monitoring_incident_changelist"), False),
        (reverse("admin:monitoring_alertrule_changelist"), False),
    ]


def _own_asset_violations(page, origin: str) -> list[dict]:
    """CSP violations caused by the page's own scripts and styles (inline or from Usher)."""
    return [v for v in page.evaluate("window.__csp") if v["blocked"] in ("inline", "eval", "")
            or str(v["blocked"]).startswith(origin) or str(v["source"] or "").startswith(origin)]


def test_planted_labels_run_nothing_and_the_policy_blocks_nothing_of_the_portal(browser, live_server, users):
    ids = _plant()
    admin = users["admin"]
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(20_000)
    context.add_init_script(WATCH)
    page = context.new_page()
    console_errors: list[str] = []

    def on_console(message) -> None:
        # The browser's own favicon probe (Usher serves none at /favicon.ico) is not the page's
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            console_errors.append(f"{page.url}: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    try:
        page.goto("/portal/login/?next=/portal/")
        page.fill("input[name=username]", admin.get_username())
        page.fill("input[name=password]", admin.raw_password)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        seen_label = 0
        for path, draws in _pages(ids):
            response = page.goto(path)
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"], path
            page.wait_for_load_state("networkidle")
            assert page.evaluate("typeof window.__pwned") == "undefined", path
            assert _own_asset_violations(page, live_server.url) == [], path
            assert page.evaluate("window.__errors") == [], path
            # unfold's Alpine.js ran under the policy (it compiles its attribute expressions)
            assert page.evaluate("!!(window.Alpine && document.body._x_dataStack)"), path
            if SCRIPT_BREAKOUT in page.inner_text("body"):
                seen_label += 1
            if draws:  # every chart drawn by the chart helper, or its empty state shown (the script ran)
                page.wait_for_function("""(() => { const boxes = Array.from(document.querySelectorAll('[data-chart]'));
                    return boxes.length > 0 && boxes.every((box) => {
                      const c = box.querySelector('canvas');
                      return (window.Chart && Chart.getChart(c) && c.width > 0 && c.height > 0)
                        || box.querySelector('[data-chart-empty]') !== null; }); })()""")
        # The labels were on the pages, shown as text
        assert seen_label >= 15
        # The planted drift label is in the chart's data, as data
        page.goto(reverse("monitoring:drift_report", args=[ids["drift"]]))
        page.wait_for_function("document.querySelector('canvas[id^=drift-histogram-]') && "
                               "Chart.getChart(document.querySelector('canvas[id^=drift-histogram-]'))")
        labels = page.evaluate("Chart.getChart(document.querySelector('canvas[id^=drift-histogram-]')).data.labels")
        assert labels[0] == EVIL
        assert console_errors == []
        # The policy is in force: markup injected at run time cannot run an inline handler
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"data:,\" onerror=\"window.__pwned=2\">')")
        page.wait_for_function("window.__csp.some((v) => v.directive.startsWith('script-src'))")
        assert page.evaluate("typeof window.__pwned") == "undefined"
    finally:
        context.close()


def test_api_docs_work_under_the_policy(browser, live_server, users):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(30_000)
    context.add_init_script(WATCH)
    page = context.new_page()
    try:
        admin = users["admin"]
        page.goto("/portal/login/?next=/portal/")
        page.fill("input[name=username]", admin.get_username())
        page.fill("input[name=password]", admin.raw_password)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        for path, ready in (("/api/docs/", ".swagger-ui .info .title"), ("/api/redoc/", "#redoc-container h1")):
            response = page.goto(path)
            assert response.status == 200 and "content-security-policy" in response.headers
            page.wait_for_selector(ready)
            assert "Usher API" in page.inner_text(ready)
            assert [v for v in page.evaluate("window.__csp") if v["directive"].startswith("script-src")] == [], path
    finally:
        context.close()
