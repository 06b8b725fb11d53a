"""Filters of the portal's lists, shared by the API (django-filter) and the portal pages."""

from __future__ import annotations

import django_filters

from portal.models import ActivityLogEntry, ReviewRequest


class ActivityLogFilter(django_filters.FilterSet):
    """Actor (contains), action (prefix), target, and a time window."""

    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains", label="Actor")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label="Action (prefix)")
    target_type = django_filters.CharFilter(field_name="target_type", label="Target type")
    target_id = django_filters.CharFilter(field_name="target_id", label="Target id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Since (ISO-8601)")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte", label="Until (ISO-8601)")

    class Meta:
        model = ActivityLogEntry
        fields = ["actor", "action", "target_type", "target_id", "since", "until"]


class ReviewRequestFilter(django_filters.FilterSet):
    """Status, kind, the assigned role, and the target."""

    status = django_filters.ChoiceFilter(choices=ReviewRequest.Status.choices)
    kind = django_filters.CharFilter()
    assigned_role = django_filters.CharFilter()
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()

    class Meta:
        model = ReviewRequest
        fields = ["status", "kind", "assigned_role", "target_type", "target_id"]
