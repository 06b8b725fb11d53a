"""The platform's event lines, written by the ingestion parser's own formatters (one format, one place).

The platform's times vary in precision; ``stamp`` turns a simulated time into a line time with
whole seconds (the ``:SS`` dropped at zero), microseconds, or nanoseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from recommender.ingest.parser import (
    RatingEvent,
    RecommendationEvent,
    WatchEvent,
    format_rating,
    format_recommendation,
    format_watch,
)

_TIME_WITH_MICROS = len("2022-02-08T18:06:56.145104")


class Stamp:
    """A line time: a datetime, plus three extra digits of nanoseconds when the platform sends them."""

    __slots__ = ("time", "nanos")

    def __init__(self, t: float, precision: str, nanos: int = 0) -> None:
        value = datetime.fromtimestamp(t, tz=UTC)
        if precision == "seconds":
            value = value.replace(microsecond=0)
        self.time = value
        self.nanos = nanos if precision == "nano" and value.microsecond else None

    def apply(self, line: str) -> str:
        if self.nanos is None:
            return line
        return f"{line[:_TIME_WITH_MICROS]}{self.nanos:03d}{line[_TIME_WITH_MICROS:]}"


def watch_line(stamp: Stamp, viewer_id: int, movie_id: str, minute: int) -> str:
    return stamp.apply(format_watch(WatchEvent(stamp.time, viewer_id, movie_id, minute)))


def rate_line(stamp: Stamp, viewer_id: int, movie_id: str, rating: int) -> str:
    return stamp.apply(format_rating(RatingEvent(stamp.time, viewer_id, movie_id, rating)))


def recommendation_line(stamp: Stamp, viewer_id: int, server: str, status: int, result: list[str] | str,
                        response_ms: int) -> str:
    """Status 200: ``result`` is the movie ids; status 0: ``result`` is the error text."""
    if status == 200:
        event = RecommendationEvent(stamp.time, viewer_id, server, 200, tuple(result), response_ms, "")
    else:
        event = RecommendationEvent(stamp.time, viewer_id, server, status, (), response_ms, str(result))
    return stamp.apply(format_recommendation(event))
