"""The prediction log's write path: an in-process buffer, a background flusher, a spill file, replay.

The request path only appends a tuple to a ``deque`` (thread-safe, no lock, no I/O). A background
thread drains the buffer every ``LOG_FLUSH_SECONDS`` (or sooner when a batch is full) and writes
each batch in one transaction; a request id (the primary key) already present is never written twice.

When the database does not take a batch (unreachable, read-only, missing table), the batch is
appended to a spill file under ``STATE_DIR/spill`` (JSON lines, flushed and fsynced) and the
database is retried with a growing back-off. Spill files are replayed once the database answers
again; the primary key makes replay idempotent, so a batch that did commit before the connection
broke is not written twice. Files move through names so that no two processes read the same one:

``pred-<pid>-<ns>.jsonl.open-<pid>``  being appended by process <pid> (never replayed)
``pred-<pid>-<ns>.jsonl``             closed, waiting for replay
``pred-<pid>-<ns>.jsonl.claimed-<pid>`` being replayed by process <pid>; deleted once written

Files left ``open``/``claimed`` by a process that died are put back in the queue by the next replay.
Records the database refuses as data (not as an outage) go to ``rejected-*.jsonl`` with the error,
so one bad record never blocks the others. ``stop()`` (called by gunicorn's ``worker_exit`` hook on
SIGTERM) flushes what is left before the process exits.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from django.db import DataError, IntegrityError, connections, transaction

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    """A UUID version 7 (milliseconds since the epoch, then random bits) as 32 hex digits: unique
    without coordination, and time-ordered so the log's primary-key index grows at its right edge."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"


class PredictionRecord(NamedTuple):
    """One answer, as the request path appends it (plain values only; converted by the flusher)."""

    request_id: str  # new_request_id()
    created_at: float  # epoch seconds
    endpoint: str
    client: str
    viewer_id: int | None
    model_version_id: int | None
    model_label: str
    deployment_revision: int
    arm: str
    items: tuple[str, ...] | list[str]  # tuples: a record of atomic values is untracked by the GC
    scores: tuple[float, ...] | list[float] | None
    latency_ms: float
    status: int
    fallback_reason: str
    error: str


FIELDS = PredictionRecord._fields


def record_to_json(record: PredictionRecord) -> str:
    return json.dumps(record._asdict(), separators=(",", ":"))


def record_from_json(line: str) -> PredictionRecord:
    data = json.loads(line)
    return PredictionRecord(**{name: data.get(name) for name in FIELDS})


def _to_model(record: PredictionRecord):
    from recommender.models import PredictionLog

    return PredictionLog(
        request_id=uuid.UUID(hex=record.request_id),
        created_at=datetime.fromtimestamp(record.created_at, tz=UTC),
        endpoint=record.endpoint,
        client=record.client or "",
        viewer_id=record.viewer_id,
        model_version_id=record.model_version_id,
        model_label=record.model_label or "",
        deployment_revision=record.deployment_revision or 0,
        arm=record.arm or "",
        items=list(record.items or []),
        scores=record.scores,
        latency_ms=float(record.latency_ms),
        status=int(record.status),
        fallback_reason=record.fallback_reason or "",
        error=record.error or "",
    )


def write_records(records: list[PredictionRecord], *, using: str = "default") -> None:
    """Write records in one transaction; existing request ids are skipped (idempotent).

    PostgreSQL: ``COPY`` into the table, or when an id is already there, ``COPY`` into a temporary
    table and ``INSERT … SELECT … ON CONFLICT DO NOTHING``. Other databases:
    ``bulk_create(ignore_conflicts=True)``. Raises the database's error when the
    batch cannot be written; nothing is half-written.
    """
    if not records:
        return
    connection = connections[using]
    if connection.vendor == "postgresql":
        _write_postgres(records, using)
    else:
        _write_orm(records, using)


def _write_orm(records: list[PredictionRecord], using: str) -> None:
    from recommender.models import PredictionLog

    objects = [_to_model(r) for r in records]
    with transaction.atomic(using=using):
        PredictionLog.objects.using(using).bulk_create(objects, ignore_conflicts=True, batch_size=500)


_NULL = "\\N"


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_line(r: PredictionRecord) -> str:
    return "\t".join((
        r.request_id, repr(float(r.created_at)), _text(r.endpoint), _text(r.client or ""),
        _NULL if r.viewer_id is None else str(int(r.viewer_id)),
        _NULL if r.model_version_id is None else str(int(r.model_version_id)),
        _text(r.model_label or ""), str(int(r.deployment_revision or 0)), _text(r.arm or ""),
        _text(",".join(r.items or ())),
        _NULL if r.scores is None else ",".join(repr(float(x)) for x in r.scores),
        repr(float(r.latency_ms)), str(int(r.status)), _text(r.fallback_reason or ""), _text(r.error or ""),
    ))


