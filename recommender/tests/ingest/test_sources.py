"""Sources: the ingest command (file, gzip, stdin), Redis Streams and Kafka consumers, and their faults.

Redis tests run against the real Redis (REDIS_URL); Kafka tests against librdkafka's mock cluster
on loopback. The kill/restart tests run the consumer as a subprocess against the test database,
so they need PostgreSQL (an in-memory SQLite test database is invisible to another process).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from recommender.ingest.sources import ConsumerOptions, KafkaSource, RedisStreamSource, Stopper, parse_source_url
from recommender.models import IngestedLine, IngestSource, QuarantinedLine, RatingEvent, WatchSession

ROOT = Path(__file__).resolve().parents[3]

LINES = [
    "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3",
    "2022-02-25T13:39,284508,GET /data/m/monsters_+inc.+2001/0.mpg",
    "2022-02-25T13:40,284508,GET /data/m/monsters_+inc.+2001/1.mpg",
    "2022-02-25T13:41:02.122692921,7,recommendation request s1:8082, status 0, result: timeout: read, x, 600 ms",
    "2022-02-25T13:41,284508,GET /rate/audition+1999=7",
    "not a line",
    "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3",
]
EXPECTED = {
    "lines_read": 7,
    "stored": {"rating": 1, "watch": 2, "recommendation": 1},
    "stored_total": 4,
    "duplicates": 1,
    "quarantined": {"missing_fields": 1, "rating_out_of_range": 1},
    "quarantined_total": 2,
}


def workload(n_valid: int, n_bad: int, n_dupes: int) -> list[str]:
    """Distinct valid rating lines, distinct malformed lines, and repeats of valid ones."""
    valid = [
        f"2022-03-01T10:{i % 60:02d}:{i % 59:02d}.{i:06d},{1000 + i},GET /rate/film+{i % 37}+1990={1 + i % 5}"
        for i in range(n_valid)
    ]
    bad = [f"2022-03-01T10:00,{i},GET /rate/film+1=9{i}" for i in range(n_bad)]
    lines = valid + bad + valid[:n_dupes]
    return [lines[(i * 7919) % len(lines)] for i in range(len(lines))]  # a fixed shuffle


# --- ingest command ---------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("compressed", [False, True])
def test_ingest_command_reads_plain_and_gzip_files(tmp_path, capsys, compressed: bool) -> None:
    path = tmp_path / ("events.log.gz" if compressed else "events.log")
    data = ("\n".join(LINES) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compressed else data)

    call_command("ingest", str(path), "--json", "--no-progress")

    assert json.loads(capsys.readouterr().out) == EXPECTED
    source = IngestSource.objects.get()
    assert source.name == f"file:{path}" and source.position == "7" and source.lines_read == 7


@pytest.mark.django_db
def test_ingest_command_reads_stdin_and_prints_a_summary(monkeypatch, capsys) -> None:
    raw = ("\n".join(LINES) + "\n").encode() + b"2022-02-25T13:38:49,1,GET /rate/caf\xe9+1999=3\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))

    call_command("ingest", "-", "--batch-size", "2", "--no-progress")

    out = capsys.readouterr().out
    assert "lines read" in out and "rating_out_of_range" in out and "bad_movie_id" in out
    assert [line.split() for line in out.splitlines()[:2]] == [["lines", "read", "8"], ["stored", "4"]]
    assert QuarantinedLine.objects.get(reason_code="bad_movie_id").raw.endswith("=3")


@pytest.mark.django_db
def test_ingest_command_names_a_missing_file() -> None:
    with pytest.raises(CommandError, match="no such file: /no/such/file"):
        call_command("ingest", "/no/such/file")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1/x", "unsupported source URL scheme 'http'"),
        ("redis://h:1/", "must name one stream or topic"),
        ("kafka:///topic", "must name a host and port"),
    ],
)
def test_bad_source_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(Exception, match=message):
        parse_source_url(url)


# --- Redis Streams --------------------------------------------------------------------------------
def redis_parts() -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(os.environ["REDIS_URL"])
    return parts.netloc, (parts.path.strip("/") or "0")


@pytest.fixture
def redis_stream():
    import redis

    netloc, db = redis_parts()
    client = redis.Redis.from_url(f"redis://{netloc}/{db}")
    name = f"usher-test-{uuid.uuid4().hex[:8]}"
    yield client, name, f"redis://{netloc}/{name}?db={db}"
    client.delete(name)
    client.close()


def redis_source(url: str, **options) -> RedisStreamSource:
    _, parts = parse_source_url(url)
    return RedisStreamSource(**parts, options=ConsumerOptions(block_ms=100, exit_when_idle=0.3, **options))


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_consumer_stores_and_acknowledges(redis_stream) -> None:
    client, name, url = redis_stream
    for line in LINES:
        client.xadd(name, {"line": line})

    source = redis_source(url, batch_size=3)
    summary = source.run(stopper=Stopper())
    source.close()

    assert summary.as_dict() == EXPECTED
    group = client.xinfo_groups(name)[0]
    assert group["pending"] == 0 and group["lag"] == 0
    status = IngestSource.objects.get(name__endswith=f"/{name}")
    assert status.kind == "redis" and status.lines_read == 7 and status.lag == 0


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_consumer_reclaims_entries_a_dead_consumer_left_pending(redis_stream) -> None:
    client, name, url = redis_stream
    for line in LINES:
        client.xadd(name, {"line": line})
    client.xgroup_create(name, "usher-ingest", id="0")
    delivered = client.xreadgroup("usher-ingest", "dead-consumer", {name: ">"}, count=4)  # never acknowledged
    assert len(delivered[0][1]) == 4

    summary = redis_source(url, claim_idle_ms=0, consumer="survivor").run(stopper=Stopper())

    assert summary.as_dict() == EXPECTED
    assert client.xpending(name, "usher-ingest")["pending"] == 0


# --- Kafka (librdkafka's mock cluster) ----------------------------------------------------------------
@pytest.fixture
def kafka_cluster():
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers.values())
    yield bootstrap
    del holder


def kafka_produce(bootstrap: str, topic: str, lines: list[str]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for line in lines:
        producer.produce(topic, line.encode())
    assert producer.flush(10) == 0


@pytest.mark.slow
@pytest.mark.django_db
def test_kafka_consumer_stores_and_commits_offsets(kafka_cluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    kafka_produce(kafka_cluster, "events", LINES)
    _, parts = parse_source_url(f"kafka://{kafka_cluster}/events")
    source = KafkaSource(**parts, options=ConsumerOptions(batch_size=3, block_ms=500, exit_when_idle=8))

    summary = source.run(stopper=Stopper())
    source.close()

    assert summary.as_dict() == EXPECTED
    probe = Consumer({"bootstrap.servers": kafka_cluster, "group.id": "usher-ingest", "log_level": 3})
    metadata = probe.list_topics("events", timeout=10).topics["events"]
    committed = probe.committed([TopicPartition("events", p) for p in metadata.partitions], timeout=10)
    ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in committed]
    probe.close()
    # every partition committed up to its end (an empty partition has nothing to commit: -1001)
    assert [max(tp.offset, 0) for tp in committed] == ends and sum(ends) == len(LINES)


# --- faults: SIGKILL mid-batch, SIGTERM, restart ------------------------------------------------------
def consume_process(url: str, *extra: str) -> subprocess.Popen:
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "AXES_ENABLED": "0"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "consume", url, "--consumer", "worker-1", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_read(source_suffix: str) -> int:
    row = IngestSource.objects.filter(name__endswith=source_suffix).values_list("lines_read", flat=True).first()
    return row or 0


def kill_during_progress(url: str, source_suffix: str, kills: int, extra: tuple[str, ...]) -> int:
    """Start the consumer, SIGKILL it as soon as it has made progress, ``kills`` times; returns kills done."""
    done = 0
    for _ in range(kills):
        before = lines_read(source_suffix)
        process = consume_process(url, *extra)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and lines_read(source_suffix) == before:
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            done += 1
        process.communicate(timeout=30)
    return done


def assert_exact(n_valid: int, n_bad: int, source_suffix: str) -> None:
    assert RatingEvent.objects.count() == n_valid
    assert QuarantinedLine.objects.count() == n_bad
    assert IngestedLine.objects.count() == n_valid + n_bad
    status = IngestSource.objects.get(name__endswith=source_suffix)
    assert status.lines_stored == n_valid and status.quarantined == n_bad


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_redis_consumer_killed_mid_batch_loses_nothing_and_counts_nothing_twice(redis_stream) -> None:
    client, name, url = redis_stream
    lines = workload(3000, 150, 200)
    for start in range(0, len(lines), 500):
        pipe = client.pipeline()
        for line in lines[start : start + 500]:
            pipe.xadd(name, {"line": line})
        pipe.execute()

    kills = kill_during_progress(url, f"/{name}", 3, ("--batch-size", "40", "--claim-idle-ms", "0"))
    assert kills >= 1
    final = consume_process(url, "--batch-size", "500", "--claim-idle-ms", "0", "--exit-when-idle", "1")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err

    assert_exact(3000, 150, f"/{name}")
    group = client.xinfo_groups(name)[0]
    assert group["pending"] == 0 and group["lag"] == 0


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_redis_consumer_stops_cleanly_on_sigterm_and_resumes_exactly(redis_stream) -> None:
    client, name, url = redis_stream
    lines = workload(2000, 100, 100)
    pipe = client.pipeline()
    for line in lines:
        pipe.xadd(name, {"line": line})
    pipe.execute()

    process = consume_process(url, "--batch-size", "25")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lines_read(f"/{name}") == 0:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "SIGTERM: stopped cleanly after the current batch" in err
    first = json.loads(out.strip().splitlines()[-1])
    assert 0 < first["lines_read"] < len(lines)
    # everything read was stored and acknowledged: nothing pending, the rest still waiting
    assert client.xpending(name, "usher-ingest")["pending"] == 0
    assert client.xinfo_groups(name)[0]["lag"] == len(lines) - first["lines_read"]

    again = consume_process(url, "--batch-size", "500", "--exit-when-idle", "1")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    second = json.loads(out.strip().splitlines()[-1])
    assert first["lines_read"] + second["lines_read"] == len(lines)
    assert first["duplicates"] + second["duplicates"] == 100
    assert_exact(2000, 100, f"/{name}")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kafka_consumer_killed_mid_batch_then_sigterm_loses_nothing(kafka_cluster) -> None:
    lines = workload(2000, 100, 100)
    kafka_produce(kafka_cluster, "events", lines)
    url = f"kafka://{kafka_cluster}/events?session_timeout_ms=6000"

    kills = kill_during_progress(url, "/events", 2, ("--batch-size", "40"))
    assert kills >= 1
    process = consume_process(url, "--batch-size", "40")
    deadline = time.monotonic() + 90
    progress = lines_read("/events")
    while time.monotonic() < deadline and lines_read("/events") == progress:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "SIGTERM: stopped cleanly" in err

    final = consume_process(url, "--batch-size", "500", "--exit-when-idle", "10")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    assert_exact(2000, 100, "/events")
    assert WatchSession.objects.count() == 0


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_redis_consumer_waits_out_lost_database_connections(redis_stream) -> None:
    client, name, url = redis_stream
    lines = workload(1500, 50, 50)
    pipe = client.pipeline()
    for line in lines:
        pipe.xadd(name, {"line": line})
    pipe.execute()

    process = consume_process(url, "--batch-size", "20", "--exit-when-idle", "2")
    terminated = 0
    for _ in range(3):
        before = lines_read(f"/{name}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and lines_read(f"/{name}") == before:
            time.sleep(0.005)
        with connection.cursor() as cursor:  # cut the consumer's database connection, as a restart would
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            terminated += cursor.fetchone()[0]
    out, err = process.communicate(timeout=180)

    assert process.returncode == 0, err
    assert terminated >= 1
    assert "database unavailable" in err
    assert_exact(1500, 50, f"/{name}")
    assert client.xpending(name, "usher-ingest")["pending"] == 0
