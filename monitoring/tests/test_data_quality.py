"""Data-quality reports: quarantine by reason, missing and out-of-range values, duplicates, unknown
ids, late and out-of-order events, freshness — and "no data" for an empty window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.services.data_quality import data_quality_report_create
from monitoring.tests.factories import rating_event, request_line, watch
from recommender.ingest.services import ingest_lines
from recommender.models import Movie, RatingEvent, RecommendationRequest, Viewer, WatchSession

pytestmark = pytest.mark.django_db


def test_an_empty_window_is_no_data_not_ok(catalog, t0):
    report = data_quality_report_create(since=t0, until=t0 + timedelta(hours=1), now=t0 + timedelta(hours=1))
    assert report.status == "no_data" and report.events == 0 and report.quarantine_rate is None


def test_a_clean_window_is_ok(catalog, t0):
    movies, viewers = catalog
    RatingEvent.objects.bulk_create([rating_event(viewer=viewers[i], movie=movies[i], rating=1 + i % 5,
                                                  time=t0 + timedelta(minutes=i)) for i in range(30)])
    WatchSession.objects.bulk_create([watch(viewer=viewers[i], movie=movies[i], started_at=t0 + timedelta(minutes=i))
                                      for i in range(30)])
    report = data_quality_report_create(since=t0, until=t0 + timedelta(hours=1), now=t0 + timedelta(hours=1))
    assert report.status == "ok", report.issues
    assert report.sections["freshness"]["seconds_since_last"]["rating"] == pytest.approx(31 * 60)


def test_every_kind_of_problem_is_counted_and_named(catalog, t0):
    movies, viewers = catalog
    now = timezone.now()
    # Ratings arriving out of order, one of them 20 minutes late, and one stored twice
    times = [now - timedelta(minutes=m) for m in (10, 9, 8, 30, 7)]
    rows = [rating_event(viewer=viewers[i], movie=movies[i], rating=4, time=t) for i, t in enumerate(times)]
    rows.append(rating_event(viewer=viewers[0], movie=movies[0], rating=4, time=times[0]))
    RatingEvent.objects.bulk_create(rows)
    # A viewer and a movie the stream named before their metadata arrived, and bad metadata
    Viewer.objects.create(id=999, age=None)
    Movie.objects.create(id="mystery+film+", runtime=None)
    Viewer.objects.filter(id=viewers[1]).update(age=140)
    Movie.objects.filter(id=movies[2]).update(runtime=0, year=2300)
    RatingEvent.objects.create(viewer_id=999, movie_id="mystery+film+", rating=3, time=now - timedelta(minutes=5))
    WatchSession.objects.create(**{k: v for k, v in watch(viewer=viewers[3], movie=movies[3],
                                                          started_at=now - timedelta(minutes=6), minutes=400)
                                   .__dict__.items() if not k.startswith("_") and k != "id"})
    RecommendationRequest.objects.bulk_create([request_line(time=now - timedelta(minutes=4), viewer=viewers[4],
                                                            items=["no+such+movie+1999", movies[0]])])
    # A stream where 3 lines in 5 are malformed, through the real ingestion (its counters feed the rate)
    stamp = (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")
    lines = []
    for i in range(20):
        lines += [f"{stamp},{viewers[i]},GET /rate/{movies[10]}=7", f"{stamp},{viewers[i]},GET /browse/home",
                  f"{stamp},{viewers[10]},GET /rate/{movies[i]}={1 + i % 5}",
                  f"{stamp},{viewers[11]},GET /data/m/{movies[i]}/0.mpg", f"{stamp}-{i},garbage"]
    summary = ingest_lines(lines=lines, source="test-stream")
    assert summary.quarantined_total == 60
    report = data_quality_report_create(since=now - timedelta(hours=1), until=now + timedelta(seconds=1), now=now)
    s = report.sections
    assert report.status == "issues"
    assert sum(s["quarantine"]["by_reason"].values()) == 60 and len(s["quarantine"]["by_reason"]) >= 2
    assert report.quarantined == 60 and report.quarantine_rate == pytest.approx(0.6)
    assert s["duplicates"]["rating_events"] == 1
    assert s["late"]["ratings"]["out_of_order"] >= 1 and s["late"]["ratings"]["late"] == 1
    assert s["unknown_ids"]["viewers_without_metadata"] == 1 and s["unknown_ids"]["movies_without_metadata"] == 1
    assert s["unknown_ids"]["recommended_ids_not_in_catalog"] == 1
    assert s["out_of_range"]["viewer_age"] == 1 and s["out_of_range"]["movie_runtime"] == 1
    assert s["out_of_range"]["watch_minute_beyond_runtime"] == 1
    assert s["metadata"]["movie_year_out_of_range"] == 1
    text = " | ".join(report.issues)
    for expected in ("quarantine rate", "duplicate rating events", "arrived late", "not in the catalog",
                     "out-of-range value(s): viewer age"):
        assert expected in text, text


def test_the_quarantine_rate_is_by_arrival_not_by_event_time(catalog):
    """A backfill of a week of old events with 1 bad line in 100 is a 1% rate, although all its
    quarantined lines arrived in the last hour and most of its events are days old."""
    from monitoring.services.metrics import metric_evaluate

    movies, viewers = catalog
    now = timezone.now()
    lines = []
    for i in range(990):
        stamp = (now - timedelta(days=7) + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%S")
        lines.append(f"{stamp},{viewers[i % 60]},GET /rate/{movies[i % 40]}={1 + i % 5}")
    lines += [f"{now:%Y-%m-%dT%H:%M:%S},{viewers[i]},GET /browse/home" for i in range(10)]
    ingest_lines(lines=lines, source="backfill")
    report = data_quality_report_create(since=now - timedelta(hours=1), until=now + timedelta(seconds=5), now=now)
    assert report.quarantine_rate == pytest.approx(0.01)
    assert not [i for i in report.issues if "quarantine" in i]
    value = metric_evaluate(metric="quarantine_rate", since=now - timedelta(hours=1), until=now, params={})
    assert value.value == pytest.approx(0.01)
    # The next hour's rate counts from this report's counters: nothing arrived, so no data
    later = now + timedelta(hours=1)
    assert metric_evaluate(metric="quarantine_rate", since=now + timedelta(minutes=1), until=later,
                           params={}).value is None
