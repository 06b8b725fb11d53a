"""Admin of the training side: snapshots and runs are read-only records; actions call the services."""

from __future__ import annotations

from django.contrib import admin, messages

from portal.admin_mixins import ModelAdmin, ReadOnlyAdmin
from portal.errors import UsherError
from recommender.models import DatasetSnapshot, TrainingRun
from recommender.training.runs import training_run_cancel


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "window_start", "window_end", "rating_count", "viewer_count", "movie_count",
                    "include_implicit", "short_sha", "created_at", "created_by_label"]
    list_filter = ["include_implicit", "status"]
    search_fields = ["name", "content_sha256"]
    date_hierarchy = "created_at"

    @admin.display(description="sha256")
    def short_sha(self, obj: DatasetSnapshot) -> str:
        return obj.content_sha256[:12]


@admin.register(TrainingRun)
class TrainingRunAdmin(ModelAdmin):
    list_display = ["id", "algorithm", "snapshot", "status", "stage", "percent", "origin", "attempts", "queued_at",
                    "total_seconds", "created_by_label"]
    list_filter = ["status", "algorithm", "origin"]
    search_fields = ["algorithm", "created_by_label", "error"]
    date_hierarchy = "queued_at"
    readonly_fields = [f.name for f in TrainingRun._meta.fields]
    actions = ["cancel_selected"]

    def has_add_permission(self, request) -> bool:  # runs are created through the portal, API or CLI
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Cancel selected runs", permissions=["model_build"])
    def cancel_selected(self, request, queryset) -> None:
        for run in queryset:
            try:
                training_run_cancel(run=run, actor=request.user, reason="cancelled from the admin")
                self.message_user(request, f"run #{run.pk}: cancel requested")
            except UsherError as exc:
                self.message_user(request, f"run #{run.pk}: {exc.message}", level=messages.ERROR)
