"""Parser and formatters for the platform's event-stream lines (see docs/ingest.md).

Three line types, exactly as the platform writes them::

    <time>,<userid>,recommendation request <server>, status <code>, result: <recommendations>, <n> ms
    <time>,<userid>,GET /data/m/<movieid>/<minute>.mpg
    <time>,<userid>,GET /rate/<movieid>=<rating>

``parse_line`` never raises: it returns an event or a ``Rejected`` with a human reason and a
stable short ``code`` for counting. Times are timezone-aware UTC datetimes; nanoseconds are
truncated to microseconds and the seconds may be absent (``2024-10-14T15:22``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "MAX_LINE_LENGTH",
    "RatingEvent",
    "RecommendationEvent",
    "Rejected",
    "WatchEvent",
    "format_event",
    "format_rating",
    "format_recommendation",
    "format_time",
    "format_watch",
    "parse_line",
    "parse_time",
]

MAX_LINE_LENGTH = 16_384
MAX_USER_ID = 2**63 - 1
MAX_MINUTE = 100_000
MAX_RESPONSE_MS = 2**31 - 1
RATING_MIN, RATING_MAX = 1, 5

_WATCH_PREFIX = "GET /data/m/"
_RATE_PREFIX = "GET /rate/"
_RECO_PREFIX = "recommendation request "

# YYYY-MM-DDTHH:MM[:SS[.f{1,9}]] in ASCII digits only.
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?", re.ASCII)
# A slug: anything printable without whitespace, ',', '/' or '='.
_SLUG = r"[^\s,/=\x00-\x1f\x7f\ud800-\udfff]{1,255}"
_SLUG_RE = re.compile(_SLUG)
_SLUG_LIST_RE = re.compile(f"{_SLUG}(?:, {_SLUG})*")
_DIGITS_RE = re.compile(r"\d{1,19}", re.ASCII)
_MS_RE = re.compile(r"(\d{1,10}) ?ms", re.ASCII)


@dataclass(frozen=True, slots=True)
class RatingEvent:
    """``GET /rate/<movie>=<rating>``: a viewer rated a movie 1–5."""

    time: datetime
    user_id: int
    movie_id: str
    rating: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """``GET /data/m/<movie>/<minute>.mpg``: one minute of a movie streamed to a viewer."""

    time: datetime
    user_id: int
    movie_id: str
    minute: int


@dataclass(frozen=True, slots=True)
class RecommendationEvent:
    """The platform's client-side record of one recommendation call.

    ``status`` 200 carries ``movie_ids``; any other status (0 = timeout or refused) carries the
    error text in ``error`` and no movie ids.
    """

    time: datetime
    user_id: int
    server: str
    status: int
    movie_ids: tuple[str, ...]
    response_ms: int
    error: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that is not a valid event: a human ``reason`` and a stable short ``code``."""

    reason: str
    code: str


Event = RatingEvent | WatchEvent | RecommendationEvent


def _show(text: str, limit: int = 40) -> str:
    """Quote a fragment of bad input for a reason, shortened and with control characters escaped."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return "'" + text.encode("unicode_escape", "backslashreplace").decode("ascii", "replace").replace("'", "\\'") + "'"


def parse_time(text: str) -> datetime | None:
    """Parse the platform's ISO-8601 time (UTC, no offset); ``None`` when it is not one."""
    if _TIME_RE.fullmatch(text) is None:
        return None
    if len(text) > 26:  # nanoseconds: keep microseconds
        text = text[:26]
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:
        return None


def parse_line(line: str) -> RatingEvent | WatchEvent | RecommendationEvent | Rejected:
    """Parse one line of the event stream; never raises."""
    try:
        return _parse(line)
    except Exception as exc:  # a guard: every known case is handled in _parse
        return Rejected(f"unparseable line ({type(exc).__name__})", "unparseable")


def _parse(line: str) -> RatingEvent | WatchEvent | RecommendationEvent | Rejected:
    line = line.strip()
    if not line:
        return Rejected("empty line", "empty")
    if len(line) > MAX_LINE_LENGTH:
        return Rejected(f"line of {len(line)} characters exceeds {MAX_LINE_LENGTH}", "too_long")
    parts = line.split(",", 2)
    if len(parts) < 3:
        return Rejected("missing fields: expected <time>,<userid>,<request>", "missing_fields")
    time_text, user_text, request = parts
    time = parse_time(time_text)
    if time is None:
        return Rejected(f"bad timestamp {_show(time_text)}", "bad_timestamp")
    if _DIGITS_RE.fullmatch(user_text) is None or int(user_text) > MAX_USER_ID:
        return Rejected(f"bad user id {_show(user_text)}", "bad_user_id")
    user_id = int(user_text)

    if request.startswith(_WATCH_PREFIX):
        movie_id, slash, tail = request[len(_WATCH_PREFIX) :].rpartition("/")
        if not slash or not tail.endswith(".mpg"):
            return Rejected(f"bad watch request {_show(request)}", "bad_watch_request")
        if _SLUG_RE.fullmatch(movie_id) is None:
            return Rejected(f"bad movie id {_show(movie_id)}", "bad_movie_id")
        minute_text = tail[:-4]
        if _DIGITS_RE.fullmatch(minute_text) is None or int(minute_text) > MAX_MINUTE:
            return Rejected(f"bad minute {_show(minute_text)}", "bad_minute")
        return WatchEvent(time, user_id, movie_id, int(minute_text))

    if request.startswith(_RATE_PREFIX):
        movie_id, eq, rating_text = request[len(_RATE_PREFIX) :].rpartition("=")
        if not eq:
            return Rejected(f"bad rate request {_show(request)}: no '='", "bad_rate_request")
        if _SLUG_RE.fullmatch(movie_id) is None:
            return Rejected(f"bad movie id {_show(movie_id)}", "bad_movie_id")
        if _DIGITS_RE.fullmatch(rating_text) is None:
            return Rejected(f"bad rating {_show(rating_text)}", "bad_rating")
        rating = int(rating_text)
        if not RATING_MIN <= rating <= RATING_MAX:
            return Rejected(f"rating {rating} outside {RATING_MIN}–{RATING_MAX}", "rating_out_of_range")
        return RatingEvent(time, user_id, movie_id, rating)

    if request.startswith(_RECO_PREFIX):
        return _parse_recommendation(time, user_id, request[len(_RECO_PREFIX) :])

    return Rejected(f"unknown line type {_show(request, 30)}", "unknown_type")


