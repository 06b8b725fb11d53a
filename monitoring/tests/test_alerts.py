"""Alert rules open one incident while firing, note when it clears, reopen after resolution;
no data is its own state; a broken rule does not stop the others; incidents live in the inbox."""

from datetime import timedelta

import pytest

from monitoring.models import AlertRule, Incident, Notification, NotificationChannel
from monitoring.services import incidents
from monitoring.services.alerts import alert_rule_evaluate, alert_rules_evaluate
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import request_line
from portal import selectors as portal_selectors
from portal import services as portal_services
from portal.errors import Conflict, PermissionDenied, ValidationError
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db


def _traffic(t0, minutes, *, failing_share: float):
    lines = []
    for minute in range(minutes):
        for i in range(20):
            failing = i < int(20 * failing_share)
            lines.append(request_line(time=t0 + timedelta(minutes=minute, seconds=i * 2), viewer=1 + i,
                                      status=0 if failing else 200, ms=600 if failing else 40, items=["movie+1+2000"]))
    RecommendationRequest.objects.bulk_create(lines)
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=minutes))


@pytest.fixture
def error_rule(db):
    AlertRule.objects.update(enabled=False)  # only the rule under test
    return AlertRule.objects.create(name="errors above 10%", metric="error_rate", params={"source": "client"},
                                    operator="gt", threshold=0.10, window_minutes=10, severity="critical")


def test_a_firing_rule_opens_one_incident_with_evidence_and_a_review(catalog, t0, error_rule, users):
    _traffic(t0, 30, failing_share=0.5)
    # When beat evaluates the rule three minutes in a row
    results = [alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=m)) for m in (20, 21, 22)]
    # Then one incident is opened and updated, not three
    assert [r.opened for r in results] == [True, False, False]
    incident = Incident.objects.get()
    assert incident.fire_count == 3 and incident.status == "open" and incident.severity == "critical"
    assert incident.value == pytest.approx(0.5)
    assert incident.evidence["requests"] == 200 and incident.evidence["status_counts"] == {"0": 100, "200": 100}
    error_rule.refresh_from_db()
    assert error_rule.state == "firing"
    # And it waits in the operators' inbox
    assert incident.review.kind == "incident_ack" and incident.review.status == "pending"
    assert incident in Incident.objects.filter(review__in=portal_selectors.review_request_inbox(user=users["operator"]))
    actions = list(portal_selectors.activity_log_list(
        filters={"target_type": "monitoring.incident", "target_id": incident.pk}).values_list("action", flat=True))
    assert actions == ["incident.opened"]


def test_clearing_is_noted_refiring_reuses_and_resolution_allows_a_new_incident(catalog, t0, error_rule, users):
    _traffic(t0, 10, failing_share=0.5)
    _traffic(t0 + timedelta(minutes=10), 20, failing_share=0.0)
    first = alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10))
    cleared = alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=25))
    assert cleared.state == "ok"
    incident = Incident.objects.get(pk=first.incident_id)
    assert incident.cleared_at == t0 + timedelta(minutes=25) and incident.status == "open"
    again = alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10))  # fires again
    assert again.incident_id == incident.pk and not again.opened
    incidents.incident_resolve(incident=Incident.objects.get(pk=incident.pk), actor=users["operator"],
                               resolution="restarted the pods")
    reopened = alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10))
    assert reopened.opened and reopened.incident_id != incident.pk
    timeline = list(portal_selectors.activity_log_list(
        filters={"target_type": "monitoring.incident", "target_id": incident.pk}).order_by("seq")
        .values_list("action", flat=True))
    assert timeline == ["incident.opened", "incident.cleared", "incident.refired", "incident.resolved"]


def test_no_data_is_its_own_state_and_opens_nothing_unless_asked(catalog, t0, error_rule):
    result = alert_rule_evaluate(rule=error_rule, now=t0)
    assert result.state == "no_data" and result.value is None and not Incident.objects.exists()
    error_rule.no_data_fires = True
    error_rule.save()
    result = alert_rule_evaluate(rule=error_rule, now=t0)
    assert result.opened and "no data" in Incident.objects.get().title


def test_a_broken_rule_is_recorded_and_the_others_still_run(catalog, t0, error_rule):
    _traffic(t0, 10, failing_share=0.5)
    AlertRule.objects.create(name="broken", metric="slo_burn_rate", params={"slo": "no-such-slo"}, threshold=1)
    results = {r.rule: r for r in alert_rules_evaluate(now=t0 + timedelta(minutes=10))}
    assert results["broken"].state == "error" and "no-such-slo" in results["broken"].error
    assert results["errors above 10%"].state == "firing"
    assert AlertRule.objects.get(name="broken").last_evidence["error"]


