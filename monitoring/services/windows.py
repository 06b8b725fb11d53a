"""The time window a report is made over, checked once for every route (API, portal form, beat):
a positive span of at most ``MAX_WINDOW_DAYS``, given as ``since``/``until`` or as a length."""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.errors import ValidationError

MAX_WINDOW_DAYS = 366


def window_resolve(*, since: datetime | None, until: datetime, length: float | None, unit: str,
                   default: float, since_field: str, length_field: str) -> datetime:
    """``since`` for the window ending at ``until``: the one given, else ``until`` minus ``length``
    ``unit``s (hours or minutes), else minus ``default``. A window that is not a positive duration,
    or is longer than ``MAX_WINDOW_DAYS``, is refused naming the field it came from."""
    limit = timedelta(days=MAX_WINDOW_DAYS)
    if since is None:
        value = default if length is None else length
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValidationError(f"{length_field} must be a positive number of {unit}, got {value!r}",
                                  field=length_field)
        if value > limit / timedelta(**{unit: 1}):
            raise ValidationError(f"{length_field} may span at most {MAX_WINDOW_DAYS} days, got {value:g} {unit}",
                                  field=length_field)
        return until - timedelta(**{unit: value})
    if since >= until:
        raise ValidationError(f"{since_field} ({since.isoformat()}) must be before the window's end "
                              f"({until.isoformat()})", field=since_field)
    if until - since > limit:
        raise ValidationError(f"the window from {since_field} may span at most {MAX_WINDOW_DAYS} days",
                              field=since_field)
    return since
