"""Portal pages of the audits: reachable from the sidebar, charts offline, actions through services."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from audits import runners, services
from audits.checks.base import CheckOutcome, FindingDraft
from audits.models import AuditFinding, AuditRun, FindingWaiver
from audits.tests.factories import AuditFindingFactory
from audits.tests.test_fairness_engine import _world
from portal.form_testing import read_form
from portal.navigation import sidebar_navigation

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(users):
    def _make(role: str) -> Client:
        client = Client()
        client.force_login(users[role])
        return client
    return _make


def _fairness_run(monkeypatch):
    from audits.checks.fairness_model import model_fairness
    from audits.conf import DEFAULTS

    test, viewers, recommend = _world(n_viewers=400, biased_gender="F")
    outcome = model_fairness(test=test, attributes=viewers, recommend=recommend, predict=None, config=DEFAULTS,
                             subject="version=1", target_label="model v1")
    monkeypatch.setattr(runners, "perform", lambda *, run, config: [outcome])
    return services.audit_run_execute(run_id=services.audit_run_create(kind="fairness", actor=None, enqueue=False).pk)


def test_every_audits_page_is_in_the_sidebar(rf, users):
    request = rf.get("/portal/")
    request.user = users["viewer"]
    links = [str(item["link"]) for section in sidebar_navigation(request) for item in section["items"]]
    assert "/portal/audits/" in links and "/portal/audits/findings/" in links
    assert "/portal/schedules/?app=audits" in links


def test_chart_js_is_bundled_offline():
    assert finders.find("unfold/js/chart/chart.js") is not None


def test_run_page_has_disparity_charts_tables_and_findings(browser, monkeypatch):
    run = _fairness_run(monkeypatch)
    page = browser("viewer").get(f"/portal/audits/runs/{run.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "unfold/js/chart/chart.js" in html and "cdn" not in html.lower()
    assert 'id="disparity-gender"' in html and 'id="disparity-gender-spec"' in html
    spec = json.loads(re.search(r'id="disparity-gender-spec"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert spec["labels"][0].startswith("M (") and spec["y"]["title"] == "disparity (÷ reference)"
    assert spec["datasets"][-1]["guide"] and spec["points"] > 0
    assert 'data-testid="groups-occupation"' in html
    findings = list(run.findings.all())  # one per metric outside the band
    assert findings and all(f.fingerprint.split(":")[-2] == "gender=F" for f in findings)
    for finding in findings:
        assert f'href="/portal/audits/findings/{finding.pk}/"' in html
    assert "gender=F" in html


def test_printable_report_and_json_export(browser, monkeypatch):
    run = _fairness_run(monkeypatch)
    client = browser("viewer")
    report = client.get(f"/portal/audits/runs/{run.pk}/report/")
    html = report.content.decode()
    assert report.status_code == 200 and "<script" not in html and "@media print" in html
    assert "gender (reference M)" in html and "served worse" in html
    export = client.get(f"/portal/audits/runs/{run.pk}/export.json")
    assert export["Content-Disposition"] == f'attachment; filename="audit-{run.pk}.json"'
    assert json.loads(export.content)["run"]["id"] == run.pk


def test_pages_need_a_login():
    response = Client().get("/portal/audits/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_finding_page_actions_go_through_the_services(browser):
    finding = AuditFindingFactory()
    client = browser("operator")
    page = client.get(f"/portal/audits/findings/{finding.pk}/")
    assert page.status_code == 200 and 'data-testid="waive-form"' in page.content.decode()

    client.post(f"/portal/audits/findings/{finding.pk}/", {"action": "acknowledge", "comment": "mine"})
    finding.refresh_from_db()
    assert finding.status == "acknowledged"

    expiry = (timezone.now() + dt.timedelta(days=10)).date().isoformat()
    response = client.post(f"/portal/audits/findings/{finding.pk}/",
                           {"action": "waive", "justification": "short", "expires_at": expiry}, follow=True)
    assert "at least 20 characters" in response.content.decode()
    assert not FindingWaiver.objects.exists()

    client.post(f"/portal/audits/findings/{finding.pk}/", {
        "action": "waive", "justification": "accepted while the vendor ships the fix", "expires_at": expiry})
    waiver = FindingWaiver.objects.get()
    assert waiver.status == "pending" and waiver.expires_at.date().isoformat() == expiry
    history = client.get(f"/portal/audits/findings/{finding.pk}/").content.decode()
    assert "audit_finding.waiver_requested" in history


def test_overview_starts_a_run_and_lists_it(browser, monkeypatch):
    queued = []
    monkeypatch.setattr("audits.services.runs._enqueue", lambda run_id: queued.append(run_id))
    client = browser("reviewer")
    response = client.post("/portal/audits/", {"kind": "security"})
    assert response.status_code == 302
    page = client.get("/portal/audits/")
    html = page.content.decode()
    assert 'data-testid="runs-table"' in html and "audits: security hourly" in html
    response = client.post("/portal/audits/", {"kind": "security", "window_hours": "twelve"})
    form = read_form(response.content.decode(), "start-audit")
    assert response.status_code == 400 and "Enter a number" in form.error("window_hours")
    assert form.value("window_hours") == "twelve" and form.value("kind") == "security"


def test_overview_overrides_make_an_exploratory_run_that_reviewers_may_not_start(browser, monkeypatch):
    monkeypatch.setattr("audits.services.runs._enqueue", lambda run_id: None)
    overrides = '{"SECURITY_CHECKS": ["scraping"]}'
    reviewer = browser("reviewer")
    assert 'data-testid="overrides"' not in reviewer.get("/portal/audits/").content.decode()
    response = reviewer.post("/portal/audits/", {"kind": "security", "overrides": overrides}, follow=True)
    assert "this needs the role: data_scientist or operator or admin" in response.content.decode()
    assert not AuditRun.objects.exists()

    ds = browser("data_scientist")
    assert 'data-testid="overrides"' in ds.get("/portal/audits/").content.decode()
    response = ds.post("/portal/audits/", {"kind": "security", "overrides": overrides}, follow=True)
    assert "exploratory: the release gate ignores it" in response.content.decode()
    assert AuditRun.objects.get().exploratory is True
    response = ds.post("/portal/audits/", {"kind": "security", "overrides": "[1"}, follow=True)
    assert "overrides must be a JSON object" in response.content.decode()


def test_a_high_finding_page_offers_a_proposal_and_shows_it_pending(browser):
    finding = AuditFindingFactory(severity="high")
    ds = browser("data_scientist")
    assert "Propose a resolution" in ds.get(f"/portal/audits/findings/{finding.pk}/").content.decode()
    response = ds.post(f"/portal/audits/findings/{finding.pk}/", {"action": "resolve", "comment": "patched"},
                       follow=True)
    html = response.content.decode()
    assert "Resolution proposed: review #" in html and 'data-testid="pending-resolution"' in html
    finding.refresh_from_db()
    assert finding.status == "open"
    # a reviewer sees no resolve or waiver form (they decide in the inbox)
    html = browser("reviewer").get(f"/portal/audits/findings/{finding.pk}/").content.decode()
    assert 'data-testid="resolve-form"' not in html and 'data-testid="waive-form"' not in html


def test_admin_pages_of_every_model(browser, monkeypatch):
    monkeypatch.setattr(runners, "perform", lambda *, run, config: [CheckOutcome(
        name="x", findings=[FindingDraft(check="x", subject="y", severity="low", title="t", evidence={})])])
    run = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None, enqueue=False).pk)
    finding = AuditFinding.objects.get()
    client = browser("admin")
    for url in ("/portal/audits/auditrun/", f"/portal/audits/auditrun/{run.pk}/change/", "/portal/audits/auditfinding/",
                f"/portal/audits/auditfinding/{finding.pk}/change/", "/portal/audits/findingwaiver/",
                "/portal/django_celery_beat/periodictask/?task__startswith=audits.", "/portal/schedules/?app=audits"):
        assert client.get(url).status_code == 200, url
    client.post("/portal/audits/auditfinding/", {"action": "acknowledge", "_selected_action": [finding.pk]})
    finding.refresh_from_db()
    assert finding.status == "acknowledged"


def test_templates_live_under_templates_audits():
    root = Path(__file__).resolve().parents[2] / "templates" / "audits"
    assert {p.name for p in root.glob("*.html")} >= {"overview.html", "run.html", "finding.html", "findings.html",
                                                      "report_print.html"}


def test_dashboard_shows_the_latest_audits(rf, users, browser):
    from audits.tests.factories import AuditRunFactory
    from portal.dashboard import dashboard_context

    run = AuditRunFactory(kind="security", passed=True)
    AuditFindingFactory(run=run, severity="critical", status="acknowledged")
    request = rf.get("/portal/")
    request.user = users["viewer"]
    context = dashboard_context(request)
    cards = {c["title"]: c for c in context["usher_cards"]}
    assert not any(c["error"] for c in cards.values())
    assert cards["Latest security audit"]["value"].endswith("passed")
    assert cards["Latest security audit"]["href"] == f"/portal/audits/runs/{run.pk}/"
    assert cards["Latest fairness audit"]["value"] == "never run"
    assert cards["Audit findings needing attention (high or critical)"]["value"] == "1"
    chart = next(c for c in context["usher_charts"] if c["title"] == "Audit findings raised, last 14 days")
    assert chart["datasets"][1]["label"] == "security findings" and sum(chart["datasets"][1]["data"]) == 1
    assert chart["y"]["title"] == "findings raised (per day)" and chart["points"] == 1
    page = browser("viewer").get("/portal/")
    assert page.status_code == 200 and "Latest security audit" in page.content.decode()


def test_a_version_audit_page_shows_the_release_gate_view(browser):
    from audits.tests.factories import AuditRunFactory
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    run = AuditRunFactory(kind="fairness", target="model_version", model_version=version, passed=False,
                          artifact_sha256=version.artifact_sha256)
    finding = AuditFindingFactory(run=run, kind="fairness", check_name="fairness.disparity", severity="high")
    html = browser("viewer").get(f"/portal/audits/runs/{run.pk}/").content.decode()
    gate = html.split('data-testid="release-gate"')[1].split("</div>\n</div>")[0]
    assert "blocking" in gate and f"#{finding.pk}</a> " in gate
    assert 'data-status="high">High</span> open' in gate  # the severity's label in a badge, not "high"


def test_an_exploratory_run_is_labelled_on_its_page_the_list_and_the_api(browser, client_for):
    from audits.tests.factories import AuditRunFactory
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    run = AuditRunFactory(kind="fairness", target="model_version", model_version=version, passed=True,
                          exploratory=True, artifact_sha256=version.artifact_sha256,
                          params={"overrides": {"FAIRNESS_BAND": [0.01, 100.0]},
                                  "differs_from_configured": ["FAIRNESS_BAND"]})
    configured = AuditRunFactory(kind="security", passed=True)
    html = browser("viewer").get(f"/portal/audits/runs/{run.pk}/").content.decode()
    assert 'data-testid="exploratory-note"' in html and "FAIRNESS_BAND" in html
    gate = html.split('data-testid="release-gate"')[1]
    assert f"skipped #{run.pk}: exploratory" in gate
    listing = browser("viewer").get("/portal/audits/").content.decode()
    rows = listing.split('data-testid="runs-table"')[1].split("</tr>")
    assert 'data-testid="exploratory"' in next(r for r in rows if f"/runs/{run.pk}/" in r)
    assert 'data-testid="exploratory"' not in next(r for r in rows if f"/runs/{configured.pk}/" in r)
    body = client_for("viewer").get("/api/v1/audits/runs?exploratory=true").json()
    assert [r["id"] for r in body["results"]] == [run.pk] and body["results"][0]["exploratory"] is True


def test_the_overview_reads_run_summaries_with_their_finding_counts(users, web_client_for):
    """The overview lists runs without reading their stored output (results can be hundreds of KiB
    a run) and counts each run's findings without a GROUP BY over the runs' columns."""
    from audits import selectors
    from audits.tests.factories import AuditFindingFactory, AuditRunFactory

    run = AuditRunFactory(results={"checks": [{"name": "security.scraping", "results": {"rows": list(range(500))}}]},
                          report="a long report")
    AuditFindingFactory(run=run)
    AuditFindingFactory(run=run, status="acknowledged")
    AuditRunFactory(kind="fairness")
    summaries = {r.pk: r for r in selectors.audit_run_list(summary=True)}
    assert {"params", "results", "report", "error"} <= summaries[run.pk].get_deferred_fields()
    assert (summaries[run.pk].finding_count, summaries[run.pk].open_count) == (2, 1)
    assert [(r.finding_count, r.open_count) for r in summaries.values() if r.pk != run.pk] == [(0, 0)]
    latest = selectors.audit_latest_runs()
    assert latest["security"].pk == run.pk and "results" in latest["security"].get_deferred_fields()
    html = web_client_for("viewer").get("/portal/audits/").content.decode()
    assert "2 (1 open)" in html
