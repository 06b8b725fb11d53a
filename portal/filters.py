"""Filters of the portal's lists, shared by the API (django-filter) and the portal pages."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms

from portal.models import ActivityLogEntry, ReviewRequest


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO-8601 time, converted to UTC: PostgreSQL refuses offsets beyond ±15:59 that Python
    accepts (``-22:58``), and a time whose UTC value falls outside years 1–9999 is refused here."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("this time is out of range") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` that hands the database a UTC time (use it for every time filter)."""

    field_class = UtcIsoDateTimeField


class ActivityLogFilter(django_filters.FilterSet):
    """Actor (contains), action (prefix), target, and a time window."""

    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains", label="Actor")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label="Action (prefix)")
    target_type = django_filters.CharFilter(field_name="target_type", label="Target type")
    target_id = django_filters.CharFilter(field_name="target_id", label="Target id")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Since (ISO-8601)")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lte", label="Until (ISO-8601)")

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
