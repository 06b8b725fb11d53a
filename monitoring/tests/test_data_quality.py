"""Data-quality reports: quarantine by reason, missing and out-of-range values, duplicates, unknown
ids, late and out-of-order events, freshness — and "no data" for an empty window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.services.data_quality import data_quality_report_create
from monitoring.tests.factories import rating_event, request_line, watch
from recommender.models import Movie, QuarantinedLine, RatingEvent, RecommendationRequest, Viewer, WatchSession

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
    # Quarantined lines (placed in the window by when they were quarantined)
    QuarantinedLine.objects.bulk_create(
        [QuarantinedLine(source="file:x", raw="garbage", reason="unknown line type", reason_code="unknown_line")] * 60
        + [QuarantinedLine(source="file:x", raw="r=7", reason="rating 7 outside 1–5", reason_code="bad_rating")] * 40
    )
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
    report = data_quality_report_create(since=now - timedelta(hours=1), until=now + timedelta(seconds=1), now=now)
    s = report.sections
    assert report.status == "issues"
    assert s["quarantine"]["by_reason"] == {"unknown_line": 60, "bad_rating": 40}
    assert report.quarantined == 100 and 0 < report.quarantine_rate < 1
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
