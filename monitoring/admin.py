"""Admin for every monitoring model. Configuration (SLOs, rules, drift thresholds, channels) is
editable and saved through services so the activity log records each change; reports, rollups,
incidents and notifications are read-only here and acted on through admin actions that call services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from unfold.admin import TabularInline

from monitoring.models import (
    SLO,
    AlertRule,
    DataQualityReport,
    DriftFeature,
    DriftReport,
    DriftResult,
    FeedbackLoopSnapshot,
    Incident,
    IncidentNote,
    Notification,
    NotificationChannel,
    TelemetryMinute,
)
from monitoring.services import alerts, config, incidents, notifications
from monitoring.services.metrics import metric_choices
from portal.admin_mixins import ModelAdmin
from portal.errors import UsherError
from portal.permissions import require


class ReadOnlyModelAdmin(ModelAdmin):
    """Computed records: no add or change in the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ConfigAdmin(ModelAdmin):
    """Configuration saved through ``config_save`` (validated, before/after in the activity log)."""

    def save_model(self, request, obj, form, change) -> None:
        config.config_save(instance=obj, actor=request.user)

    def delete_model(self, request, obj) -> None:
        config.config_delete(instance=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            config.config_delete(instance=obj, actor=request.user)


@admin.register(TelemetryMinute)
class TelemetryMinuteAdmin(ReadOnlyModelAdmin):
    list_display = ["minute", "source", "model_version", "arm", "requests", "errors", "available",
                    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "personalized"]
    list_filter = ["source", "arm"]
    date_hierarchy = "minute"


@admin.register(SLO)
class SLOAdmin(ConfigAdmin):
    list_display = ["name", "kind", "source", "objective", "latency_threshold_ms", "window_days", "enabled"]
    list_editable = ["enabled"]


class AlertRuleForm(forms.ModelForm):
    metric = forms.ChoiceField(choices=metric_choices)

    class Meta:
        model = AlertRule
        fields = ["name", "description", "metric", "params", "operator", "threshold", "window_minutes", "severity",
                  "owner", "channels", "no_data_fires", "enabled"]


@admin.register(AlertRule)
class AlertRuleAdmin(ModelAdmin):
    form = AlertRuleForm
    list_display = ["name", "metric", "operator", "threshold", "window_minutes", "severity", "owner", "enabled",
                    "state", "last_value", "last_evaluated_at"]
    list_filter = ["state", "severity", "metric", "enabled"]
    search_fields = ["name", "description"]
    readonly_fields = ["state", "last_value", "last_evaluated_at", "last_evidence", "created_at"]
    filter_horizontal = ["channels"]
    actions = ["evaluate_now"]

    def save_model(self, request, obj, form, change) -> None:
        require(request.user, "config.manage", target=obj if change else None)  # before the row is saved
        before = None
        if change:
            before = alerts._rule_state(AlertRule.objects.get(pk=obj.pk))
        obj.save()
        # The log entry waits for the channels (saved by save_related) so "after" is complete.
        request._monitoring_rule_log = (obj, not change, before)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        obj, created, before = request._monitoring_rule_log
        alerts.alert_rule_saved(rule=obj, actor=request.user, created=created, before=before)

    def delete_model(self, request, obj) -> None:
        config.config_delete(instance=obj, actor=request.user)

    @admin.action(description="Evaluate the selected rules now", permissions=["config_manage"])
    def evaluate_now(self, request, queryset) -> None:
        for rule in queryset:
            try:
                result = alerts.alert_rule_evaluate(rule=rule, actor=request.user)
            except UsherError as exc:
                self.message_user(request, f"{rule.name}: {exc.message}", level=messages.ERROR)
                return
            level = messages.ERROR if result.error else messages.INFO
            self.message_user(request, f"{rule.name}: {result.state} (value {result.value})"
                              + (f" — incident #{result.incident_id}" if result.incident_id else ""), level=level)


class IncidentNoteInline(TabularInline):
    model = IncidentNote
    extra = 0
    can_delete = False
    readonly_fields = ["author_label", "text", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "title", "severity", "status", "opened_at", "last_fired_at", "fire_count", "cleared_at",
                    "acknowledged_by", "resolved_by"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["title"]
    inlines = [IncidentNoteInline]
    actions = ["acknowledge", "resolve"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _act(self, request, queryset, fn, **kwargs) -> None:
        for incident in queryset:
            try:
                fn(incident=incident, actor=request.user, **kwargs)
                self.message_user(request, f"incident #{incident.pk}: done")
            except UsherError as exc:
                self.message_user(request, f"incident #{incident.pk}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Acknowledge the selected incidents", permissions=["incident_handle"])
    def acknowledge(self, request, queryset) -> None:
        self._act(request, queryset, incidents.incident_acknowledge, comment="acknowledged from the admin")

    @admin.action(description="Resolve the selected incidents", permissions=["incident_handle"])
    def resolve(self, request, queryset) -> None:
        self._act(request, queryset, incidents.incident_resolve, resolution="resolved from the admin")


@admin.register(IncidentNote)
class IncidentNoteAdmin(ReadOnlyModelAdmin):
    list_display = ["incident", "author_label", "created_at", "text"]
    search_fields = ["text", "author_label"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NotificationChannelForm(forms.ModelForm):
    """The secret is write-only here: typed in to set one, never rendered back (not even masked)."""

    new_secret = forms.CharField(
        required=False, max_length=200, strip=True, label="Set a secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Webhook: leave empty to keep the current secret (a new webhook channel gets a generated one, "
                  "shown once after saving). Use the “rotate” action to get a new one.",
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "min_severity", "enabled"]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ModelAdmin):
    """Channels are saved through ``notification_channel_save`` (target checked, secret generated and
    shown once, activity log with the secret masked). The secret is never a field of this page."""

    form = NotificationChannelForm
    list_display = ["name", "kind", "target", "min_severity", "enabled", "has_secret"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["has_secret", "created_at"]
    actions = ["send_test", "rotate_secret"]

    @admin.display(boolean=True, description="secret set")
    def has_secret(self, obj: NotificationChannel) -> bool:
        return bool(obj.secret)

    def save_model(self, request, obj, form, change) -> None:
        _, generated = notifications.notification_channel_save(
            channel=obj, actor=request.user, data={"secret": form.cleaned_data.get("new_secret", "")})
        if generated:
            self.message_user(request, f"Secret of channel “{obj.name}”, shown this once (copy it to the receiver "
                                       f"now; rotate it to get a new one): {generated}", level=messages.WARNING)

    def delete_model(self, request, obj) -> None:
        config.config_delete(instance=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            config.config_delete(instance=obj, actor=request.user)

    @admin.action(description="Send a test message through the selected channels", permissions=["config_manage"])
    def send_test(self, request, queryset) -> None:
        for channel in queryset:
            try:
                result = notifications.notification_channel_test(channel=channel, actor=request.user)
            except UsherError as exc:
                self.message_user(request, f"{channel.name}: {exc.message}", level=messages.ERROR)
                continue
            if result.status == Notification.Status.SENT:
                self.message_user(request, f"{channel.name}: sent")
            else:
                self.message_user(request, f"{channel.name}: {result.last_error}", level=messages.ERROR)

    @admin.action(description="Rotate the secret of the selected channels (each new one is shown once)",
                  permissions=["config_manage"])
    def rotate_secret(self, request, queryset) -> None:
        for channel in queryset:
            try:
                secret = notifications.notification_channel_rotate_secret(channel=channel, actor=request.user)
            except UsherError as exc:
                self.message_user(request, f"{channel.name}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(request, f"New secret of channel “{channel.name}”, shown this once (the old one no "
                                       f"longer signs): {secret}", level=messages.WARNING)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "incident", "kind", "target", "event", "status", "attempts", "last_error", "sent_at",
                    "next_attempt_at"]
    list_filter = ["status", "kind", "event"]
    actions = ["retry_now"]

    @admin.action(description="Try the selected pending notifications now", permissions=["incident_handle"])
    def retry_now(self, request, queryset) -> None:
        for notification in queryset.filter(status=Notification.Status.PENDING):
            try:
                result = notifications.notification_retry(notification=notification, actor=request.user)
            except UsherError as exc:
                self.message_user(request, f"#{notification.pk}: {exc.message}", level=messages.ERROR)
                return
            self.message_user(request, f"#{notification.pk}: {result.status if result else 'busy'}")


@admin.register(DataQualityReport)
class DataQualityReportAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "window_start", "window_end", "status", "events", "quarantined", "quarantine_rate",
                    "created_at"]
    list_filter = ["status"]
    date_hierarchy = "window_end"


@admin.register(DriftFeature)
class DriftFeatureAdmin(ConfigAdmin):
    list_display = ["name", "label", "kind", "enabled", "alpha", "large_sample_min", "large_metric", "large_threshold"]
    list_editable = ["enabled", "alpha", "large_sample_min", "large_metric", "large_threshold"]
    list_filter = ["kind", "enabled"]

    def has_add_permission(self, request) -> bool:
        # Features are the extractors the code has; only their thresholds are editable.
        return False


class DriftResultInline(TabularInline):
    model = DriftResult
    extra = 0
    can_delete = False
    fields = ["feature", "test", "statistic", "p_value", "score", "threshold", "drifted", "n_reference",
              "n_current", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "created_at", "status", "drifted_features", "tested_features", "current_since",
                    "current_until", "duration_ms"]
    list_filter = ["status"]
    inlines = [DriftResultInline]


@admin.register(DriftResult)
class DriftResultAdmin(ReadOnlyModelAdmin):
    list_display = ["report", "feature", "test", "score", "threshold", "drifted", "n_reference", "n_current"]
    list_filter = ["feature", "drifted", "test"]


@admin.register(FeedbackLoopSnapshot)
class FeedbackLoopSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = ["bucket_start", "bucket_end", "lists", "watches", "gini_recommended", "top1_share_recommended",
                    "gini_watched", "coverage_recommended", "share_watches_after_recommendation",
                    "per_viewer_diversity"]