def _parse_recommendation(time: datetime, user_id: int, rest: str) -> RecommendationEvent | Rejected:
    # <server>, status <code>, result: <body>, <n> ms   — the body may itself hold ',' and ':'.
    server, sep, rest = rest.partition(", status ")
    if not sep:
        return Rejected("truncated recommendation line: no status", "truncated_recommendation")
    if not server or len(server) > 255 or not server.isprintable():
        return Rejected(f"bad server {_show(server)}", "bad_server")
    status_text, sep, rest = rest.partition(", result:")
    if not sep:
        return Rejected("truncated recommendation line: no result", "truncated_recommendation")
    if _DIGITS_RE.fullmatch(status_text) is None or int(status_text) > 999:
        return Rejected(f"bad status {_show(status_text)}", "bad_status")
    status = int(status_text)
    if rest.startswith(" "):
        rest = rest[1:]
    body, comma, tail = rest.rpartition(",")
    tail = tail.strip()
    if not comma:
        return Rejected("truncated recommendation line: no response time", "truncated_recommendation")
    match = _MS_RE.fullmatch(tail)
    if match is None:
        if tail.endswith("ms"):
            return Rejected(f"bad response time {_show(tail)}", "bad_response_time")
        return Rejected("truncated recommendation line: last field is not '<n> ms'", "truncated_recommendation")
    response_ms = int(match.group(1))
    if response_ms > MAX_RESPONSE_MS:
        return Rejected(f"bad response time {_show(tail)}", "bad_response_time")
    if status != 200:
        return RecommendationEvent(time, user_id, server, status, (), response_ms, body)
    if not body:
        return RecommendationEvent(time, user_id, server, status, (), response_ms, "")
    movie_ids = tuple(body.split(", "))
    if _SLUG_LIST_RE.fullmatch(body) is None:
        bad = next((m for m in movie_ids if _SLUG_RE.fullmatch(m) is None), body)
        return Rejected(f"bad movie id {_show(bad)} in recommendation result", "bad_movie_id")
    return RecommendationEvent(time, user_id, server, status, movie_ids, response_ms, "")


def format_time(time: datetime) -> str:
    """The platform's time text: microseconds when present, seconds dropped when zero."""
    if time.tzinfo is not None:
        time = time.astimezone(UTC)
    text = f"{time.year:04d}-{time.month:02d}-{time.day:02d}T{time.hour:02d}:{time.minute:02d}"
    if time.microsecond:
        return f"{text}:{time.second:02d}.{time.microsecond:06d}"
    if time.second:
        return f"{text}:{time.second:02d}"
    return text


def format_rating(ev: RatingEvent) -> str:
    """``<time>,<userid>,GET /rate/<movieid>=<rating>``."""
    return f"{format_time(ev.time)},{ev.user_id},GET /rate/{ev.movie_id}={ev.rating}"


def format_watch(ev: WatchEvent) -> str:
    """``<time>,<userid>,GET /data/m/<movieid>/<minute>.mpg``."""
    return f"{format_time(ev.time)},{ev.user_id},GET /data/m/{ev.movie_id}/{ev.minute}.mpg"


def format_recommendation(ev: RecommendationEvent) -> str:
    """``<time>,<userid>,recommendation request <server>, status <code>, result: <body>, <n> ms``."""
    body = ", ".join(ev.movie_ids) if ev.status == 200 else ev.error
    return (
        f"{format_time(ev.time)},{ev.user_id},recommendation request {ev.server}, "
        f"status {ev.status}, result: {body}, {ev.response_ms} ms"
    )


def format_event(ev: Event) -> str:
    """Format any event as the platform's line."""
    if isinstance(ev, WatchEvent):
        return format_watch(ev)
    if isinstance(ev, RatingEvent):
        return format_rating(ev)
    if isinstance(ev, RecommendationEvent):
        return format_recommendation(ev)
    raise TypeError(f"not an event: {ev!r}")
