"""ingest_lines: storing, quarantining, de-duplication, latest ratings, watch sessions, atomic batches."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender import models
from recommender.ingest.parser import WatchEvent, format_watch
from recommender.ingest.services import IngestSummary, ingest_lines
from recommender.ingest.sessions import minutes_to_ranges, ranges_to_minutes

T0 = datetime(2022, 2, 25, 13, 0, tzinfo=UTC)

MIXED = [
    "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3",
    "2022-02-25T13:39,284508,GET /data/m/monsters_+inc.+2001/0.mpg",
    "2022-02-25T13:40:00.5,284508,GET /data/m/monsters_+inc.+2001/1.mpg",
    "2022-02-25T13:41:02.123456789,7,recommendation request s1:8082, status 200, result: a+1999, plynimurikauppiaat+, 45 ms",
    "2022-02-25T13:41:03,7,recommendation request s1:8082, status 0, result: java.net.ConnectException: refused, x: y, 600 ms",
    "2022-02-25T13:41,284508,GET /rate/audition+1999=7",
    "2022-13-01T00:00,1,GET /rate/x=1",
    "garbage",
    "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3",  # a duplicate of line 1
]


def watch(user: int, movie: str, minutes_after: float, minute: int) -> str:
    return format_watch(WatchEvent(T0 + timedelta(minutes=minutes_after), user, movie, minute))


@pytest.mark.django_db
def test_mixed_batch_stores_valid_lines_and_quarantines_the_rest() -> None:
    summary = ingest_lines(lines=MIXED, source="test-file")

    assert isinstance(summary, IngestSummary)
    assert summary.as_dict() == {
        "lines_read": 9,
        "stored": {"rating": 1, "watch": 2, "recommendation": 2},
        "stored_total": 5,
        "duplicates": 1,
        "quarantined": {"bad_timestamp": 1, "missing_fields": 1, "rating_out_of_range": 1},
        "quarantined_total": 3,
    }
    assert models.RatingEvent.objects.count() == 1 and models.Rating.objects.get().rating == 3
    requests = {r.status: r for r in models.RecommendationRequest.objects.all()}
    assert requests[200].movie_ids == ["a+1999", "plynimurikauppiaat+"] and requests[200].response_ms == 45
    assert requests[0].error == "java.net.ConnectException: refused, x: y" and requests[0].movie_ids == []
    quarantined = {q.position: (q.reason, q.reason_code, q.source) for q in models.QuarantinedLine.objects.all()}
    assert quarantined == {
        "6": ("rating 7 outside 1–5", "rating_out_of_range", "test-file"),
        "7": ("bad timestamp '2022-13-01T00:00'", "bad_timestamp", "test-file"),
        "8": ("missing fields: expected <time>,<userid>,<request>", "missing_fields", "test-file"),
    }
    # stubs for everything the stream named, recommendation results included
    assert set(models.Viewer.objects.values_list("id", flat=True)) == {284508, 7}
    assert set(models.Movie.objects.values_list("id", flat=True)) == {
        "audition+1999",
        "monsters_+inc.+2001",
        "a+1999",
        "plynimurikauppiaat+",
    }
    assert all(m.enriched_at is None for m in models.Movie.objects.all())
    source = models.IngestSource.objects.get(name="test-file")
    assert (source.lines_read, source.lines_stored, source.duplicates, source.quarantined) == (9, 5, 1, 3)
    assert source.position == "9" and source.kind == "file"
    assert source.last_event_time == datetime(2022, 2, 25, 13, 41, 3, tzinfo=UTC)


@pytest.mark.django_db
def test_redelivered_lines_count_once_whatever_the_source_and_batching() -> None:
    ingest_lines(lines=MIXED, source="a", batch_size=4)
    counts = (
        models.RatingEvent.objects.count(),
        models.WatchSession.objects.get().minutes_watched,
        models.RecommendationRequest.objects.count(),
        models.QuarantinedLine.objects.count(),
        models.IngestedLine.objects.count(),
    )

    again = ingest_lines(lines=MIXED, source="b", batch_size=2)

    assert again.stored_total == 0 and again.quarantined_total == 0 and again.duplicates == len(MIXED)
    assert counts == (1, 2, 2, 3, 8)
    assert (
        models.RatingEvent.objects.count(),
        models.WatchSession.objects.get().minutes_watched,
        models.RecommendationRequest.objects.count(),
        models.QuarantinedLine.objects.count(),
        models.IngestedLine.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_latest_rating_by_event_time_wins_and_history_is_kept() -> None:
    ingest_lines(lines=["2022-03-01T10:00,1,GET /rate/up+2000=5"], source="s")
    ingest_lines(lines=["2022-02-01T10:00,1,GET /rate/up+2000=1"], source="s")  # older, arrives late
    assert models.Rating.objects.get().rating == 5
    ingest_lines(lines=["2022-04-01T10:00,1,GET /rate/up+2000=2", "2022-03-15T10:00,1,GET /rate/up+2000=4"], source="s")
    rating = models.Rating.objects.get()
    assert (rating.rating, rating.time) == (2, datetime(2022, 4, 1, 10, tzinfo=UTC))
    assert sorted(models.RatingEvent.objects.values_list("rating", flat=True)) == [1, 2, 4, 5]


@pytest.mark.django_db
def test_watch_session_rule_gap_starts_new_session_and_late_line_merges() -> None:
    lines = [watch(1, "m", 0, 0), watch(1, "m", 1, 1), watch(1, "m", 2, 2), watch(1, "m", 80, 40)]
    ingest_lines(lines=lines, source="s")
    sessions = list(
        models.WatchSession.objects.order_by("started_at").values_list("first_minute", "highest_minute", "minutes_watched")
    )
    assert sessions == [(0, 2, 3), (40, 40, 1)]

    # lines filling the gap arrive later, in another batch: the two sessions become one
    ingest_lines(lines=[watch(1, "m", 30, 20), watch(1, "m", 55, 30)], source="s")
    session = models.WatchSession.objects.get()
    assert (session.first_minute, session.last_minute, session.highest_minute, session.minutes_watched) == (
        0,
        40,
        40,
        6,
    )
    assert session.started_at == T0 and session.last_seen_at == T0 + timedelta(minutes=80)
    assert ranges_to_minutes(session.minutes_seen) == {0, 1, 2, 20, 30, 40}


@pytest.mark.django_db
def test_the_same_minute_streamed_again_does_not_inflate_minutes() -> None:
    ingest_lines(lines=[watch(1, "m", 0, 10), watch(1, "m", 1, 11), watch(1, "m", 2, 10)], source="s")
    ingest_lines(lines=[watch(1, "m", 3, 11), watch(1, "m", 1, 11)], source="s")
    session = models.WatchSession.objects.get()
    assert (session.minutes_watched, session.minutes_seen, session.last_minute) == (2, "10-11", 11)


def test_minute_ranges_round_trip() -> None:
    assert minutes_to_ranges({5, 0, 1, 2, 9, 10}) == "0-2,5,9-10"
    assert ranges_to_minutes("0-2,5,9-10") == {0, 1, 2, 5, 9, 10}
    assert minutes_to_ranges([]) == "" and ranges_to_minutes("") == set()


class _Rollback(Exception):
    pass


def _sessions() -> list[tuple]:
    columns = ["viewer_id", "movie_id", "started_at", "last_seen_at", "first_minute", "last_minute",
               "highest_minute", "minutes_watched", "minutes_seen"]
    return sorted(models.WatchSession.objects.values_list(*columns))


watch_lines = st.lists(
    st.tuples(st.integers(1, 2), st.sampled_from(["m+1", "n+2"]), st.integers(0, 240), st.integers(0, 60)),
    min_size=1,
    max_size=40,
).map(lambda rows: [watch(u, m, t, minute) for u, m, t, minute in rows])


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=watch_lines, seed=st.integers(0, 2**32 - 1), batch_size=st.integers(1, 7))
def test_sessions_do_not_depend_on_arrival_order_or_batching(lines: list[str], seed: int, batch_size: int) -> None:
    def build(order: list[str], size: int) -> list[tuple]:
        try:
            with transaction.atomic():
                ingest_lines(lines=order, source="p", batch_size=size)
                result = _sessions()
                raise _Rollback
        except _Rollback:
            return result

    in_order = build(sorted(lines), 1000)
    shuffled = list(lines) * 2  # every line delivered twice, too
    random.Random(seed).shuffle(shuffled)
    assert build(shuffled, batch_size) == in_order


def _install_failing_trigger() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION usher_test_boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.server = 'boom' THEN RAISE EXCEPTION 'boom from the database'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER usher_test_boom BEFORE INSERT ON recommender_recommendationrequest "
                "FOR EACH ROW EXECUTE FUNCTION usher_test_boom()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER usher_test_boom BEFORE INSERT ON recommender_recommendationrequest "
                "WHEN NEW.server = 'boom' BEGIN SELECT RAISE(ABORT, 'boom from the database'); END"
            )


@pytest.mark.django_db
def test_a_failing_batch_writes_nothing_and_the_source_records_the_error() -> None:
    _install_failing_trigger()
    ok_batch = ["2022-02-25T13:00,1,GET /rate/a+1=3", "2022-02-25T13:00,1,GET /data/m/a+1/0.mpg", "x", "y"]
    bad_batch = [  # one batch of the same size as the first
        "2022-02-25T13:01,2,GET /rate/b+1=4",
        "2022-02-25T13:02,2,GET /data/m/b+1/0.mpg",
        "nonsense",
        "2022-02-25T13:03,2,recommendation request boom, status 200, result: a+1, 5 ms",
    ]
    with pytest.raises(Exception, match="boom from the database"):
        ingest_lines(lines=ok_batch + bad_batch, source="s", batch_size=len(ok_batch))
    # the first batch committed; nothing of the failing batch did
    assert models.RatingEvent.objects.count() == 1
    assert not models.Viewer.objects.filter(id=2).exists()
    assert models.IngestedLine.objects.count() == 4
    assert models.WatchSession.objects.count() == 1 and models.QuarantinedLine.objects.count() == 2
    source = models.IngestSource.objects.get(name="s")
    assert source.lines_read == 4 and "boom from the database" in source.last_error and source.last_error_at


@pytest.mark.django_db
def test_unstorable_text_is_cleaned_not_fatal() -> None:
    summary = ingest_lines(
        lines=["bad\x00line \udc80", "2022-02-25T13:03,2,recommendation request s, status 0, result: a\x00b, 5 ms"],
        source="s",
    )
    assert summary.quarantined == {"missing_fields": 1} and summary.stored["recommendation"] == 1
    assert "\x00" not in models.QuarantinedLine.objects.get().raw
    assert models.RecommendationRequest.objects.get().error == "a\ufffdb"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_consumers_store_each_line_once() -> None:
    lines = [watch(u, f"m+{u % 7}", t, t) for u in range(30) for t in range(20)]
    lines += [f"2022-02-25T13:{t:02d},{u},GET /rate/m+{u % 7}={1 + t % 5}" for u in range(30) for t in range(20)]
    errors: list[BaseException] = []

    def run(order: list[str]) -> None:
        try:
            ingest_lines(lines=order, source="threads", batch_size=97)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    orders = [list(lines), list(reversed(lines)), random.Random(3).sample(lines, len(lines))]
    threads = [threading.Thread(target=run, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    source = models.IngestSource.objects.get(name="threads")
    assert source.lines_read == 3 * len(lines)
    assert source.lines_stored == len(lines) and source.duplicates == 2 * len(lines)
    assert models.RatingEvent.objects.count() == 600 and models.IngestedLine.objects.count() == 1200
    assert sum(models.WatchSession.objects.values_list("minutes_watched", flat=True)) == 600