_PG_LOAD_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS usher_predlog_load (
    request_id text, created_at double precision, endpoint text, client text, viewer_id bigint,
    model_version_id bigint, model_label text, deployment_revision integer, arm text, items text, scores text,
    latency_ms double precision, status integer, fallback_reason text, error text
) ON COMMIT DELETE ROWS
"""


_COLUMNS = ("request_id", "created_at", "endpoint", "client", "viewer_id", "model_version_id", "model_label",
            "deployment_revision", "arm", "items", "scores", "latency_ms", "status", "fallback_reason", "error")


def _direct_line(r: PredictionRecord) -> str:
    """One row in COPY's text format, in the table's own types (JSON as text, time as ISO-8601)."""
    return "\t".join((
        r.request_id, datetime.fromtimestamp(r.created_at, tz=UTC).isoformat(), _text(r.endpoint),
        _text(r.client or ""), _NULL if r.viewer_id is None else str(int(r.viewer_id)),
        _NULL if r.model_version_id is None else str(int(r.model_version_id)),
        _text(r.model_label or ""), str(int(r.deployment_revision or 0)), _text(r.arm or ""),
        _text(json.dumps(list(r.items or ()))), _NULL if r.scores is None else json.dumps(list(r.scores)),
        repr(float(r.latency_ms)), str(int(r.status)), _text(r.fallback_reason or ""), _text(r.error or ""),
    ))


def _write_postgres(records: list[PredictionRecord], using: str) -> None:
    """``COPY`` straight into the table (the common case: every request id is new). When a batch
    holds an id that is already there (a replay after a commit whose acknowledgement was lost), the
    whole COPY is refused and nothing is written; the batch then goes through a temporary table and
    ``INSERT … ON CONFLICT DO NOTHING``."""
    from recommender.models import PredictionLog

    connection = connections[using]
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    data = io.StringIO("".join(_direct_line(r) + "\n" for r in records))
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.copy_expert(f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN", data)
        return
    except IntegrityError:
        pass
    _write_postgres_idempotent(records, using)


def _write_postgres_idempotent(records: list[PredictionRecord], using: str) -> None:
    from recommender.models import PredictionLog

    connection = connections[using]
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    data = io.StringIO("".join(_copy_line(r) + "\n" for r in records))
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(_PG_LOAD_TABLE)
        with connection.wrap_database_errors:  # copy_expert is psycopg2's own: map its errors to Django's
            cursor.copy_expert("COPY usher_predlog_load FROM STDIN", data)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608
            "SELECT request_id::uuid, to_timestamp(created_at), endpoint, client, viewer_id, model_version_id, "
            "model_label, deployment_revision, arm, "
            "CASE WHEN items = '' THEN '[]'::jsonb ELSE to_jsonb(string_to_array(items, ',')) END, "
            "CASE WHEN scores IS NULL THEN NULL WHEN scores = '' THEN '[]'::jsonb "
            "ELSE to_jsonb(string_to_array(scores, ',')::float8[]) END, "
            "latency_ms, status, fallback_reason, error FROM usher_predlog_load "
            "ON CONFLICT (request_id) DO NOTHING"
        )


def _close_connection(using: str) -> None:
    try:
        connections[using].close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
        pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpillFile:
    """An append-only JSON-lines file for records the database would not take right now."""

    def __init__(self, directory: Path, max_records: int = 100_000) -> None:
        self.directory = directory
        self.max_records = max_records
        self._path: Path | None = None
        self._handle = None
        self._count = 0

    def append(self, records: Iterable[PredictionRecord]) -> int:
        records = list(records)
        if not records:
            return 0
        if self._handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            pid = os.getpid()
            self._path = self.directory / f"pred-{pid}-{time.time_ns()}.jsonl.open-{pid}"
            self._handle = open(self._path, "a", encoding="utf-8")
            self._count = 0
        self._handle.write("".join(record_to_json(r) + "\n" for r in records))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._count += len(records)
        if self._count >= self.max_records:
            self.close()
        return len(records)

    def close(self) -> Path | None:
        """Close the open file and queue it for replay; returns its final path."""
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        assert self._path is not None
        final = self._path.with_name(self._path.name.rsplit(".open-", 1)[0])
        os.replace(self._path, final)
        _fsync_dir(self.directory)
        self._path = None
        return final

    @property
    def is_open(self) -> bool:
        return self._handle is not None


def spill_recover_stale(directory: Path) -> int:
    """Put files left ``open``/``claimed`` by dead processes back in the replay queue."""
    recovered = 0
    if not directory.is_dir():
        return 0
    for path in directory.iterdir():
        name = path.name
        for marker in (".open-", ".claimed-"):
            if marker in name:
                base, _, pid = name.rpartition(marker)
                if pid.isdigit() and not _pid_alive(int(pid)):
                    try:
                        os.replace(path, directory / base)
                        recovered += 1
                    except FileNotFoundError:
                        pass
    return recovered


def spill_pending(directory: Path) -> dict:
    """What waits in the spill folder: files and records queued, open, claimed and rejected."""
    summary = {"queued_files": 0, "queued_records": 0, "open_files": 0, "claimed_files": 0, "rejected_records": 0}
    if not directory.is_dir():
        return summary
    for path in directory.iterdir():
        name = path.name
        try:
            if name.startswith("rejected-"):
                summary["rejected_records"] += sum(1 for _ in open(path, encoding="utf-8"))
            elif name.endswith(".jsonl"):
                summary["queued_files"] += 1
                summary["queued_records"] += sum(1 for _ in open(path, encoding="utf-8"))
            elif ".open-" in name:
                summary["open_files"] += 1
            elif ".claimed-" in name:
                summary["claimed_files"] += 1
        except FileNotFoundError:
            continue
    return summary


# Errors about a record's content (not about reaching the database): such a record is set aside.
_DATA_ERRORS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)


def _write_or_reject(records: list[PredictionRecord], *, using: str, directory: Path) -> tuple[int, int]:
    """Write a batch; when the database refuses it as data, write row by row and set bad rows aside.

    Returns (records written or already present, records rejected). Outages propagate.
    """
    try:
        write_records(records, using=using)
        return len(records), 0
    except _DATA_ERRORS:
        pass
    written = rejected = 0
    for record in records:
        try:
            write_records([record], using=using)
            written += 1
        except _DATA_ERRORS as exc:
            rejected += 1
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f"rejected-{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"record": record._asdict(), "error": str(exc)[:500]}) + "\n")
            logger.error("prediction log: record %s rejected by the database: %s", record.request_id, exc)
    return written, rejected


def spill_replay(directory: Path, *, using: str = "default", batch: int = 2000) -> dict:
    """Replay queued spill files into the database, oldest first. Idempotent; safe in parallel.

    Stops at the first outage, putting the file back in the queue. Returns counts.
    """
    result = {"files": 0, "records": 0, "rejected": 0, "unreadable_lines": 0}
    spill_recover_stale(directory)
    if not directory.is_dir():
        return result
    pid = os.getpid()
    for path in sorted(p for p in directory.iterdir() if p.name.endswith(".jsonl") and p.name.startswith("pred-")):
        claimed = path.with_name(f"{path.name}.claimed-{pid}")
        try:
            os.replace(path, claimed)
        except FileNotFoundError:
            continue  # another process claimed it first
        records: list[PredictionRecord] = []
        with open(claimed, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    records.append(record_from_json(line))
                except (ValueError, TypeError):
                    # A line cut short by a crash mid-write: keep it aside, do not block the rest.
                    result["unreadable_lines"] += 1
                    with open(directory / f"rejected-{pid}.jsonl", "a", encoding="utf-8") as bad:
                        bad.write(json.dumps({"line": line[:2000], "error": "unreadable spill line"}) + "\n")
        try:
            for start in range(0, len(records), batch):
                written, rejected = _write_or_reject(records[start:start + batch], using=using, directory=directory)
                result["records"] += written
                result["rejected"] += rejected
        except Exception:
            os.replace(claimed, path)  # back in the queue; already-written rows are skipped next time
            raise
        os.unlink(claimed)
        _fsync_dir(directory)
        result["files"] += 1
    return result


@dataclass
class FlusherStats:
    """Counters of one process's prediction log, shown on the deployments page."""

    written: int = 0
    spilled: int = 0
    replayed: int = 0
    rejected: int = 0
    flushes: int = 0
    failures: int = 0
    last_flush_at: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    database_ok: bool = True
    extra: dict = field(default_factory=dict)


