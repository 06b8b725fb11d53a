"""Drift: the features watched, editable thresholds, and reports against the training snapshot."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

from monitoring.drift_metrics import DRIFT_METRICS


class DriftFeature(models.Model):
    """A watched distribution and how it is tested (editable in the admin).

    Below ``large_sample_min`` observations on either side the feature gets a significance test
    (KS for numeric, chi-square for categorical) and drifts when p < ``alpha``; at or above it,
    a distance (Wasserstein normed by the reference's standard deviation, Jensen–Shannon or PSI)
    drifts when it exceeds ``large_threshold`` — with big samples every difference is significant.
    """

    class Kind(models.TextChoices):
        NUMERIC = "numeric"
        CATEGORICAL = "categorical"

    # The large-sample distances: one per entry of monitoring/drift_metrics.py's DRIFT_METRICS.
    Metric = models.TextChoices("Metric", [(m.name.upper(), (m.name, m.label)) for m in DRIFT_METRICS.values()])

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    alpha = models.FloatField(default=0.01, help_text="Small samples: drifted when the test's p < alpha.")
    large_sample_min = models.PositiveIntegerField(default=5000, validators=[MinValueValidator(10)])
    large_metric = models.CharField(max_length=20, choices=Metric.choices)
    large_threshold = models.FloatField(help_text="Large samples: drifted when the distance exceeds this.")
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label


class DriftReport(models.Model):
    """One comparison of the current window against the reference (the production model's
    training snapshot window), feature by feature."""

    class Status(models.TextChoices):
        OK = "ok"
        DRIFT = "drift"
        NO_DATA = "no_data", "no data"
        NO_REFERENCE = "no_reference", "no reference"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    reference = models.JSONField(default=dict, blank=True, help_text="What the reference is: snapshot, window.")
    reference_since = models.DateTimeField(null=True, blank=True)
    reference_until = models.DateTimeField(null=True, blank=True)
    current_since = models.DateTimeField()
    current_until = models.DateTimeField()
    drifted_features = models.PositiveSmallIntegerField(default=0)
    tested_features = models.PositiveSmallIntegerField(default=0)
    duration_ms = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drift report #{self.pk} ({self.status}, {self.drifted_features}/{self.tested_features} drifted)"


class DriftResult(models.Model):
    """One feature of a drift report: the test used, its figures and both histograms."""

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="results")
    feature = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16)
    test = models.CharField(max_length=20, blank=True, help_text="ks, chi2, wasserstein, jensen_shannon, psi.")
    statistic = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True, help_text="The figure compared with the threshold.")
    threshold = models.FloatField(null=True, blank=True)
    drifted = models.BooleanField(null=True, blank=True, help_text="Null: no data on one side.")
    n_reference = models.PositiveIntegerField(default=0)
    n_current = models.PositiveIntegerField(default=0)
    histogram = models.JSONField(default=dict, blank=True, help_text="{labels, reference, current} shares.")
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["report", "feature"]
        constraints = [models.UniqueConstraint(fields=["report", "feature"], name="drift_result_one_per_feature")]

    def __str__(self) -> str:
        state = "no data" if self.drifted is None else ("drifted" if self.drifted else "stable")
        return f"{self.feature}: {state}"
