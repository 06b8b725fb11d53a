"""Ingestion of event-stream lines: parse, de-duplicate, store or quarantine, one transaction per batch.

Every source (file, stdin, Redis Streams, Kafka, HTTP) ends here. A batch is all or nothing: the
valid lines are stored, the invalid ones quarantined with their reason and position, the
de-duplication ledger and the source's status row are updated, in one transaction. A line already
in the ledger (delivered twice, by any source) is counted as a duplicate and changes nothing, so
at-least-once delivery is safe. See docs/ingest.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, reset_queries, transaction
from django.db.models import F, Q
from django.utils import timezone

from recommender.ingest.parser import RatingEvent, RecommendationEvent, Rejected, WatchEvent, parse_line
from recommender.models import (
    IngestedLine,
    IngestSource,
    Movie,
    QuarantinedLine,
    Rating,
    RecommendationRequest,
    Viewer,
    WatchSession,
)
from recommender.models import RatingEvent as RatingEventRow

__all__ = [
    "IngestSummary",
    "KnownIds",
    "ingest_batch",
    "ingest_ledger_prune",
    "ingest_lines",
    "ingest_run_record",
    "ingest_source_record_error",
    "line_digest",
]

STORED_KINDS = ("rating", "watch", "recommendation")
_LEDGER_KIND = {RatingEvent: "r", WatchEvent: "w", RecommendationEvent: "q", Rejected: "x"}
_KIND_NAME = {RatingEvent: "rating", WatchEvent: "watch", RecommendationEvent: "recommendation"}
MAX_RAW_LENGTH = 16_384
_RETRIES = 3
# Key of the PostgreSQL advisory lock that serialises watch-session merging across consumers.
_WATCH_LOCK_KEY = 0x55534845_52570001 - 2**63


def _empty_stored() -> dict[str, int]:
    return dict.fromkeys(STORED_KINDS, 0)


@dataclass
class IngestSummary:
    """What happened to a run of lines: read, stored by type, duplicates, quarantined by reason code."""

    lines_read: int = 0
    stored: dict[str, int] = field(default_factory=_empty_stored)
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    last_position: str = ""
    last_event_time: datetime | None = None
    seconds: float = 0.0

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def add(self, other: IngestSummary) -> None:
        """Fold another (batch) summary into this one."""
        self.lines_read += other.lines_read
        for key, value in other.stored.items():
            self.stored[key] = self.stored.get(key, 0) + value
        self.duplicates += other.duplicates
        for key, value in other.quarantined.items():
            self.quarantined[key] = self.quarantined.get(key, 0) + value
        if other.last_position:
            self.last_position = other.last_position
        if other.last_event_time and (self.last_event_time is None or other.last_event_time > self.last_event_time):
            self.last_event_time = other.last_event_time
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "stored": dict(self.stored),
            "stored_total": self.stored_total,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantined_total": self.quarantined_total,
        }


class KnownIds:
    """Viewer and movie ids known to exist, so stubs are not looked up on every batch.

    Bounded (cleared when full) and filled only after a batch commits; one per ingestion run.
    """

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self.viewers: set[int] = set()
        self.movies: set[str] = set()

    def remember(self, viewers: Iterable[int], movies: Iterable[str]) -> None:
        if len(self.viewers) > self.limit:
            self.viewers.clear()
        if len(self.movies) > self.limit:
            self.movies.clear()
        self.viewers.update(viewers)
        self.movies.update(movies)


def line_digest(line: str) -> str:
    """The ledger key of a line: blake2b-128 (32 hex digits, stored as a UUID) of its stripped UTF-8 text."""
    return hashlib.blake2b(line.strip().encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _clean_text(text: str, limit: int | None = None) -> str:
    """Text that every database stores: no NUL, no lone surrogates, at most ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _batches(iterable: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def ingest_lines(
    *,
    lines: Iterable[str],
    source: str,
    kind: str = "file",
    batch_size: int = 5000,
    start_position: int = 0,
    on_batch: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Ingest lines in batches of ``batch_size``, one transaction each; returns the total summary.

    Positions are line numbers: the first line is ``start_position + 1``. ``on_batch`` is called
    after each batch commits, with that batch's summary (not the running total). ``lines`` is
    read in a helper thread one batch ahead, so it must not need the database (files, stdin,
    lists and generators of strings are fine).
    """
    total = IngestSummary()
    known = KnownIds()
    batches = _batches(lines, max(1, batch_size))
    position = start_position

    def read_next() -> tuple[list[str], list[str], _Prepared] | None:
        # Runs in a helper thread: reading and parsing the next batch overlaps with the database
        # work on the current one (psycopg2 releases the GIL while it waits). No database access here.
        nonlocal position
        batch = next(batches, None)
        if batch is None:
            return None
        positions = [str(n) for n in range(position + 1, position + len(batch) + 1)]
        position += len(batch)
        return batch, positions, _prepare(batch, positions)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as reader:
        pending = reader.submit(read_next)
        while (item := pending.result()) is not None:
            pending = reader.submit(read_next)  # at most two batches in memory
            batch, positions, prepared = item
            try:
                summary = ingest_batch(
                    lines=batch, positions=positions, source=source, kind=kind, known=known, prepared=prepared
                )
            except BaseException:
                pending.cancel()
                raise
            total.add(summary)
            if on_batch is not None:
                on_batch(summary)
    return total


def ingest_batch(
    *,
    lines: Sequence[str],
    positions: Sequence[str],
    source: str,
    kind: str,
    lag: int | None = None,
    known: KnownIds | None = None,
    prepared: _Prepared | None = None,
) -> IngestSummary:
    """Ingest one batch in one transaction (retried on a deadlock); the source row records failures."""
    started = _time.perf_counter()
    known = known if known is not None else KnownIds()
    parsed = prepared if prepared is not None else _prepare(lines, positions)
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction.atomic():
                summary, viewers, movies = _store(
                    parsed,
                    source=source,
                    kind=kind,
                    lag=lag,
                    known=known,
                    started=started,
                    lines_read=len(lines),
                    last_position=positions[-1] if positions else "",
                )
            break
        except OperationalError as exc:
            if attempt < _RETRIES and _is_retryable(exc):
                _time.sleep(0.05 * attempt)
                continue
            ingest_source_record_error(name=source, kind=kind, error=f"batch at {positions[0]!s}: {exc}")
            raise
        except Exception as exc:
            ingest_source_record_error(name=source, kind=kind, error=f"batch at {positions[0]!s}: {exc}")
            raise
    known.remember(viewers, movies)
    if settings.DEBUG:
        # With DEBUG on Django keeps every query (big multi-row statements included): forget them, or
        # a long-running consumer's memory would grow with every batch.
        reset_queries()
    summary.seconds = _time.perf_counter() - started
    return summary


def _is_retryable(exc: OperationalError) -> bool:
    text = str(exc).lower()
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text


@dataclass(slots=True)
class _Line:
    position: str
    raw: str
    digest: str
    result: RatingEvent | WatchEvent | RecommendationEvent | Rejected


_Prepared = tuple[dict[str, "_Line"], int]


def _prepare(lines: Sequence[str], positions: Sequence[str]) -> _Prepared:
    """Parse and digest; the first occurrence of a line in the batch wins, later ones are duplicates."""
    by_digest: dict[str, _Line] = {}
    in_batch_duplicates = 0
    blake2b = hashlib.blake2b
    for raw, position in zip(lines, positions, strict=True):
        stripped = raw.strip()
        digest = blake2b(stripped.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        if digest in by_digest:
            in_batch_duplicates += 1
            continue
        by_digest[digest] = _Line(position, stripped, digest, parse_line(stripped))
    return by_digest, in_batch_duplicates


# --- SQL helpers --------------------------------------------------------------------------------
def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _rows_per_statement(ncols: int) -> int:
    # SQLite allows 32766 bound parameters per statement (3.32+); PostgreSQL 65535.
    return max(1, min(2000, 30_000 // ncols))


def _insert(
    cursor, head: str, ncols: int, rows: Sequence[Sequence[Any]], tail: str = "", returning: bool = False
) -> list[tuple]:
    """Multi-row ``INSERT``: ``head`` is ``INSERT INTO t (cols)``; ``tail`` e.g. an ON CONFLICT clause."""
    out: list[tuple] = []
    if not rows:
        return out
    one = "(" + ",".join(["%s"] * ncols) + ")"
    step = _rows_per_statement(ncols)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        sql = f"{head} VALUES {','.join([one] * len(chunk))} {tail}"
        cursor.execute(sql, [value for row in chunk for value in row])
        if returning:
            out.extend(cursor.fetchall())
    return out


def _append(cursor, model, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Append rows to an insert-only table: ``COPY`` on PostgreSQL, multi-row ``INSERT`` elsewhere."""
    if not rows:
        return
    columns = ", ".join(_col(model, n) for n in names)
    if connection.vendor != "postgresql":
        _insert(cursor, f"INSERT INTO {_table(model)} ({columns})", len(names), rows)
        return
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    with connection.wrap_database_errors:  # raw psycopg2 call: map its errors to Django's
        cursor.cursor.copy_expert(f"COPY {_table(model)} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)


def _copy_to_temp(cursor, name: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL: ``COPY`` rows into a per-connection temporary table emptied at commit."""
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS")
    cursor.execute(f"TRUNCATE {name}")
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    with connection.wrap_database_errors:  # raw psycopg2 call: map its errors to Django's
        cursor.cursor.copy_expert(f"COPY {name} FROM STDIN WITH (FORMAT csv)", buffer)


def _ensure_catalog_stubs(cursor, viewer_ids: set[int], movie_ids: set[str], known: KnownIds) -> None:
    """Create stub viewers and movies the stream names and the catalog does not know yet."""
    for model, ids in ((Viewer, viewer_ids - known.viewers), (Movie, movie_ids - known.movies)):
        if not ids:
            continue
        # ON CONFLICT DO NOTHING skips the ones that exist: no separate lookup needed.
        _insert_stubs(cursor, model, sorted(ids))


def _insert_stubs(cursor, model, ids: list) -> None:
    """``INSERT … ON CONFLICT DO NOTHING`` rows holding only the key and each field's default.

    Built from the model's fields, so fields added to the catalog later are covered; raw SQL
    because instantiating thousands of models per batch is the slowest part of the hot path.
    """
    now = timezone.now()
    columns, constants = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            value = now
        elif f.has_default() or not f.null:
            value = f.get_default()
        else:
            value = None
        columns.append(connection.ops.quote_name(f.column))
        constants.append(f.get_db_prep_save(value, connection))
    pk = connection.ops.quote_name(model._meta.pk.column)
    if connection.vendor == "postgresql":
        # One array parameter for the keys; the defaults are sent once, not once per row.
        pk_type = model._meta.pk.db_type(connection)
        cursor.execute(
            f"INSERT INTO {_table(model)} ({pk}, {', '.join(columns)}) "
            f"SELECT k, {', '.join(['%s'] * len(constants))} FROM unnest(%s::{pk_type}[]) AS k ORDER BY k "
            f"ON CONFLICT ({pk}) DO NOTHING",
            [*constants, ids],
        )
        return
    _insert(
        cursor,
        f"INSERT INTO {_table(model)} ({pk}, {', '.join(columns)})",
        1 + len(columns),
        [(i, *constants) for i in ids],
        f"ON CONFLICT ({pk}) DO NOTHING",
    )


def _store(
    parsed: tuple[dict[str, _Line], int],
    *,
    source: str,
    kind: str,
    lag: int | None,
    known: KnownIds,
    started: float,
    lines_read: int,
    last_position: str,
) -> tuple[IngestSummary, set[int], set[str]]:
    by_digest, in_batch_duplicates = parsed
    adapt_time = connection.ops.adapt_datetimefield_value
    summary = IngestSummary(lines_read=lines_read, duplicates=in_batch_duplicates, last_position=str(last_position))
    with connection.cursor() as cursor:
        # 1. The ledger decides which lines are new. Sorted keys keep the lock order the same in
        #    concurrent consumers; a digest another transaction holds waits for it, then is skipped.
        digests = sorted(by_digest)
        rows = [(d, _LEDGER_KIND[type(by_digest[d].result)]) for d in digests]
        head = f"INSERT INTO {_table(IngestedLine)} ({_col(IngestedLine, 'digest')}, {_col(IngestedLine, 'kind')})"
        tail = f"ON CONFLICT ({_col(IngestedLine, 'digest')}) DO NOTHING RETURNING {_col(IngestedLine, 'digest')}"
        if connection.vendor == "postgresql":
            _copy_to_temp(cursor, "usher_ingest_ledger", "digest uuid, kind varchar(1)", rows)
            # Return the digest as 32 hex digits, the form used in memory (no UUID objects per row).
            cursor.execute(
                f"{head} SELECT digest, kind FROM usher_ingest_ledger ORDER BY digest "
                f"ON CONFLICT ({_col(IngestedLine, 'digest')}) DO NOTHING "
                f"RETURNING encode(uuid_send({_col(IngestedLine, 'digest')}), 'hex')"
            )
            inserted = cursor.fetchall()
        else:
            inserted = _insert(cursor, head, 2, rows, tail, returning=True)
        new = {row[0] if isinstance(row[0], str) else row[0].hex for row in inserted}
        summary.duplicates += len(by_digest) - len(new)
        fresh = [line for digest, line in by_digest.items() if digest in new]

        ratings: list[RatingEvent] = []
        watches: list[WatchEvent] = []
        recommendations: list[RecommendationEvent] = []
        rejected: list[_Line] = []
        for line in fresh:
            result = line.result
            cls = type(result)
            if cls is WatchEvent:
                watches.append(result)
            elif cls is RatingEvent:
                ratings.append(result)
            elif cls is RecommendationEvent:
                recommendations.append(result)
            else:
                rejected.append(line)
        summary.stored = {"rating": len(ratings), "watch": len(watches), "recommendation": len(recommendations)}
        for line in rejected:
            summary.quarantined[line.result.code] = summary.quarantined.get(line.result.code, 0) + 1
        events = [*ratings, *watches, *recommendations]
        if events:
            summary.last_event_time = max(ev.time for ev in events)

        # 2. Catalog stubs for every viewer and movie the new lines name.
        viewer_ids = {ev.user_id for ev in events}
        movie_ids = {ev.movie_id for ev in ratings} | {ev.movie_id for ev in watches}
        for ev in recommendations:
            movie_ids.update(ev.movie_ids)
        _ensure_catalog_stubs(cursor, viewer_ids, movie_ids, known)

        # 3. Ratings: the full history, and the latest per viewer and movie by event time.
        if ratings:
            _append(
                cursor,
                RatingEventRow,
                ("viewer", "movie", "rating", "time"),
                [(ev.user_id, ev.movie_id, ev.rating, adapt_time(ev.time)) for ev in ratings],
            )
            latest: dict[tuple[int, str], RatingEvent] = {}
            for ev in ratings:  # a tie in time goes to the later-arriving line
                key = (ev.user_id, ev.movie_id)
                held = latest.get(key)
                if held is None or ev.time >= held.time:
                    latest[key] = ev
            table, v, m, r, t = (
                _table(Rating),
                _col(Rating, "viewer"),
                _col(Rating, "movie"),
                _col(Rating, "rating"),
                _col(Rating, "time"),
            )
            _insert(
                cursor,
                f"INSERT INTO {table} ({v}, {m}, {r}, {t})",
                4,
                [(ev.user_id, ev.movie_id, ev.rating, adapt_time(ev.time)) for _, ev in sorted(latest.items())],
                f"ON CONFLICT ({v}, {m}) DO UPDATE SET {r} = excluded.{r}, {t} = excluded.{t} "
                f"WHERE {table}.{t} <= excluded.{t}",
            )

        # 4. Recommendation requests as the platform logged them.
        if recommendations:
            _append(
                cursor,
                RecommendationRequest,
                ("time", "viewer", "server", "status", "movie_ids", "response_ms", "error"),
                [
                    (
                        adapt_time(ev.time),
                        ev.user_id,
                        _clean_text(ev.server, 255),
                        ev.status,
                        json.dumps(list(ev.movie_ids)),
                        ev.response_ms,
                        _clean_text(ev.error),
                    )
                    for ev in recommendations
                ],
            )

        # 5. Quarantine, with reason and position.
        if rejected:
            now = adapt_time(timezone.now())
            _append(
                cursor,
                QuarantinedLine,
                ("source", "position", "raw", "reason", "reason_code", "created_at"),
                [
                    (
                        source[:255],
                        line.position[:64],
                        _clean_text(line.raw, MAX_RAW_LENGTH),
                        line.result.reason[:255],
                        line.result.code,
                        now,
                    )
                    for line in rejected
                ],
            )

        # 6. Watch sessions (last: on PostgreSQL it holds a lock until commit).
        if watches:
            _merge_watch_sessions(cursor, watches)

    _source_update(source=source, kind=kind, summary=summary, lag=lag, started=started)
    return summary, viewer_ids, movie_ids


def _source_update(*, source: str, kind: str, summary: IngestSummary, lag: int | None, started: float) -> None:
    IngestSource.objects.bulk_create([IngestSource(name=source, kind=kind)], ignore_conflicts=True)
    elapsed = max(_time.perf_counter() - started, 1e-6)
    changes: dict[str, Any] = {
        "lines_read": F("lines_read") + summary.lines_read,
        "lines_stored": F("lines_stored") + summary.stored_total,
        "duplicates": F("duplicates") + summary.duplicates,
        "quarantined": F("quarantined") + summary.quarantined_total,
        "rate_per_s": round(summary.lines_read / elapsed, 1),
        "last_batch_at": timezone.now(),
    }
    if summary.last_position:
        changes["position"] = summary.last_position[:64]
    if lag is not None:
        changes["lag"] = lag
    IngestSource.objects.filter(name=source).update(**changes)
    if summary.last_event_time is not None:
        IngestSource.objects.filter(name=source).filter(
            Q(last_event_time__isnull=True) | Q(last_event_time__lt=summary.last_event_time)
        ).update(last_event_time=summary.last_event_time)


def ingest_run_record(
    *, source: str, summary: IngestSummary, actor: Any | None = None, system: str | None = None
) -> None:
    """Record a finished ingestion run (a file, an HTTP batch) in the activity log."""
    from portal.services import activity_log_record

    target = IngestSource.objects.filter(name=source[:255]).first()
    activity_log_record(
        actor=actor,
        system=system,
        action="events.ingested",
        target=target if target is not None else ("recommender.ingestsource", "", source[:255]),
        data={"source": source, **summary.as_dict()},
    )


def events_submit(*, lines: Sequence[str], source: str, actor: Any | None, system: str | None = None) -> IngestSummary:
    """Events pushed by someone (the API's ``POST /events``): ``events.ingest`` work, checked before
    a line is stored; the batch is one run, recorded in the activity log under the actor.

    The pipeline's own readers (files, streams, the simulator) call ``ingest_lines`` as the system."""
    from portal.permissions import require

    require(actor, "events.ingest", system=system)
    summary = ingest_lines(lines=lines, source=source, kind="http", batch_size=max(len(lines), 1))
    ingest_run_record(source=source, summary=summary, actor=actor, system=system)
    return summary


def ingest_ledger_prune(*, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete ledger rows written more than ``INGEST_LEDGER_RETENTION_DAYS`` days before ``now``; return how many.

    A row written on day D is kept through day D + retention and removed by the first prune after
    that. The age is the ingest day, not the event day, so replayed old history stays de-duplicated
    for a full period after it arrives (docs/ingest.md, "Ledger retention"). Retention 0 keeps every
    row. Each batch of at most ``batch_size`` rows is its own short transaction, so the prune never
    holds locks for long beside live consumers (they only write today's rows). One activity-log
    entry (``events.ledger_pruned``) records the run.
    """
    from portal.services import activity_log_record

    days = int(settings.RECOMMENDER.get("INGEST_LEDGER_RETENTION_DAYS", 30))
    today = (now if now is not None else timezone.now()).astimezone(UTC).date()
    cutoff = today - timedelta(days=days) if days > 0 else None
    removed = statements = 0
    if cutoff is not None:
        table, digest, day = _table(IngestedLine), _col(IngestedLine, "digest"), _col(IngestedLine, "ingested_on")
        # The subquery walks the ingested_on index: each statement touches at most batch_size rows.
        sql = f"DELETE FROM {table} WHERE {digest} IN (SELECT {digest} FROM {table} WHERE {day} < %s LIMIT %s)"
        params = [connection.ops.adapt_datefield_value(cutoff), max(1, batch_size)]
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                deleted = cursor.rowcount
            statements += 1
            removed += deleted
            if deleted < params[1]:
                break
    activity_log_record(
        actor=None,
        system="recommender.ingest.ledger_prune",
        action="events.ledger_pruned",
        target=("recommender.ingestedline", "", "de-duplication ledger"),
        data={
            "removed": removed,
            "retention_days": days,
            "cutoff": cutoff.isoformat() if cutoff is not None else None,
            "statements": statements,
        },
    )
    return removed


def ingest_source_record_error(*, name: str, kind: str, error: str) -> None:
    """Record a failure on the source's status row, outside the failed batch's transaction."""
    try:
        with transaction.atomic():
            IngestSource.objects.bulk_create([IngestSource(name=name[:255], kind=kind)], ignore_conflicts=True)
            IngestSource.objects.filter(name=name[:255]).update(
                last_error=_clean_text(error, 2000), last_error_at=timezone.now()
            )
    except Exception:  # noqa: BLE001 - the original failure is what the caller must see
        pass


# --- watch sessions -------------------------------------------------------------------------------
Span = tuple[int, int]


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


def _aware(value: Any) -> datetime:
    """A datetime read by raw SQL as an aware UTC datetime (SQLite hands back text or naive values)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _merge_watch_sessions(cursor, watches: list[WatchEvent]) -> None:
    """Fold watch lines into sessions: single-linkage by time with the configured gap (see the model)."""
    gap = timedelta(minutes=settings.RECOMMENDER.get("WATCH_SESSION_GAP_MINUTES", 30))
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_WATCH_LOCK_KEY])
    by_pair: dict[tuple[int, str], list[WatchEvent]] = {}
    for ev in watches:
        by_pair.setdefault((ev.user_id, ev.movie_id), []).append(ev)
    low = min(ev.time for ev in watches) - gap
    high = max(ev.time for ev in watches) + gap
    existing: dict[tuple[int, str], list[tuple]] = {}
    viewer_ids = sorted({pair[0] for pair in by_pair})
    adapt_time = connection.ops.adapt_datetimefield_value
    columns = ", ".join(
        _col(WatchSession, n)
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
        f"SELECT {columns} FROM {_table(WatchSession)} WHERE {_col(WatchSession, 'last_seen_at')} >= %s "
        f"AND {_col(WatchSession, 'started_at')} <= %s AND {_col(WatchSession, 'viewer')}"
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
    for sid, viewer_id, movie_id, started_at, last_seen, first_m, last_m, highest, seen in rows:
        if (viewer_id, movie_id) in by_pair:
            existing.setdefault((viewer_id, movie_id), []).append(
                (_aware(started_at), first_m, _aware(last_seen), last_m, highest, text_to_spans(seen), [sid])
            )

    inserts: list[tuple] = []
    updates: list[tuple] = []
    deletes: list[int] = []
    by_start = itemgetter(0, 1)
    for pair, events in by_pair.items():
        # Items: (start, first minute, end, last minute, highest, spans, session ids); a new line has
        # spans None. Sorted by time then minute, so on a tie the lowest minute opens a session
        # and the highest closes it.
        items = [(ev.time, ev.minute, ev.time, ev.minute, ev.minute, None, None) for ev in events]
        items += existing.get(pair, ())
        items.sort(key=by_start)
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
        for start, first_m, end, last_m, highest, spans, ids, changed in clusters:
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

    names = (
        "started_at",
        "last_seen_at",
        "first_minute",
        "last_minute",
        "highest_minute",
        "minutes_watched",
        "minutes_seen",
    )
    if deletes:
        WatchSession.objects.filter(id__in=deletes).delete()
    if updates and connection.vendor == "postgresql":
        # COPY into a temporary table and one UPDATE … FROM it: far cheaper than bound parameters.
        _copy_to_temp(
            cursor,
            "usher_ingest_sessions",
            "started_at timestamptz, last_seen_at timestamptz, first_minute integer, last_minute integer, "
            "highest_minute integer, minutes_watched integer, minutes_seen text, id bigint",
            updates,
        )
        sets = ", ".join(f"{_col(WatchSession, n)} = v.{n}" for n in names)
        cursor.execute(
            f"UPDATE {_table(WatchSession)} AS t SET {sets} FROM usher_ingest_sessions AS v "
            f"WHERE t.{_col(WatchSession, 'id')} = v.id"
        )
    elif updates:
        sets = ", ".join(f"{_col(WatchSession, n)} = %s" for n in names)
        cursor.executemany(f"UPDATE {_table(WatchSession)} SET {sets} WHERE {_col(WatchSession, 'id')} = %s", updates)
    if inserts:
        cols = ", ".join(_col(WatchSession, n) for n in ("viewer", "movie", *names))
        _insert(cursor, f"INSERT INTO {_table(WatchSession)} ({cols})", 9, inserts)
