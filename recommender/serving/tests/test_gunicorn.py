"""Real gunicorn on loopback: SIGTERM flushes the prediction log, a deployment change swaps models on
every worker under load without a failed request, and PostgreSQL going away loses no record."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from recommender.models import PredictionLog
from recommender.serving.tests.conftest import TcpProxy, closed_port, deploy, make_version

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(settings.BASE_DIR)


def database_url(host: str | None = None, port: int | None = None) -> str:
    conf = connection.settings_dict
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    return (f"postgres://{user}{password}@{host or conf.get('HOST') or '127.0.0.1'}:"
            f"{port or conf.get('PORT') or 5432}/{conf['NAME']}")


class LiveGunicorn:
    """gunicorn with gunicorn.conf.py, against the test database, on a free loopback port."""

    def __init__(self, tmp_path: Path, serving_state, *, db_url: str | None = None, workers: int = 2, **env) -> None:
        self.port = closed_port()
        self.workers = workers
        self.state_dir = serving_state.config.state_dir
        self.log = tmp_path / "gunicorn.log"
        self.env = {
            **os.environ, "DATABASE_URL": db_url or database_url(), "USHER_VAR_DIR": str(tmp_path / "var"),
            "USHER_ARTIFACT_ROOT": settings.RECOMMENDER["ARTIFACT_ROOT"], "SERVING_STATE_DIR": str(self.state_dir),
            "USHER_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers), "WEB_THREADS": "4",
            "WEB_ACCESS_LOG": "", "AXES_ENABLED": "0", "SERVING_SNAPSHOT_REFRESH_SECONDS": "86400",
            "DJANGO_SETTINGS_MODULE": "portal.settings", **{k: str(v) for k, v in env.items()},
        }
        self.env.pop("PYTEST_VERSION", None)
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.process: subprocess.Popen | None = None

    def start(self, *, expect_version: int | None = None) -> LiveGunicorn:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT, env=self.env,
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        self.wait_workers(lambda s: expect_version is None or
                          s["routes"].get("production", {}).get("version_id") == expect_version, timeout=60)
        return self

    def statuses(self) -> list[dict]:
        out = []
        for path in (self.state_dir / "workers").glob("*.json"):
            try:
                status = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if self.process and status["pid"] in self.worker_pids():
                out.append(status)
        return out

    def worker_pids(self) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return {int(p) for p in out.split()}

    def wait_workers(self, predicate, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            statuses = self.statuses()
            if len(statuses) == self.workers and all(predicate(s) for s in statuses):
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"workers not ready in {timeout}s: {self.statuses()}\n{self.log.read_text()[-3000:]}")

    def get(self, conn: http.client.HTTPConnection, path: str):
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def live(tmp_path, serving_state):
    servers: list[LiveGunicorn] = []

    def make(**kwargs) -> LiveGunicorn:
        server = LiveGunicorn(tmp_path, serving_state, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


def requests_from(server: LiveGunicorn, viewers, connections: int = 4) -> list[tuple[int, dict, str]]:
    """Send the viewers' requests over several keep-alive connections (so every worker gets some)."""
    results: list = []
    lock = threading.Lock()
    chunks = [viewers[i::connections] for i in range(connections)]

    def run(chunk):
        conn = server.connection()
        for viewer in chunk:
            answer = server.get(conn, f"/recommend/{viewer}")
            with lock:
                results.append(answer)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def logged_ids() -> list[str]:
    return [u.hex for u in PredictionLog.objects.values_list("request_id", flat=True)]


def test_sigterm_flushes_the_buffered_prediction_log(live):
    version = make_version("v1")
    deploy(version)
    # A flush interval of an hour: nothing reaches the database before SIGTERM.
    server = live(PREDICTION_LOG_FLUSH_SECONDS=3600, PREDICTION_LOG_BATCH=10**9).start(expect_version=version.pk)
    answers = requests_from(server, list(range(1, 61)) * 4)
    assert {status for status, _, _ in answers} == {200}
    served_by = {s["pid"]: s["served"] for s in server.statuses()}
    ids = [headers["X-Request-Id"] for _, headers, _ in answers]
    assert PredictionLog.objects.count() == 0
    assert server.terminate() == 0
    assert sorted(logged_ids()) == sorted(ids) and len(set(ids)) == 240
    assert "prediction log flushed on exit" in server.log.read_text()
    assert len(served_by) == 2  # both workers flushed their own buffers


