"""The platform's event lines, written exactly as the platform writes them (see DESIGN.md)."""

from __future__ import annotations

from datetime import datetime


def format_time(value: datetime, precision: str = "seconds", nanos: int = 0) -> str:
    """``seconds`` (``:SS`` dropped when zero, as the platform does), ``micro`` or ``nano``."""
    if precision == "micro":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if precision == "nano":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos % 1000:03d}"
    if value.second == 0:
        return value.strftime("%Y-%m-%dT%H:%M")
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def watch_line(time: str, viewer_id: int, movie_id: str, minute: int) -> str:
    return f"{time},{viewer_id},GET /data/m/{movie_id}/{minute}.mpg"


def rate_line(time: str, viewer_id: int, movie_id: str, rating: int) -> str:
    return f"{time},{viewer_id},GET /rate/{movie_id}={rating}"


def recommendation_line(time: str, viewer_id: int, server: str, status: int, result: list[str] | str,
                        response_ms: int) -> str:
    """Status 200: ``result`` is the movie ids; status 0: ``result`` is the error text."""
    text = ", ".join(result) if isinstance(result, list) else result
    return f"{time},{viewer_id},recommendation request {server}, status {status}, result: {text}, {response_ms} ms"
