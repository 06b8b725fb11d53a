"""A real Celery worker process on Redis runs the beat task that evaluates alert rules: the burst
of errors opens an incident, and the same worker delivers the signed webhook queued on commit.
Needs REDIS_URL and PostgreSQL (the worker process shares the test database)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from monitoring.models import AlertRule, Incident, Notification, NotificationChannel
from monitoring.services.notifications import webhook_verify
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import make_catalog, request_line
from portal.testing import wait_until
from recommender.models import RecommendationRequest

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(start_worker, monkeypatch):
    """A real worker on the test database and Redis; its log's path. It may post to the loopback
    receiver below because the allow-list says so (webhooks refuse internal addresses otherwise)."""
    monkeypatch.setenv("NOTIFICATIONS_ALLOWED_HOSTS", "127.0.0.1")
    return start_worker("monitoring-test").log_path


@pytest.fixture
def receiver():
    received: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}/usher"
    server.shutdown()
    server.server_close()


def test_the_worker_evaluates_rules_opens_an_incident_and_delivers_the_webhook(worker, receiver):
    from monitoring.tasks import evaluate_alerts

    received, url = receiver
    make_catalog()
    AlertRule.objects.update(enabled=False)
    NotificationChannel.objects.create(name="ops hook", kind="webhook", target=url, secret="worker-secret",
                                       min_severity="warning")
    AlertRule.objects.create(name="errors above 10%", metric="error_rate", params={"source": "client"},
                             threshold=0.1, window_minutes=15, severity="critical")
    now = timezone.now().replace(second=0, microsecond=0)
    RecommendationRequest.objects.bulk_create([
        request_line(time=now - timedelta(minutes=10) + timedelta(seconds=i), viewer=1 + i % 50,
                     status=0 if i % 2 else 200, ms=600 if i % 2 else 40, items=["movie+1+2000"]) for i in range(300)])
    telemetry_rollup(since=now - timedelta(minutes=20), until=now + timedelta(minutes=1))

    evaluate_alerts.delay()
    incident = wait_until(lambda: Incident.objects.filter(rule__name="errors above 10%").first(), 90,
                          "the worker to open the incident", worker)
    assert incident.status == "open" and incident.value == pytest.approx(0.5, abs=0.01)
    assert incident.review_id is not None
    sent = wait_until(lambda: Notification.objects.filter(incident=incident, status="sent").first(), 60,
                      "the webhook delivery", worker)
    assert sent.attempts == 1
    headers, body = received[0]
    assert json.loads(body)["incident"]["id"] == incident.pk
    assert webhook_verify(secret="worker-secret", timestamp=headers["X-Usher-Timestamp"], body=body,
                          signature=headers["X-Usher-Signature"])
    # Evaluating again while it keeps firing updates the same incident
    evaluate_alerts.delay()
    wait_until(lambda: Incident.objects.get(pk=incident.pk).fire_count == 2, 60, "the second evaluation", worker)
    assert Incident.objects.filter(rule__name="errors above 10%").count() == 1
