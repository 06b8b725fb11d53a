"""Online quality: one definition — a served list succeeds when its viewer starts watching one of
its movies within the window — with successes and trials for statistical tests."""

from datetime import timedelta

import pytest

from monitoring.services.quality import online_quality
from monitoring.tests.factories import prediction, request_line, watch
from portal.errors import ValidationError
from recommender.models import Rating, RecommendationRequest, WatchSession

pytestmark = pytest.mark.django_db
A, B, C = "movie+1+2000", "movie+2+2000", "movie+3+2000"


def _serve(t, viewer, items):
    return request_line(time=t, viewer=viewer, items=items)


def test_success_needs_the_same_viewer_a_listed_movie_and_a_start_inside_the_window(catalog, t0):
    RecommendationRequest.objects.bulk_create([
        _serve(t0, 1, [A, B]),                       # watched B 10 min later: success
        _serve(t0, 2, [A, B]),                       # watched B 45 min later: too late
        _serve(t0, 3, [A, B]),                       # watched C (not listed): failure
        _serve(t0, 4, [A, B]),                       # viewer 5 watched A: not this viewer's
        _serve(t0, 6, [A, B]),                       # started A 5 min *before* the list: failure
        request_line(time=t0, viewer=7, status=0),   # an error is not a served list
    ])
    WatchSession.objects.bulk_create([
        watch(viewer=1, movie=B, started_at=t0 + timedelta(minutes=10)),
        watch(viewer=2, movie=B, started_at=t0 + timedelta(minutes=45)),
        watch(viewer=3, movie=C, started_at=t0 + timedelta(minutes=5)),
        watch(viewer=5, movie=A, started_at=t0 + timedelta(minutes=5)),
        watch(viewer=6, movie=A, started_at=t0 - timedelta(minutes=5)),
    ])
    [group] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), source="client",
                             now=t0 + timedelta(hours=2))
    assert (group.trials, group.successes) == (5, 1)
    assert group.rate == pytest.approx(0.2)
    # A wider window turns viewer 2's late start into a success.
    [wide] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), source="client",
                            window_minutes=60, now=t0 + timedelta(hours=2))
    assert wide.successes == 2


def test_lists_whose_window_is_still_open_are_not_counted_yet(catalog, t0):
    RecommendationRequest.objects.bulk_create([_serve(t0, 1, [A]), _serve(t0 + timedelta(minutes=50), 2, [A])])
    groups = online_quality(since=t0, until=t0 + timedelta(hours=1), group_by=(), source="client",
                            now=t0 + timedelta(minutes=60))
    assert groups[0].trials == 1  # the list served 10 minutes ago still has 20 minutes to go
    everything = online_quality(since=t0, until=t0 + timedelta(hours=1), group_by=(), source="client",
                                now=t0 + timedelta(minutes=60), complete_only=False)
    assert everything[0].trials == 2


def test_no_lists_is_no_data_not_zero(catalog, t0):
    assert online_quality(since=t0, until=t0 + timedelta(hours=1), source="client", now=t0 + timedelta(days=1)) == []


def test_mean_rating_of_recommended_then_watched_movies(catalog, t0):
    RecommendationRequest.objects.bulk_create([_serve(t0, 1, [A, B]), _serve(t0, 2, [A])])
    WatchSession.objects.bulk_create([watch(viewer=1, movie=B, started_at=t0 + timedelta(minutes=2)),
                                      watch(viewer=2, movie=A, started_at=t0 + timedelta(minutes=2))])
    Rating.objects.create(viewer_id=1, movie_id=B, rating=5, time=t0 + timedelta(minutes=40))
    Rating.objects.create(viewer_id=2, movie_id=A, rating=2, time=t0 + timedelta(minutes=50))
    Rating.objects.create(viewer_id=1, movie_id=A, rating=1, time=t0 + timedelta(minutes=50))  # not watched after
    [group] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), source="client",
                             now=t0 + timedelta(hours=2))
    assert group.successes == 2 and group.rated == 2 and group.mean_rating == pytest.approx(3.5)


def test_grouping_by_time_bucket(catalog, t0):
    RecommendationRequest.objects.bulk_create([_serve(t0, 1, [A]), _serve(t0 + timedelta(minutes=70), 2, [A]),
                                               _serve(t0 + timedelta(minutes=75), 3, [A])])
    WatchSession.objects.bulk_create([watch(viewer=3, movie=A, started_at=t0 + timedelta(minutes=80))])
    groups = online_quality(since=t0, until=t0 + timedelta(hours=2), group_by=("bucket",), bucket_minutes=60,
                            source="client", now=t0 + timedelta(hours=3))
    assert [(g.key["bucket"], g.trials, g.successes) for g in groups] == [
        (t0, 1, 0), (t0 + timedelta(hours=1), 2, 1)]


