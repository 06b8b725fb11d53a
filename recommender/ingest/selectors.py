"""Reads of event intake: ingestion sources and their status, quarantined lines and counts by reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q, QuerySet

from portal.errors import ValidationError
from recommender.models import IngestSource, QuarantinedLine

__all__ = ["ingest_source_get", "ingest_source_list", "quarantine_counts", "quarantined_line_list"]


def ingest_source_list(*, filters: dict[str, Any] | None = None) -> QuerySet[IngestSource]:
    """Sources by name; filters: ``kind``, ``name`` (substring), ``failing`` (has a last error)."""
    filters = filters or {}
    qs = IngestSource.objects.order_by("name")
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    if filters.get("name"):
        qs = qs.filter(name__icontains=filters["name"])
    if str(filters.get("failing", "")).lower() in ("1", "true", "yes"):
        qs = qs.exclude(last_error="")
    return qs


def ingest_source_get(*, source_id: int) -> IngestSource | None:
    return IngestSource.objects.filter(id=source_id).first()


def filter_time(value: Any, name: str) -> datetime | None:
    """A ``since``/``until`` filter value: empty → ``None``; a datetime as is; else an ISO-8601 text,
    naive ones in the default time zone; anything else is a ``ValidationError`` naming ``name``."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValidationError(f"{name} must be an ISO-8601 time such as 2025-01-31T12:00, got {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def _quarantine_filter(filters: dict[str, Any] | None) -> Q:
    filters = filters or {}
    q = Q()
    if filters.get("source"):
        q &= Q(source=filters["source"])
    if filters.get("reason_code"):
        q &= Q(reason_code=filters["reason_code"])
    if since := filter_time(filters.get("since"), "since"):
        q &= Q(created_at__gte=since)
    if until := filter_time(filters.get("until"), "until"):
        q &= Q(created_at__lt=until)
    if filters.get("q"):
        q &= Q(raw__icontains=filters["q"]) | Q(reason__icontains=filters["q"])
    return q


def quarantined_line_list(*, filters: dict[str, Any] | None = None) -> QuerySet[QuarantinedLine]:
    """Quarantined lines, newest first; filters: ``source``, ``reason_code``, ``since``, ``until``, ``q``."""
    return QuarantinedLine.objects.filter(_quarantine_filter(filters)).order_by("-created_at", "-id")


def quarantine_counts(*, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Counts by reason code (largest first), each with one example reason and the latest time."""
    rows = (
        QuarantinedLine.objects.filter(_quarantine_filter(filters))
        .values("reason_code")
        .annotate(count=Count("id"), latest=Max("created_at"), example=Max("reason"))
        .order_by("-count", "reason_code")
    )
    return [dict(row) for row in rows]
