"""Notifications: HMAC-signed webhooks to a real HTTP server, e-mail through Django's backend,
failures recorded and retried with backoff, never raised into the alert check. The receivers run on
loopback, which webhooks may reach only because these tests list it in the allow-list."""

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from monitoring.models import AlertRule, Incident, Notification, NotificationChannel
from monitoring.services.notifications import (
    notification_channel_test,
    notification_deliver,
    notification_send,
    notifications_deliver_due,
    notifications_queue,
    webhook_verify,
)
from portal import selectors as portal_selectors
from portal.errors import ValidationError

pytestmark = pytest.mark.django_db


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    answer = 204
    location = ""
    body = b""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).answer)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.send_header("Content-Length", str(len(type(self).body)))
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    """The receivers below listen on loopback: allowed here, refused by default."""
    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]}


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that records what it receives."""
    handler = type("Receiver", (_Receiver,), {"received": [], "answer": 204, "location": "", "body": b""})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hooks/usher"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def incident(db):
    rule = AlertRule.objects.create(name="r", metric="error_rate", threshold=0.1, severity="critical")
    now = timezone.now()
    return Incident.objects.create(rule=rule, title="errors at 50%", severity="critical", opened_at=now,
                                   last_fired_at=now, value=0.5, evidence={"requests": 200})


def test_webhook_is_signed_with_hmac_sha256_and_verifiable(receiver, incident):
    handler, url = receiver
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target=url, secret="k3y")
    [notification] = notifications_queue(incident=incident, event="opened")
    delivered = notification_deliver(notification_id=notification.pk)
    assert delivered.status == "sent" and delivered.attempts == 1 and delivered.response_status == 204
    [(headers, body)] = handler.received
    assert headers["X-Usher-Event"] == "opened"
    assert webhook_verify(secret="k3y", timestamp=headers["X-Usher-Timestamp"], body=body,
                          signature=headers["X-Usher-Signature"])
    assert not webhook_verify(secret="wrong", timestamp=headers["X-Usher-Timestamp"], body=body,
                              signature=headers["X-Usher-Signature"])
    assert not webhook_verify(secret="k3y", timestamp=headers["X-Usher-Timestamp"], body=body + b" ",
                              signature=headers["X-Usher-Signature"])
    payload = json.loads(body)
    assert payload["incident"]["id"] == incident.pk and payload["rule"]["name"] == "r"
    assert channel.notifications.count() == 1


def test_a_dead_webhook_is_retried_with_backoff_then_given_up_and_recorded(incident, settings):
    settings.MONITORING = {**settings.MONITORING, "NOTIFY_MAX_ATTEMPTS": 3, "NOTIFY_RETRY_SECONDS": 30,
                           "WEBHOOK_TIMEOUT_SECONDS": 1.0}
    NotificationChannel.objects.create(name="down", kind="webhook", target=f"http://127.0.0.1:{_closed_port()}/",
                                       secret="k")
    [notification] = notifications_queue(incident=incident, event="opened")
    first = notification_deliver(notification_id=notification.pk)
    assert first.status == "pending" and first.attempts == 1 and first.last_error == "connection refused"
    delay = (first.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < delay <= 30
    # Not due yet: the sweep leaves it alone
    assert notifications_deliver_due() == 0
    later = first.next_attempt_at + timedelta(seconds=1)
    assert notifications_deliver_due(now=later) == 1
    second = Notification.objects.get(pk=notification.pk)
    assert second.attempts == 2 and 55 < (second.next_attempt_at - timezone.now()).total_seconds() <= 60
    notifications_deliver_due(now=second.next_attempt_at + timedelta(seconds=1))
    final = Notification.objects.get(pk=notification.pk)
    assert final.status == "failed" and final.attempts == 3 and final.next_attempt_at is None
    assert portal_selectors.activity_log_list(filters={"action": "notification.failed"}).count() == 1


def test_a_webhook_answering_500_counts_as_failed(receiver, incident):
    handler, url = receiver
    handler.answer = 500
    handler.body = b"<html>stack trace with internal secrets</html>"
    NotificationChannel.objects.create(name="hook", kind="webhook", target=url, secret="k")
    [notification] = notifications_queue(incident=incident, event="opened")
    result = notification_deliver(notification_id=notification.pk)
    # The status and its reason are kept; the answer's body is not (it is the target's text, not ours)
    assert result.status == "pending" and result.response_status == 500
    assert result.last_error == "HTTP 500 Internal Server Error"
    [entry] = [n for n in Notification.objects.values_list("last_error", "payload")]
    assert "stack trace" not in str(entry)


def test_email_goes_through_djangos_backend(incident):
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.org, sre@example.org")
    [notification] = notifications_queue(incident=incident, event="opened")
    assert notification_deliver(notification_id=notification.pk).status == "sent"
    [message] = mail.outbox
    assert message.to == ["ops@example.org", "sre@example.org"]
    assert "errors at 50%" in message.subject and '"requests": 200' in message.body


def test_an_smtp_server_that_is_down_is_recorded_not_raised(incident, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.org")
    [notification] = notifications_queue(incident=incident, event="opened")
    result = notification_deliver(notification_id=notification.pk)
    assert result.status == "pending" and "ConnectionRefusedError" in result.last_error


def test_delivery_is_claimed_once(incident):
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.org")
    [notification] = notifications_queue(incident=incident, event="opened")
    assert notification_deliver(notification_id=notification.pk).status == "sent"
    assert notification_deliver(notification_id=notification.pk) is None  # already sent: left alone
    assert len(mail.outbox) == 1


def test_channel_test_message(receiver, users):
    handler, url = receiver
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target=url, secret="k")
    result = notification_channel_test(channel=channel, actor=users["operator"])
    assert result.status == "sent" and result.incident is None
    assert json.loads(handler.received[0][1])["event"] == "test"


def test_notifications_outside_incidents_for_releases(receiver, settings, django_capture_on_commit_callbacks):
    handler, url = receiver
    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_SECRET": "global-key"}
    with django_capture_on_commit_callbacks() as callbacks:
        created = notification_send(event="release.rollback", subject="canary rolled back", body="p99 over 300 ms",
                                    payload={"rollout": 3}, emails=["ds@example.org"], webhooks=[url])
    assert len(callbacks) == 1  # delivery is queued for after the commit, not done inline
    assert [n.status for n in created] == ["pending", "pending"]
    for notification in created:
        notification_deliver(notification_id=notification.pk)
    [message] = mail.outbox
    assert message.subject == "[Usher] canary rolled back" and "p99 over 300 ms" in message.body
    [(headers, body)] = handler.received
    assert json.loads(body)["data"] == {"rollout": 3}
    assert webhook_verify(secret="global-key", timestamp=headers["X-Usher-Timestamp"], body=body,
                          signature=headers["X-Usher-Signature"])
    with pytest.raises(ValidationError):
        notification_send(event="x", subject="s", body="b", payload={}, webhooks=["ftp://nope"])
