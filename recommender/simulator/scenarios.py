"""Scenarios the simulator can play from a given simulated time.

Each takes ``at``: a datetime, or an offset from the simulation's start (``timedelta``); the command
line writes them as ``kind:at=+2d,key=value,...`` (offsets ``+30m``, ``+6h``, ``+2d``, or an ISO time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta


@dataclass
class Drift:
    """A shift from ``at`` on.

    ``kind="taste"``: viewers in ``group`` come to like ``genre`` more: their taste vectors move by
    ``strength`` along the genre's direction (ratings of that genre rise by about ``strength`` stars
    for a typical movie of it, and they watch more of it).
    ``kind="audience"``: viewers in ``group`` visit ``strength`` times as often (the audience mix shifts).
    """

    at: datetime | timedelta
    kind: str = "taste"
    group: str = "all"
    genre: str = "Horror"
    strength: float = 1.5


@dataclass
class PlantedBias:
    """Worse service for one group from ``at`` on (to show that fairness monitors and audits fire).

    ``kind="ratings"``: viewers in ``group`` rate movies that were in their latest recommendation list
    ``strength`` stars lower than their taste says (clipped to 1–5): the recommendations serve them worse.
    ``kind="timeouts"``: each recommendation request of a viewer in ``group`` is recorded, with
    probability ``strength``, as a timeout (status 0, ``Read timed out`` error, response time = the
    client timeout) whatever the server answered, and the viewer sees no recommendations.
    """

    at: datetime | timedelta
    group: str = "gender:F"
    kind: str = "ratings"
    strength: float = 1.0


@dataclass
class Shilling:
    """A shilling attack at ``at``: ``accounts`` new viewer ids each rate ``movie`` ``rating`` stars.

    Each account also rates ``filler`` popular movies with their usual rating (to look ordinary);
    the lines are spread over ``window_minutes``. ``movie`` empty = a deterministic unpopular movie.
    The accounts' ids start at ``id_start`` (default: just past the world's viewer ids + 1,000,000).
    """

    at: datetime | timedelta
    accounts: int = 50
    movie: str = ""
    rating: int = 5
    filler: int = 2
    window_minutes: int = 30
    id_start: int = 0


@dataclass
class Scraping:
    """A scraping client from ``at``: one client calls ``/recommend/<id>`` for ``requests`` consecutive
    viewer ids from ``start_id`` (default: the world's first id) at ``rate`` per second.

    It is not the platform, so its calls are not in the event stream: it shows in Usher's own
    request log (User-Agent ``usher-sim-scraper/1.0``). Live mode only (in backfill there is no server).
    """

    at: datetime | timedelta
    requests: int = 500
    rate: float = 20.0
    start_id: int = 0


SCENARIOS = {"drift": Drift, "bias": PlantedBias, "shilling": Shilling, "scraping": Scraping}
_OFFSET = re.compile(r"^\+?(\d+(?:\.\d+)?)([smhd])$")


def parse_at(text: str) -> datetime | timedelta:
    """``+2d`` / ``+6h`` / ``+30m`` / ``+10s`` → an offset; anything else must be an ISO-8601 time."""
    match = _OFFSET.match(text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return timedelta(**{unit: float(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'at={text}' is neither an offset like +2d/+6h/+30m nor an ISO-8601 time")
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def parse_scenario(spec: str):
    """``drift:at=+3d,kind=taste,genre=Horror,strength=2`` → ``Drift(...)``; errors name the bad part."""
    name, _, rest = spec.partition(":")
    cls = SCENARIOS.get(name.strip())
    if cls is None:
        raise ValueError(f"unknown scenario {name!r}: use one of {', '.join(SCENARIOS)}")
    types = {f.name: f.type for f in fields(cls)}
    values: dict = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in types:
            raise ValueError(f"{name}: unknown setting {part!r} (settings: {', '.join(types)})")
        if key == "at":
            values[key] = parse_at(value)
        elif types[key] in ("int", int):
            values[key] = int(value)
        elif types[key] in ("float", float):
            values[key] = float(value)
        else:
            values[key] = value
    if "at" not in values:
        raise ValueError(f"{name}: needs at=… (e.g. at=+1d)")
    return cls(**values)
