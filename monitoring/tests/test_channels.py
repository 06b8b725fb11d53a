"""The channel-sender registry: each kind's name → its sender, in one place; a kind with no sender
is an error, never sent as e-mail; a kind added to the registry is delivered by its own sender."""

from __future__ import annotations

import pytest
from django.core import mail

from monitoring.channels import CHANNEL_KINDS, ChannelKind, UnknownChannelKind, channel_kind_get
from monitoring.models import Notification, NotificationChannel
from monitoring.services.notifications import notification_deliver, notification_send
from portal import selectors as portal_selectors
from releases import integrations

pytestmark = pytest.mark.django_db


def test_the_models_choices_are_the_registry():
    assert set(NotificationChannel.Kind.values) == set(CHANNEL_KINDS)
    assert {value for value, _ in Notification._meta.get_field("kind").choices} == set(CHANNEL_KINDS)


def test_an_unknown_kind_raises_naming_it_and_the_known_ones():
    with pytest.raises(UnknownChannelKind) as caught:
        channel_kind_get("sms")
    assert caught.value.message == ("unknown notification channel kind 'sms': no sender is registered for it "
                                    "(known kinds: email, webhook)")
    assert caught.value.field == "kind"


def test_a_message_for_an_unknown_kind_is_refused_and_nothing_is_written():
    with pytest.raises(UnknownChannelKind):
        notification_send(event="release.x", subject="s", body="b", payload={},
                          recipients={"email": ["ops@example.org"], "sms": ["+4912345"]})
    assert not Notification.objects.exists()


def test_a_stored_channel_of_an_unknown_kind_fails_at_delivery_and_is_not_sent_as_email():
    """A channel whose kind has no sender (written past the model's choices, or a kind since
    removed): the release step goes on, and its notification fails at once, saying why."""
    NotificationChannel.objects.create(name="pager", kind="sms", target="ops@example.org")
    NotificationChannel.objects.create(name="ops", kind="email", target="sre@example.org")
    ids = integrations.notify(event="rollout.rolled_back", subject="canary rolled back", body="p99", payload={},
                              emails=[])
    results = {n.kind: n for n in (notification_deliver(notification_id=pk) for pk in ids)}
    assert set(results) == {"email", "sms"}
    assert results["sms"].status == "failed" and results["sms"].attempts == 1
    assert "unknown notification channel kind 'sms'" in results["sms"].last_error
    [message] = mail.outbox  # the e-mail channel's only: the sms channel's address got nothing
    assert message.to == ["sre@example.org"]
    [entry] = portal_selectors.activity_log_list(filters={"action": "notification.failed"})
    assert entry.data["kind"] == "sms"


def test_a_new_kind_is_one_entry_and_is_delivered_by_its_own_sender(monkeypatch):
    delivered = []

    def send(notification: Notification) -> int:
        delivered.append((notification.target, notification.payload["subject"]))
        return 202

    monkeypatch.setitem(CHANNEL_KINDS, "pager", ChannelKind(
        "pager", send=send, recipients=lambda target: [target], targets=lambda names: list(names)))
    NotificationChannel.objects.create(name="on call", kind="pager", target="team-a")
    [notification] = notification_send(event="release.x", subject="canary paused", body="b", payload={},
                                       channels=NotificationChannel.objects.all())
    result = notification_deliver(notification_id=notification.pk)
    assert result.status == "sent" and result.response_status == 202 and result.kind == "pager"
    assert delivered == [("team-a", "canary paused")] and not mail.outbox
