"""Notification channel kinds, in one registry: each kind's name → how a message reaches it.

A kind says how its recipients are read from a channel's target (``recipients``), how a message's
recipients become notifications (``targets``: one e-mail to every address, one signed POST per
URL), whether what it sends is signed with the secret of the channel of the same target
(``signed``), and how one notification is sent (``send``: one attempt, raising on failure; the
notification services record, retry and log it). Incident notifications, ``notification_send``
(release steps) and the channel services all look kinds up here.

A new kind is one entry in ``CHANNEL_KINDS`` (and its choice on ``NotificationChannel.Kind``, which a
test holds equal to this registry). A kind with no entry is an error (``UnknownChannelKind``), never
sent some other way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail

from monitoring.conf import monitoring_setting
from monitoring.models import Notification
from monitoring.webhooks import WebhookRefused, webhook_post, webhook_signature
from portal.errors import ValidationError


class UnknownChannelKind(ValidationError):
    """A channel kind that no sender is registered for."""


@dataclass(frozen=True)
class ChannelKind:
    """How messages reach one kind of channel (see the module's docstring)."""

    name: str
    send: Callable[[Notification], int | None]
    recipients: Callable[[str], list[str]]
    targets: Callable[[list[str]], list[str]]
    signed: bool = False


# --- e-mail: Django's e-mail backend; one message to every address -------------------------------------


def _email_send(notification: Notification) -> int | None:
    incident = notification.payload.get("incident") or {}
    if notification.payload.get("subject"):
        subject = f"[Usher] {notification.payload['subject']}"
        body = notification.payload.get("text", "") + "\n\n" + json.dumps(notification.payload.get("data", {}), indent=2)
    else:
        subject = f"[Usher {incident.get('severity', 'test')}] {notification.event}: {incident.get('title', 'test message')}"
        body = json.dumps(notification.payload, indent=2)
    recipients = _email_recipients(notification.target)
    if not recipients:
        raise ValidationError("no e-mail address to send to")
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    return None


def _email_recipients(target: str) -> list[str]:
    """A channel's addresses, separated by commas."""
    return [a.strip() for a in target.split(",") if a.strip()]


def _email_targets(recipients: list[str]) -> list[str]:
    """One notification to every address (duplicates once)."""
    addresses = list(dict.fromkeys(a.strip() for a in recipients if a and a.strip()))
    return [", ".join(addresses)] if addresses else []


# --- webhook: an HMAC-SHA256-signed POST per URL (monitoring.webhooks) --------------------------------


def _webhook_secret(notification: Notification) -> str:
    """The channel's secret, else the deployment's; an unsigned webhook is never sent."""
    secret = (notification.channel.secret if notification.channel else "") or str(
        monitoring_setting("WEBHOOK_SECRET") or "")
    if not secret:
        raise WebhookRefused("no secret to sign with: give the channel a secret or set MONITORING_WEBHOOK_SECRET")
    return secret


def _webhook_send(notification: Notification) -> int | None:
    secret = _webhook_secret(notification)
    body = json.dumps(notification.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Usher-monitoring/1",
        "X-Usher-Event": notification.event,
        "X-Usher-Delivery": str(notification.pk),
        "X-Usher-Timestamp": timestamp,
        "X-Usher-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    return webhook_post(url=notification.target, body=body, headers=headers,
                        timeout=float(monitoring_setting("WEBHOOK_TIMEOUT_SECONDS")))


def _webhook_recipients(target: str) -> list[str]:
    """A channel's one URL."""
    return [target]


def _webhook_targets(recipients: list[str]) -> list[str]:
    """One notification per URL (duplicates once); anything but an http(s) URL is refused."""
    urls = list(dict.fromkeys(str(url) for url in recipients))
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValidationError(f"webhook target must be an http(s) URL, not {url!r}")
    return urls


CHANNEL_KINDS: dict[str, ChannelKind] = {
    kind.name: kind
    for kind in [
        ChannelKind("email", send=_email_send, recipients=_email_recipients, targets=_email_targets),
        ChannelKind("webhook", send=_webhook_send, recipients=_webhook_recipients, targets=_webhook_targets,
                    signed=True),
    ]
}


def channel_kind_get(name: str) -> ChannelKind:
    """The registered kind called ``name``; ``UnknownChannelKind`` for any other name."""
    kind = CHANNEL_KINDS.get(name)
    if kind is None:
        raise UnknownChannelKind(
            f"unknown notification channel kind {name!r}: no sender is registered for it "
            f"(known kinds: {', '.join(CHANNEL_KINDS)})",
            field="kind", detail={"allowed": list(CHANNEL_KINDS)},
        )
    return kind
