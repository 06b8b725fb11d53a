"""The monitoring API: wiring, permissions, shapes, clear errors, bounded queries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import AlertRule, DriftFeature, Incident, NotificationChannel
from monitoring.services.alerts import alert_rule_evaluate
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import request_line
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(catalog):
    now = timezone.now().replace(second=0, microsecond=0)
    lines = [request_line(time=now - timedelta(minutes=30 - m) + timedelta(seconds=s), viewer=1 + s, status=0 if s < 5 else 200,
                          ms=40, items=["movie+1+2000"]) for m in range(30) for s in range(10)]
    RecommendationRequest.objects.bulk_create(lines)
    telemetry_rollup(since=now - timedelta(hours=1), until=now)
    return now


def test_reads_need_a_role(api_client):
    assert api_client.get(reverse("api-monitoring-summary")).status_code in (401, 403)


def test_summary_and_series_for_the_dashboard(client_for, traffic):
    viewer = client_for("viewer")
    summary = viewer.get(reverse("api-monitoring-summary")).json()
    assert summary["last_hour"]["requests"] == 300 and summary["last_hour"]["error_rate"] == pytest.approx(0.5)
    assert {s["slo"] for s in summary["slos"]} == {"availability", "latency-p95"}
    series = viewer.get(reverse("api-monitoring-telemetry"), {"hours": 1, "step": 10}).json()
    assert series["step_minutes"] == 10 and sum(p["requests"] for p in series["points"]) == 300
    minutes = viewer.get(reverse("api-monitoring-telemetry-minutes"), {"hours": 1, "source": "client"}).json()
    assert minutes["count"] == 30
    slos = viewer.get(reverse("api-monitoring-slo-status")).json()
    assert slos[0]["burn_rates"]["60m"] is not None


@pytest.mark.parametrize("params, fragment", [
    ({"since": "yesterday"}, "invalid query parameter 'since': must be an ISO-8601 time"),
    ({"hours": "-3"}, "invalid query parameter 'hours': must be more than 0"),
    ({"hours": "2000"}, "'hours': the range may span at most 62 days"),
    ({"step": "x"}, "invalid query parameter 'step': must be a whole number"),
    ({"source": "mobile"}, "invalid query parameter 'source': must be one of client, server"),
    ({"hours": "1e300"}, "'hours': the range may span at most 62 days"),
    ({"hours": "nan"}, "invalid query parameter 'hours': must be a number"),
    ({"until": "0001-01-01T01:00:00", "hours": "5"}, "before the year 1"),
])
def test_bad_parameters_get_a_clear_400(client_for, params, fragment):
    response = client_for("viewer").get(reverse("api-monitoring-telemetry"), params)
    assert response.status_code == 400 and fragment in response.json()["error"]


def test_online_quality_endpoint(client_for, traffic):
    response = client_for("viewer").get(reverse("api-monitoring-online-quality"),
                                        {"hours": 2, "source": "client", "group_by": "bucket", "complete_only": "false"})
    assert response.status_code == 200
    groups = response.json()
    assert sum(g["trials"] for g in groups) == 150 and all(g["successes"] == 0 for g in groups)
    bad = client_for("viewer").get(reverse("api-monitoring-online-quality"), {"group_by": "movie"})
    assert bad.status_code == 400 and "invalid query parameter 'group_by'" in bad.json()["error"]


def test_operators_run_reports_viewers_cannot(client_for, traffic):
    assert client_for("viewer").post(reverse("api-monitoring-dq-run")).status_code == 403
    report = client_for("operator").post(reverse("api-monitoring-dq-run") + "?hours=1")
    assert report.status_code == 201 and report.json()["status"] in ("ok", "issues")
    drift = client_for("operator").post(reverse("api-monitoring-drift-run"), {}, format="json")
    assert drift.status_code == 201 and drift.json()["status"] == "no_reference"
    half = client_for("operator").post(reverse("api-monitoring-drift-run"),
                                       {"reference_since": traffic.isoformat()}, format="json")
    assert half.status_code == 400
    feedback = client_for("operator").post(reverse("api-monitoring-feedback-run") + "?buckets=1")
    assert feedback.status_code == 201
    assert client_for("viewer").get(reverse("api-monitoring-feedback")).json()["trends"]["gini_recommended"]["no_data"]


def test_drift_thresholds_are_editable_through_the_api_and_logged(client_for):
    feature = DriftFeature.objects.get(name="rating")
    url = reverse("api-monitoring-drift-feature", args=[feature.pk])
    assert client_for("viewer").patch(url, {"large_threshold": 0.3}, format="json").status_code == 403
    response = client_for("operator").patch(url, {"large_threshold": 0.3}, format="json")
    assert response.status_code == 200 and response.json()["large_threshold"] == 0.3
    bad = client_for("operator").patch(url, {"alpha": "lots"}, format="json")
    assert bad.status_code == 400
    from portal import selectors as portal_selectors

    entry = portal_selectors.activity_log_list(filters={"action": "driftfeature.updated"}).get()
    assert entry.data["before"]["large_threshold"] == 0.1 and entry.data["after"]["large_threshold"] == 0.3


def test_alert_rules_crud_evaluate_and_validation(client_for, traffic):
    operator = client_for("operator")
    created = operator.post(reverse("api-monitoring-rule-list"), {
        "name": "errors", "metric": "error_rate", "params": {"source": "client"}, "operator": "gt",
        "threshold": 0.2, "window_minutes": 30, "severity": "critical"}, format="json")
    assert created.status_code == 201, created.json()
    bad = operator.post(reverse("api-monitoring-rule-list"), {"name": "x", "metric": "nope", "threshold": 1},
                        format="json")
    assert bad.status_code == 400 and "metric" in bad.json()["detail"]
    rule_id = created.json()["id"]
    evaluated = operator.post(reverse("api-monitoring-rule-evaluate", args=[rule_id])).json()
    assert evaluated["state"] == "firing" and evaluated["opened"] is True
    patched = operator.patch(reverse("api-monitoring-rule-detail", args=[rule_id]), {"threshold": 0.9}, format="json")
    assert patched.json()["threshold"] == 0.9
    assert operator.delete(reverse("api-monitoring-rule-detail", args=[rule_id])).status_code == 409
    assert client_for("viewer").get(reverse("api-monitoring-metrics")).status_code == 200


def test_incident_commands_and_timeline(client_for, traffic):
    rule = AlertRule.objects.create(name="errors", metric="error_rate", params={"source": "client"}, threshold=0.2,
                                    window_minutes=30)
    incident_id = alert_rule_evaluate(rule=rule, now=traffic).incident_id
    operator = client_for("operator")
    assert client_for("viewer").post(reverse("api-monitoring-incident-ack", args=[incident_id])).status_code == 403
    acked = operator.post(reverse("api-monitoring-incident-ack", args=[incident_id]), {"comment": "mine"},
                          format="json")
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    again = operator.post(reverse("api-monitoring-incident-ack", args=[incident_id]), {}, format="json")
    assert again.status_code == 409
    operator.post(reverse("api-monitoring-incident-annotate", args=[incident_id]), {"text": "db failover"},
                  format="json")
    empty = operator.post(reverse("api-monitoring-incident-resolve", args=[incident_id]), {}, format="json")
    assert empty.status_code == 400
    done = operator.post(reverse("api-monitoring-incident-resolve", args=[incident_id]), {"resolution": "failed over"},
                         format="json").json()
    assert done["status"] == "resolved"
    assert [e["action"] for e in done["timeline"]] == [
        "incident.opened", "incident.acknowledged", "incident.annotated", "incident.resolved"]
    assert [n["text"] for n in done["notes"]] == ["mine", "db failover"]
    listed = client_for("viewer").get(reverse("api-monitoring-incident-list"), {"status": "resolved"}).json()
    assert listed["count"] == 1


def test_channels_hide_their_secret(client_for):
    operator = client_for("operator")
    created = operator.post(reverse("api-monitoring-channel-list"), {
        "name": "hook", "kind": "webhook", "target": "http://93.184.215.14:9/", "secret": "s3cret"}, format="json")
    # A secret the creator chose is not echoed back
    assert created.status_code == 201 and created.json()["secret"] is None and created.json()["has_secret"]
    assert NotificationChannel.objects.get().secret == "s3cret"
    from portal import selectors as portal_selectors

    assert portal_selectors.activity_log_list(filters={"action": "notificationchannel.created"}).get().data[
        "after"]["secret"] == "***"


def test_a_generated_secret_is_in_the_create_answer_and_nowhere_after(client_for):
    operator = client_for("operator")
    created = operator.post(reverse("api-monitoring-channel-list"), {
        "name": "hook", "kind": "webhook", "target": "https://93.184.215.14/hooks"}, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert len(secret) >= 40 and NotificationChannel.objects.get().secret == secret
    pk = created.json()["id"]
    for role in ("viewer", "operator", "admin"):
        client = client_for(role)
        for url in (reverse("api-monitoring-channel-list"), reverse("api-monitoring-channel-detail", args=[pk])):
            answer = client.get(url)
            assert answer.status_code == 200 and secret not in answer.content.decode()
    # A blank secret in a change keeps the current one
    changed = operator.patch(reverse("api-monitoring-channel-detail", args=[pk]), {"secret": "", "min_severity": "info"},
                             format="json")
    assert changed.status_code == 200 and "secret" not in changed.json()
    assert NotificationChannel.objects.get().secret == secret


def test_rotating_a_secret_answers_the_new_one_once(client_for):
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="https://93.184.215.14/",
                                                 secret="old")
    url = reverse("api-monitoring-channel-rotate-secret", args=[channel.pk])
    assert client_for("viewer").post(url).status_code == 403
    assert NotificationChannel.objects.get().secret == "old"
    rotated = client_for("operator").post(url)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != "old" and NotificationChannel.objects.get().secret == new
    assert new not in client_for("operator").get(reverse("api-monitoring-channel-detail", args=[channel.pk])).content.decode()


def test_an_internal_webhook_target_is_a_400_naming_the_field(client_for):
    answer = client_for("operator").post(reverse("api-monitoring-channel-list"), {
        "name": "inward", "kind": "webhook", "target": "http://169.254.169.254/latest/meta-data/"}, format="json")
    assert answer.status_code == 400 and "cloud metadata" in answer.content.decode()
    assert not NotificationChannel.objects.exists()


def test_the_admin_never_renders_a_channel_secret(web_client_for):
    """The change page has no secret field (a write-only one to set a new secret, rendered empty);
    a channel added in the admin shows its generated secret once, as a message."""
    admin = web_client_for("admin")
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="https://93.184.215.14/",
                                                 secret="very-secret-key-0123456789")
    for url in (reverse("admin:monitoring_notificationchannel_change", args=[channel.pk]),
                reverse("admin:monitoring_notificationchannel_changelist")):
        page = admin.get(url)
        assert page.status_code == 200 and "very-secret-key-0123456789" not in page.content.decode()
    added = admin.post(reverse("admin:monitoring_notificationchannel_add"), {
        "name": "new hook", "kind": "webhook", "target": "https://93.184.215.14/new", "min_severity": "warning",
        "enabled": "on", "new_secret": ""}, follow=True)
    assert added.status_code == 200
    secret = NotificationChannel.objects.get(name="new hook").secret
    assert len(secret) >= 40 and added.content.decode().count(secret) == 1  # shown once, as the message
    again = admin.get(reverse("admin:monitoring_notificationchannel_change",
                              args=[NotificationChannel.objects.get(name="new hook").pk]))
    assert secret not in again.content.decode()
    # An internal target is refused by the form, naming the field
    refused = admin.post(reverse("admin:monitoring_notificationchannel_add"), {
        "name": "inward", "kind": "webhook", "target": "http://127.0.0.1:8000/", "min_severity": "warning",
        "new_secret": ""})
    assert refused.status_code == 200 and "loopback" in refused.content.decode()
    assert not NotificationChannel.objects.filter(name="inward").exists()
    # Rotating shows the new secret once, as a message
    rotated = admin.post(reverse("admin:monitoring_notificationchannel_changelist"), {
        "action": "rotate_secret", "_selected_action": [channel.pk]}, follow=True)
    new = NotificationChannel.objects.get(pk=channel.pk).secret
    assert new != "very-secret-key-0123456789" and rotated.content.decode().count(new) == 1


def test_list_endpoints_have_bounded_queries(client_for, traffic, django_assert_max_num_queries):
    rule = AlertRule.objects.create(name="errors", metric="error_rate", params={"source": "client"}, threshold=0.2)
    for minutes in (10, 20, 30):
        Incident.objects.filter(rule=rule).update(status="resolved")
        alert_rule_evaluate(rule=rule, now=traffic - timedelta(minutes=minutes))
    viewer = client_for("viewer")
    for name in ("api-monitoring-incident-list", "api-monitoring-rule-list", "api-monitoring-drift-list",
                 "api-monitoring-dq-list", "api-monitoring-notifications", "api-monitoring-channel-list"):
        with django_assert_max_num_queries(8):
            assert viewer.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name, param", [
    ("api-monitoring-incident-list", "rule"),
    ("api-monitoring-notifications", "incident"),
    ("api-monitoring-telemetry-minutes", "model_version_id"),
])
def test_id_filters_must_be_integers(client_for, name, param):
    response = client_for("viewer").get(reverse(name), {param: "null"})
    assert response.status_code == 400 and f"invalid query parameter '{param}': must be a whole number" in response.json()["error"]


def test_online_quality_with_an_empty_prediction_log_is_no_data(client_for, db):
    response = client_for("viewer").get(reverse("api-monitoring-online-quality"), {"source": "server"})
    assert response.status_code == 200 and response.json() == []


def test_metric_list_matches_its_schema(client_for):
    metrics = client_for("viewer").get(reverse("api-monitoring-metrics")).json()
    assert isinstance(metrics, list) and {"slo_burn_rate", "online_quality"} <= {m["name"] for m in metrics}
