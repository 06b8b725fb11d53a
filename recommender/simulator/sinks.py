"""Where the simulator writes its lines: a file, stdout, a Redis stream, a Kafka topic, or Usher itself.

``open_sink(spec)``: ``-`` (stdout), a file path (``.gz`` too), ``redis://host:port/stream[?db=N]``
(``XADD stream * line <text>``), ``kafka://host:port/topic`` (a confluent-kafka producer), or
``usher:`` (straight into Usher's ingestion, ``recommender.ingest.services.ingest_lines``).
"""

from __future__ import annotations

import gzip
import logging
import sys
import time
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)

REDIS_FIELD = "line"


class Sink:
    """Collects lines; ``write`` may buffer, ``flush`` delivers, ``close`` flushes and releases."""

    name = "sink"

    def write(self, lines: list[str]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.flush()


class ListSink(Sink):
    """Keeps the lines in memory (for tests and in-process scenarios)."""

    name = "memory"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)


class FileSink(Sink):
    def __init__(self, path: str) -> None:
        self.name = path
        if path == "-":
            self.handle, self._own = sys.stdout, False
        else:
            opener = gzip.open if path.endswith(".gz") else open
            self.handle, self._own = opener(path, "at", encoding="utf-8"), True

    def write(self, lines: list[str]) -> None:
        self.handle.write("".join(line + "\n" for line in lines))

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        self.flush()
        if self._own:
            self.handle.close()


class RedisSink(Sink):
    """``XADD`` each line to a stream (field ``line``), pipelined."""

    def __init__(self, url: str, maxlen: int | None = None) -> None:
        import redis

        parsed = urlparse(url)
        stream = parsed.path.strip("/")
        if not stream:
            raise ValueError(f"{url}: name the stream, e.g. redis://127.0.0.1:6379/events")
        db = int(parse_qs(parsed.query).get("db", ["0"])[0])
        self.name, self.stream, self.maxlen = url, stream, maxlen
        self.client = redis.Redis(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=db)

    def write(self, lines: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(self.stream, {REDIS_FIELD: line}, maxlen=self.maxlen, approximate=True)
        pipe.execute()


class KafkaSink(Sink):
    """Produce each line as one message to a topic (confluent-kafka)."""

    def __init__(self, url: str, extra_config: dict | None = None) -> None:
        from confluent_kafka import Producer

        parsed = urlparse(url)
        self.topic = parsed.path.strip("/")
        if not self.topic:
            raise ValueError(f"{url}: name the topic, e.g. kafka://127.0.0.1:9092/events")
        self.name = url
        config = {"bootstrap.servers": parsed.netloc, "linger.ms": 20, "enable.idempotence": True}
        config.update(extra_config or {})
        self.producer = Producer(config)
        self.errors: list[str] = []

    def _report(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))

    def write(self, lines: list[str]) -> None:
        for line in lines:
            while True:
                try:
                    self.producer.produce(self.topic, value=line.encode(), on_delivery=self._report)
                    break
                except BufferError:
                    self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self) -> None:
        self.producer.flush(30)


class UsherSink(Sink):
    """Straight into Usher's ingestion (``ingest_lines``), in batches; database hiccups are retried."""

    name = "usher:"

    def __init__(self, source: str = "simulator", batch_size: int = 5000, retries: int = 10) -> None:
        self.source, self.batch_size, self.retries = source, batch_size, retries
        self.buffer: list[str] = []
        self.summaries: list = []

    def write(self, lines: list[str]) -> None:
        self.buffer.extend(lines)
        if len(self.buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        from django.db import OperationalError, close_old_connections

        from recommender.ingest.services import ingest_lines

        for attempt in range(self.retries + 1):
            try:
                summary = ingest_lines(lines=self.buffer, source=self.source, kind="simulator",
                                       batch_size=self.batch_size)
                self.summaries.append(summary)
                self.buffer = []
                return
            except OperationalError as exc:  # database not up yet, or locked: wait and retry
                if attempt == self.retries:
                    raise
                logger.warning("simulator: ingest failed (%s); retrying", exc)
                close_old_connections()
                time.sleep(min(10.0, 0.5 * 2**attempt))


def open_sink(spec: str) -> Sink:
    """A sink from its spec (see the module docstring)."""
    if spec in ("usher:", "usher"):
        return UsherSink()
    if spec.startswith("redis://"):
        return RedisSink(spec)
    if spec.startswith("kafka://"):
        return KafkaSink(spec)
    if "://" in spec:
        raise ValueError(f"unknown sink {spec!r}: use a file, -, redis://host:port/stream, kafka://host:port/topic "
                         "or usher:")
    return FileSink(spec)
