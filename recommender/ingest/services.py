"""Ingestion of event-stream lines: parse, de-duplicate, store or quarantine, one transaction per batch.

Every source (file, stdin, Redis Streams, Kafka, HTTP) ends here. A batch is all or nothing: the
valid lines are stored, the invalid ones quarantined with their reason and position, the
de-duplication ledger and the source's status row are updated, in one transaction. A line already
in the ledger (delivered twice, by any source) is counted as a duplicate and changes nothing, so
at-least-once delivery is safe. This module orders the work; the rows are written by ``bulk``
(the SQL) and ``sessions`` (watch sessions). See docs/ingest.md.
"""

from __future__ import annotations

import hashlib
import itertools
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, reset_queries, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.permissions import require
from portal.services import activity_log_record
from recommender.ingest import bulk, sessions
from recommender.ingest.parser import RatingEvent, RecommendationEvent, Rejected, WatchEvent, parse_line
from recommender.models import IngestSource

__all__ = [
    "IngestSummary",
    "KnownIds",
    "events_submit",
    "ingest_batch",
    "ingest_ledger_prune",
    "ingest_lines",
    "ingest_run_record",
    "ingest_source_record_error",
    "line_digest",
]

STORED_KINDS = ("rating", "watch", "recommendation")
_RETRIES = 3


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


def _store(
    parsed: _Prepared,
    *,
    source: str,
    kind: str,
    lag: int | None,
    known: KnownIds,
    started: float,
    lines_read: int,
    last_position: str,
) -> tuple[IngestSummary, set[int], set[str]]:
    """The steps of one batch, in the caller's transaction; returns its summary and the ids it names."""
    by_digest, in_batch_duplicates = parsed
    summary = IngestSummary(lines_read=lines_read, duplicates=in_batch_duplicates, last_position=str(last_position))
    with connection.cursor() as cursor:
        # 1. The ledger decides which lines are new.
        new = bulk.ledger_claim(cursor, {digest: line.result for digest, line in by_digest.items()})
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
        bulk.catalog_stubs_ensure(cursor, viewer_ids=viewer_ids - known.viewers, movie_ids=movie_ids - known.movies)

        # 3.-5. Ratings, recommendation requests, quarantine with reason and position.
        bulk.ratings_store(cursor, ratings)
        bulk.recommendations_append(cursor, recommendations)
        bulk.quarantine_append(
            cursor, source=source, rejected=[(line.position, line.raw, line.result) for line in rejected]
        )

        # 6. Watch sessions (last: on PostgreSQL it holds a lock until commit).
        if watches:
            sessions.watch_sessions_merge(cursor, watches)

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
    days = int(settings.RECOMMENDER.get("INGEST_LEDGER_RETENTION_DAYS", 30))
    today = (now if now is not None else timezone.now()).astimezone(UTC).date()
    cutoff = today - timedelta(days=days) if days > 0 else None
    removed = statements = 0
    if cutoff is not None:
        removed, statements = bulk.ledger_delete_before(cutoff=cutoff, batch_size=batch_size)
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
                last_error=bulk.clean_text(error, 2000), last_error_at=timezone.now()
            )
    except Exception:  # noqa: BLE001 - the original failure is what the caller must see
        pass
