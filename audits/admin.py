"""Admin for the audits app: runs, findings and waivers; every change goes through the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import TabularInline

from audits import services
from audits.errors import UsherError
from audits.models import AuditFinding, AuditRun, FindingResolution, FindingWaiver
from portal.admin_mixins import ModelAdmin


class _NoDirectEdits(ModelAdmin):
    """Records change only through services (and the actions below), never by editing fields."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + [m.name for m in self.model._meta.many_to_many]


@admin.register(AuditRun)
class AuditRunAdmin(_NoDirectEdits):
    list_display = ["id", "kind", "target_repr", "trigger", "status", "passed", "requested_label", "created_at",
                    "finished_at", "signed_off_by", "page_link"]
    list_filter = ["kind", "status", "trigger", "passed", "exploratory"]
    search_fields = ["target_repr", "requested_label", "report"]
    date_hierarchy = "created_at"
    actions = ["run_again", "request_signoff"]

    @admin.display(description="Report")
    def page_link(self, obj: AuditRun) -> str:
        return format_html('<a href="{}">open</a>', reverse("audits:run", args=[obj.pk]))

    @admin.action(description="Run the same audit again now", permissions=["audit_run"])
    def run_again(self, request, queryset) -> None:
        # Same settings as the original: a run with overrides stays exploratory (and needs audit.explore).
        for run in queryset:
            try:
                new = services.audit_run_create(
                    kind=run.kind, actor=request.user, model_version=run.model_version if run.target == "model_version"
                    else None, window_hours=run.params.get("window_hours"), overrides=run.params.get("overrides"))
                self.message_user(request, f"Audit #{new.pk} queued.")
            except UsherError as exc:
                self.message_user(request, f"#{run.pk}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Ask a reviewer to sign off", permissions=["audit_run"])
    def request_signoff(self, request, queryset) -> None:
        for run in queryset:
            try:
                review = services.audit_run_signoff_request(run=run, actor=request.user)
                self.message_user(request, f"#{run.pk}: sign-off requested (review #{review.pk}).")
            except UsherError as exc:
                self.message_user(request, f"#{run.pk}: {exc.message}", level=messages.ERROR)


class FindingWaiverInline(TabularInline):
    model = FindingWaiver
    extra = 0
    can_delete = False
    fields = ["status", "justification", "expires_at", "requested_by", "reviewed_by", "reviewed_at", "review"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditFinding)
class AuditFindingAdmin(_NoDirectEdits):
    list_display = ["id", "severity", "status", "check_name", "title", "times_seen", "last_seen_at", "page_link"]
    list_filter = ["status", "severity", "kind", "check_name"]
    search_fields = ["title", "fingerprint"]
    date_hierarchy = "last_seen_at"
    inlines = [FindingWaiverInline]
    actions = ["acknowledge"]

    @admin.display(description="Finding")
    def page_link(self, obj: AuditFinding) -> str:
        return format_html('<a href="{}">open</a>', reverse("audits:finding", args=[obj.pk]))

    @admin.action(description="Acknowledge selected findings", permissions=["finding_acknowledge"])
    def acknowledge(self, request, queryset) -> None:
        for finding in queryset:
            try:
                services.finding_acknowledge(finding=finding, actor=request.user, comment="acknowledged in the admin")
                self.message_user(request, f"#{finding.pk} acknowledged.")
            except UsherError as exc:
                self.message_user(request, f"#{finding.pk}: {exc.message}", level=messages.ERROR)


@admin.register(FindingWaiver)
class FindingWaiverAdmin(_NoDirectEdits):
    list_display = ["id", "finding", "status", "expires_at", "requested_by", "reviewed_by", "reviewed_at"]
    list_filter = ["status"]
    search_fields = ["justification", "finding__title"]


@admin.register(FindingResolution)
class FindingResolutionAdmin(_NoDirectEdits):
    """Proposed resolutions: decided in the review inbox by a reviewer who did not propose them."""

    list_display = ["id", "finding", "status", "proposed_by", "proposed_at", "reviewed_by", "reviewed_at"]
    list_filter = ["status"]
    search_fields = ["comment", "finding__title"]
