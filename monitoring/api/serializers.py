"""Serializers of the monitoring API (outputs, and inputs of the commands)."""

from __future__ import annotations

from rest_framework import serializers

from monitoring import models
from monitoring.selectors import drift_score
from monitoring.services.metrics import METRICS


class TelemetryMinuteSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.TelemetryMinute
        exclude = ["id", "computed_at"]


class SLOSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.SLO
        fields = ["id", "name", "kind", "source", "objective", "latency_threshold_ms", "window_days", "enabled",
                  "description"]


class SLOStatusSerializer(serializers.Serializer):
    slo = serializers.CharField()
    kind = serializers.CharField()
    source = serializers.CharField()
    objective = serializers.FloatField()
    latency_threshold_ms = serializers.IntegerField(allow_null=True)
    window_days = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    requests = serializers.IntegerField()
    status = serializers.CharField(help_text="no_data, ok, burning or exhausted.")
    sli = serializers.FloatField(allow_null=True)
    error_budget = serializers.FloatField()
    budget_consumed = serializers.FloatField(allow_null=True)
    budget_remaining = serializers.FloatField(allow_null=True)
    burn_rates = serializers.DictField(child=serializers.FloatField(allow_null=True))
    burn_tiers = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text="The burn-rate alert tiers from the SLO's period: tier, budget_fraction, long_minutes, "
                  "short_minutes, factor, severity, period_days, adjusted, label, long_rate, short_rate, burning.")


class NotificationChannelSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = models.NotificationChannel
        fields = ["id", "name", "kind", "target", "secret", "has_secret", "min_severity", "enabled", "created_at"]
        read_only_fields = ["created_at"]

    def get_has_secret(self, obj: models.NotificationChannel) -> bool:
        return bool(obj.secret)


class NotificationChannelCreatedSerializer(NotificationChannelSerializer):
    """A channel as answered to the person who just made it or rotated its secret: ``secret`` is
    the generated key, shown this once (null when they chose their own), never readable again."""

    secret = serializers.SerializerMethodField()

    def __init__(self, *args, secret: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._secret = secret

    def get_secret(self, obj: models.NotificationChannel) -> str | None:
        return self._secret


class AlertRuleSerializer(serializers.ModelSerializer):
    metric = serializers.ChoiceField(choices=sorted(METRICS))
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    channels = serializers.PrimaryKeyRelatedField(many=True, queryset=models.NotificationChannel.objects.all(),
                                                  required=False)
    condition = serializers.CharField(read_only=True)

    class Meta:
        model = models.AlertRule
        fields = ["id", "name", "description", "metric", "params", "operator", "threshold", "window_minutes",
                  "severity", "owner", "channels", "no_data_fires", "enabled", "condition", "state", "last_value",
                  "last_evaluated_at", "last_evidence", "created_at"]
        read_only_fields = ["state", "last_value", "last_evaluated_at", "last_evidence", "created_at"]


class IncidentNoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.IncidentNote
        fields = ["id", "author_label", "text", "created_at"]


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.Notification
        fields = ["id", "incident", "channel", "kind", "target", "event", "status", "attempts", "next_attempt_at",
                  "last_attempt_at", "last_error", "response_status", "sent_at", "created_at"]


class IncidentSerializer(serializers.ModelSerializer):
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)
    rule_id = serializers.IntegerField(read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    review_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = models.Incident
        fields = ["id", "rule", "rule_id", "title", "severity", "status", "opened_at", "last_fired_at", "fire_count",
                  "cleared_at", "value", "peak_value", "evidence", "review_id", "acknowledged_by", "acknowledged_at",
                  "resolved_by", "resolved_at", "resolution"]


class TimelineEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_label = serializers.CharField()
    action = serializers.CharField()
    data = serializers.JSONField()


class IncidentDetailSerializer(IncidentSerializer):
    notes = IncidentNoteSerializer(many=True, read_only=True)
    notifications = NotificationSerializer(many=True, read_only=True)
    timeline = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "notes", "notifications", "timeline"]

    def get_timeline(self, obj: models.Incident) -> list[dict]:
        from monitoring import selectors

        return TimelineEntrySerializer(selectors.incident_timeline(incident=obj), many=True).data


class DataQualityReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.DataQualityReport
        fields = ["id", "window_start", "window_end", "created_at", "status", "events", "quarantined",
                  "quarantine_rate", "issues", "sections", "duration_ms"]


class DriftFeatureSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.DriftFeature
        fields = ["id", "name", "label", "kind", "enabled", "alpha", "large_sample_min", "large_metric",
                  "large_threshold", "description"]
        read_only_fields = ["name", "kind"]


class DriftResultSerializer(serializers.ModelSerializer):
    drift_score = serializers.SerializerMethodField(
        help_text="Higher is more drift, above 1 is drifted: −log10 p ÷ −log10 alpha (KS, chi-square), "
                  "distance ÷ threshold (Wasserstein, Jensen–Shannon, PSI).")

    class Meta:
        model = models.DriftResult
        fields = ["feature", "kind", "test", "statistic", "p_value", "score", "threshold", "drift_score", "drifted",
                  "n_reference", "n_current", "histogram", "note"]

    def get_drift_score(self, result: models.DriftResult) -> float | None:
        return drift_score(test=result.test, score=result.score, threshold=result.threshold, p_value=result.p_value)


class DriftReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.DriftReport
        fields = ["id", "created_at", "status", "reference", "reference_since", "reference_until", "current_since",
                  "current_until", "drifted_features", "tested_features", "duration_ms"]


class DriftReportDetailSerializer(DriftReportSerializer):
    results = DriftResultSerializer(many=True, read_only=True)

    class Meta(DriftReportSerializer.Meta):
        fields = [*DriftReportSerializer.Meta.fields, "results"]


class FeedbackLoopSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.FeedbackLoopSnapshot
        exclude = ["id", "created_at"]


class QualityGroupSerializer(serializers.Serializer):
    key = serializers.DictField()
    labels = serializers.DictField(child=serializers.CharField())
    trials = serializers.IntegerField()
    successes = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    rated = serializers.IntegerField()
    mean_rating = serializers.FloatField(allow_null=True)
    sampled_one_in = serializers.IntegerField(help_text="1, or n when one viewer in n was sampled.")
