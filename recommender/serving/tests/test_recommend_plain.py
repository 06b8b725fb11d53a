"""GET /recommend/<userid>: the platform's contract, exclusions, fallbacks and headers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from django.utils import timezone

from recommender.models import PredictionLog, WatchSession
from recommender.registry.artifacts import artifact_root
from recommender.serving.runtime import get_runtime
from recommender.serving.snapshot import snapshot_build
from recommender.serving.tests.conftest import (
    ITEM_IDS,
    database_unreachable,
    deploy,
    factor_arrays,
    make_version,
    rated_lately,
)
from recommender.tests.factories_training import MovieFactory, RatingFactory, ViewerFactory

pytestmark = pytest.mark.django_db


def build_snapshot():
    runtime = get_runtime()
    snapshot_build(root=runtime.config.snapshot_dir, fallback_size=50, window_days=14, half_life_days=3)
    runtime.refresh_snapshot()


def flush() -> None:
    get_runtime().predlog.flush()


@pytest.fixture
def catalog():
    return rated_lately([MovieFactory(id=m) for m in ITEM_IDS])


def test_answers_one_line_of_up_to_20_ids_best_first_with_headers(client, catalog):
    # Given a version in production
    version = make_version("v1")
    deploy(version)
    # When the platform asks for viewer 7
    response = client.get("/recommend/7")
    # Then one text line of 20 distinct catalog ids, in the model's order
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "\n" not in body
    items = body.split(",")
    assert len(items) == 20 and len(set(items)) == 20 and set(items) <= set(ITEM_IDS)
    expected = [m for m, _ in get_runtime().state.routes["production"].model.recommend(7, 20, [])]
    assert items == expected
    assert response["X-Model-Version"] == f"{version.registered_model.name} v{version.version}"
    assert len(response["X-Request-Id"]) == 32
    # And the answer is recorded once flushed
    flush()
    row = PredictionLog.objects.get(request_id=response["X-Request-Id"])
    assert (row.viewer_id, row.model_version_id, row.items, row.status, row.arm, row.endpoint) == (
        7, version.pk, items, 200, "production", "plain")
    assert row.fallback_reason == "" and row.latency_ms > 0


def test_watched_and_rated_movies_are_left_out_even_after_the_snapshot(client, catalog):
    deploy(make_version("v1"))
    runtime = get_runtime()
    first = client.get("/recommend/7").content.decode().split(",")
    # Given viewer 7 rated the top item and watched the second (before the snapshot) ...
    RatingFactory(viewer=ViewerFactory(id=7), movie=catalog[ITEM_IDS.index(first[0])], rating=5)
    now = timezone.now()
    WatchSession.objects.create(viewer_id=7, movie=catalog[ITEM_IDS.index(first[1])], started_at=now,
                                last_seen_at=now, first_minute=0, last_minute=3, highest_minute=3, minutes_watched=4)
    build_snapshot()
    # ... and rated the third after it (picked up by the delta poll)
    RatingFactory(viewer=ViewerFactory(id=7), movie=catalog[ITEM_IDS.index(first[2])], rating=2)
    runtime.delta.poll()
    # When asked again
    again = client.get("/recommend/7").content.decode().split(",")
    # Then none of the three comes back, and the list is still full
    assert not set(first[:3]) & set(again)
    assert len(again) == 20
    assert again[:17] == [m for m in first[3:] if m not in first[:3]][:17]


def test_unknown_viewer_gets_popular_and_recent_fallback(client, catalog):
    deploy(make_version("v1"))
    build_snapshot()
    response = client.get("/recommend/999999")
    assert response.status_code == 200
    items = response.content.decode().split(",")
    assert items[:2] == [ITEM_IDS[39], ITEM_IDS[38]]
    assert response["X-Model-Version"] == "fallback"
    flush()
    row = PredictionLog.objects.get(request_id=response["X-Request-Id"])
    assert row.fallback_reason == "unknown_viewer"


def test_fallback_leaves_out_what_a_new_viewer_already_saw(client, catalog):
    deploy(make_version("v1"))
    build_snapshot()
    # viewer 100 is not in the model but rated movie 39 and 38 (catalog fixture)
    items = client.get("/recommend/100").content.decode().split(",")
    assert ITEM_IDS[39] not in items and ITEM_IDS[38] not in items


@pytest.mark.parametrize("raw", ["abc", "12a", "1.5", "%20", "0x10", "99999999999999999999", "1_000", "\u0663"])
def test_non_integer_id_is_a_one_line_400(client, raw):
    response = client.get(f"/recommend/{raw}")
    assert response.status_code == 400
    body = response.content.decode()
    assert "\n" not in body and ("integer" in body or "range" in body)
    flush()
    assert PredictionLog.objects.get(request_id=response["X-Request-Id"]).status == 400


def test_missing_id_is_a_400_and_post_is_a_405(client):
    assert client.get("/recommend/").status_code == 400
    response = client.post("/recommend/5")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_no_model_in_production_serves_the_fallback(client, catalog):
    build_snapshot()
    response = client.get("/recommend/7")
    assert response.status_code == 200
    assert response.content.decode().split(",")[0] == ITEM_IDS[39]
    flush()
    assert PredictionLog.objects.get(request_id=response["X-Request-Id"]).fallback_reason == "no_model"


def test_fresh_install_with_nothing_at_all_answers_an_empty_line(client):
    response = client.get("/recommend/7")
    assert response.status_code == 200 and response.content == b""


def test_broken_artifact_keeps_the_last_good_model_serving(client, catalog):
    # Given v1 serving, then production moved to v2 whose artifact file was corrupted on disk
    v1 = make_version("v1", seed=1)
    deploy(v1)
    runtime = get_runtime()
    runtime.refresh_deployment()
    v2 = make_version("v2", seed=2)
    path = artifact_root() / v2.artifact_path / "item_factors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    deploy(v2)
    assert runtime.refresh_deployment() is True
    # Then v1 still answers, flagged as the last good model, and the load error is reported
    response = client.get("/recommend/7")
    assert response.status_code == 200
    assert response["X-Model-Version"].endswith(f"v{v1.version}")
    assert "sha256" in runtime.state.errors["production"]
    flush()
    row = PredictionLog.objects.get(request_id=response["X-Request-Id"])
    assert row.model_version_id == v1.pk and row.fallback_reason == "last_good_model"


def test_a_model_that_fails_while_scoring_falls_back_without_a_5xx(client, catalog):
    # item factors of the wrong width: loads fine, fails in the matrix product
    arrays = factor_arrays(seed=3)
    arrays["item_factors"] = np.ones((len(ITEM_IDS), 3), dtype=np.float32)
    deploy(make_version("bad", arrays=arrays))
    build_snapshot()
    response = client.get("/recommend/7")
    assert response.status_code == 200
    assert response.content.decode().split(",")[0] == ITEM_IDS[39]
    flush()
    row = PredictionLog.objects.get(request_id=response["X-Request-Id"])
    assert row.fallback_reason == "model_error" and "ValueError" in row.error


def test_missing_artifact_folder_with_nothing_good_before_serves_the_fallback(client, catalog):
    version = make_version("gone")
    shutil.rmtree(artifact_root() / version.artifact_path)
    deploy(version)
    response = client.get("/recommend/7")
    assert response.status_code == 200 and response["X-Model-Version"] == "fallback"


@pytest.mark.django_db(transaction=True)
def test_database_away_still_answers_from_memory_and_a_new_worker_uses_the_local_cache(client, catalog):
    from recommender.serving.runtime import Runtime

    version = make_version("v1")
    deploy(version)
    runtime = get_runtime()
    runtime.refresh_all()
    expected = client.get("/recommend/7").content
    with database_unreachable():
        from django.db import connections

        connections.close_all()
        # the running worker: answers from memory, the poll fails quietly
        with pytest.raises(Exception):  # noqa: B017 - the real driver error
            runtime.refresh_deployment()
        assert client.get("/recommend/7").content == expected
        # a worker starting now: no database, so the deployment cache file
        fresh = Runtime()
        fresh.refresh_all()
        assert fresh.state.source == "cache file"
        answer = fresh.recommend(7, 20)
        assert ",".join(answer.items).encode() == expected and answer.version.version_id == version.pk
    connections.close_all()


def test_head_request_has_headers_and_no_body(client, catalog):
    deploy(make_version("v1"))
    response = client.head("/recommend/7")
    assert response.status_code == 200 and response.content == b"" and response["X-Request-Id"]


def test_rate_limit_answers_429_with_retry_after(client, settings):
    from recommender.serving.runtime import runtime_reset

    settings.RECOMMENDER = {**settings.RECOMMENDER, "SERVING": {**settings.RECOMMENDER["SERVING"],
                                                                 "RECOMMEND_RATE": 0.5, "RECOMMEND_BURST": 3}}
    runtime_reset()
    codes = [client.get("/recommend/7").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    response = client.get("/recommend/7")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    # another client is not limited
    assert client.get("/recommend/7", REMOTE_ADDR="10.0.0.2").status_code == 200
