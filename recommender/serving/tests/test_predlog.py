"""The prediction log: buffer → batches, spill when the database is unreachable, replay exactly once."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from recommender.models import PredictionLog
from recommender.serving.predlog import (
    PredictionLogger,
    PredictionRecord,
    new_request_id,
    spill_pending,
    spill_recover_stale,
    spill_replay,
    write_records,
)
from recommender.serving.tests.conftest import database_unreachable, in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def record(n: int, **overrides) -> PredictionRecord:
    values = dict(
        request_id=new_request_id(), created_at=time.time(), endpoint="plain", client="127.0.0.1", viewer_id=n,
        model_version_id=None, model_label="fallback", deployment_revision=3, arm="production",
        items=[f"movie+{n}+2000", "the+shawshank+redemption+1994"], scores=[0.5, 0.25], latency_ms=1.25,
        status=200, fallback_reason="", error="",
    )
    values.update(overrides)
    return PredictionRecord(**values)


def test_request_ids_are_uuid7_and_time_ordered():
    ids = [new_request_id() for _ in range(50)]
    assert all(uuid.UUID(hex=i).version == 7 for i in ids)
    assert len(set(ids)) == 50
    time.sleep(0.002)
    assert new_request_id()[:12] > ids[0][:12]


def test_batches_are_written_with_every_field_and_are_idempotent():
    records = [record(n) for n in range(5)] + [record(99, viewer_id=None, items=[], scores=None, status=400,
                                                      error="user id must be an integer, got 'a\tb'\\")]
    write_records(records)
    write_records(records[:3])  # again: skipped, not duplicated
    assert PredictionLog.objects.count() == 6
    row = PredictionLog.objects.get(request_id=records[1].request_id)
    assert row.items == ["movie+1+2000", "the+shawshank+redemption+1994"]
    assert row.scores == [0.5, 0.25]
    assert (row.viewer_id, row.status, row.arm, row.deployment_revision, row.latency_ms) == (1, 200, "production", 3, 1.25)
    assert abs(row.created_at.timestamp() - records[1].created_at) < 1e-3
    bad = PredictionLog.objects.get(request_id=records[-1].request_id)
    assert bad.items == [] and bad.scores is None and bad.viewer_id is None
    assert bad.error == "user id must be an integer, got 'a\tb'\\"


def test_flusher_thread_writes_in_the_background(tmp_path):
    logger = PredictionLogger(spill_dir=tmp_path / "spill", batch=10, flush_seconds=0.05)
    logger.start()
    try:
        ids = []
        for n in range(25):
            rec = record(n)
            ids.append(rec.request_id)
            logger.append(rec)
        deadline = time.monotonic() + 10
        while PredictionLog.objects.count() < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        logger.stop()
    assert sorted(r.hex for r in PredictionLog.objects.values_list("request_id", flat=True)) == sorted(ids)


def test_database_unreachable_spills_then_replay_writes_each_record_exactly_once(tmp_path):
    spill = tmp_path / "spill"
    logger = PredictionLogger(spill_dir=spill, batch=4)
    # Given one batch already written before the outage
    before = [record(n) for n in range(3)]
    for r in before:
        logger.append(r)
    assert in_thread(logger.flush)["written"] == 3
    # When the database goes away, new records (and a re-sent one) go to the spill file
    during = [record(n) for n in range(10, 20)]
    with database_unreachable():
        for r in [*during, before[0]]:
            logger.append(r)
        result = in_thread(logger.flush)
        assert result == {"written": 0, "spilled": 11, "rejected": 0}
        assert not logger.stats.database_ok and logger.stats.last_error
        # replay while still down keeps the file queued
        in_thread(logger.flush)
    assert PredictionLog.objects.count() == 3
    # Then, with the database back, the next flush closes the file and replay writes it once
    logger._retry_at = 0.0
    in_thread(logger.flush)
    assert spill_pending(spill)["queued_records"] == 11
    replayed = in_thread(logger.replay)
    assert replayed["records"] == 11 and replayed["files"] == 1
    assert spill_pending(spill) == {"queued_files": 0, "queued_records": 0, "open_files": 0, "claimed_files": 0,
                                    "rejected_records": 0}
    ids = {r.request_id for r in before + during}
    assert {u.hex for u in PredictionLog.objects.values_list("request_id", flat=True)} == ids
    assert PredictionLog.objects.count() == len(ids) == 13
    # And replaying again changes nothing
    assert in_thread(logger.replay)["records"] == 0


def test_stop_spills_what_it_cannot_write(tmp_path):
    spill = tmp_path / "spill"
    logger = PredictionLogger(spill_dir=spill, batch=100)
    for n in range(7):
        logger.append(record(n))
    with database_unreachable():
        result = in_thread(logger.stop)
    assert result["spilled"] == 7
    assert spill_pending(spill)["queued_records"] == 7
    assert spill_replay(spill)["records"] == 7
    assert PredictionLog.objects.count() == 7


def test_files_left_by_a_dead_process_are_recovered_and_a_cut_line_is_set_aside(tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    dead_pid = 2**22 + 12345  # beyond pid_max on this machine: never alive
    good = [record(n) for n in range(3)]
    lines = "".join(json.dumps(r._asdict()) + "\n" for r in good) + '{"request_id": "abc", "created'
    (spill / f"pred-{dead_pid}-1.jsonl.open-{dead_pid}").write_text(lines)
    (spill / f"pred-{dead_pid}-2.jsonl.claimed-{dead_pid}").write_text(json.dumps(record(50)._asdict()) + "\n")
    (spill / f"pred-{os.getpid()}-3.jsonl.open-{os.getpid()}").write_text(json.dumps(record(60)._asdict()) + "\n")
    assert spill_recover_stale(spill) == 2
    result = spill_replay(spill)
    assert result["records"] == 4 and result["unreadable_lines"] == 1
    assert spill_pending(spill)["open_files"] == 1  # our own open file is left alone
    assert spill_pending(spill)["rejected_records"] == 1
    assert PredictionLog.objects.count() == 4


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_written(tmp_path):
    spill = tmp_path / "spill"
    logger = PredictionLogger(spill_dir=spill, batch=10)
    logger.append(record(1))
    logger.append(record(2, viewer_id=2**70))  # out of bigint range: a data error, not an outage
    logger.append(record(3))
    result = logger.flush()
    assert result == {"written": 2, "spilled": 0, "rejected": 1}
    assert spill_pending(spill)["rejected_records"] == 1
    assert PredictionLog.objects.count() == 2


def test_a_buffer_beyond_its_bound_spills_the_excess(tmp_path):
    spill = tmp_path / "spill"
    logger = PredictionLogger(spill_dir=spill, batch=100, max_buffer=5)
    records = [record(n) for n in range(12)]
    for r in records:
        logger.append(r)
    result = logger.flush()
    assert result == {"written": 5, "spilled": 7, "rejected": 0}
    logger._spill.close()
    assert spill_replay(spill)["records"] == 7
    assert PredictionLog.objects.count() == 12
