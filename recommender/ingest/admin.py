"""Admin for what the event stream tells: ingestion sources, quarantine, ratings, sessions, requests.

Everything here is written by ingestion, so the admin reads; the ledger and the history are
append-only.
"""

from __future__ import annotations

from django.contrib import admin

from portal.admin_mixins import ModelAdmin
from recommender import models


class ReadOnlyModelAdmin(ModelAdmin):
    """No add or change: rows come from the event stream."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.IngestSource)
class IngestSourceAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "kind", "lines_read", "lines_stored", "duplicates", "quarantined", "lag", "rate_per_s",
                    "last_event_time", "last_batch_at", "last_error_at"]
    list_filter = ["kind"]
    search_fields = ["name", "last_error"]


@admin.register(models.QuarantinedLine)
class QuarantinedLineAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "source", "position", "reason_code", "reason", "raw"]
    list_filter = ["reason_code", "source"]
    search_fields = ["raw", "reason"]
    date_hierarchy = "created_at"


@admin.register(models.IngestedLine)
class IngestedLineAdmin(ReadOnlyModelAdmin):
    list_display = ["digest", "kind", "ingested_on"]
    list_filter = ["kind"]
    search_fields = ["digest"]
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.RatingEvent)
class RatingEventAdmin(ReadOnlyModelAdmin):
    list_display = ["time", "viewer", "movie", "rating"]
    list_filter = ["rating"]
    search_fields = ["movie__id", "viewer__id"]
    raw_id_fields = ["viewer", "movie"]
    date_hierarchy = "time"
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Rating)
class RatingAdmin(ReadOnlyModelAdmin):
    list_display = ["viewer", "movie", "rating", "time"]
    list_filter = ["rating"]
    search_fields = ["movie__id", "viewer__id"]
    raw_id_fields = ["viewer", "movie"]
    show_full_result_count = False


@admin.register(models.WatchSession)
class WatchSessionAdmin(ReadOnlyModelAdmin):
    list_display = [
        "viewer",
        "movie",
        "started_at",
        "last_seen_at",
        "first_minute",
        "highest_minute",
        "minutes_watched",
    ]
    search_fields = ["movie__id", "viewer__id"]
    raw_id_fields = ["viewer", "movie"]
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(models.RecommendationRequest)
class RecommendationRequestAdmin(ReadOnlyModelAdmin):
    list_display = ["time", "viewer", "server", "status", "response_ms"]
    list_filter = ["status", "server"]
    search_fields = ["viewer__id", "error"]
    raw_id_fields = ["viewer"]
    date_hierarchy = "time"
    show_full_result_count = False
