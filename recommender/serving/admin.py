"""Admin of the serving records: read-only views; deployment changes go through the services (the
portal's Deployments page or the API), and the one admin action calls ``deployment_rollback``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import TabularInline

from portal.admin_mixins import ModelAdmin
from portal.errors import UsherError
from recommender.models import Deployment, DeploymentChange, ExperimentArm, PredictionLog
from recommender.serving import services


class _ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ExperimentArmInline(_ReadOnly, TabularInline):
    model = ExperimentArm
    fields = ["name", "version", "percent", "experiment", "position"]
    readonly_fields = fields
    extra = 0


@admin.register(Deployment)
class DeploymentAdmin(_ReadOnly, ModelAdmin):
    list_display = ["name", "revision", "canary_percent", "shadow_enabled", "updated_at", "updated_by_label", "change_link"]
    readonly_fields = ["name", "revision", "canary_percent", "salt", "shadow_enabled", "updated_at", "updated_by_label",
                       "reason"]
    inlines = [ExperimentArmInline]
    actions = ["rollback_production"]

    @admin.display(description="Change")
    def change_link(self, obj: Deployment) -> str:
        return format_html('<a href="{}">Deployments page</a>', reverse("recommender:serving_deployments"))

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Roll production back to the previous version", permissions=["release_operate"])
    def rollback_production(self, request, queryset) -> None:
        for deployment in queryset:
            try:
                services.deployment_rollback(actor=request.user, name=deployment.name, reason="from the admin list")
                self.message_user(request, f"{deployment.name}: production rolled back.")
            except UsherError as exc:
                self.message_user(request, f"{deployment.name}: {exc.message}", level=messages.ERROR)


@admin.register(DeploymentChange)
class DeploymentChangeAdmin(_ReadOnly, ModelAdmin):
    list_display = ["deployment", "revision", "created_at", "actor_label", "reason"]
    list_filter = ["deployment"]
    search_fields = ["reason", "actor_label"]
    readonly_fields = ["deployment", "revision", "created_at", "actor_label", "reason", "before", "after"]


@admin.register(PredictionLog)
class PredictionLogAdmin(_ReadOnly, ModelAdmin):
    list_display = ["created_at", "request_id", "endpoint", "viewer_id", "model_label", "arm", "status",
                    "fallback_reason", "latency_ms"]
    list_filter = ["endpoint", "status", "arm", "fallback_reason"]
    search_fields = ["=request_id", "=viewer_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the log is large: no COUNT(*) on every page
    readonly_fields = [f.name for f in PredictionLog._meta.fields]
