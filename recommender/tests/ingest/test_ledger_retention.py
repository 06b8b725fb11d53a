"""Retention of the de-duplication ledger: the ingest day column, ingest_ledger_prune, its task and schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from portal.models import ActivityLogEntry
from recommender.ingest.services import ingest_ledger_prune, ingest_lines, line_digest
from recommender.models import IngestedLine, RatingEvent

MIGRATION = ("recommender", "0010_ingest_ledger_retention")
TASK = "recommender.ingest.ledger_prune"


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def rating(n: int, year: int = 2022) -> str:
    return f"{year}-02-25T13:{n % 60:02d}:{n // 60:02d},{1000 + n},GET /rate/audition+1999={1 + n % 5}"


def set_ingest_day(lines: list[str], day: date) -> None:
    IngestedLine.objects.filter(digest__in=[line_digest(line) for line in lines]).update(ingested_on=day)


def ingest_day_of(line: str) -> date:
    return IngestedLine.objects.get(digest=line_digest(line)).ingested_on


@pytest.fixture
def retention(settings):
    def set_days(days: int) -> None:
        settings.RECOMMENDER = {**settings.RECOMMENDER, "INGEST_LEDGER_RETENTION_DAYS": days}

    set_days(30)
    return set_days


@pytest.mark.django_db
def test_a_new_ledger_row_holds_the_utc_day_it_was_written() -> None:
    ingest_lines(lines=[rating(0), "garbage"], source="s")

    today = datetime.now(UTC).date()
    # The database's default fills it for stored and quarantined lines alike (around midnight
    # the database may already be on the next day).
    assert {ingest_day_of(rating(0)), ingest_day_of("garbage")} <= {today, today + timedelta(days=1)}


@pytest.mark.django_db
def test_prune_removes_only_rows_written_before_the_retention(retention) -> None:
    # Given rows written 31, 30 and 0 days before the prune day
    today = date(2026, 3, 31)
    old, edge, fresh = rating(1), rating(2), rating(3)
    ingest_lines(lines=[old, edge, fresh], source="s")
    set_ingest_day([old], today - timedelta(days=31))
    set_ingest_day([edge], today - timedelta(days=30))
    set_ingest_day([fresh], today)

    # When the ledger is pruned with a 30-day retention
    removed = ingest_ledger_prune(now=noon(today))

    # Then only the row older than 30 full days is gone; the stored events are untouched
    assert removed == 1
    assert set(IngestedLine.objects.values_list("ingested_on", flat=True)) == {today - timedelta(days=30), today}
    assert RatingEvent.objects.count() == 3


@pytest.mark.django_db
def test_a_redelivered_line_inside_the_retention_is_still_a_duplicate(retention) -> None:
    line = rating(4)
    ingest_lines(lines=[line], source="first")
    written = ingest_day_of(line)

    assert ingest_ledger_prune(now=noon(written + timedelta(days=30))) == 0
    again = ingest_lines(lines=[line], source="again")

    assert again.duplicates == 1 and again.stored_total == 0
    assert RatingEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_line_redelivered_past_the_retention_is_stored_again(retention) -> None:
    line = rating(5)
    ingest_lines(lines=[line], source="first")
    written = ingest_day_of(line)

    assert ingest_ledger_prune(now=noon(written + timedelta(days=31))) == 1
    again = ingest_lines(lines=[line], source="again")

    # The documented trade-off: the ledger no longer knows the line, so it counts as new.
    assert again.duplicates == 0 and again.stored["rating"] == 1
    assert RatingEvent.objects.count() == 2
    assert IngestedLine.objects.filter(digest=line_digest(line)).exists()


@pytest.mark.django_db
def test_a_replay_of_old_history_stays_idempotent_within_a_run_and_across_runs(retention) -> None:
    # Given a backfill of 1998 events (older than any retention), some repeated inside the run
    history = [rating(n, year=1998) for n in range(40)]
    first = ingest_lines(lines=history + history[:10], source="backfill", batch_size=7)
    assert first.stored["rating"] == 40 and first.duplicates == 10

    # When the daily prune runs, and the backfill is replayed
    assert ingest_ledger_prune() == 0
    second = ingest_lines(lines=history, source="backfill", batch_size=7)

    # Then nothing is stored twice: the ledger ages rows by ingest day, not by event day
    assert second.duplicates == 40 and second.stored_total == 0
    assert RatingEvent.objects.count() == 40


@pytest.mark.django_db
def test_retention_zero_prunes_nothing(retention) -> None:
    retention(0)
    lines = [rating(n) for n in range(3)]
    ingest_lines(lines=lines, source="s")
    set_ingest_day(lines, date(2000, 1, 1))

    assert ingest_ledger_prune() == 0

    assert IngestedLine.objects.count() == 3
    entry = ActivityLogEntry.objects.get(action="events.ledger_pruned")
    assert entry.data == {"removed": 0, "retention_days": 0, "cutoff": None, "statements": 0}


@pytest.mark.django_db
def test_prune_deletes_in_bounded_batches(retention) -> None:
    # Given 25 old rows and 2 recent ones
    old = [rating(n) for n in range(25)]
    recent = [rating(n) for n in range(100, 102)]
    ingest_lines(lines=old + recent, source="s")
    set_ingest_day(old, date(2026, 1, 1))
    set_ingest_day(recent, date(2026, 3, 1))

    # When pruning ten rows per statement
    with CaptureQueriesContext(connection) as queries:
        removed = ingest_ledger_prune(now=noon(date(2026, 3, 2)), batch_size=10)

    # Then three DELETEs (10, 10, 5), each limited to ten rows, removed the old rows
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert removed == 25 and len(deletes) == 3
    assert all("LIMIT 10" in sql for sql in deletes)
    assert IngestedLine.objects.count() == 2
    assert ActivityLogEntry.objects.get(action="events.ledger_pruned").data["statements"] == 3


@pytest.mark.django_db
def test_prune_writes_one_activity_log_entry_with_the_number_removed(retention) -> None:
    lines = [rating(n) for n in range(4)]
    ingest_lines(lines=lines, source="s")
    set_ingest_day(lines[:3], date(2026, 1, 1))

    ingest_ledger_prune(now=noon(date(2026, 3, 2)))

    entry = ActivityLogEntry.objects.get(action="events.ledger_pruned")
    assert entry.actor_id is None and entry.actor_label == f"system:{TASK}"
    assert entry.target_type == "recommender.ingestedline"
    assert entry.data == {"removed": 3, "retention_days": 30, "cutoff": "2026-01-31", "statements": 1}


@pytest.mark.django_db
def test_the_task_prunes_with_the_configured_retention(retention) -> None:
    from recommender.ingest.tasks import ledger_prune

    retention(1)
    lines = [rating(n) for n in range(2)]
    ingest_lines(lines=lines, source="s")
    set_ingest_day(lines[:1], datetime.now(UTC).date() - timedelta(days=5))

    assert ledger_prune() == 1
    assert IngestedLine.objects.count() == 1


@pytest.mark.django_db
def test_the_migration_seeds_a_daily_beat_schedule() -> None:
    from django_celery_beat.models import PeriodicTask

    from portal.celery import app

    task = PeriodicTask.objects.get(name=TASK)
    assert task.task == TASK and task.enabled and task.interval is None
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.day_of_week) == ("47", "3", "*", "*")
    assert str(crontab.timezone) == "UTC"
    app.loader.import_default_modules()
    assert TASK in app.tasks


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_rows_the_day_it_runs() -> None:
    # Given a ledger from before the migration
    executor = MigrationExecutor(connection)
    parent = next(dep for dep in executor.loader.graph.node_map[MIGRATION].parents if dep.key[0] == "recommender")
    executor.migrate([parent.key])
    digest = line_digest(rating(6))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IngestedLine._meta.db_table} (digest, kind) VALUES (%s, 'r')",
            [IngestedLine._meta.pk.get_db_prep_value(digest, connection)],
        )
    before = datetime.now(UTC).date()

    # When it is applied
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("recommender"))

    # Then the old row holds today, so it is kept for one full retention period
    assert ingest_day_of(rating(6)) in {before, before + timedelta(days=1)}


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_copy_path_writes_the_utc_day_whatever_the_session_time_zone() -> None:
    # Given a session whose time zone is already on tomorrow's date for much of the UTC day
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'Pacific/Kiritimati'")  # UTC+14
        cursor.execute("SELECT (now() AT TIME ZONE 'UTC')::date")
        utc_day = cursor.fetchone()[0]

    # When lines go through the COPY + INSERT … SELECT path
    summary = ingest_lines(lines=[rating(7), rating(8), "garbage"], source="pg")

    # Then every ledger row holds the UTC day, from the column default
    assert summary.stored["rating"] == 2 and summary.quarantined_total == 1
    assert set(IngestedLine.objects.values_list("ingested_on", flat=True)) == {utc_day}


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_prune_walks_the_ingest_day_index(retention) -> None:
    lines = [rating(n) for n in range(5)]
    ingest_lines(lines=lines, source="pg")
    set_ingest_day(lines[:2], date(2026, 1, 1))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [IngestedLine._meta.db_table, "%(ingested_on)%"],
        )
        assert cursor.fetchall(), "no index on ingested_on"
        cursor.execute(
            "SELECT column_default FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [IngestedLine._meta.db_table, "ingested_on"],
        )
        assert "AT TIME ZONE 'UTC'" in cursor.fetchone()[0]

    assert ingest_ledger_prune(now=noon(date(2026, 3, 2)), batch_size=1) == 2
    assert IngestedLine.objects.count() == 3
