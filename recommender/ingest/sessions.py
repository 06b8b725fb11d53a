"""Watch sessions: a batch's watch lines folded into the stored sessions, and the minute-span codec.

The watch lines of one viewer and movie form one session while consecutive lines, by event time,
are at most ``WATCH_SESSION_GAP_MINUTES`` apart (single linkage), whatever the arrival order or
batching. A session keeps its distinct minutes as spans (``"0-44,46"``). See docs/ingest.md,
"Watch-session rule".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import connection

from recommender.ingest import bulk
from recommender.ingest.parser import WatchEvent
from recommender.models import WatchSession

__all__ = [
    "Span",
    "minutes_to_ranges",
    "normalize_spans",
    "ranges_to_minutes",
    "spans_to_text",
    "text_to_spans",
    "watch_sessions_merge",
]

# Key of the PostgreSQL advisory lock that serialises watch-session merging across consumers.
_WATCH_LOCK_KEY = 0x55534845_52570001 - 2**63
# The columns a merge writes, in the order of the value tuples below.
_WRITTEN = (
    "started_at",
    "last_seen_at",
    "first_minute",
    "last_minute",
    "highest_minute",
    "minutes_watched",
    "minutes_seen",
)

Span = tuple[int, int]


# --- the span codec -------------------------------------------------------------------------------
def normalize_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, merged, non-adjacent inclusive spans: ``[(3, 4), (0, 1), (2, 2)]`` → ``[(0, 4)]``."""
    out: list[Span] = []
    for low, high in sorted(spans):
        if out and low <= out[-1][1] + 1:
            if high > out[-1][1]:
                out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return out


def spans_to_text(spans: Iterable[Span]) -> str:
    """``[(0, 2), (5, 5)]`` → ``'0-2,5'`` (spans already normalised)."""
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in spans)


def text_to_spans(text: str) -> list[Span]:
    """``'0-2,5'`` → ``[(0, 2), (5, 5)]``."""
    if "," not in text:  # the common case: one unbroken run of minutes
        if not text:
            return []
        low, _, high = text.partition("-")
        return [(int(low), int(high or low))]
    spans: list[Span] = []
    for part in text.split(","):
        if part:
            low, _, high = part.partition("-")
            spans.append((int(low), int(high or low)))
    return spans


