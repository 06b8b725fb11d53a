"""Never an empty answer: from the first request /readyz accepts, /recommend/<id> is a line of 1–20
catalog ids, the fallback's when nothing else knows the viewer — before the first seen-index snapshot
too. /healthz says the process answers; /readyz says it can answer the contract."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from recommender.models import Movie, PredictionLog
from recommender.serving.runtime import Runtime, get_runtime
from recommender.serving.snapshot import snapshot_build
from recommender.serving.tests.conftest import ITEM_IDS, database_unreachable, deploy, make_version, rated_lately
from recommender.tests.factories_training import MovieFactory

pytestmark = pytest.mark.django_db
UNKNOWN_VIEWER = 987654  # in no model, with no ratings


@pytest.fixture
def catalog():
    """40 movies, movie i with popularity i (metadata); movie 39 rated by many viewers lately, movie 38
    by fewer. No snapshot is built."""
    return rated_lately([MovieFactory(id=m, popularity=float(i)) for i, m in enumerate(ITEM_IDS)])


def _line(response) -> list[str]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return response.content.decode().split(",") if response.content else []


def test_before_the_first_snapshot_an_unknown_viewer_gets_the_popular_list(client, catalog):
    # Given a catalog, nothing deployed, and no seen-index snapshot yet
    assert get_runtime().snapshot.meta.get("empty")
    # When an unknown viewer asks, then the answer is the catalog's most popular 20, best first
    items = _line(client.get(f"/recommend/{UNKNOWN_VIEWER}"))
    assert items == ITEM_IDS[::-1][:20]
    get_runtime().predlog.flush()
    assert PredictionLog.objects.get(viewer_id=UNKNOWN_VIEWER).fallback_reason == "no_model"
    assert get_runtime().readiness()["fallback_source"] == "database (catalog popularity)"
    # And once the first snapshot is adopted, its popular-and-recent list takes over
    runtime = get_runtime()
    snapshot_build(root=runtime.config.snapshot_dir, fallback_size=50, window_days=14, half_life_days=3)
    runtime.refresh_snapshot()
    assert _line(client.get(f"/recommend/{UNKNOWN_VIEWER}")) == [ITEM_IDS[39], ITEM_IDS[38]]
    assert runtime.readiness()["fallback_source"] == "snapshot"


def test_with_a_model_but_no_snapshot_an_unknown_viewer_is_not_answered_with_nothing(client, catalog):
    deploy(make_version("v1"))
    items = _line(client.get(f"/recommend/{UNKNOWN_VIEWER}"))
    assert items[0] == ITEM_IDS[39] and 1 <= len(items) <= 20 and set(items) <= set(ITEM_IDS)


def test_a_catalog_with_no_events_and_no_popularity_still_gives_a_list(client, db):
    # Given movies whose metadata has no popularity, and no rating or watch yet
    for movie_id in ITEM_IDS[:25]:
        MovieFactory(id=movie_id, popularity=None)
    # Then an unknown viewer still gets 20 catalog ids
    items = _line(client.get(f"/recommend/{UNKNOWN_VIEWER}"))
    assert len(items) == 20 and set(items) <= set(ITEM_IDS[:25])


def test_a_viewer_who_saw_every_fallback_movie_gets_the_models_ranking_not_nothing(client, catalog):
    # Given viewer 100 (unknown to the model) has rated both movies of a two-movie fallback list
    deploy(make_version("v1"))
    runtime = get_runtime()
    snapshot_build(root=runtime.config.snapshot_dir, fallback_size=50, window_days=14, half_life_days=3)
    runtime.refresh_snapshot()
    assert [m for m, _ in runtime.snapshot.popular] == [ITEM_IDS[39], ITEM_IDS[38]]
    items = _line(client.get("/recommend/100"))
    assert items and ITEM_IDS[39] not in items and ITEM_IDS[38] not in items and set(items) <= set(ITEM_IDS)


@pytest.mark.django_db(transaction=True)
def test_a_worker_starting_without_the_database_uses_the_last_fallback_it_computed(catalog):
    # Given a worker that computed the start-up list once (and kept it under STATE_DIR)
    first = Runtime()
    first.refresh_all()
    expected = [m for m, _ in first.startup_fallback[:20]]
    assert expected[:2] == [ITEM_IDS[39], ITEM_IDS[38]]
    # When another starts while the database is away, with no snapshot and nothing deployed
    from django.db import connections

    with database_unreachable():
        connections.close_all()
        fresh = Runtime()
        fresh.refresh_all()
        # Then it answers from that copy and says it is ready
        assert fresh.recommend(UNKNOWN_VIEWER, 20).items == expected
        assert fresh.readiness()["ok"] and fresh.readiness()["fallback_source"].startswith("local copy")
    connections.close_all()


def test_readyz_includes_serving_and_is_ready_with_a_fallback(client, catalog):
    body = client.get("/readyz").json()
    assert body["ready"] is True and body["checks"]["serving"] == {"ok": True}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_while_serving_has_no_list_to_answer_with(client, catalog):
    # Given a worker whose start found no database and nothing on disk (no snapshot, no local copy,
    # no model): it cannot answer the contract yet
    runtime = get_runtime()
    from django.db import connections

    with database_unreachable():
        connections.close_all()
        runtime.refresh_all()
    connections.close_all()
    assert runtime.readiness()["ok"] is False and "fallback" in runtime.readiness()["error"]
    # When /readyz is asked (the database itself is back), then it is 503 naming serving
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["serving"] == {"ok": False} and response.json()["checks"]["database"]["ok"]
    # And once the worker's retry finds the database, it is ready and answers the list
    assert runtime.load_startup_fallback() is True
    assert client.get("/readyz").status_code == 200
    assert _line(client.get(f"/recommend/{UNKNOWN_VIEWER}"))[0] == ITEM_IDS[39]


def test_an_empty_catalog_is_ready_with_an_empty_line(client, db):
    # Nothing to recommend at all (a fresh install before any import): ready, and the only answer
    assert not Movie.objects.exists()
    assert client.get("/readyz").status_code == 200
    assert client.get(f"/recommend/{UNKNOWN_VIEWER}").content == b""


def test_healthz_is_liveness_only(client):
    # Answers before anything is loaded: it says the process is alive, not that it can serve
    assert client.get("/healthz").content == b"ok\n"
    assert get_runtime()._loaded_once is False


# --- a real start-up: gunicorn, polled while it boots ----------------------------------------------

@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_from_the_first_ready_answer_every_recommendation_is_a_full_line(tmp_path, serving_state, catalog):
    from recommender.serving.tests.test_gunicorn import LiveGunicorn

    # Given a catalog with recent ratings, a model in production (it knows viewers 1–60 only),
    # and a fresh state folder: no seen-index snapshot, no local copy of anything
    version = make_version("v1")
    deploy(version)
    server = LiveGunicorn(tmp_path, serving_state, SERVING_SNAPSHOT_REFRESH_SECONDS=600)
    ready_at: list[float] = []
    answers: list[tuple[float, int, str]] = []
    problems: list[str] = []
    stop = threading.Event()

    def poll_readyz() -> None:
        while not stop.is_set():
            try:
                status, _, _ = server.get(server.connection(), "/readyz")
            except OSError:
                time.sleep(0.02)  # not listening yet
                continue
            if status == 200 and not ready_at:
                ready_at.append(time.monotonic())
            time.sleep(0.01)

    def poll_recommend(offset: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            viewer = UNKNOWN_VIEWER + n if n % 2 else 1 + (offset + n) % 60  # unknown and known viewers
            sent = time.monotonic()
            try:
                status, _, body = server.get(server.connection(), f"/recommend/{viewer}")
            except OSError:
                time.sleep(0.02)
                continue
            answers.append((sent, status, body))

    # When gunicorn starts and clients poll /readyz and /recommend from its first moment
    threads = [threading.Thread(target=poll_readyz)] + [threading.Thread(target=poll_recommend, args=(i,))
                                                         for i in range(3)]
    for t in threads:
        t.start()
    try:
        # started without waiting for its workers: the pollers see it from its first moment
        server.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
            cwd=settings.BASE_DIR, env=server.env, stdout=open(server.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not ready_at and time.monotonic() < deadline:
            assert server.process.poll() is None, server.log.read_text()[-3000:]
            time.sleep(0.05)
        assert ready_at, "readyz never answered 200"
        time.sleep(3)  # keep asking for a while after readiness (the snapshot is still being built)
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.kill()
    # Then every answer to a request sent after the first ready /readyz is 1–20 catalog ids
    after = [(status, body) for sent, status, body in answers if sent > ready_at[0]]
    assert len(after) > 50, f"too few requests after readiness: {len(after)}"
    for status, body in after:
        items = body.split(",") if body else []
        if status != 200 or not 1 <= len(items) <= 20 or not set(items) <= set(ITEM_IDS):
            problems.append(f"{status} {body[:80]!r}")
    assert not problems, f"{len(problems)} bad answers after readiness, e.g. {problems[:5]}"


@pytest.mark.django_db(transaction=True)
def test_without_the_database_or_a_local_list_the_models_items_answer(catalog):
    import numpy as np

    from recommender.serving.tests.conftest import factor_arrays

    # Given a model in production that a worker loaded once (so the deployment is cached on disk)
    deploy(make_version("v1", seed=0))
    first = Runtime()
    first.refresh_all()
    first.startup_fallback_path.unlink()  # and no local copy of the start-up list
    # When a worker starts with the database away and no snapshot
    from django.db import connections

    with database_unreachable():
        connections.close_all()
        fresh = Runtime()
        fresh.refresh_all()
        # Then it is ready, and an unknown viewer gets the model's items by their bias, best first
        assert fresh.readiness()["ok"] and fresh.readiness()["fallback_source"].startswith("model artifact")
        bias = factor_arrays(seed=0)["item_bias"]
        expected = [ITEM_IDS[i] for i in np.argsort(-bias, kind="stable")[:20]]
        assert fresh.recommend(UNKNOWN_VIEWER, 20).items == expected
    connections.close_all()