def test_deployment_change_swaps_every_worker_under_load_without_a_failed_request(live):
    v1, v2 = make_version("v1", seed=1), make_version("v2", seed=2)
    deploy(v1)
    server = live(SERVING_POLL_SECONDS=1).start(expect_version=v1.pk)
    label = {v1.pk: f"movie-recommender v{v1.version}", v2.pk: f"movie-recommender v{v2.version}"}
    results: list[tuple[float, int, str, int]] = []
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        conn = server.connection()
        for n in range(20_000):  # bounded
            if stop.is_set():
                return
            try:
                status, headers, body = server.get(conn, f"/recommend/{1 + (worker * 7 + n) % 60}")
            except Exception as exc:  # noqa: BLE001 - any failure is a failed request
                errors.append(repr(exc))
                conn = server.connection()
                continue
            with lock:
                results.append((time.monotonic(), status, headers.get("X-Model-Version", ""), len(body.split(","))))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    switched_at = time.monotonic()
    deploy(v2)  # committed: the workers' pollers see it
    took = server.wait_workers(lambda s: s["routes"]["production"]["version_id"] == v2.pk, timeout=10)
    time.sleep(5.5)
    back_at = time.monotonic()
    deploy(v1)  # and back again
    server.wait_workers(lambda s: s["routes"]["production"]["version_id"] == v1.pk, timeout=10)
    time.sleep(5.5)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) > 200
    assert {status for _, status, _, _ in results} == {200}
    assert {n for _, _, _, n in results} == {20}
    assert {v for _, _, v, _ in results} == {label[v1.pk], label[v2.pk]}
    # every worker serves the new version within 5 s of each change
    assert took < 5
    assert all(v == label[v2.pk] for t, _, v, _ in results if switched_at + 5 <= t < back_at)
    assert all(v == label[v1.pk] for t, _, v, _ in results if t >= back_at + 5)
    assert server.terminate() == 0
    assert PredictionLog.objects.count() == len(results)


def test_postgres_going_away_loses_no_prediction_record(live):
    conf = connection.settings_dict
    proxy = TcpProxy(conf.get("HOST") or "127.0.0.1", int(conf.get("PORT") or 5432))
    proxy.start()
    version = make_version("v1")
    deploy(version)
    server = live(db_url=database_url("127.0.0.1", proxy.port), PREDICTION_LOG_FLUSH_SECONDS="0.2",
                  PREDICTION_LOG_REPLAY_SECONDS="1").start(expect_version=version.pk)
    try:
        # Given the database is reachable and the first answers are written
        first = requests_from(server, list(range(1, 41)))
        deadline = time.monotonic() + 30
        while PredictionLog.objects.count() < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert PredictionLog.objects.count() == 40
        # When it goes away: answers keep coming, quickly, from memory; records spill to disk
        proxy.stop()
        started = time.monotonic()
        during = requests_from(server, list(range(1, 61)) * 2)
        assert time.monotonic() - started < 20
        assert {s for s, _, _ in during} == {200}
        assert {len(body.split(",")) for _, _, body in during} == {20}
        spill = server.state_dir / "spill"
        deadline = time.monotonic() + 30
        while not any(spill.glob("pred-*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(spill.glob("pred-*"))
        assert PredictionLog.objects.count() == 40
        # Then when it is back, the spilled records are replayed: each exactly once
        proxy.start()
        deadline = time.monotonic() + 90
        while PredictionLog.objects.count() < 160 and time.monotonic() < deadline:
            time.sleep(0.25)
        ids = [h["X-Request-Id"] for _, h, _ in first + during]
        assert sorted(logged_ids()) == sorted(ids)
        assert server.terminate() == 0
        assert PredictionLog.objects.count() == 160
        assert not list(spill.glob("pred-*.jsonl"))
    finally:
        proxy.stop()
