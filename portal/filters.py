"""Filters of the portal's lists, shared by the API (django-filter) and the portal pages."""

from __future__ import annotations

from datetime import datetime

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from portal.api.params import INT64_MAX, MAX_TEXT, InvalidParameter, parse_bool, parse_int, parse_time
from portal.models import ActivityLogEntry, ReviewRequest


class TimeField(forms.Field):
    """An ISO-8601 time read by the one query parser (``portal.api.params.parse_time``): offsets
    checked (``+99:00`` is refused), naive times taken as UTC, the result in UTC (PostgreSQL
    refuses offsets beyond ±15:59 that Python accepts) within years 1–9999."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value))
        except InvalidParameter as exc:
            raise forms.ValidationError(str(exc)) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """A time filter handing the database a UTC time (use it for every time filter)."""

    field_class = TimeField


class IdField(forms.Field):
    """A whole number within a column's range (default: a row id, 1 to 2^63 - 1), read by
    ``portal.api.params.parse_int``: ``2**64``, ``1e3``, ``null`` or ``١٢`` are refused, not a 500."""

    def __init__(self, *args, minimum: int | None = 1, maximum: int | None = INT64_MAX, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int):
            return value
        try:
            return parse_int(str(value), minimum=self.minimum, maximum=self.maximum)
        except InvalidParameter as exc:
            raise forms.ValidationError(str(exc)) from None


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": INT64_MAX})
class IdFilter(django_filters.NumberFilter):
    """A row-id filter (1 to 2^63 - 1)."""

    field_class = IdField


class BoolField(forms.Field):
    """true/false/1/0/yes/no/on/off (``portal.api.params.parse_bool``); anything else is refused
    (django-filter's own boolean quietly reads ``maybe`` as "no filter")."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            return value
        try:
            return parse_bool(str(value))
        except InvalidParameter as exc:
            raise forms.ValidationError(str(exc)) from None


class BoolFilter(django_filters.BooleanFilter):
    field_class = BoolField


class TextFilter(django_filters.CharFilter):
    """Free text, at most ``MAX_TEXT`` characters (Django's CharField already refuses NUL)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", MAX_TEXT)
        super().__init__(*args, **kwargs)


def int_filter(minimum: int, maximum: int, **kwargs) -> django_filters.NumberFilter:
    """A whole-number filter within [minimum, maximum] (a year, an age), documented as such."""

    @extend_schema_field({"type": "integer", "minimum": minimum, "maximum": maximum})
    class BoundedIntFilter(django_filters.NumberFilter):
        field_class = IdField

    return BoundedIntFilter(minimum=minimum, maximum=maximum, **kwargs)


class ActivityLogFilter(django_filters.FilterSet):
    """Actor (contains), action (prefix), target, and a time window."""

    actor = TextFilter(field_name="actor_label", lookup_expr="icontains", label="Actor")
    action = TextFilter(field_name="action", lookup_expr="startswith", label="Action (prefix)")
    target_type = TextFilter(field_name="target_type", label="Target type")
    target_id = TextFilter(field_name="target_id", label="Target id")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Since (ISO-8601)")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lte", label="Until (ISO-8601)")

    class Meta:
        model = ActivityLogEntry
        fields = ["actor", "action", "target_type", "target_id", "since", "until"]


class ReviewRequestFilter(django_filters.FilterSet):
    """Status, kind, the assigned role, and the target."""

    status = django_filters.ChoiceFilter(choices=ReviewRequest.Status.choices)
    kind = TextFilter()
    assigned_role = TextFilter()
    target_type = TextFilter()
    target_id = TextFilter()

    class Meta:
        model = ReviewRequest
        fields = ["status", "kind", "assigned_role", "target_type", "target_id"]
