"""Portal pages: reachable from the sidebar, rendered for every role, actions for operators only;
/metrics exports monitoring's figures; the migration seeds schedules, SLOs, rules and thresholds."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from monitoring.models import SLO, AlertRule, DriftFeature, Incident
from monitoring.services.alerts import alert_rule_evaluate
from monitoring.services.drift import drift_report_create
from monitoring.services.telemetry import telemetry_rollup
from monitoring.sources import Reference
from monitoring.tests.factories import request_line
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "slos", "incidents", "drift", "data_quality", "feedback", "online_quality", "rules"]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(catalog):
    now = timezone.now().replace(second=0, microsecond=0)
    RecommendationRequest.objects.bulk_create([
        request_line(time=now - timedelta(minutes=m), viewer=1 + m % 9, status=0 if m % 3 == 0 else 200,
                     items=["movie+1+2000", "movie+2+2000"]) for m in range(1, 40)])
    telemetry_rollup(since=now - timedelta(hours=1), until=now)
    rule = AlertRule.objects.create(name="errors", metric="error_rate", params={"source": "client"}, threshold=0.1,
                                    window_minutes=60)
    incident_id = alert_rule_evaluate(rule=rule, now=now).incident_id
    report = drift_report_create(current_since=now - timedelta(minutes=20), current_until=now,
                                 reference=Reference(now - timedelta(hours=1), now - timedelta(minutes=20), {"kind": "t"}))
    return {"incident": incident_id, "drift": report.pk}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_a_read_only_viewer(users, world, page):
    response = _client(users["viewer"]).get(reverse(f"monitoring:{page}"))
    assert response.status_code == 200
    assert b"Monitoring" in response.content or b"monitoring" in response.content


def test_every_page_is_in_the_sidebar(users, rf):
    from monitoring.navigation import sections

    request = rf.get("/")
    request.user = users["viewer"]
    links = {str(item["link"]) for section in sections(request) for item in section["items"]}
    for page in PAGES:
        assert reverse(f"monitoring:{page}") in links


def test_detail_pages(users, world):
    client = _client(users["viewer"])
    incident = client.get(reverse("monitoring:incident", args=[world["incident"]]))
    assert incident.status_code == 200 and b"incident.opened" in incident.content
    drift = client.get(reverse("monitoring:drift_report", args=[world["drift"]]))
    assert drift.status_code == 200 and b"drift-histogram" in drift.content and b"reference" in drift.content


def test_dashboard_polls_the_api_and_loads_chartjs_from_unfold(users, world):
    html = _client(users["viewer"]).get(reverse("monitoring:dashboard")).content.decode()
    assert "unfold/js/chart/chart.js" in html and "monitoring/monitoring.js" in html
    assert reverse("api-monitoring-telemetry") in html and "http://" not in html.split("monitoring-config")[1][:500]


def test_operators_act_on_incidents_from_the_page_viewers_cannot(users, world):
    url = reverse("monitoring:incident", args=[world["incident"]])
    _client(users["viewer"]).post(url, {"action": "acknowledge", "text": "x"})
    assert Incident.objects.get(pk=world["incident"]).status == "open"
    response = _client(users["operator"]).post(url, {"action": "acknowledge", "text": "on it"}, follow=True)
    assert response.status_code == 200
    assert Incident.objects.get(pk=world["incident"]).status == "acknowledged"
    _client(users["operator"]).post(url, {"action": "resolve", "text": "fixed"})
    assert Incident.objects.get(pk=world["incident"]).status == "resolved"


def test_page_forms_run_reports_and_rule_evaluation(users, world):
    operator = _client(users["operator"])
    assert operator.post(reverse("monitoring:data_quality"), {"minutes": "60"}).status_code == 302
    assert operator.post(reverse("monitoring:drift"), {"hours": "x"}).status_code == 400  # named beside the field
    assert operator.post(reverse("monitoring:rules"), {"action": "evaluate"}).status_code == 302
    assert AlertRule.objects.get(name="errors").last_evaluated_at is not None


def test_incidents_appear_in_the_review_inbox(users, world):
    response = _client(users["operator"]).get(reverse("portal:inbox"))
    assert b"Incident to acknowledge" in response.content  # the kind's label


def test_prometheus_metrics_include_monitoring_figures(users, world, settings):
    settings.MONITORING = {**settings.MONITORING, "METRICS_CACHE_SECONDS": 0}
    body = Client().get("/metrics").content.decode()
    assert "usher_monitoring_collector_up 1.0" in body
    assert 'usher_recommend_requests_per_minute{arm="",model_version="",source="client"}' in body
    assert 'usher_slo_burn_rate{slo="availability",window="60m"}' in body
    assert 'usher_incidents_active{severity="warning",status="open"} 1.0' in body


def test_the_migration_seeds_defaults_and_beat_schedules(db):
    from django_celery_beat.models import PeriodicTask

    tasks = dict(PeriodicTask.objects.filter(task__startswith="monitoring.").values_list("task", "interval__every"))
    assert tasks["monitoring.evaluate_alerts"] == 1 and tasks["monitoring.rollup_telemetry"] == 1
    assert tasks["monitoring.drift_report"] == 60 and tasks["monitoring.rollup_telemetry_late"] == 60
    assert SLO.objects.get(name="availability").objective == 0.99
    assert SLO.objects.get(name="latency-p95").latency_threshold_ms == 200
    # The seeded SLOs have a 7-day period: the burn-rate tiers carry its factors, not the 30-day ones.
    burn = {r.params["tier"]: r for r in AlertRule.objects.filter(metric="slo_burn_rate", params__slo="availability")}
    assert burn["fast"].name == "availability: fast burn (2% of the budget)"
    assert (burn["fast"].threshold, burn["fast"].window_minutes) == (3.36, 60)
    assert (burn["slow"].threshold, burn["slow"].window_minutes) == (1.4, 360)
    assert (burn["leak"].threshold, burn["leak"].window_minutes) == (1.0, 1008)
    assert "short_window_minutes" not in burn["fast"].params
    assert DriftFeature.objects.count() == 8


def test_dashboard_cards_say_no_data_rather_than_healthy(users, rf, db):
    from monitoring.dashboard import cards

    request = rf.get("/")
    request.user = users["viewer"]
    values = {c["title"]: c["value"] for c in cards(request)}
    assert values["Availability, last hour (200 within 600 ms)"] == "no data"
    assert values["SLO availability: budget left"] == "no data"


def test_the_admin_covers_every_monitoring_model(users, world):
    from django.apps import apps
    from django.contrib import admin as django_admin

    client = _client(users["admin"])
    for model in apps.get_app_config("monitoring").get_models():
        assert model in django_admin.site._registry, model
        changelist = client.get(reverse(f"admin:monitoring_{model._meta.model_name}_changelist"))
        assert changelist.status_code == 200, model
        obj = model.objects.first()
        if obj is not None:
            change = client.get(reverse(f"admin:monitoring_{model._meta.model_name}_change", args=[obj.pk]))
            assert change.status_code == 200, model


def test_an_alert_rule_edited_in_the_admin_is_validated_and_logged(users, world):
    from portal import selectors as portal_selectors

    rule = AlertRule.objects.get(name="errors")
    url = reverse("admin:monitoring_alertrule_change", args=[rule.pk])
    form = {"name": "errors", "description": "", "metric": "error_rate", "params": '{"source": "client"}',
            "operator": "gt", "threshold": "0.25", "window_minutes": "30", "severity": "critical", "enabled": "on"}
    response = _client(users["operator"]).post(url, form)
    assert response.status_code == 302, response.content[:2000]
    rule.refresh_from_db()
    assert rule.threshold == 0.25 and rule.severity == "critical"
    entry = portal_selectors.activity_log_list(filters={"action": "alert_rule.updated"}).get()
    assert entry.data["before"]["threshold"] == 0.1 and entry.data["after"]["threshold"] == 0.25
    bad = _client(users["operator"]).post(url, {**form, "metric": "no_such_metric"})
    assert bad.status_code == 200 and b"no_such_metric" in bad.content


def test_dashboard_charts_leave_gaps_for_hours_without_data(users, rf, world):
    from monitoring.dashboard import charts

    request = rf.get("/")
    request.user = users["viewer"]
    traffic, availability, latency = charts(request)
    requests = traffic["data"]["datasets"][0]["data"]
    assert len(requests) == 24 and sum(v for v in requests if v) == 39 and None in requests
    # each chart says what its axes are, in which unit, and what an empty chart means
    assert availability["y_title"] == "availability" and availability["y_unit"] == "%"
    assert latency["y_unit"] == "ms" and traffic["y_unit"] == "per hour"
    assert all(c["x_title"] == "hour (UTC)" and c["empty"].startswith("No data yet — ")
               for c in (traffic, availability, latency))
