"""Output serializers of the audits API (input serializers live on their views)."""

from __future__ import annotations

from rest_framework import serializers

from audits.models import AuditFinding, AuditRun, FindingResolution, FindingWaiver, Severity


def _choice_text(choices) -> serializers.CharField:
    """A read-only choice as plain text (its values in the description), so enum names never collide."""
    return serializers.CharField(read_only=True, help_text="One of: " + ", ".join(choices.values))


class AuditRunSerializer(serializers.ModelSerializer):
    """A run; ``exploratory`` runs (other settings than the configured ones) are never read by the gate."""

    kind = _choice_text(AuditRun.Kind)
    target = _choice_text(AuditRun.Target)
    trigger = _choice_text(AuditRun.Trigger)
    status = _choice_text(AuditRun.Status)
    model_version_name = serializers.SerializerMethodField()
    signed_off_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    finding_count = serializers.IntegerField(read_only=True, default=None)
    open_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = AuditRun
        fields = ["id", "kind", "target", "target_repr", "model_version", "model_version_name", "window_start",
                  "window_end", "trigger", "status", "exploratory", "artifact_sha256", "passed", "report", "error",
                  "requested_label", "created_at", "started_at", "finished_at", "signed_off_by", "signed_off_at", "signoff_comment", "finding_count",
                  "open_count"]

    def get_model_version_name(self, obj: AuditRun) -> str | None:
        return str(obj.model_version) if obj.model_version_id else None


class AuditRunDetailSerializer(AuditRunSerializer):
    class Meta(AuditRunSerializer.Meta):
        fields = [*AuditRunSerializer.Meta.fields, "params", "results"]


class FindingWaiverSerializer(serializers.ModelSerializer):
    status = _choice_text(FindingWaiver.Status)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = FindingWaiver
        fields = ["id", "finding", "status", "justification", "expires_at", "requested_by", "requested_at",
                  "review", "reviewed_by", "reviewed_at", "review_comment"]


class FindingResolutionSerializer(serializers.ModelSerializer):
    status = _choice_text(FindingResolution.Status)
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = FindingResolution
        fields = ["id", "finding", "status", "comment", "proposed_by", "proposed_at", "review", "reviewed_by",
                  "reviewed_at", "review_comment"]


class AuditFindingSerializer(serializers.ModelSerializer):
    kind = _choice_text(AuditRun.Kind)
    severity = _choice_text(Severity)
    status = _choice_text(AuditFinding.Status)
    status_changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_via = serializers.CharField(read_only=True, help_text="How a resolved finding was closed: "
                                         + ", ".join(AuditFinding.ResolvedVia.values) + " (blank while not resolved)")
    waivers = FindingWaiverSerializer(many=True, read_only=True)
    resolutions = FindingResolutionSerializer(many=True, read_only=True)

    class Meta:
        model = AuditFinding
        fields = ["id", "run", "kind", "check_name", "fingerprint", "severity", "title", "evidence", "model_version",
                  "status", "status_changed_at", "status_changed_by", "status_comment", "resolved_via", "times_seen",
                  "first_seen_at", "last_seen_at", "waivers", "resolutions"]


class HistoryEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_label = serializers.CharField()
    action = serializers.CharField()
    data = serializers.JSONField()


class AuditFindingDetailSerializer(AuditFindingSerializer):
    history = serializers.SerializerMethodField()

    class Meta(AuditFindingSerializer.Meta):
        fields = [*AuditFindingSerializer.Meta.fields, "history"]

    def get_history(self, obj: AuditFinding) -> list[dict]:
        from audits.selectors import audit_finding_history

        return HistoryEntrySerializer(audit_finding_history(finding=obj), many=True).data