class PredictionLogger:
    """The buffer and its flusher thread, one per process."""

    def __init__(
        self,
        *,
        spill_dir: Path,
        batch: int = 2000,
        flush_seconds: float = 1.0,
        replay_seconds: float = 15.0,
        max_buffer: int = 50_000,
        using: str = "default",
    ) -> None:
        self.buffer: deque[PredictionRecord] = deque()
        self.spill_dir = Path(spill_dir)
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.replay_seconds = replay_seconds
        self.max_buffer = max_buffer
        self.using = using
        self.stats = FlusherStats()
        self._spill = SpillFile(self.spill_dir)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._backoff = 1.0
        self._next_replay = 0.0

    # --- request path -------------------------------------------------------------------------
    def append(self, record: PredictionRecord) -> None:
        self.buffer.append(record)
        if len(self.buffer) >= self.batch:
            self._wake.set()

    # --- background ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log-flusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> dict:
        """Stop the thread and flush everything left (to the database, else to the spill file)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._retry_at = 0.0  # on the way out, try the database once more before spilling
        result = self.flush()
        with self._lock:
            self._spill.close()
        _close_connection(self.using)
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
                if self.stats.database_ok and time.monotonic() >= self._next_replay:
                    self._next_replay = time.monotonic() + self.replay_seconds
                    self.replay()
            except Exception:  # noqa: BLE001 - the flusher must survive anything
                logger.exception("prediction log flusher: unexpected error")

    # --- flushing -----------------------------------------------------------------------------
    def _drain(self, limit: int) -> list[PredictionRecord]:
        out = []
        popleft = self.buffer.popleft
        try:
            for _ in range(limit):
                out.append(popleft())
        except IndexError:
            pass
        return out

    def flush(self) -> dict:
        """Drain the buffer now: write batches, spilling what the database will not take."""
        result = {"written": 0, "spilled": 0, "rejected": 0}
        with self._lock:
            overflow = len(self.buffer) - self.max_buffer
            if overflow > 0:
                # The database is slower than the traffic: keep memory bounded, the file takes the excess.
                self._spill_records(self._drain(overflow), result)
            while True:
                records = self._drain(self.batch)
                if not records:
                    break
                if time.monotonic() < self._retry_at:
                    self._spill_records(records, result)
                    continue
                try:
                    written, rejected = _write_or_reject(records, using=self.using, directory=self.spill_dir)
                except Exception as exc:  # noqa: BLE001 - any failure of the database means spill
                    self._on_failure(exc)
                    self._spill_records(records, result)
                    continue
                self._on_success()
                result["written"] += written
                result["rejected"] += rejected
                self.stats.written += written
                self.stats.rejected += rejected
            if not self.stats.database_ok and time.monotonic() >= self._retry_at:
                self._probe()  # no traffic to tell whether the database is back: ask it
            if self.stats.database_ok and self._spill.is_open:
                self._spill.close()  # the outage is over: queue the file for replay
            self.stats.flushes += 1
            self.stats.last_flush_at = time.time()
        return result

    def _probe(self) -> None:
        try:
            with connections[self.using].cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001
            self._on_failure(exc)
            return
        self._on_success()

    def _spill_records(self, records: list[PredictionRecord], result: dict) -> None:
        try:
            self._spill.append(records)
        except OSError:
            # The disk refuses too: put the records back and try again on the next pass.
            logger.exception("prediction log: cannot spill %d records; keeping them in memory", len(records))
            self.buffer.extendleft(reversed(records))
            raise
        result["spilled"] += len(records)
        self.stats.spilled += len(records)

    def _on_failure(self, exc: Exception) -> None:
        _close_connection(self.using)
        self.stats.failures += 1
        self.stats.database_ok = False
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self.stats.last_error_at = time.time()
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 30.0)
        logger.warning("prediction log: database unavailable (%s); spilling to %s", self.stats.last_error,
                       self.spill_dir)

    def _on_success(self) -> None:
        if not self.stats.database_ok:
            logger.info("prediction log: database is back")
            self._next_replay = 0.0  # replay at once
        self.stats.database_ok = True
        self._backoff = 1.0
        self._retry_at = 0.0

    def replay(self) -> dict:
        """Replay queued spill files (this process's and others'); stop at the first outage."""
        try:
            result = spill_replay(self.spill_dir, using=self.using, batch=self.batch)
        except Exception as exc:  # noqa: BLE001
            self._on_failure(exc)
            return {"files": 0, "records": 0, "rejected": 0, "error": str(exc)[:300]}
        self.stats.replayed += result["records"]
        self.stats.rejected += result["rejected"]
        return result
