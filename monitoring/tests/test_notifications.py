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
                                    payload={"rollout": 3}, recipients={"email": ["ds@example.org"], "webhook": [url]})
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
        notification_send(event="x", subject="s", body="b", payload={}, recipients={"webhook": ["ftp://nope"]})


# --- outbound calls that cannot be turned inward (docs/security.md, "Outbound webhooks") -----------

class _VerifyingReceiver(BaseHTTPRequestHandler):
    """A receiver that checks the signature as a real one would: 204 when it verifies, else 401."""

    secret = ""
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = webhook_verify(secret=type(self).secret, timestamp=self.headers.get("X-Usher-Timestamp", ""),
                            body=body, signature=self.headers.get("X-Usher-Signature", ""))
        type(self).received.append((dict(self.headers), body, ok))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def verifying_receiver():
    handler = type("Verifying", (_VerifyingReceiver,), {"received": [], "secret": ""})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_allow_list(settings):
    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_ALLOWED_HOSTS": []}


INTERNAL_TARGETS = [
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://localhost:8000/hook", "loopback"),  # a name that resolves to 127.0.0.1
    ("http://[::1]:8000/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped a loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one decimal number
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://0x7f.1/hook", "loopback"),  # hexadecimal, short form
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://169.254.10.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://100.64.0.1/", "not a globally routable"),  # carrier-grade NAT
]


@pytest.mark.parametrize("url, kind", INTERNAL_TARGETS)
def test_an_internal_target_is_refused_when_the_channel_is_saved(url, kind, users, no_allow_list):
    from monitoring.services.notifications import notification_channel_save

    with pytest.raises(ValidationError) as refused:
        notification_channel_save(channel=NotificationChannel(), actor=users["operator"],
                                  data={"name": "inward", "kind": "webhook", "target": url})
    assert kind in str(refused.value.detail["target"]) and "NOTIFICATIONS_ALLOWED_HOSTS" in str(refused.value.detail)
    assert not NotificationChannel.objects.exists()
    assert not portal_selectors.activity_log_list(filters={"action": "notificationchannel.created"}).exists()


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/", "http:///nohost", "http://user:pw@93.184.215.14/",
                                 "http://no-such-host.invalid/"])
def test_a_target_that_is_no_http_url_or_does_not_resolve_is_refused(url, users, no_allow_list):
    from monitoring.services.notifications import notification_channel_save

    with pytest.raises(ValidationError):
        notification_channel_save(channel=NotificationChannel(), actor=users["operator"],
                                  data={"name": "bad", "kind": "webhook", "target": url})


@pytest.mark.parametrize("allowed, url", [
    (["127.0.0.1"], "http://127.0.0.1:8000/hook"),
    (["localhost"], "http://localhost:8000/hook"),
    (["10.0.0.0/8"], "http://10.1.2.3/hook"),
    (["127.0.0.0/8"], "http://[::ffff:127.0.0.1]/hook"),
    (["::1/128"], "http://[::1]:8000/hook"),
])
def test_the_allow_list_lets_an_internal_target_through(allowed, url, settings, users):
    from monitoring.services.notifications import notification_channel_save

    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_ALLOWED_HOSTS": allowed}
    channel, secret = notification_channel_save(channel=NotificationChannel(), actor=users["operator"],
                                                data={"name": "inside", "kind": "webhook", "target": url})
    assert channel.pk and channel.target == url and secret and channel.secret == secret


def test_a_public_target_needs_no_allow_list_and_gets_a_secret_shown_once(users, no_allow_list):
    from monitoring.services.notifications import notification_channel_save

    channel, secret = notification_channel_save(
        channel=NotificationChannel(), actor=users["operator"],
        data={"name": "public", "kind": "webhook", "target": "https://93.184.215.14/hooks/usher"})
    assert len(secret) >= 40 and channel.secret == secret
    # Changing it later keeps the secret and shows none
    same, shown = notification_channel_save(channel=channel, actor=users["operator"], data={"min_severity": "info"})
    assert shown is None and NotificationChannel.objects.get().secret == secret
    # One the creator chose is kept, and not echoed back
    chosen, shown = notification_channel_save(channel=NotificationChannel(), actor=users["operator"], data={
        "name": "chosen", "kind": "webhook", "target": "https://93.184.215.14/x", "secret": "their-own-key"})
    assert shown is None and chosen.secret == "their-own-key"
    # E-mail channels have nothing to sign
    mail_channel, shown = notification_channel_save(channel=NotificationChannel(), actor=users["operator"],
                                                    data={"name": "ops", "kind": "email", "target": "a@example.org"})
    assert shown is None and mail_channel.secret == ""


def test_a_viewer_cannot_create_rotate_or_test_a_channel(users, no_allow_list):
    from monitoring.services.notifications import notification_channel_rotate_secret, notification_channel_save
    from portal.errors import PermissionDenied

    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="https://93.184.215.14/",
                                                 secret="before")
    with pytest.raises(PermissionDenied):
        notification_channel_save(channel=NotificationChannel(), actor=users["viewer"],
                                  data={"name": "x", "kind": "webhook", "target": "https://93.184.215.14/"})
    with pytest.raises(PermissionDenied):
        notification_channel_rotate_secret(channel=channel, actor=users["viewer"])
    with pytest.raises(PermissionDenied):
        notification_channel_test(channel=channel, actor=users["viewer"])
    assert NotificationChannel.objects.get().secret == "before" and NotificationChannel.objects.count() == 1
    assert not Notification.objects.exists()
    assert portal_selectors.activity_log_list(filters={"action": "permission.refused"}).count() == 3


