"""Incident notifications by e-mail (Django's e-mail backend) and HMAC-SHA256-signed webhooks.

How each kind of channel is reached is registered once, in ``monitoring.channels`` (an unknown
kind is an error, never sent as another). Queuing a notification only writes a row; delivery
happens afterwards (``monitoring.deliver_notification`` sent by name through
``portal.queue.task_send`` on commit, and a beat sweep of whatever is due), so a slow or broken
target never blocks the alert check. A failed attempt is recorded on the row and retried with
doubling delays until ``MONITORING['NOTIFY_MAX_ATTEMPTS']``; the final outcome goes into the
activity log.

Webhook signature: ``X-Usher-Signature: sha256=<hex>`` where hex is
``HMAC-SHA256(secret, "<X-Usher-Timestamp>.<raw body>")``; receivers recompute it and reject
stale timestamps. Every webhook is signed: a webhook channel gets a generated secret when it is
created without one (shown once to its creator, never rendered again), and a URL without a channel
is signed with ``MONITORING['WEBHOOK_SECRET']`` or not sent at all.

Outbound calls cannot be turned inward (docs/security.md, "Outbound webhooks"): a target is
resolved and every address it resolves to is checked, at save time and again at send time, and
loopback, link-local, private, multicast, reserved and cloud-metadata addresses are refused unless
``MONITORING['WEBHOOK_ALLOWED_HOSTS']`` lists the host, the address or its network. The request then
connects to the address that was checked (DNS cannot change in between), follows no redirect, and
a failure is stored as its status and reason ("HTTP 500 Internal Server Error", "connection
refused"), never the answer's body.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from monitoring.channels import CHANNEL_KINDS, UnknownChannelKind, channel_kind_get
from monitoring.conf import monitoring_setting
from monitoring.models import Incident, Notification, NotificationChannel
from monitoring.models.alerts import SEVERITY_RANK
from monitoring.webhooks import (  # noqa: F401 - re-exported: callers and tests import them from here
    METADATA_ADDRESSES,
    WebhookFailed,
    WebhookRefused,
    webhook_post,
    webhook_signature,
    webhook_target_refusal,
    webhook_target_resolve,
    webhook_verify,
)
from portal.permissions import require
from portal.queue import task_send
from portal.services import activity_log_record


def incident_payload(*, incident: Incident, event: str) -> dict:
    return {
        "event": event,
        "incident": {
            "id": incident.pk, "title": incident.title, "severity": incident.severity, "status": incident.status,
            "opened_at": incident.opened_at, "last_fired_at": incident.last_fired_at, "value": incident.value,
            "fire_count": incident.fire_count, "evidence": incident.evidence,
        },
        "rule": {"id": incident.rule_id, "name": incident.rule.name, "condition": incident.rule.condition},
    }


def _targets(incident: Incident) -> list[tuple[NotificationChannel | None, str, str]]:
    rule = incident.rule
    channels = list(rule.channels.filter(enabled=True))
    if not channels:
        channels = list(NotificationChannel.objects.filter(enabled=True))
    rank = SEVERITY_RANK.get(incident.severity, 0)
    out: list[tuple[NotificationChannel | None, str, str]] = [
        (c, c.kind, c.target) for c in channels if SEVERITY_RANK.get(c.min_severity, 0) <= rank
    ]
    if rule.owner_id and rule.owner.email:
        out.append((None, NotificationChannel.Kind.EMAIL, rule.owner.email))
    return out


def notifications_queue(*, incident: Incident, event: str) -> list[Notification]:
    """Write one pending notification per target and deliver them after the commit."""
    payload = json.loads(json.dumps(incident_payload(incident=incident, event=event), cls=DjangoJSONEncoder))
    now = timezone.now()
    created = [
        Notification.objects.create(incident=incident, channel=channel, kind=kind, target=target, event=event,
                                    payload=payload, next_attempt_at=now)
        for channel, kind, target in _targets(incident)
    ]
    ids = [n.pk for n in created]
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))
    return created


def notification_send(*, event: str, subject: str, body: str, payload: dict,
                      recipients: dict[str, list[str]] | None = None,
                      channels: Iterable[NotificationChannel] = ()) -> list[Notification]:
    """Notifications that are not about an incident (release steps, for instance), queued,
    delivered after the commit, retried and recorded like incident notifications.

    ``recipients`` maps a channel kind to its recipients (``{"email": [addresses], "webhook":
    [URLs]}``); ``channels`` adds each channel's recipients to its kind's. Each kind makes its
    notifications (``monitoring.channels``: one e-mail to every address, one signed POST per URL);
    a kind not registered there raises ``UnknownChannelKind``, except a stored channel's, whose
    notification is written and then fails at delivery, saying why (the caller's step goes on).

    A webhook is signed with the secret of the channel with the same URL, else with
    ``MONITORING['WEBHOOK_SECRET']`` (secrets are never stored on the notification)."""
    wanted = {channel_kind_get(name).name: list(names) for name, names in (recipients or {}).items()}
    unknown: list[NotificationChannel] = []
    for channel in channels:
        kind = CHANNEL_KINDS.get(channel.kind)
        if kind is None:
            unknown.append(channel)
        else:
            wanted.setdefault(kind.name, []).extend(kind.recipients(channel.target))
    message = json.loads(json.dumps({"event": event, "subject": subject, "text": body, "data": payload},
                                    cls=DjangoJSONEncoder, default=str))
    now = timezone.now()
    created: list[Notification] = []
    with transaction.atomic():
        for name, names in wanted.items():
            kind = CHANNEL_KINDS[name]
            for target in kind.targets(names):
                # A signed kind signs with the secret of the channel with the same target.
                channel = NotificationChannel.objects.filter(kind=name, target=target).first() if kind.signed else None
                created.append(Notification.objects.create(kind=name, target=target, channel=channel, event=event,
                                                           payload=message, next_attempt_at=now))
        created += [Notification.objects.create(kind=c.kind, target=c.target, channel=c, event=event, payload=message,
                                                next_attempt_at=now) for c in unknown]
        ids = [n.pk for n in created]
        if ids:
            transaction.on_commit(lambda: _enqueue(ids))
    return created


def _enqueue(ids: list[int]) -> None:
    """Send ``monitoring.deliver_notification`` by name for each; with the broker down the beat sweep
    (``notifications_deliver_due``) delivers them."""
    for notification_id in ids:
        task_send("monitoring.deliver_notification", args=[notification_id], what=f"notification #{notification_id}")


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> Notification | None:
    """Try to send one due notification; record the outcome. Idempotent: a notification that is
    sent, given up, not yet due or being sent by another worker is left alone."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=float(monitoring_setting("WEBHOOK_TIMEOUT_SECONDS")) * 3 + 30)
    # Claim it: only one worker moves next_attempt_at forward, so no message goes out twice at once.
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease, last_attempt_at=now)
    if not claimed:
        return None
    notification = Notification.objects.select_related("channel", "incident").get(pk=notification_id)
    try:
        status_code = channel_kind_get(notification.kind).send(notification)
        error, refused = "", False
    except (WebhookRefused, UnknownChannelKind) as exc:  # a refused target, no secret, no sender: retrying would not help
        status_code, error, refused = None, f"refused: {exc}"[:2000], True
    except WebhookFailed as exc:  # status and reason only: the body is the target's, not ours to keep
        status_code, error, refused = exc.status, str(exc), False
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        status_code = None
        error, refused = f"{type(exc).__name__}: {exc}"[:2000], False
    attempts = notification.attempts + 1
    max_attempts = int(monitoring_setting("NOTIFY_MAX_ATTEMPTS"))
    with transaction.atomic():
        notification.attempts = attempts
        notification.response_status = status_code
        if not error:
            notification.status = Notification.Status.SENT
            notification.sent_at = timezone.now()
            notification.last_error = ""
            notification.next_attempt_at = None
        elif refused or attempts >= max_attempts or notification.event == "test":
            notification.status = Notification.Status.FAILED
            notification.last_error = error
            notification.next_attempt_at = None
        else:
            delay = int(monitoring_setting("NOTIFY_RETRY_SECONDS")) * (2 ** (attempts - 1))
            notification.last_error = error
            notification.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        notification.save(update_fields=["attempts", "response_status", "status", "sent_at", "last_error",
                                         "next_attempt_at"])
        if notification.status != Notification.Status.PENDING:
            activity_log_record(
                actor=None, system="monitoring.notify", action=f"notification.{notification.status}",
                target=notification.incident or notification.channel or ("monitoring.notification", notification.pk),
                data={"notification": notification.pk, "kind": notification.kind, "target": notification.target,
                      "event": notification.event, "attempts": attempts, "error": error[:300]},
            )
    return notification


