"""Admin of releases and experiments: records are read-only here; the actions call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from unfold.admin import TabularInline

from portal.admin_mixins import ReadOnlyAdmin
from portal.errors import UsherError
from releases import models, services


class _ReadOnly(ReadOnlyAdmin):
    """Changes go through the services (pages, API, actions), never through raw edits."""


def _each(modeladmin, request, queryset, fn, done: str) -> None:
    ok = 0
    for obj in queryset:
        try:
            fn(obj)
            ok += 1
        except UsherError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
    if ok:
        modeladmin.message_user(request, f"{ok} {done}.", messages.SUCCESS)


class GateCheckInline(TabularInline):
    model = models.ReleaseGateCheck
    extra = 0
    can_delete = False
    fields = ["attempt", "name", "outcome", "summary", "checked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.PromotionRequest)
class PromotionRequestAdmin(_ReadOnly):
    list_display = ["id", "version", "status", "requested_label", "decided_by", "gate_passed", "created_at"]
    list_filter = ["status"]
    search_fields = ["reason", "requested_label", "decision_comment"]
    inlines = [GateCheckInline]
    actions = ["cancel_selected"]

    @admin.action(description="Cancel the selected requests", permissions=["release_operate"])
    def cancel_selected(self, request, queryset):
        _each(self, request, queryset, lambda p: services.promotion_cancel(
            promotion=p, actor=request.user, reason=f"cancelled in the admin by {request.user}"), "requests cancelled")


@admin.register(models.ReleaseGateCheck)
class ReleaseGateCheckAdmin(_ReadOnly):
    list_display = ["promotion", "attempt", "name", "outcome", "summary", "checked_at"]
    list_filter = ["name", "outcome"]


class RolloutStepInline(TabularInline):
    model = models.RolloutStep
    extra = 0
    can_delete = False
    fields = ["revision", "outcome", "from_percent", "to_percent", "decided_label", "reason", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Rollout)
class RolloutAdmin(_ReadOnly):
    list_display = ["id", "version", "baseline_version", "state", "applied_percent", "revision", "next_check_at"]
    list_filter = ["state"]
    inlines = [RolloutStepInline]
    actions = ["pause_selected", "rollback_selected"]

    @admin.action(description="Pause the selected rollouts", permissions=["release_operate"])
    def pause_selected(self, request, queryset):
        _each(self, request, queryset, lambda r: services.rollout_pause(
            rollout=r, actor=request.user, reason=f"paused in the admin by {request.user}"), "rollouts paused")

    @admin.action(description="Roll back the selected rollouts", permissions=["release_operate"])
    def rollback_selected(self, request, queryset):
        _each(self, request, queryset, lambda r: services.rollout_rollback(
            rollout=r, actor=request.user, reason=f"rolled back in the admin by {request.user}"), "rollouts rolled back")


@admin.register(models.RolloutStep)
class RolloutStepAdmin(_ReadOnly):
    list_display = ["rollout", "revision", "outcome", "from_percent", "to_percent", "decided_label", "created_at"]
    list_filter = ["outcome"]


class VariantInline(TabularInline):
    model = models.ExperimentVariant
    extra = 0
    can_delete = False
    fields = ["name", "version", "allocation", "is_control"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Experiment)
class ExperimentAdmin(_ReadOnly):
    list_display = ["name", "status", "primary_metric", "started_at", "stopped_at", "decision"]
    list_filter = ["status"]
    search_fields = ["name", "hypothesis"]
    inlines = [VariantInline]
    actions = ["start_selected", "stop_selected"]

    @admin.action(description="Start the selected experiments", permissions=["experiment_manage"])
    def start_selected(self, request, queryset):
        _each(self, request, queryset, lambda e: services.experiment_start(experiment=e, actor=request.user),
              "experiments started")

    @admin.action(description="Stop the selected experiments", permissions=["experiment_manage"])
    def stop_selected(self, request, queryset):
        _each(self, request, queryset, lambda e: services.experiment_stop(
            experiment=e, actor=request.user, reason=f"stopped in the admin by {request.user}"), "experiments stopped")


@admin.register(models.ExperimentVariant)
class ExperimentVariantAdmin(_ReadOnly):
    list_display = ["experiment", "name", "version", "allocation", "is_control"]


@admin.register(models.ExperimentSnapshot)
class ExperimentSnapshotAdmin(_ReadOnly):
    list_display = ["experiment", "computed_at", "decision"]
    list_filter = ["decision"]


@admin.register(models.ShadowComparison)
class ShadowComparisonAdmin(_ReadOnly):
    list_display = ["created_at", "viewer_id", "shadow_version", "production_version", "overlap", "kendall_tau"]


@admin.register(models.ShadowReport)
class ShadowReportAdmin(_ReadOnly):
    list_display = ["created_at", "shadow_version", "production_version", "requests", "mean_overlap",
                    "mean_kendall_tau", "mean_spearman_rho"]
