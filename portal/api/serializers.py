"""Output serializers of the portal shell's API."""

from rest_framework import serializers

from portal.models import ActivityLogEntry, ReviewRequest


class ActivityLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivityLogEntry
        fields = ["seq", "created_at", "actor_label", "action", "target_type", "target_id",
                  "target_repr", "data", "prev_hash", "hash"]


class ReviewRequestSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReviewRequest
        fields = ["id", "kind", "title", "target_type", "target_id", "target_repr", "evidence",
                  "requester_label", "assigned_role", "assigned_to", "status", "decision_comment",
                  "decided_by", "decided_at", "due_at", "created_at"]