def test_acknowledging_from_the_inbox_and_dismissing_as_false_alarm(catalog, t0, error_rule, users):
    _traffic(t0, 10, failing_share=0.5)
    incident = Incident.objects.get(pk=alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10)).incident_id)
    # The operator approves the review in the inbox: the incident is acknowledged, the comment kept
    portal_services.review_request_decide(review=incident.review, actor=users["operator"], decision="approve",
                                          comment="looking at the load balancer")
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by == users["operator"]
    assert incident.notes.get().text == "looking at the load balancer"
    with pytest.raises(Conflict):
        incidents.incident_acknowledge(incident=incident, actor=users["operator"])
    # Another incident, rejected in the inbox: resolved as a false alarm
    other_rule = AlertRule.objects.create(name="other", metric="error_rate", params={"source": "client"},
                                          threshold=0.1, window_minutes=10)
    other = Incident.objects.get(pk=alert_rule_evaluate(rule=other_rule, now=t0 + timedelta(minutes=10)).incident_id)
    portal_services.review_request_decide(review=other.review, actor=users["admin"], decision="reject",
                                          comment="planned maintenance")
    other.refresh_from_db()
    assert other.status == "resolved" and "false alarm" in other.resolution
    # A third, answered with "request changes": taken, with the comment kept on the timeline
    third_rule = AlertRule.objects.create(name="third", metric="error_rate", params={"source": "client"},
                                          threshold=0.1, window_minutes=10)
    third = Incident.objects.get(pk=alert_rule_evaluate(rule=third_rule, now=t0 + timedelta(minutes=10)).incident_id)
    portal_services.review_request_decide(review=third.review, actor=users["operator"], decision="request_changes",
                                          comment="needs the CDN team")
    third.refresh_from_db()
    assert third.status == "acknowledged" and third.notes.get().text == "needs the CDN team"


def test_incident_actions_need_an_operator_and_say_what_is_missing(catalog, t0, error_rule, users):
    _traffic(t0, 10, failing_share=0.5)
    incident = Incident.objects.get(pk=alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10)).incident_id)
    with pytest.raises(PermissionDenied):
        incidents.incident_acknowledge(incident=incident, actor=users["viewer"])
    with pytest.raises(ValidationError, match="how the incident was resolved"):
        incidents.incident_resolve(incident=incident, actor=users["operator"], resolution="  ")
    incidents.incident_annotate(incident=incident, actor=users["operator"], text="customers report blank rows")
    # Acknowledging on the incident page approves the pending review too
    incidents.incident_acknowledge(incident=incident, actor=users["operator"], comment="on it")
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.review.status == "approved"
    resolved = incidents.incident_resolve(incident=incident, actor=users["operator"], resolution="fixed")
    assert resolved.status == "resolved"


def test_resolving_withdraws_the_pending_review(catalog, t0, error_rule, users):
    _traffic(t0, 10, failing_share=0.5)
    incident = Incident.objects.get(pk=alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10)).incident_id)
    incidents.incident_resolve(incident=incident, actor=users["operator"], resolution="fixed upstream")
    incident.review.refresh_from_db()
    assert incident.review.status == "cancelled"


def test_an_incident_queues_a_notification_per_target_without_sending_inline(catalog, t0, error_rule, users):
    users["operator"].email = "oncall@example.org"
    users["operator"].save()
    error_rule.owner = users["operator"]
    error_rule.save()
    NotificationChannel.objects.create(name="hook", kind="webhook", target="http://127.0.0.1:9/x", secret="s3cret",
                                       min_severity="warning")
    NotificationChannel.objects.create(name="pages only", kind="email", target="pager@example.org",
                                       min_severity="critical")
    NotificationChannel.objects.create(name="muted", kind="email", target="x@example.org", enabled=False)
    _traffic(t0, 10, failing_share=0.5)
    alert_rule_evaluate(rule=error_rule, now=t0 + timedelta(minutes=10))
    targets = sorted(Notification.objects.values_list("target", "status"))
    assert targets == [("http://127.0.0.1:9/x", "pending"), ("oncall@example.org", "pending"),
                       ("pager@example.org", "pending")]