def notifications_deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send every pending notification that is due (the beat sweep); returns how many were tried."""
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    tried = 0
    for notification_id in ids:
        if notification_deliver(notification_id=notification_id, now=now) is not None:
            tried += 1
    return tried


# --- channels: created, changed and re-keyed here, so the admin and the API agree -----------------
def webhook_secret_generate() -> str:
    """A new HMAC key for a webhook channel (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def notification_channel_save(*, channel: NotificationChannel, actor, data: dict | None = None
                              ) -> tuple[NotificationChannel, str | None]:
    """Create or change a channel (validated, before/after in the activity log, secret masked).

    A webhook target is checked where it resolves (``NotificationChannel.clean``). A webhook channel
    left without a secret gets a generated one, returned here once (the caller shows it to the
    person who made it, and nothing renders it again); an empty ``secret`` in ``data`` keeps the
    current one. Returns ``(channel, new_secret or None)``."""
    from monitoring.services.config import config_save

    require(actor, "config.manage", target=channel if channel.pk else None)
    data = dict(data or {})
    if not data.get("secret"):
        data.pop("secret", None)
    kind = CHANNEL_KINDS.get(data.get("kind", channel.kind))  # an unknown kind is refused by the model's choices
    generated = None
    if kind is not None and kind.signed and not (data.get("secret") or channel.secret):
        generated = data["secret"] = webhook_secret_generate()
    channel = config_save(instance=channel, actor=actor, data=data)
    return channel, generated


def notification_channel_rotate_secret(*, channel: NotificationChannel, actor) -> str:
    """Give a channel a new generated secret and return it, once; the old one stops working now."""
    require(actor, "config.manage", target=channel)
    secret = webhook_secret_generate()
    with transaction.atomic():
        NotificationChannel.objects.filter(pk=channel.pk).update(secret=secret)
        channel.secret = secret
        activity_log_record(actor=actor, action="notificationchannel.secret_rotated", target=channel,
                            data={"channel": channel.pk, "name": channel.name})
    return secret


def notification_channel_test(*, channel: NotificationChannel, actor) -> Notification:
    """Send a test message through a channel now (from the admin or the API); the returned
    notification says whether it went out or why not. Channels are ``config.manage`` work."""
    require(actor, "config.manage", target=channel)
    payload = {"event": "test", "channel": {"id": channel.pk, "name": channel.name},
               "sent_at": timezone.now().isoformat(), "text": "Test message from Usher monitoring."}
    with transaction.atomic():
        notification = Notification.objects.create(
            incident=None, channel=channel, kind=channel.kind, target=channel.target, event="test",
            payload=payload, next_attempt_at=timezone.now(),
        )
        activity_log_record(actor=actor, action="notification_channel.tested", target=channel,
                            data={"notification": notification.pk})
    delivered = notification_deliver(notification_id=notification.pk)
    return delivered or notification


def notification_retry(*, notification: Notification, actor, system: str | None = None) -> Notification | None:
    """Try a pending notification now instead of at its next attempt (``incident.handle``); None
    when another worker holds it. A sent or failed notification is left as it is."""
    require(actor, "incident.handle", system=system, target=notification)
    updated = Notification.objects.filter(pk=notification.pk, status=Notification.Status.PENDING).update(
        next_attempt_at=timezone.now())
    if not updated:
        return Notification.objects.get(pk=notification.pk)
    activity_log_record(actor=actor, system=system, action="notification.retried", target=notification,
                        data={"attempts": notification.attempts})
    return notification_deliver(notification_id=notification.pk)
