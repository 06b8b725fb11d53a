"""Serving records: the deployment (traffic policy, arms, history) and the prediction log.

Which version holds each role (``production``, ``canary``, ``shadow``) is the registry's
``ModelAlias``; the ``Deployment`` holds how traffic is split between them (canary percentage,
experiment arms, the bucketing salt) and a ``revision`` that every change bumps. Both are changed
only through ``recommender.serving.services.deployment_update``, which writes the activity log.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

PERCENT_VALIDATORS = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


def _new_salt() -> str:
    return secrets.token_hex(8)


class Deployment(models.Model):
    """How the recommendation service splits traffic between model versions (one per service)."""

    name = models.SlugField(max_length=64, unique=True, default="default")
    canary_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT_VALIDATORS,
        help_text="Share of viewers (0–100) answered by the canary alias's version.",
    )
    salt = models.CharField(
        max_length=64, default=_new_salt,
        help_text="Mixed into the viewer hash; changing it reshuffles every viewer's bucket.",
    )
    shadow_enabled = models.BooleanField(
        default=True, help_text="Mirror requests to the shadow alias's version, off the request path."
    )
    revision = models.PositiveIntegerField(default=1, help_text="Bumped by every change; workers poll it.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_by_label = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True, help_text="Why the latest change was made.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(canary_percent__gte=0, canary_percent__lte=100), name="deployment_canary_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"deployment {self.name} (revision {self.revision})"


class ExperimentArm(models.Model):
    """A share of traffic answered by a given model version (an A/B arm), bucketed like the canary."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="arms")
    name = models.SlugField(max_length=64)
    version = models.ForeignKey("recommender.ModelVersion", on_delete=models.PROTECT, related_name="experiment_arms")
    percent = models.DecimalField(max_digits=5, decimal_places=2, validators=PERCENT_VALIDATORS)
    experiment = models.CharField(max_length=100, blank=True, help_text="The experiment this arm belongs to.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order of the arm's bucket range.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "name"], name="experiment_arm_unique_name"),
            models.CheckConstraint(condition=models.Q(percent__gt=0, percent__lte=100), name="experiment_arm_0_100"),
        ]

    def __str__(self) -> str:
        return f"arm {self.name}: {self.version_id} at {self.percent}%"


class DeploymentChange(models.Model):
    """One change of a deployment: the state before and after, who made it and why (append-only)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="changes")
    revision = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=150)
    reason = models.TextField()
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "revision"], name="deployment_change_unique_revision"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment.name} revision {self.revision} by {self.actor_label}"


class PredictionLog(models.Model):
    """One answer of ``/recommend`` or the JSON API: what was served, by what, how fast (append-only).

    Written in batches by the serving flusher (never on the request path). ``model_version`` has no
    database constraint so that a record can always be written, even if the version row is gone.
    """

    class Endpoint(models.TextChoices):
        PLAIN = "plain", "/recommend"
        API = "api", "JSON API"

    request_id = models.UUIDField(primary_key=True, help_text="Time-ordered (UUID version 7), sent as X-Request-Id.")
    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=8, choices=Endpoint.choices)
    client = models.CharField(max_length=100, blank=True, help_text="Client address, or the API user.")
    viewer_id = models.BigIntegerField(null=True, blank=True)
    model_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    model_label = models.CharField(max_length=150, blank=True, help_text="The version's name, or 'fallback'.")
    deployment_revision = models.PositiveIntegerField(default=0)
    arm = models.CharField(max_length=80, blank=True, help_text="production, canary or arm:<name>.")
    items = models.JSONField(default=list, blank=True)
    scores = models.JSONField(null=True, blank=True)
    latency_ms = models.FloatField()
    status = models.PositiveSmallIntegerField()
    fallback_reason = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["viewer_id", "created_at"], name="predlog_viewer_time")]

    def __str__(self) -> str:
        return f"{self.request_id} viewer {self.viewer_id} → {self.model_label} ({self.status})"

    # Reasons for which the items came from the popular-and-recent ranking, not from a model.
    POPULAR_FALLBACK_REASONS = ("unknown_viewer", "no_model", "model_error", "internal_error")

    @property
    def is_fallback(self) -> bool:
        """True when the items came from the fallback ranking."""
        return self.fallback_reason in self.POPULAR_FALLBACK_REASONS or (self.status == 200 and not self.model_version_id)

    @property
    def served_by(self) -> str:
        return "fallback" if self.is_fallback else self.model_label