def minutes_to_ranges(minutes: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` → ``'0-2,5'``."""
    return spans_to_text(normalize_spans((m, m) for m in minutes))


def ranges_to_minutes(text: str) -> set[int]:
    """``'0-2,5'`` → ``{0, 1, 2, 5}``."""
    return {m for low, high in text_to_spans(text) for m in range(low, high + 1)}


# --- the merge ------------------------------------------------------------------------------------
def watch_sessions_merge(cursor, watches: list[WatchEvent]) -> None:
    """Fold watch lines into sessions: single-linkage by time with the configured gap (see the model).

    Runs inside the batch's transaction; on PostgreSQL it takes an advisory lock held until commit,
    so concurrent consumers never build two sessions for the same lines.
    """
    gap = timedelta(minutes=settings.RECOMMENDER.get("WATCH_SESSION_GAP_MINUTES", 30))
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_WATCH_LOCK_KEY])
    by_pair: dict[tuple[int, str], list[WatchEvent]] = {}
    for ev in watches:
        by_pair.setdefault((ev.user_id, ev.movie_id), []).append(ev)
    low = min(ev.time for ev in watches) - gap
    high = max(ev.time for ev in watches) + gap
    existing = _sessions_near(cursor, by_pair, low=low, high=high)

    inserts: list[tuple] = []
    updates: list[tuple] = []
    deletes: list[int] = []
    adapt_time = connection.ops.adapt_datetimefield_value
    for pair, events in by_pair.items():
        for start, first_m, end, last_m, highest, spans, ids, changed in _clusters(events, existing.get(pair, ()), gap):
            if not changed:
                continue
            spans = normalize_spans(spans)
            values = (
                adapt_time(start),
                adapt_time(end),
                first_m,
                last_m,
                highest,
                sum(high - low + 1 for low, high in spans),
                spans_to_text(spans),
            )
            if ids:
                keep, *drop = sorted(ids)
                updates.append((*values, keep))
                deletes.extend(drop)
            else:
                inserts.append((pair[0], pair[1], *values))
    _sessions_write(cursor, inserts=inserts, updates=updates, deletes=deletes)


def _aware(value: Any) -> datetime:
    """A datetime read by raw SQL as an aware UTC datetime (SQLite hands back text or naive values)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sessions_near(
    cursor, by_pair: dict[tuple[int, str], list[WatchEvent]], *, low: datetime, high: datetime
) -> dict[tuple[int, str], list[tuple]]:
    """The stored sessions of the batch's (viewer, movie) pairs that overlap ``low``…``high``, as merge items."""
    viewer_ids = sorted({pair[0] for pair in by_pair})
    adapt_time = connection.ops.adapt_datetimefield_value
    columns = ", ".join(
        bulk.column(WatchSession, n)
        for n in (
            "id",
            "viewer",
            "movie",
            "started_at",
            "last_seen_at",
            "first_minute",
            "last_minute",
            "highest_minute",
            "minutes_seen",
        )
    )
    head = (
        f"SELECT {columns} FROM {bulk.table(WatchSession)} WHERE {bulk.column(WatchSession, 'last_seen_at')} >= %s "
        f"AND {bulk.column(WatchSession, 'started_at')} <= %s AND {bulk.column(WatchSession, 'viewer')}"
    )
    bounds = [adapt_time(low), adapt_time(high)]
    if connection.vendor == "postgresql":
        cursor.execute(f"{head} = ANY(%s)", [*bounds, viewer_ids])
        rows = cursor.fetchall()
    else:
        rows = []
        for start in range(0, len(viewer_ids), 900):
            chunk = viewer_ids[start : start + 900]
            cursor.execute(f"{head} IN ({', '.join(['%s'] * len(chunk))})", [*bounds, *chunk])
            rows.extend(cursor.fetchall())
    existing: dict[tuple[int, str], list[tuple]] = {}
    for sid, viewer_id, movie_id, started_at, last_seen, first_m, last_m, highest, seen in rows:
        if (viewer_id, movie_id) in by_pair:
            existing.setdefault((viewer_id, movie_id), []).append(
                (_aware(started_at), first_m, _aware(last_seen), last_m, highest, text_to_spans(seen), [sid])
            )
    return existing


_by_start = itemgetter(0, 1)


def _clusters(events: list[WatchEvent], stored: Iterable[tuple], gap: timedelta) -> list[list]:
    """One pair's new lines and stored sessions, clustered by time with ``gap``.

    Each cluster: [start, first minute, end, last minute, highest, spans, session ids, changed];
    changed is False for a stored session that no new line touched.
    """
    # Items: (start, first minute, end, last minute, highest, spans, session ids); a new line has
    # spans None. Sorted by time then minute, so on a tie the lowest minute opens a session
    # and the highest closes it.
    items = [(ev.time, ev.minute, ev.time, ev.minute, ev.minute, None, None) for ev in events]
    items += stored
    items.sort(key=_by_start)
    clusters: list[list] = []
    current: list | None = None
    for start, first_m, end, last_m, highest, spans, ids in items:
        if current is not None and start - current[2] <= gap:
            if end > current[2] or (end == current[2] and last_m > current[3]):
                current[2], current[3] = end, last_m
            if highest > current[4]:
                current[4] = highest
            if spans is None:
                current[5].append((first_m, first_m))
                current[7] = True
            else:
                current[5] += spans
                current[6] += ids
        else:
            current = [
                start,
                first_m,
                end,
                last_m,
                highest,
                [(first_m, first_m)] if spans is None else list(spans),
                [] if ids is None else list(ids),
                spans is None,
            ]
            clusters.append(current)
    return clusters


def _sessions_write(cursor, *, inserts: list[tuple], updates: list[tuple], deletes: list[int]) -> None:
    """Delete the sessions merged away, update the kept ones, insert the new ones."""
    if deletes:
        WatchSession.objects.filter(id__in=deletes).delete()
    if updates and connection.vendor == "postgresql":
        # COPY into a temporary table and one UPDATE … FROM it: far cheaper than bound parameters.
        bulk.copy_to_temp(
            cursor,
            "usher_ingest_sessions",
            "started_at timestamptz, last_seen_at timestamptz, first_minute integer, last_minute integer, "
            "highest_minute integer, minutes_watched integer, minutes_seen text, id bigint",
            updates,
        )
        sets = ", ".join(f"{bulk.column(WatchSession, n)} = v.{n}" for n in _WRITTEN)
        cursor.execute(
            f"UPDATE {bulk.table(WatchSession)} AS t SET {sets} FROM usher_ingest_sessions AS v "
            f"WHERE t.{bulk.column(WatchSession, 'id')} = v.id"
        )
    elif updates:
        sets = ", ".join(f"{bulk.column(WatchSession, n)} = %s" for n in _WRITTEN)
        cursor.executemany(
            f"UPDATE {bulk.table(WatchSession)} SET {sets} WHERE {bulk.column(WatchSession, 'id')} = %s", updates
        )
    if inserts:
        cols = ", ".join(bulk.column(WatchSession, n) for n in ("viewer", "movie", *_WRITTEN))
        bulk.insert(cursor, f"INSERT INTO {bulk.table(WatchSession)} ({cols})", 9, inserts)
