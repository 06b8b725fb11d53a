"""Admin for the portal shell: the activity log is read-only; reviews are decided via services."""

from __future__ import annotations

from django.contrib import admin, messages
from unfold.admin import ModelAdmin

from portal import services
from portal.errors import UsherError
from portal.models import ActivityLogEntry, ActivityLogHead, ReviewRequest

admin.site.site_header = "Usher"
admin.site.site_title = "Usher"
admin.site.index_title = "Dashboard"


class ReadOnlyAdmin(ModelAdmin):
    """No add, change or delete: for append-only records."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ActivityLogEntry)
class ActivityLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "target_type", "target_id", "target_repr"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "action", "target_repr", "target_id"]
    date_hierarchy = "created_at"


@admin.register(ActivityLogHead)
class ActivityLogHeadAdmin(ReadOnlyAdmin):
    list_display = ["id", "seq", "hash"]


@admin.register(ReviewRequest)
class ReviewRequestAdmin(ModelAdmin):
    list_display = ["id", "kind", "title", "status", "requester_label", "assigned_role", "decided_by", "due_at"]
    list_filter = ["status", "kind", "assigned_role"]
    search_fields = ["title", "target_repr", "requester_label"]
    readonly_fields = [f.name for f in ReviewRequest._meta.fields]
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _decide(self, request, queryset, decision: str, comment: str) -> None:
        for review in queryset:
            try:
                services.review_request_decide(review=review, actor=request.user, decision=decision, comment=comment)
                self.message_user(request, f"#{review.pk}: {decision} recorded.")
            except UsherError as exc:
                self.message_user(request, f"#{review.pk}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Approve selected reviews")
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, "approve", "approved from the admin list")

    @admin.action(description="Reject selected reviews")
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, "reject", "rejected from the admin list")
