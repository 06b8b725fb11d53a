"""Per-minute telemetry rollups of the recommendation service, and the SLOs computed from them."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# Upper edges (ms) of the latency histogram kept per minute; a last bucket counts the rest.
# Windows longer than a minute merge these counts, as Prometheus merges histogram buckets.
LATENCY_BUCKETS_MS: tuple[int, ...] = (
    5, 10, 25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 2000, 5000,
)


class TelemetryMinute(models.Model):
    """One minute of recommendation answers from one source, for one model version and arm.

    ``server`` rows come from the prediction log (what Usher served, with version and arm);
    ``client`` rows from the platform's recommendation-request lines (what the viewer got, as the
    platform timed it), which carry no model version. Recomputed idempotently for recent minutes.
    """

    class Source(models.TextChoices):
        SERVER = "server", "prediction log (server side)"
        CLIENT = "client", "platform lines (client side)"

    minute = models.DateTimeField(help_text="Start of the minute (UTC).")
    source = models.CharField(max_length=8, choices=Source.choices)
    model_version_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="Null on client rows.")
    model_version = models.CharField(max_length=120, blank=True, help_text="The version's label when rolled up.")
    arm = models.CharField(max_length=64, blank=True, help_text="Deployment arm (production, canary, …).")
    requests = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0, help_text="Answers with status 200.")
    errors = models.PositiveIntegerField(default=0, help_text="Answers with any other status.")
    available = models.PositiveIntegerField(
        default=0, help_text="Status 200 within MONITORING['AVAILABILITY_LATENCY_MS'] (the platform's view)."
    )
    status_counts = models.JSONField(default=dict, blank=True, help_text='{"200": n, "0": m, …}')
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)
    latency_max_ms = models.FloatField(null=True, blank=True)
    latency_sum_ms = models.FloatField(default=0.0)
    latency_buckets = models.JSONField(
        default=list, blank=True, help_text="Counts per LATENCY_BUCKETS_MS edge, then the overflow."
    )
    personalized = models.PositiveIntegerField(
        null=True, blank=True, help_text="Status-200 answers from a model, not the popular fallback; unknown (null) on client rows."
    )
    fallback_reasons = models.JSONField(default=dict, blank=True, help_text="{reason: count}")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-minute"]
        indexes = [models.Index(fields=["source", "minute"])]
        verbose_name = "telemetry minute"

    def __str__(self) -> str:
        who = f" {self.model_version or '-'}/{self.arm or '-'}" if self.source == self.Source.SERVER else ""
        return f"{self.minute:%Y-%m-%d %H:%M} {self.source}{who}: {self.requests} requests"


class SLO(models.Model):
    """A service-level objective: the share of good requests over a rolling window.

    Availability: a request is good when it got status 200 within the availability latency (600 ms).
    Latency: a request is good when it was answered within ``latency_threshold_ms`` — "p95 ≤ 200 ms"
    is the objective 0.95 with a 200 ms threshold. The error budget is ``1 - objective``.
    """

    class Kind(models.TextChoices):
        AVAILABILITY = "availability"
        LATENCY = "latency"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(
        max_length=8, choices=TelemetryMinute.Source.choices, default=TelemetryMinute.Source.CLIENT,
        help_text="Client = as the platform sees it; server = Usher's prediction log.",
    )
    objective = models.FloatField(
        validators=[MinValueValidator(0.5), MaxValueValidator(0.99999)], help_text="E.g. 0.99 for 99%."
    )
    latency_threshold_ms = models.PositiveIntegerField(
        default=200, help_text="Latency SLOs: good when answered within this (ideally a histogram edge)."
    )
    window_days = models.PositiveSmallIntegerField(default=7, validators=[MinValueValidator(1)])
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SLO"
        verbose_name_plural = "SLOs"

    def __str__(self) -> str:
        if self.kind == self.Kind.LATENCY:
            return f"{self.name}: {self.objective:.2%} within {self.latency_threshold_ms} ms / {self.window_days} d"
        return f"{self.name}: {self.objective:.2%} available / {self.window_days} d"

    @property
    def error_budget(self) -> float:
        return 1.0 - self.objective
