"""The one parser of query parameters, for the API and the portal pages alike: a bad value is a
clear message naming the parameter, never a raw string reaching the ORM (a 500).

- API views read with ``query_id(request, "snapshot")`` and friends (or a ``QueryParams(request)``
  for several): a bad value raises ``InvalidQuery`` (a DRF ``ValidationError``), which the shared
  handler answers as ``400 {"error": "invalid query parameter 'since': why", "detail": {"since": ["why"]}}``.
  A typed parameter given empty (``?since=``) is a 400 too; free text may be empty.
- Portal pages read with ``QueryParams(request, page=True)``: a bad value is recorded in
  ``.errors`` (shown as a message by ``.report()``) and the filter is left out, since HTML forms
  send every field, empty ones included, an empty value simply means "no filter".
- FilterSets use ``TimeField``/``IdField`` (``portal.filters``), which call the same parsers.

What is accepted: whole numbers in ASCII digits within the column's range (signed 64-bit unless
narrower); comma lists of them (``runs=1,2,3``); ISO-8601 times with the precisions the platform
uses (``2024-10-14T15:22``, ``…:56``, ``…:56.145104``, nanoseconds ``…:45.122692921``; a date alone
means its midnight), with ``Z`` or an offset up to ±23:59, naive times taken as UTC, all returned
in UTC; choices from a list; booleans (true/false/1/0/yes/no/on/off); bounded text and numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from django.http import HttpRequest, QueryDict
from rest_framework.exceptions import ValidationError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 200  # free-text filters (names, codes, search words)
MAX_LIST = 100  # ids in one comma list
BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
T = TypeVar("T")

_INT = re.compile(r"[+-]?[0-9]{1,19}", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
_TIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[T ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<offset>Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)
TIME_EXAMPLE = "2025-01-31T12:00:00Z"


class InvalidParameter(ValueError):
    """A query value that cannot be read; its message says why (the caller adds the name)."""


class InvalidQuery(ValidationError):
    """400 naming the bad query parameters: ``detail`` is ``{name: [why]}``; the shared handler
    (``portal.api.exceptions``) makes its ``error`` sentence name them too."""

    def __init__(self, errors: dict[str, str | list[str]]) -> None:
        self.errors = {name: [why] if isinstance(why, str) else [str(w) for w in why] for name, why in errors.items()}
        super().__init__(self.errors)

    @property
    def sentence(self) -> str:
        if len(self.errors) == 1:
            name, why = next(iter(self.errors.items()))
            return f"invalid query parameter '{name}': {why[0]}"
        return "invalid query parameters: " + ", ".join(f"'{name}'" for name in self.errors)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


# --- the parsers: one raw string in, a typed value out, or InvalidParameter ------------------------------


def parse_int(raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number in ASCII digits within [minimum, maximum] (default: the signed 64-bit range,
    what a database column holds; a larger value would fail the query, or on PostgreSQL the
    rest of the transaction)."""
    low = INT64_MIN if minimum is None else minimum
    high = INT64_MAX if maximum is None else maximum
    text = raw.strip()
    if not _INT.fullmatch(text):
        if re.fullmatch(r"[+-]?[0-9]{20,}", text, re.ASCII):
            raise InvalidParameter(f"must be between {low} and {high}, not a number with {len(text)} digits")
        raise InvalidParameter(f"must be a whole number (digits 0-9), not {_shown(raw)}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidParameter(f"must be between {low} and {high}, not {value}")
    return value


def parse_int_list(raw: str, *, minimum: int | None = 1, maximum: int | None = None,
                   max_items: int = MAX_LIST) -> list[int]:
    """Comma-separated whole numbers (``1,2,3``), each as ``parse_int``; at most ``max_items``."""
    parts = [p for p in raw.split(",") if p.strip()]
    if not parts:
        raise InvalidParameter("give one or more whole numbers separated by commas, e.g. 1,2,3")
    if len(parts) > max_items:
        raise InvalidParameter(f"give at most {max_items} values, not {len(parts)}")
    values = []
    for part in parts:
        try:
            values.append(parse_int(part, minimum=minimum, maximum=maximum))
        except InvalidParameter as exc:
            raise InvalidParameter(f"{_shown(part)}: {exc}") from None
    return values


def parse_number(raw: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite decimal number (``0.5``, ``1e3``) within [minimum, maximum]."""
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        raise InvalidParameter(f"must be a number, not {_shown(raw)}")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidParameter("must be a finite number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if minimum is not None and maximum is not None else (
            f"at least {minimum}" if minimum is not None else f"at most {maximum}")
        raise InvalidParameter(f"must be {bounds}, not {value:g}")
    return value


def parse_time(raw: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (naive values are UTC; a date alone is its midnight).

    Every part is checked (month 13, 25 o'clock, an offset of +99:00 are refused, not a 500) and
    the result is UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts."""
    text = raw.strip()
    match = _TIME.fullmatch(text)
    if match is None:
        hint = ""
        if re.search(r"[0-9] [0-9]{2}(:?[0-9]{2})?$", text, re.ASCII):
            hint = " (a '+' in a URL means a space: write the offset as %2B05:00)"
        raise InvalidParameter(f"must be an ISO-8601 time such as {TIME_EXAMPLE}, not {_shown(raw)}{hint}")
    part = {k: int(v) if v and k not in ("fraction", "offset") else v for k, v in match.groupdict().items()}
    tz = UTC
    if part["offset"] and part["offset"] not in ("Z", "z"):
        digits = part["offset"][1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise InvalidParameter(f"the offset {part['offset']} is impossible: offsets run from -23:59 to +23:59")
        sign = -1 if part["offset"][0] == "-" else 1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    fraction = (part["fraction"] or "").ljust(6, "0")[:6]
    try:
        value = datetime(part["year"], part["month"], part["day"], part["hour"] or 0, part["minute"] or 0,
                         part["second"] or 0, int(fraction or 0), tzinfo=tz)
    except ValueError as exc:  # month 13, day 31 in April, hour 24, year 0…
        raise InvalidParameter(f"{_shown(raw)} is not a real time: {exc}") from None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidParameter(f"{_shown(raw)} is outside the supported time range (years 1 to 9999 in UTC)") from None


def parse_bool(raw: str) -> bool:
    value = BOOLEANS.get(raw.strip().lower())
    if value is None:
        raise InvalidParameter(f"must be true or false, not {_shown(raw)}")
    return value


def parse_choice(raw: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if raw not in allowed:
        raise InvalidParameter(f"must be one of {', '.join(allowed)}; not {_shown(raw)}")
    return raw


def parse_text(raw: str, *, max_length: int = MAX_TEXT) -> str:
    if len(raw) > max_length:
        raise InvalidParameter(f"must be at most {max_length} characters, not {len(raw)}")
    if "\x00" in raw:
        raise InvalidParameter("must not contain a NUL character")
    return raw


# --- reading a request's query string ---------------------------------------------------------------------


class QueryParams:
    """Typed reads of one request's query string.

    API (default): the first bad value raises ``InvalidQuery({name: [why]})`` → 400; a typed
    parameter given empty or twice is bad. Page (``page=True``): bad values are collected in
    ``errors`` and read as absent; empty means absent."""

    def __init__(self, request: HttpRequest | QueryDict | Any, *, page: bool = False) -> None:
        if isinstance(request, QueryDict):  # a view passing its ``request.query_params`` along
            self.query, self.request = request, None
        else:
            query = getattr(request, "query_params", None)
            self.query = query if query is not None else request.GET
            self.request = request
        self.page = page
        self.errors: dict[str, str] = {}

    def _read(self, name: str, default: T, parse: Callable[[str], T], *, text: bool = False) -> T:
        values = self.query.getlist(name)
        if not values:
            return default
        if len(values) > 1 and not self.page:
            return self._fail(name, "give this parameter once", default)
        raw = values[-1]
        if not raw.strip() and not text:
            if self.page:
                return default
            return self._fail(name, "is empty: give a value or leave the parameter out", default)
        try:
            return parse(raw)
        except InvalidParameter as exc:
            return self._fail(name, str(exc), default)

    def _fail(self, name: str, message: str, default: T) -> T:
        if not self.page:
            raise InvalidQuery({name: message})
        self.errors[name] = message
        return default

    def int(self, name: str, *, default: int | None = None, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
        return self._read(name, default, lambda raw: parse_int(raw, minimum=minimum, maximum=maximum))

    def id(self, name: str, *, default: int | None = None) -> int | None:
        """A row id: a whole number from 1 to 2^63 - 1."""
        return self.int(name, default=default, minimum=1)

    def ints(self, name: str, *, default: list[int] | None = None, minimum: int | None = 1,
             maximum: int | None = None, max_items: int = MAX_LIST) -> list[int] | None:
        return self._read(name, default, lambda raw: parse_int_list(raw, minimum=minimum, maximum=maximum,
                                                                    max_items=max_items))

    def number(self, name: str, *, default: float | None = None, minimum: float | None = None,
               maximum: float | None = None) -> float | None:
        return self._read(name, default, lambda raw: parse_number(raw, minimum=minimum, maximum=maximum))

    def time(self, name: str, *, default: datetime | None = None) -> datetime | None:
        return self._read(name, default, parse_time)

    def bool(self, name: str, *, default: bool | None = None) -> bool | None:
        return self._read(name, default, parse_bool)

    def choice(self, name: str, choices: Iterable[str], *, default: str | None = None) -> str | None:
        allowed = list(choices)
        return self._read(name, default, lambda raw: parse_choice(raw, allowed))

    def text(self, name: str, *, default: str | None = None, max_length: int = MAX_TEXT) -> str | None:
        """Free text: empty is allowed (and read as ``default``), too long is not."""
        value = self._read(name, default, lambda raw: parse_text(raw, max_length=max_length), text=True)
        return value if value != "" else default

    def fail(self, name: str, message: str) -> None:
        """A rule across parameters (``since`` after ``until``): raised (API) or recorded (page)."""
        self._fail(name, message, None)

    def report(self) -> dict[str, str]:
        """Pages: show each bad parameter as a message (the list is shown without that filter)."""
        from django.contrib import messages

        for name, message in self.errors.items():
            messages.error(self.request, f"Filter '{name}' was ignored: {message}.")
        return self.errors


# --- shortcuts for API views (one parameter each) ---------------------------------------------------------


def query_int(request, name: str, *, default: int | None = None, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    """``?name=`` as an int within [minimum, maximum] (default: the signed 64-bit range)."""
    return QueryParams(request).int(name, default=default, minimum=minimum, maximum=maximum)


def query_id(request, name: str) -> int | None:
    """``?name=`` as a row id (1 to 2^63 - 1)."""
    return QueryParams(request).id(name)


def query_ints(request, name: str, *, minimum: int | None = 1, max_items: int = MAX_LIST) -> list[int] | None:
    """``?name=1,2,3`` as a list of ints."""
    return QueryParams(request).ints(name, minimum=minimum, max_items=max_items)


def query_float(request, name: str, *, default: float | None = None, minimum: float | None = None,
                maximum: float | None = None) -> float | None:
    """``?name=`` as a finite float within [minimum, maximum]."""
    return QueryParams(request).number(name, default=default, minimum=minimum, maximum=maximum)


def query_datetime(request, name: str, *, default: datetime | None = None) -> datetime | None:
    """``?name=`` as an aware UTC datetime (naive values are taken as UTC)."""
    return QueryParams(request).time(name, default=default)


def query_bool(request, name: str, *, default: bool | None = None) -> bool | None:
    return QueryParams(request).bool(name, default=default)


def query_choice(request, name: str, choices: Iterable[str], *, default: str | None = None) -> str | None:
    return QueryParams(request).choice(name, choices, default=default)


def query_text(request, name: str, *, default: str | None = None, max_length: int = MAX_TEXT) -> str | None:
    return QueryParams(request).text(name, default=default, max_length=max_length)


# --- documenting them (drf-spectacular) -------------------------------------------------------------------


def id_param(name: str, description: str = "") -> Any:
    """An ``OpenApiParameter`` for a row-id filter: an integer from 1 to 2^63 - 1."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(name, {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                            description=description)


def int_param(name: str, minimum: int, maximum: int, description: str = "") -> Any:
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(name, {"type": "integer", "minimum": minimum, "maximum": maximum},
                            description=description)


def ids_param(name: str, description: str = "") -> Any:
    """A comma list of row ids (``runs=1,2,3``)."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(name, {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                                   "minItems": 1, "maxItems": MAX_LIST},
                            style="form", explode=False, description=description)


def time_param(name: str, description: str = "") -> Any:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(name, OpenApiTypes.DATETIME, description=description or
                            f"ISO-8601, e.g. {TIME_EXAMPLE}; without an offset, UTC.")


def text_param(name: str, description: str = "", max_length: int = MAX_TEXT) -> Any:
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(name, {"type": "string", "maxLength": max_length}, description=description)