@pytest.mark.parametrize("kwargs, message", [
    ({"group_by": ("movie",)}, "cannot group"),
    ({"window_minutes": -5}, "positive"),
])
def test_bad_arguments_are_named(catalog, t0, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        online_quality(since=t0, until=t0 + timedelta(hours=1), **kwargs)


def test_per_model_version_and_arm_from_the_prediction_log(catalog, t0):
    from recommender.models.serving import PredictionLog

    rows = [prediction(time=t0, viewer=v, items=[A], version_id=1, arm="production") for v in (1, 2, 3, 4)]
    rows += [prediction(time=t0, viewer=v, items=[A], version_id=2, arm="canary") for v in (5, 6)]
    rows += [prediction(time=t0, viewer=8, items=[A], status=200, fallback="no_model", version_id=None)]
    PredictionLog.objects.bulk_create(rows)
    WatchSession.objects.bulk_create([watch(viewer=v, movie=A, started_at=t0 + timedelta(minutes=1))
                                      for v in (1, 5, 6)])
    groups = {(g.key["model_version_id"], g.key["arm"]): g for g in online_quality(
        since=t0, until=t0 + timedelta(minutes=1), now=t0 + timedelta(hours=1))}
    assert (groups[(1, "production")].trials, groups[(1, "production")].successes) == (4, 1)
    assert (groups[(2, "canary")].trials, groups[(2, "canary")].successes) == (2, 2)
    assert groups[(None, "production")].trials == 1
    only_canary = online_quality(since=t0, until=t0 + timedelta(minutes=1), now=t0 + timedelta(hours=1),
                                 arms=["canary"], group_by=("arm",))
    assert [(g.key, g.successes) for g in only_canary] == [({"arm": "canary"}, 2)]


def test_above_max_lists_a_sample_of_viewers_is_taken_whole(catalog, t0):
    # 60 viewers, each served once and watching when their id is even
    RecommendationRequest.objects.bulk_create([_serve(t0, v, [A]) for v in range(1, 61)])
    WatchSession.objects.bulk_create([watch(viewer=v, movie=A, started_at=t0 + timedelta(minutes=1))
                                      for v in range(2, 61, 2)])
    [full] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), source="client",
                            now=t0 + timedelta(hours=1))
    assert (full.trials, full.successes, full.sampled_one_in) == (60, 30, 1)
    [sample] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), source="client",
                              now=t0 + timedelta(hours=1), max_lists=20)
    # one viewer in 3 (ids 3, 6, …, 60): every sampled viewer's list and watch kept together
    assert sample.sampled_one_in == 3 and sample.trials == 20 and sample.successes == 10


def test_grouping_by_viewer_works_when_watched_movies_were_rated(catalog, t0):
    # The rating join once duplicated the viewer column and raised KeyError for this grouping.
    RecommendationRequest.objects.bulk_create([_serve(t0, 1, [A, B]), _serve(t0, 2, [A])])
    WatchSession.objects.bulk_create([watch(viewer=1, movie=B, started_at=t0 + timedelta(minutes=2))])
    Rating.objects.create(viewer_id=1, movie_id=B, rating=4, time=t0 + timedelta(minutes=40))
    groups = {g.key["viewer_id"]: g for g in online_quality(
        since=t0, until=t0 + timedelta(minutes=1), group_by=("viewer_id",), source="client",
        now=t0 + timedelta(hours=2))}
    assert (groups[1].successes, groups[1].rated, groups[1].mean_rating) == (1, 1, 4.0)
    assert (groups[2].trials, groups[2].successes, groups[2].rated) == (1, 0, 0)


def test_unit_moments_sum_each_groups_lists_per_viewer(catalog, t0):
    from recommender.models.serving import PredictionLog

    # production: viewer 1 gets 3 lists (2 followed), viewer 2 one list (not followed); canary: viewer 5, 2 lists.
    rows = [prediction(time=t0 + timedelta(seconds=i), viewer=1, items=[[A], [B], [C]][i], version_id=1,
                       arm="production") for i in range(3)]
    rows += [prediction(time=t0, viewer=2, items=[A], version_id=1, arm="production")]
    rows += [prediction(time=t0 + timedelta(seconds=i), viewer=5, items=[A], version_id=2, arm="canary")
             for i in range(2)]
    PredictionLog.objects.bulk_create(rows)
    WatchSession.objects.bulk_create([watch(viewer=1, movie=m, started_at=t0 + timedelta(minutes=3)) for m in (A, B)]
                                     + [watch(viewer=5, movie=A, started_at=t0 + timedelta(minutes=3))])
    groups = {g.key["arm"]: g for g in online_quality(
        since=t0, until=t0 + timedelta(minutes=1), group_by=("arm",), now=t0 + timedelta(hours=1), unit_moments=True)}
    assert (groups["production"].trials, groups["production"].successes) == (4, 2)
    # viewers (n, s): (3, 2) and (1, 0) → K 2, Σn² 10, Σs² 4, Σsn 6
    assert groups["production"].unit_moments == {"units": 2, "sum_trials_sq": 10, "sum_successes_sq": 4,
                                                 "sum_cross": 6}
    # viewer 5: both lists followed by the one watch → (2, 2)
    assert groups["canary"].unit_moments == {"units": 1, "sum_trials_sq": 4, "sum_successes_sq": 4, "sum_cross": 4}
    [overall] = online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=(), now=t0 + timedelta(hours=1),
                               unit_moments=True)
    assert overall.unit_moments["units"] == 3 and overall.unit_moments["sum_trials_sq"] == 14
    assert online_quality(since=t0, until=t0 + timedelta(minutes=1), group_by=("arm",),
                          now=t0 + timedelta(hours=1))[0].unit_moments is None
