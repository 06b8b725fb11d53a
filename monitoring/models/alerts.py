"""Alert rules, the incidents they open, people's notes on them, and the notifications sent."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class Severity(models.TextChoices):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class NotificationChannel(models.Model):
    """Where incident notifications go: e-mail addresses, or a webhook signed with HMAC-SHA256."""

    class Kind(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(
        max_length=1000, help_text="E-mail: addresses separated by commas. Webhook: an http(s) URL."
    )
    secret = models.CharField(
        max_length=200, blank=True,
        help_text="Webhook: HMAC-SHA256 key for the X-Usher-Signature header. Generated when left empty, "
                  "shown once to whoever made or rotated it, never rendered again.",
    )
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        super().clean()
        if self.kind == self.Kind.WEBHOOK and self.target:
            # Where the URL resolves, checked on every save (and again on every send).
            from monitoring.webhooks import webhook_target_refusal

            reason = webhook_target_refusal(self.target)
            if reason:
                raise ValidationError({"target": reason})


class AlertRule(models.Model):
    """A condition on a monitoring metric over a window, evaluated by beat every minute.

    ``metric`` names a function in ``monitoring.services.metrics.METRICS``; ``params`` are its
    arguments (e.g. ``{"slo": "availability", "short_window_minutes": 5}`` for a burn-rate rule).
    When ``value <operator> threshold`` holds the rule fires and opens one incident, which later
    firings update instead of duplicating. No data is its own state, never "ok".
    """

    class Operator(models.TextChoices):
        GT = "gt", ">"
        GTE = "gte", "≥"
        LT = "lt", "<"
        LTE = "lte", "≤"

    class State(models.TextChoices):
        UNKNOWN = "unknown"
        OK = "ok"
        FIRING = "firing"
        NO_DATA = "no_data", "no data"
        ERROR = "error"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    metric = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    operator = models.CharField(max_length=4, choices=Operator.choices, default=Operator.GT)
    threshold = models.FloatField()
    window_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Gets the e-mail and the incident's review; otherwise any operator.",
    )
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")
    no_data_fires = models.BooleanField(
        default=False, help_text="Open an incident when the window has no data (e.g. freshness rules)."
    )
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def condition(self) -> str:
        return f"{self.metric} {self.get_operator_display()} {self.threshold:g} over {self.window_minutes} min"


class Incident(models.Model):
    """A rule that fired: one per rule while open or acknowledged, with its evidence.

    Its timeline is the activity log (opened, re-fired after clearing, acknowledged, annotated,
    resolved); its review in the inbox (kind ``incident_ack``) lets an operator acknowledge it.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=255)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_at = models.DateTimeField(db_index=True)
    last_fired_at = models.DateTimeField()
    fire_count = models.PositiveIntegerField(default=1, help_text="Evaluations that found the condition true.")
    cleared_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition stopped holding (the incident stays until resolved)."
    )
    value = models.FloatField(null=True, blank=True, help_text="The metric's value when it last fired.")
    peak_value = models.FloatField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    review = models.ForeignKey(
        "portal.ReviewRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # De-duplication: a rule that keeps firing updates its one active incident.
            models.UniqueConstraint(
                fields=["rule"], condition=~models.Q(status="resolved"), name="incident_one_active_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"incident #{self.pk}: {self.title} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.RESOLVED


class IncidentNote(models.Model):
    """A person's annotation on an incident (also written to the activity log)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_label = models.CharField(max_length=150)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on #{self.incident_id} by {self.author_label}"


class Notification(models.Model):
    """One message about an incident to one target, retried with backoff until sent or given up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed", "failed (gave up)"

    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications",
        help_text="Empty for a channel's test message.",
    )
    channel = models.ForeignKey(
        NotificationChannel, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    kind = models.CharField(max_length=16, choices=NotificationChannel.Kind.choices)
    target = models.CharField(max_length=1000)
    event = models.CharField(max_length=32, help_text="opened, refired, acknowledged, resolved, test.")
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} to {self.target} ({self.event}, {self.status})"
