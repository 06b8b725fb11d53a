"""Fixtures of the serving tests: an isolated state folder and runtime, real artifacts, deployed versions."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import connections

from recommender.models import ModelVersion
from recommender.registry.artifacts import artifact_root, write_artifact
from recommender.serving.runtime import runtime_reset
from recommender.tests.factories_training import VersionFactory

N_USERS, N_ITEMS, DIM = 60, 40, 8
USER_IDS = list(range(1, N_USERS + 1))
ITEM_IDS = [f"movie+{i}+{1990 + i % 30}" for i in range(N_ITEMS)]


@pytest.fixture(autouse=True)
def serving_state(settings, tmp_path):
    """Each test gets its own STATE_DIR and a fresh, unstarted runtime (no background threads)."""
    settings.RECOMMENDER = {
        **settings.RECOMMENDER,
        "SERVING": {**settings.RECOMMENDER.get("SERVING", {}), "STATE_DIR": str(tmp_path / "serving"),
                    "AUTOSTART": False, "RATE_LIMIT_BACKEND": "local"},
    }
    runtime = runtime_reset()
    yield runtime
    runtime_reset()


def factor_arrays(*, seed: int = 0, user_ids=None, item_ids=None, seen: dict[int, list[int]] | None = None,
                  dim: int = DIM) -> dict[str, np.ndarray]:
    """Arrays of a ``factors`` artifact with random factors (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    user_ids = USER_IDS if user_ids is None else user_ids
    item_ids = ITEM_IDS if item_ids is None else item_ids
    seen = seen or {}
    rows = [sorted(seen.get(u, [])) for u in user_ids]
    indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.array([i for r in rows for i in r], dtype=np.int32)
    return {
        "item_ids": np.array(item_ids),
        "user_ids": np.array(user_ids, dtype=np.int64),
        "user_factors": rng.normal(size=(len(user_ids), dim)).astype(np.float32),
        "item_factors": rng.normal(size=(len(item_ids), dim)).astype(np.float32),
        "user_bias": np.zeros(len(user_ids), dtype=np.float32),
        "item_bias": rng.normal(scale=0.1, size=len(item_ids)).astype(np.float32),
        "seen_indptr": indptr,
        "seen_indices": indices,
    }


def make_version(name: str, *, arrays: dict | None = None, seed: int = 0, status: str = "approved",
                 promoted: bool | None = None) -> ModelVersion:
    """A registered version whose artifact really exists under ARTIFACT_ROOT (written with write_artifact).

    ``promoted`` (default: when ``status`` is approved) gives it an approved promotion (gate passed,
    a reviewer other than the requester), so that the one door to live traffic lets it serve viewers."""
    relative = f"models/test/{name}"
    sha, size = write_artifact(directory=artifact_root() / relative,
                               manifest={"kind": "factors", "algorithm": "svd", "global_mean": 3.5},
                               arrays=arrays or factor_arrays(seed=seed))
    version = VersionFactory(artifact_path=relative, artifact_sha256=sha, artifact_size=size, status=status)
    if promoted if promoted is not None else status == "approved":
        from releases.tests.factories import approved_promotion

        approved_promotion(version)
    return version


def deploy(version: ModelVersion | None, role: str = "production", **extra) -> None:
    """Put ``version`` in ``role`` through the one door: a live role gets an approved promotion first."""
    from recommender.serving.selectors import live_traffic_clearance
    from recommender.serving.services import deployment_update
    from releases.tests.factories import approved_promotion

    live = [(role, version)] + [(a.get("name"), a.get("version")) for a in extra.get("arms") or []]
    for live_role, live_version in live:
        if live_role != "shadow" and isinstance(live_version, ModelVersion) \
                and not live_traffic_clearance(version=live_version)["cleared"]:
            approved_promotion(live_version)
    deployment_update(actor=None, system="test", reason=f"test: {role}", **{role: version}, **extra)


def rated_lately(movies: list) -> list:
    """Popular-and-recent: ``movies[39]`` rated by ten viewers in the last hours, ``movies[38]`` by four a
    day ago; the movies back."""
    from django.utils import timezone

    from recommender.tests.factories_training import RatingFactory, ViewerFactory

    now = timezone.now()
    for viewer in range(100, 110):
        RatingFactory(viewer=ViewerFactory(id=viewer), movie=movies[39], time=now - dt.timedelta(hours=viewer - 99))
    for viewer in range(100, 104):
        RatingFactory(viewer=ViewerFactory(id=viewer), movie=movies[38], time=now - dt.timedelta(days=1))
    return movies


def in_thread(fn, *args, **kwargs):
    """Run ``fn`` in a fresh thread (so it opens its own database connection), returning its result."""
    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database_unreachable():
    """New connections to the default database fail for real: PostgreSQL is pointed at a closed port,
    SQLite at a file in a folder that does not exist. Existing connections are not touched."""
    conf = connections.settings["default"]
    saved = {k: conf.get(k) for k in ("HOST", "PORT", "NAME")}
    if "postgresql" in conf["ENGINE"]:
        conf["HOST"], conf["PORT"] = "127.0.0.1", str(closed_port())
    else:
        conf["NAME"] = str(Path("/nonexistent-usher-dir") / "db.sqlite3")
    try:
        yield
    finally:
        conf.update(saved)


class TcpProxy:
    """A loopback TCP forwarder that can be stopped (closing every connection) and started again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = closed_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()


def pg_settings() -> dict:
    return django_settings.DATABASES["default"]
