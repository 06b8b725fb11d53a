"""Data-quality reports over a window of the event stream and the catalog."""

from __future__ import annotations

from django.db import models


class DataQualityReport(models.Model):
    """What was wrong with the data in one window: quarantine by reason, missing and out-of-range
    values, duplicates, unknown ids, late and out-of-order events, freshness, metadata anomalies."""

    class Status(models.TextChoices):
        OK = "ok"
        ISSUES = "issues"
        NO_DATA = "no_data", "no data"

    window_start = models.DateTimeField(db_index=True)
    window_end = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    events = models.PositiveIntegerField(default=0, help_text="Accepted events whose time is in the window.")
    quarantined = models.PositiveIntegerField(default=0, help_text="Lines quarantined during the window.")
    quarantine_rate = models.FloatField(null=True, blank=True)
    sections = models.JSONField(default=dict, blank=True, help_text="Every figure, by section.")
    issues = models.JSONField(default=list, blank=True, help_text="One sentence per problem found.")
    duration_ms = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-window_end", "-id"]

    def __str__(self) -> str:
        return f"data quality {self.window_start:%Y-%m-%d %H:%M}–{self.window_end:%H:%M}: {self.status}"
