"""Sources of event lines: files (plain, gzip, stdin), Redis Streams and Kafka consumer groups.

Each source hands batches to ``ingest_batch`` and acknowledges them (XACK, offset commit) only
after the database transaction has committed. A consumer killed between the two redelivers that
batch, and the de-duplication ledger makes the second delivery count zero. ``Stopper`` turns
SIGTERM/SIGINT into "finish the current batch, then stop".
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from portal.errors import ValidationError
from recommender.ingest.services import IngestSummary, KnownIds, ingest_batch

log = logging.getLogger(__name__)

__all__ = ["ConsumerOptions", "KafkaSource", "RedisStreamSource", "Stopper", "open_lines", "parse_source_url"]


def open_lines(path: str) -> Iterator[str]:
    """Lines of a file, ``-`` for stdin, ``*.gz`` decompressed; streamed, undecodable bytes kept as escapes."""
    if path != "-" and not os.path.isfile(path):
        raise ValidationError(f"no such file: {path}")
    return _read_lines(path)


def _read_lines(path: str) -> Iterator[str]:
    if path == "-":
        stream: TextIO = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        yield from stream
        return
    if path.endswith(".gz"):
        handle: TextIO = gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    else:
        handle = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    with handle:
        yield from handle


class _StoppedBeforeCommit(Exception):
    """A stop was asked while waiting for the database: the batch in hand is left unacknowledged."""


def store_with_retry(*, stopper: Stopper, max_backoff: float = 30.0, **batch: Any) -> IngestSummary:
    """``ingest_batch``, retried with backoff while the database is unreachable.

    A lost connection or a database restart is waited out: the consumer keeps the batch, and
    nothing is acknowledged until it commits. Other errors (bugs, not outages) propagate.
    """
    from django.db import InterfaceError, OperationalError, connection

    delay = 0.5
    while True:
        try:
            return ingest_batch(**batch)
        except (OperationalError, InterfaceError) as exc:
            log.warning("database unavailable (%s); retrying the batch in %.1f s", str(exc).strip(), delay)
            connection.close()  # the next attempt opens a fresh connection
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if stopper.stopped:
                    raise _StoppedBeforeCommit from exc
                time.sleep(0.1)
            delay = min(delay * 2, max_backoff)


class Stopper:
    """Set by SIGTERM or SIGINT; consumers finish the batch in hand and return."""

    def __init__(self) -> None:
        self.stopped = False
        self.signal_name = ""

    def install(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.stopped = True
        self.signal_name = signal.Signals(signum).name

    def stop(self) -> None:
        self.stopped = True


@dataclass
class ConsumerOptions:
    """Knobs common to both consumers (from the URL's query string or the command line)."""

    group: str = "usher-ingest"
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch_size: int = 5000
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    exit_when_idle: float | None = None  # seconds with nothing to read before returning
    max_batches: int | None = None


def parse_source_url(url: str) -> tuple[str, dict[str, Any]]:
    """``redis://HOST:PORT/STREAM?db=0&group=…`` or ``kafka://HOST:PORT[,HOST:PORT]/TOPIC?group=…``."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("redis", "rediss", "kafka"):
        raise ValidationError(
            f"unsupported source URL scheme {parts.scheme!r}: use redis://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC"
        )
    if not name or "/" in name:
        raise ValidationError(f"the URL must name one stream or topic after the host: {url!r}")
    if not parts.netloc:
        raise ValidationError(f"the URL must name a host and port: {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return parts.scheme, {"netloc": parts.netloc, "name": name, "query": query, "scheme": parts.scheme}


def _options_from_query(query: dict[str, str], base: ConsumerOptions) -> ConsumerOptions:
    ints = {"batch_size": "batch", "block_ms": "block_ms", "claim_idle_ms": "claim_idle_ms"}
    for attr, key in ints.items():
        if key in query:
            try:
                setattr(base, attr, int(query[key]))
            except ValueError:
                raise ValidationError(f"{key} must be an integer, got {query[key]!r}")
    for attr in ("group", "consumer"):
        if attr in query:
            setattr(base, attr, query[attr])
    return base


class _ConsumerGroupSource:
    """What the Redis Streams and Kafka readers share: the run loop's wrapper and the guarded store."""

    kind: str
    source_name: str
    known: KnownIds

    def run(self, *, stopper: Stopper, on_batch: Callable[[IngestSummary], None] | None = None) -> IngestSummary:
        """Consume until stopped (or idle / out of batches, when asked); returns what was ingested."""
        total = IngestSummary()
        try:
            self._run(stopper=stopper, on_batch=on_batch, total=total)
        except _StoppedBeforeCommit:
            log.warning("stopped while waiting for the database: the batch in hand will be delivered again")
        return total

    def _run(self, *, stopper: Stopper, on_batch: Callable[[IngestSummary], None] | None, total: IngestSummary) -> None:
        raise NotImplementedError

    def _store(self, *, stopper: Stopper, lines: list[str], positions: list[str], lag: int | None) -> IngestSummary:
        return store_with_retry(
            stopper=stopper,
            lines=lines,
            positions=positions,
            source=self.source_name,
            kind=self.kind,
            lag=lag,
            known=self.known,
        )


class RedisStreamSource(_ConsumerGroupSource):
    """A Redis Streams consumer-group reader. Each entry carries one line in its ``line`` field."""

    kind = "redis"

    def __init__(
        self, *, netloc: str, name: str, query: dict[str, str], options: ConsumerOptions, scheme: str = "redis"
    ) -> None:
        import redis

        self.stream = name
        self.options = _options_from_query(query, options)
        db = int(query.get("db", "0"))
        self.client = redis.Redis.from_url(f"{scheme}://{netloc}/{db}", socket_timeout=30)
        self.source_name = f"redis://{netloc}/{name}"
        self.known = KnownIds()

    def _ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.stream, self.options.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def lag(self, in_hand: int = 0) -> int | None:
        """Entries not yet stored: never delivered, plus pending ones other than the ``in_hand`` batch."""
        try:
            for group in self.client.xinfo_groups(self.stream):
                if group.get("name") in (self.options.group, self.options.group.encode()):
                    lag = group.get("lag")
                    pending = group.get("pending") or 0
                    return None if lag is None else max(0, int(lag) + int(pending) - in_hand)
        except Exception:  # noqa: BLE001 - lag is informative only
            return None
        return None

    @staticmethod
    def _line(fields: dict | None) -> str | None:
        if not fields:
            return None
        value = fields.get(b"line")
        if value is None:
            value = next(iter(fields.values()))
        return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)

    def _process(self, entries: list[tuple[bytes, dict | None]], stopper: Stopper) -> IngestSummary | None:
        ids = [entry_id for entry_id, _ in entries]
        lines, positions = [], []
        for entry_id, fields in entries:
            line = self._line(fields)
            if line is None:  # deleted from the stream while pending: nothing to store
                continue
            lines.append(line)
            positions.append(entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id))
        summary = None
        if lines:
            summary = self._store(stopper=stopper, lines=lines, positions=positions, lag=self.lag(in_hand=len(ids)))
        # Acknowledge only after the commit: a crash before this line redelivers the batch.
        if ids:
            self.client.xack(self.stream, self.options.group, *ids)
        return summary

    def _run(self, *, stopper: Stopper, on_batch: Callable[[IngestSummary], None] | None, total: IngestSummary) -> None:
        opts = self.options
        self._ensure_group()
        batches = 0

        def handle(entries) -> None:
            nonlocal batches
            summary = self._process(entries, stopper)
            batches += 1
            if summary is not None:
                total.add(summary)
                if on_batch is not None:
                    on_batch(summary)

        # 1. Our own pending entries (delivered before a crash under the same consumer name).
        while not stopper.stopped:
            reply = self.client.xreadgroup(opts.group, opts.consumer, {self.stream: "0"}, count=opts.batch_size)
            entries = reply[0][1] if reply else []
            if not entries:
                break
            handle(entries)
        # 2. Entries other consumers left pending for longer than claim_idle_ms (dead consumers).
        cursor = "0-0"
        while not stopper.stopped:
            cursor, claimed, *_ = self.client.xautoclaim(
                self.stream,
                opts.group,
                opts.consumer,
                min_idle_time=opts.claim_idle_ms,
                start_id=cursor,
                count=opts.batch_size,
            )
            if claimed:
                handle(claimed)
            if cursor in (b"0-0", "0-0"):
                break
        # 3. New entries.
        idle_since = time.monotonic()
        while not stopper.stopped and (opts.max_batches is None or batches < opts.max_batches):
            reply = self.client.xreadgroup(
                opts.group, opts.consumer, {self.stream: ">"}, count=opts.batch_size, block=opts.block_ms
            )
            entries = reply[0][1] if reply else []
            if entries:
                handle(entries)
                idle_since = time.monotonic()
            elif opts.exit_when_idle is not None and time.monotonic() - idle_since >= opts.exit_when_idle:
                break

    def close(self) -> None:
        self.client.close()


