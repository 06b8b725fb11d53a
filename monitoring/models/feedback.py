"""Feedback-loop figures per time bucket: concentration, coverage, follow-through, diversity."""

from __future__ import annotations

from django.db import models


class FeedbackLoopSnapshot(models.Model):
    """Concentration of recommended and watched movies in one bucket (a day by default).

    A recommender feeding on itself shows as a sustained rise of the Gini coefficients, of the top-1%
    shares and of the share of watches that follow a recommendation, and a fall in coverage and
    per-viewer diversity. Null figures mean no data in the bucket.
    """

    bucket_start = models.DateTimeField()
    bucket_end = models.DateTimeField()
    created_at = models.DateTimeField(auto_now=True)
    lists = models.PositiveIntegerField(default=0, help_text="Served lists in the bucket.")
    watches = models.PositiveIntegerField(default=0, help_text="Watch sessions started in the bucket.")
    catalog_size = models.PositiveIntegerField(default=0)
    gini_recommended = models.FloatField(null=True, blank=True)
    top1_share_recommended = models.FloatField(null=True, blank=True, help_text="Share of slots of the top 1% movies.")
    gini_watched = models.FloatField(null=True, blank=True)
    top1_share_watched = models.FloatField(null=True, blank=True)
    coverage_recommended = models.FloatField(null=True, blank=True, help_text="Distinct recommended / catalog.")
    coverage_watched = models.FloatField(null=True, blank=True)
    share_watches_after_recommendation = models.FloatField(
        null=True, blank=True, help_text="Watches of a movie recommended to that viewer shortly before."
    )
    per_viewer_diversity = models.FloatField(
        null=True, blank=True, help_text="Mean Gini–Simpson index of genres watched per viewer (2+ watches)."
    )

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["bucket_start", "bucket_end"], name="feedback_snapshot_one_per_bucket")
        ]

    def __str__(self) -> str:
        return f"feedback {self.bucket_start:%Y-%m-%d %H:%M}–{self.bucket_end:%Y-%m-%d %H:%M}"
