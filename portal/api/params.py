"""Reading query parameters in API views: a bad value is a 400 naming the parameter, never a
raw string reaching the ORM (a 500). Prefer a FilterSet for list filters; use these for the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationError({name: ["give this parameter once"]})
    return values[0]


def query_int(request: Request, name: str, *, default: int | None = None, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    """``?name=`` as an int within [minimum, maximum], or ``default`` when absent. Unbounded ends
    stop at the signed 64-bit range: no database column holds more, and a value it refuses would
    otherwise fail the query (and, on PostgreSQL, the rest of the transaction)."""
    raw = _one(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"must be a whole number, not {raw!r}"]})
    low = INT64_MIN if minimum is None else minimum
    high = INT64_MAX if maximum is None else maximum
    if not low <= value <= high:
        raise ValidationError({name: [f"must be between {low} and {high}, not {value}"]})
    return value


def query_float(request: Request, name: str, *, default: float | None = None, minimum: float | None = None,
                maximum: float | None = None) -> float | None:
    """``?name=`` as a finite float within [minimum, maximum], or ``default`` when absent."""
    raw = _one(request, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError({name: [f"must be a number, not {raw!r}"]})
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError({name: ["must be a finite number"]})
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValidationError({name: [f"must be between {minimum} and {maximum}, not {value}"]})
    return value


def query_datetime(request: Request, name: str, *, default: datetime | None = None) -> datetime | None:
    """``?name=`` as an aware ISO-8601 datetime (naive values are taken as UTC)."""
    raw = _one(request, name)
    if raw is None:
        return default
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: [f"must be an ISO-8601 time such as 2025-01-31T12:00:00Z, not {raw!r}"]})
    try:
        # Normalised to UTC: a database may refuse odd offsets (PostgreSQL caps them at ±15:59).
        return value.astimezone(UTC) if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    except (OverflowError, ValueError):
        raise ValidationError({name: [f"{raw!r} is outside the supported time range"]})