class KafkaSource(_ConsumerGroupSource):
    """A confluent-kafka consumer-group reader; offsets are committed after the database commit."""

    kind = "kafka"

    def __init__(
        self, *, netloc: str, name: str, query: dict[str, str], options: ConsumerOptions, scheme: str = "kafka"
    ) -> None:
        from confluent_kafka import Consumer

        self.topic = name
        self.options = _options_from_query(query, options)
        config = {
            "bootstrap.servers": netloc,
            "group.id": self.options.group,
            "client.id": self.options.consumer,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": query.get("offset_reset", "earliest"),
            "session.timeout.ms": int(query.get("session_timeout_ms", "10000")),
        }
        self.consumer = Consumer(config)
        self.source_name = f"kafka://{netloc}/{name}"
        self.known = KnownIds()

    def lag(self) -> int | None:
        try:
            total = 0
            for tp in self.consumer.position(self.consumer.assignment()):
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high is None or high < 0:
                    return None
                total += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return total
        except Exception:  # noqa: BLE001 - lag is informative only
            return None

    def _run(self, *, stopper: Stopper, on_batch: Callable[[IngestSummary], None] | None, total: IngestSummary) -> None:
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        opts = self.options
        batches = 0
        self.consumer.subscribe([self.topic])
        idle_since = time.monotonic()
        while not stopper.stopped and (opts.max_batches is None or batches < opts.max_batches):
            messages = self.consumer.consume(num_messages=opts.batch_size, timeout=opts.block_ms / 1000)
            lines, positions, offsets = [], [], {}
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.fatal():
                        raise KafkaException(error)
                    log.warning("kafka: %s", error)
                    continue
                value = message.value() or b""
                lines.append(value.decode("utf-8", "surrogateescape"))
                positions.append(f"{message.partition()}:{message.offset()}")
                offsets[(message.topic(), message.partition())] = message.offset() + 1
            if not lines:
                if opts.exit_when_idle is not None and time.monotonic() - idle_since >= opts.exit_when_idle:
                    break
                continue
            idle_since = time.monotonic()
            summary = self._store(stopper=stopper, lines=lines, positions=positions, lag=self.lag())
            # Commit offsets only now that the batch is in the database.
            self.consumer.commit(
                offsets=[TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()],
                asynchronous=False,
            )
            batches += 1
            total.add(summary)
            if on_batch is not None:
                on_batch(summary)

    def close(self) -> None:
        self.consumer.close()


def open_source(url: str, options: ConsumerOptions) -> RedisStreamSource | KafkaSource:
    """The consumer for a ``redis://`` or ``kafka://`` URL."""
    scheme, parts = parse_source_url(url)
    if scheme == "kafka":
        return KafkaSource(**parts, options=options)
    return RedisStreamSource(**parts, options=options)
