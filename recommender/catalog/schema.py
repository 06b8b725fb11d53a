"""The schema of the platform's viewer and movie records, with coercion and range checks.

The platform's metadata APIs (``/user/<id>``, ``/movie/<id>``) send JSON whose numbers sometimes
arrive as strings (``"popularity": "4.02059"``) and whose values can be missing or out of range.
``validate_viewer`` and ``validate_movie`` turn one raw record into the clean field values of
``Viewer`` / ``Movie`` or raise ``RecordError`` naming the first thing that is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

OCCUPATIONS = (
    "other or not specified",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)

AGE_RANGE = (5, 110)
RUNTIME_RANGE = (0, 1000)  # minutes; 0 means "unknown" in the platform's data and is stored as null
VOTE_AVERAGE_RANGE = (0.0, 10.0)
RELEASE_DATE_RANGE = (date(1870, 1, 1), date(2100, 12, 31))
SLUG_RE = re.compile(r"^[^\s,/]{1,255}$")


class RecordError(ValueError):
    """A record that cannot be accepted; ``code`` is a stable key for counts by reason."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class RawRecord:
    """One record as it arrived: where from (line number or URL path), and its JSON text or object.

    ``error`` is set when the record could not even be fetched (then ``data`` is the URL).
    """

    position: str
    data: Any
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class Field:
    """One field of a record: its type, whether it is required, and the allowed range."""

    name: str
    kind: str  # int | float | str | bool | date | genres
    required: bool = False
    low: float | None = None
    high: float | None = None
    max_length: int | None = None
    zero_is_null: bool = False


VIEWER_FIELDS = (
    Field("user_id", "int", required=True, low=1, high=2**62),
    Field("age", "int", low=AGE_RANGE[0], high=AGE_RANGE[1]),
    Field("gender", "gender"),
    Field("occupation", "str", max_length=64),
)

MOVIE_FIELDS = (
    Field("id", "slug", required=True),
    Field("tmdb_id", "int", low=0, high=2**62),
    Field("imdb_id", "str", max_length=32),
    Field("title", "str", max_length=500),
    Field("original_title", "str", max_length=500),
    Field("adult", "bool"),
    Field("genres", "genres"),
    Field("release_date", "date"),
    Field("runtime", "int", low=RUNTIME_RANGE[0], high=RUNTIME_RANGE[1], zero_is_null=True),
    Field("original_language", "str", max_length=16),
    Field("popularity", "float", low=0, high=1e9),
    Field("vote_average", "float", low=VOTE_AVERAGE_RANGE[0], high=VOTE_AVERAGE_RANGE[1]),
    Field("vote_count", "int", low=0, high=2**31 - 1),
    Field("budget", "int", low=0, high=2**62),
    Field("revenue", "int", low=0, high=2**62),
    Field("status", "str", max_length=32),
)

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def _fmt(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range_text(field: Field) -> str:
    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    return f"{num(field.low)}–{num(field.high)}"


def _number(field: Field, value: Any) -> int | float:
    if isinstance(value, bool):
        raise RecordError(f"{field.name} {_fmt(value)} is not a number", "catalog.bad_number")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: int | float = int(text) if field.kind == "int" and re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise RecordError(f"{field.name} {_fmt(value)} is not a number", "catalog.bad_number")
    elif isinstance(value, int | float):
        number = value
    else:
        raise RecordError(f"{field.name} {_fmt(value)} is not a number", "catalog.bad_number")
    if isinstance(number, float) and not math.isfinite(number):
        raise RecordError(f"{field.name} {_fmt(value)} is not a finite number", "catalog.bad_number")
    if field.kind == "int":
        if isinstance(number, float):
            if not number.is_integer():
                raise RecordError(f"{field.name} {_fmt(value)} is not a whole number", "catalog.bad_number")
            number = int(number)
    else:
        number = float(number)
    if (field.low is not None and number < field.low) or (field.high is not None and number > field.high):
        raise RecordError(f"{field.name} {_fmt(value)} outside {_range_text(field)}", "catalog.out_of_range")
    if field.zero_is_null and number == 0:
        return None  # type: ignore[return-value]
    return number


def _coerce(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind in ("int", "float"):
        return _number(field, value)
    if kind in ("str", "slug"):
        if isinstance(value, int | float) and not isinstance(value, bool) and kind == "str":
            value = str(value)
        if not isinstance(value, str):
            raise RecordError(f"{field.name} {_fmt(value)} is not a string", "catalog.bad_value")
        value = value.strip()
        if kind == "slug":
            if not SLUG_RE.match(value):
                raise RecordError(f"id {_fmt(value)} is not a movie id (a slug without spaces)", "catalog.bad_value")
            return value
        if field.max_length and len(value) > field.max_length:
            raise RecordError(f"{field.name} is longer than {field.max_length} characters", "catalog.bad_value")
        return value
    if kind == "gender":
        if not isinstance(value, str) or value.strip().upper() not in ("M", "F"):
            raise RecordError(f"gender {_fmt(value)} is not M or F", "catalog.bad_value")
        return value.strip().upper()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise RecordError(f"{field.name} {_fmt(value)} is not true or false", "catalog.bad_value")
    if kind == "date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise RecordError(f"{field.name} {_fmt(value)} is not a date (YYYY-MM-DD)", "catalog.bad_date")
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"{field.name} {_fmt(value)} is not a date (YYYY-MM-DD)", "catalog.bad_date")
        low, high = RELEASE_DATE_RANGE
        if not low <= parsed <= high:
            raise RecordError(f"{field.name} {value} outside {low.year}–{high.year}", "catalog.out_of_range")
        return parsed
    if kind == "genres":
        if not isinstance(value, list):
            raise RecordError(f"genres {_fmt(value)} is not a list", "catalog.bad_value")
        names: list[str] = []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise RecordError(f"genre {_fmt(item)} has no name", "catalog.bad_value")
            if name.strip() not in names:
                names.append(name.strip())
        return names
    raise AssertionError(kind)


def _validate(record: Any, fields: tuple[Field, ...], what: str) -> tuple[dict, dict]:
    if not isinstance(record, dict):
        raise RecordError(f"{what} record is not a JSON object", "catalog.bad_record")
    clean: dict[str, Any] = {}
    for field in fields:
        value = record.get(field.name)
        if value is None or (isinstance(value, str) and not value.strip() and field.kind != "str"):
            if field.required:
                raise RecordError(f"{what} record has no {field.name}", "catalog.missing_field")
            continue
        clean[field.name] = _coerce(field, value)
    known = {f.name for f in fields}
    extra = {k: v for k, v in record.items() if k not in known}
    return clean, extra


def validate_viewer(record: Any) -> dict:
    """Clean ``Viewer`` fields (``id``, ``age``, ``gender``, ``occupation``) from a ``/user/<id>`` record."""
    clean, _ = _validate(record, VIEWER_FIELDS, "viewer")
    out = {"id": clean.pop("user_id")}
    out.update(clean)
    return out


def validate_movie(record: Any) -> dict:
    """Clean ``Movie`` fields from a ``/movie/<id>`` record; unknown keys go to ``extra``."""
    clean, extra = _validate(record, MOVIE_FIELDS, "movie")
    if clean.get("release_date") is not None:
        clean["year"] = clean["release_date"].year
    clean["extra"] = extra
    return clean


def record_kind(record: Any) -> str | None:
    """``viewer`` for a record with ``user_id``, ``movie`` for one with ``id``; None otherwise."""
    if isinstance(record, dict):
        if "user_id" in record:
            return "viewer"
        if "id" in record:
            return "movie"
    return None