def test_a_target_is_checked_again_when_sent(receiver, incident, no_allow_list):
    """A channel saved before the check existed (or whose name now resolves inward) is refused at
    send time, at once and without retries, and nothing reaches the target."""
    handler, url = receiver
    NotificationChannel.objects.create(name="old", kind="webhook", target=url, secret="k")
    [notification] = notifications_queue(incident=incident, event="opened")
    result = notification_deliver(notification_id=notification.pk)
    assert result.status == "failed" and result.attempts == 1 and result.next_attempt_at is None
    assert result.last_error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address")
    assert handler.received == []


def test_the_request_goes_to_the_address_that_was_checked(receiver, incident, settings, monkeypatch):
    """The name is resolved once, checked, and the connection made to that address: a second
    lookup by the HTTP library (where DNS could answer differently) never happens."""
    handler, url = receiver
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def fake_dns(host, *args, **kwargs):  # hooks.test is a name only this fake DNS knows
        lookups.append(host)
        return real_getaddrinfo("127.0.0.1" if host == "hooks.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]}
    NotificationChannel.objects.create(name="named", kind="webhook", target=f"http://hooks.test:{port}/in", secret="k")
    [notification] = notifications_queue(incident=incident, event="opened")
    assert notification_deliver(notification_id=notification.pk).status == "sent"
    [(headers, _)] = handler.received
    assert headers["Host"] == f"hooks.test:{port}"
    # One lookup of the name (the check); the connection then uses the checked address itself
    assert lookups[0] == "hooks.test" and set(lookups[1:]) <= {"127.0.0.1"}


def test_a_redirect_is_not_followed(receiver, incident):
    handler, url = receiver
    handler.answer, handler.location = 302, "http://169.254.169.254/latest/meta-data/"
    NotificationChannel.objects.create(name="hook", kind="webhook", target=url, secret="k")
    [notification] = notifications_queue(incident=incident, event="opened")
    result = notification_deliver(notification_id=notification.pk)
    assert result.status == "pending" and result.response_status == 302
    assert result.last_error == "HTTP 302 Found (redirects are not followed)"
    assert len(handler.received) == 1


def test_the_receiver_verifies_the_signature(verifying_receiver, incident):
    handler, port = verifying_receiver
    handler.secret = "shared-key"
    right = NotificationChannel.objects.create(name="right", kind="webhook", target=f"http://127.0.0.1:{port}/a",
                                               secret="shared-key", min_severity="info")
    wrong = NotificationChannel.objects.create(name="wrong", kind="webhook", target=f"http://127.0.0.1:{port}/b",
                                               secret="another-key", min_severity="info")
    for notification in notifications_queue(incident=incident, event="opened"):
        notification_deliver(notification_id=notification.pk)
    assert right.notifications.get().status == "sent"
    refused = wrong.notifications.get()
    assert refused.status == "pending" and refused.last_error == "HTTP 401 Unauthorized"
    assert sorted(ok for _, _, ok in handler.received) == [False, True]
    assert all(h["X-Usher-Signature"].startswith("sha256=") for h, _, _ in handler.received)


def test_a_webhook_with_no_secret_anywhere_is_not_sent_unsigned(receiver, settings):
    handler, url = receiver
    settings.MONITORING = {**settings.MONITORING, "WEBHOOK_SECRET": ""}
    [notification] = notification_send(event="release.rollback", subject="s", body="b", payload={},
                                       recipients={"webhook": [url]})
    result = notification_deliver(notification_id=notification.pk)
    assert result.status == "failed" and result.last_error.startswith("refused: no secret to sign with")
    assert handler.received == []


def test_rotating_a_secret_shows_the_new_one_once_and_the_old_one_stops_signing(verifying_receiver, users):
    from monitoring.services.notifications import notification_channel_rotate_secret

    handler, port = verifying_receiver
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target=f"http://127.0.0.1:{port}/",
                                                 secret="old-key")
    new = notification_channel_rotate_secret(channel=channel, actor=users["operator"])
    assert new != "old-key" and NotificationChannel.objects.get().secret == new
    handler.secret = "old-key"
    assert notification_channel_test(channel=channel, actor=users["operator"]).last_error == "HTTP 401 Unauthorized"
    handler.secret = new
    assert notification_channel_test(channel=channel, actor=users["operator"]).status == "sent"
    [entry] = portal_selectors.activity_log_list(filters={"action": "notificationchannel.secret_rotated"})
    assert new not in json.dumps(entry.data)


def test_the_migration_gives_old_webhook_channels_a_secret():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("monitoring.migrations.0005_notificationchannel_secrets")
    NotificationChannel.objects.create(name="old hook", kind="webhook", target="https://93.184.215.14/")
    NotificationChannel.objects.create(name="keyed", kind="webhook", target="https://93.184.215.14/", secret="kept")
    NotificationChannel.objects.create(name="mail", kind="email", target="a@example.org")
    migration.generate_missing_secrets(apps, None)
    secrets = dict(NotificationChannel.objects.values_list("name", "secret"))
    assert len(secrets["old hook"]) >= 40 and secrets["keyed"] == "kept" and secrets["mail"] == ""
