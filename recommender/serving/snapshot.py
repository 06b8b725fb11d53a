"""The serving snapshot: the seen-items index and the popular-and-recent fallback, as shared files.

One process per machine builds a snapshot folder (a child process started by a web worker when the
current one is older than ``SNAPSHOT_REFRESH_SECONDS``, or ``manage.py serving_snapshot``);
every web worker memory-maps it, so the index is held once in the page cache however many workers
there are. A snapshot folder under ``STATE_DIR/snapshots/<stamp>/`` holds:

``viewers.npy``  int64, sorted: viewer ids with at least one rating or watch session
``indptr.npy``   int64 [viewers + 1]: CSR row pointers
``items.npy``    int32: movie codes (positions in ``movies.json``) of each viewer, sorted per viewer
``movies.json``  the movie ids the codes stand for
``popular.json`` the fallback ranking: ``{"items": [[movie_id, score], ...], ...}``
``meta.json``    when and from what it was built (ids up to which ratings and sessions are included)

``CURRENT`` names the latest complete folder; it is replaced atomically after the folder is written.
Between snapshots, each worker reads the ratings and watch sessions added since (a small query
every ``SEEN_DELTA_SECONDS``, off the request path) into an in-memory delta.

The fallback ("popular and recent") scores each movie by its ratings and watch sessions over the
last ``FALLBACK_WINDOW_DAYS`` before the newest event, each weighted ``0.5 ** (age_days /
FALLBACK_HALF_LIFE_DAYS)``; with no events at all it falls back to the catalog's ``popularity`` (movies without one
last, by id), so a catalog with movies always gives a fallback.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from array import array
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)

CURRENT = "CURRENT"
_NO_CODES = np.empty(0, dtype=np.int32)
LOCK = ".build.lock"
KEEP = 3


class SeenSnapshot:
    """A loaded (memory-mapped) snapshot: the seen index and the fallback ranking."""

    def __init__(self, *, directory: Path, viewers: np.ndarray, indptr: np.ndarray, items: np.ndarray,
                 movies: list[str], popular: list[tuple[str, float]], meta: dict) -> None:
        self.directory = directory
        self.viewers = viewers
        self.indptr = indptr
        self.items = items
        self.movies = movies
        self.popular = popular
        self.meta = meta
        self.name = directory.name

    @classmethod
    def empty(cls) -> SeenSnapshot:
        return cls(directory=Path("empty"), viewers=np.empty(0, np.int64), indptr=np.zeros(1, np.int64),
                   items=np.empty(0, np.int32), movies=[], popular=[], meta={"empty": True})

    @classmethod
    def load(cls, directory: Path) -> SeenSnapshot:
        meta = json.loads((directory / "meta.json").read_text())
        popular = [(str(m), float(s)) for m, s in json.loads((directory / "popular.json").read_text())["items"]]
        def mapped(name: str) -> np.ndarray:
            # A plain ndarray view of the memory map: same shared pages, none of np.memmap's per-slice cost.
            return np.load(directory / name, mmap_mode="r", allow_pickle=False).view(np.ndarray)

        return cls(
            directory=directory,
            viewers=mapped("viewers.npy"),
            indptr=mapped("indptr.npy"),
            items=mapped("items.npy"),
            movies=json.loads((directory / "movies.json").read_text()),
            popular=popular,
            meta=meta,
        )

    def row(self, viewer_id: int) -> int | None:
        viewers = self.viewers
        if viewers.shape[0] == 0:
            return None
        pos = int(np.searchsorted(viewers, viewer_id))
        if pos < viewers.shape[0] and int(viewers[pos]) == viewer_id:
            return pos
        return None

    def seen_codes(self, viewer_id: int) -> np.ndarray:
        """Codes (positions in ``movies``) of what the viewer had watched or rated at build time."""
        row = self.row(viewer_id)
        if row is None:
            return _NO_CODES
        return self.items[int(self.indptr[row]):int(self.indptr[row + 1])]

    def seen(self, viewer_id: int) -> list[str]:
        """Movie ids the viewer had watched or rated when the snapshot was built."""
        movies = self.movies
        return [movies[c] for c in self.seen_codes(viewer_id).tolist()]

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - float(self.meta.get("built_at", 0)))

    @property
    def pairs(self) -> int:
        return int(self.items.shape[0])


def current_snapshot_dir(root: Path) -> Path | None:
    try:
        name = (root / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    path = root / name
    return path if name and path.is_dir() else None


def _save(path: Path, array_: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array_, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def snapshot_write(*, root: Path, viewers: np.ndarray, indptr: np.ndarray, items: np.ndarray, movies: list[str],
                   popular: list[tuple[str, float]], meta: dict) -> Path:
    """Write a complete snapshot folder and make it ``CURRENT`` (atomically); prune old ones."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{time.time_ns() % 1_000_000_000:09d}-{os.getpid()}"
    tmp = root / f".tmp-{stamp}"
    tmp.mkdir()
    try:
        _save(tmp / "viewers.npy", np.ascontiguousarray(viewers, dtype=np.int64))
        _save(tmp / "indptr.npy", np.ascontiguousarray(indptr, dtype=np.int64))
        _save(tmp / "items.npy", np.ascontiguousarray(items, dtype=np.int32))
        (tmp / "movies.json").write_text(json.dumps(movies))
        (tmp / "popular.json").write_text(json.dumps({"items": [[m, round(float(s), 6)] for m, s in popular],
                                                      **meta.get("fallback", {})}))
        full_meta = {**meta, "built_at": time.time(), "viewers": int(viewers.shape[0]), "pairs": int(items.shape[0]),
                     "movies": len(movies)}
        (tmp / "meta.json").write_text(json.dumps(full_meta, default=str))
        final = root / stamp
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = root / f".{CURRENT}.tmp-{os.getpid()}"
    pointer.write_text(stamp)
    os.replace(pointer, root / CURRENT)
    _prune(root, keep=stamp)
    return final


def _prune(root: Path, *, keep: str) -> None:
    # Workers that still map an older folder keep reading it: unlinked files live on until unmapped.
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in folders[:-KEEP]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in root.glob(".tmp-*"):
        if time.time() - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)


def _table(model) -> str:
    return connections["default"].ops.quote_name(model._meta.db_table)


def _seen_rows(using: str):
    """Stream (viewer_id, movie_id) of every rating and watch session, in chunks."""
    from recommender.models import Rating, WatchSession

    connection = connections[using]
    for model in (Rating, WatchSession):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT viewer_id, movie_id FROM {_table(model)}")  # noqa: S608 - table names are ours
            while True:
                chunk = cursor.fetchmany(50_000)
                if not chunk:
                    break
                yield chunk


def seen_index_from_db(*, using: str = "default") -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict]:
    """Build the CSR seen index from the database: (viewers, indptr, items, movies, watermarks)."""
    from django.db.models import Max

    from recommender.models import Rating, WatchSession

    watermarks = {
        "rating_max_id": Rating.objects.using(using).aggregate(m=Max("id"))["m"] or 0,
        "session_max_id": WatchSession.objects.using(using).aggregate(m=Max("id"))["m"] or 0,
    }
    codes: dict[str, int] = {}
    viewer_col = array("q")
    item_col = array("i")
    for chunk in _seen_rows(using):
        for viewer_id, movie_id in chunk:
            code = codes.get(movie_id)
            if code is None:
                code = codes[movie_id] = len(codes)
            viewer_col.append(viewer_id)
            item_col.append(code)
    viewers_all = np.frombuffer(viewer_col, dtype=np.int64) if viewer_col else np.empty(0, np.int64)
    items_all = np.frombuffer(item_col, dtype=np.int32) if item_col else np.empty(0, np.int32)
    viewers, indptr, items = pack_pairs(viewers_all, items_all)
    movies = [""] * len(codes)
    for movie_id, code in codes.items():
        movies[code] = movie_id
    return viewers, indptr, items, movies, watermarks


def pack_pairs(viewers_all: np.ndarray, items_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(viewer, item) pairs → sorted unique viewers, CSR indptr and per-viewer sorted unique items."""
    if viewers_all.shape[0] == 0:
        return np.empty(0, np.int64), np.zeros(1, np.int64), np.empty(0, np.int32)
    order = np.lexsort((items_all, viewers_all))
    v = viewers_all[order]
    i = items_all[order]
    keep = np.ones(v.shape[0], dtype=bool)
    keep[1:] = (v[1:] != v[:-1]) | (i[1:] != i[:-1])
    v, i = v[keep], i[keep]
    viewers, counts = np.unique(v, return_counts=True)
    indptr = np.zeros(viewers.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return viewers.astype(np.int64), indptr, i.astype(np.int32)


def catalog_popularity(*, size: int, using: str = "default") -> tuple[list[tuple[str, float]], dict]:
    """The catalog's movies by their ``popularity`` metadata, best first; movies without one rank after
    the others, by id, so a catalog with movies always gives a list. One indexed query, whatever the
    number of events: a web worker's start-up fallback before the first snapshot (``runtime``)."""
    from django.db.models import F

    from recommender.models import Movie

    ranked = (
        Movie.objects.using(using).order_by(F("popularity").desc(nulls_last=True), "id")
        .values_list("id", "popularity")[:size]
    )
    return [(m, float(p or 0.0)) for m, p in ranked], {"source": "catalog popularity", "reference_time": None}


def popular_recent(*, size: int, window_days: float, half_life_days: float, using: str = "default") -> tuple[
        list[tuple[str, float]], dict]:
    """The fallback ranking: recency-weighted ratings and watch sessions per movie, best first."""
    from django.db.models import Count, Max
    from django.db.models.functions import TruncDate

    from recommender.models import Rating, WatchSession

    latest = [
        Rating.objects.using(using).aggregate(m=Max("time"))["m"],
        WatchSession.objects.using(using).aggregate(m=Max("started_at"))["m"],
    ]
    latest = [t for t in latest if t is not None]
    if not latest:
        return catalog_popularity(size=size, using=using)
    reference: datetime = max(latest)
    start = reference - timedelta(days=window_days)
    scores: dict[str, float] = defaultdict(float)
    ref_date = reference.astimezone(UTC).date() if timezone.is_aware(reference) else reference.date()
    sources = (
        Rating.objects.using(using).filter(time__gte=start).annotate(day=TruncDate("time")),
        WatchSession.objects.using(using).filter(started_at__gte=start).annotate(day=TruncDate("started_at")),
    )
    for qs in sources:
        for movie_id, day, n in qs.values("movie_id", "day").annotate(n=Count("id")).values_list("movie_id", "day", "n"):
            age = max(0, (ref_date - day).days) if day is not None else window_days
            scores[movie_id] += n * 0.5 ** (age / half_life_days)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return ranked, {"source": "recent ratings and watch sessions", "reference_time": reference.isoformat(),
                    "window_days": window_days, "half_life_days": half_life_days}


def snapshot_build(*, root: Path, fallback_size: int, window_days: float, half_life_days: float,
                   using: str = "default") -> Path:
    """Build a snapshot from the database and make it current."""
    started = time.monotonic()
    viewers, indptr, items, movies, watermarks = seen_index_from_db(using=using)
    popular, fallback_meta = popular_recent(size=fallback_size, window_days=window_days,
                                            half_life_days=half_life_days, using=using)
    meta = {**watermarks, "fallback": fallback_meta, "build_seconds": round(time.monotonic() - started, 3),
            "source": "database"}
    path = snapshot_write(root=root, viewers=viewers, indptr=indptr, items=items, movies=movies, popular=popular,
                          meta=meta)
    logger.info("serving snapshot %s: %d viewers, %d seen pairs, %d fallback movies in %.1fs", path.name,
                viewers.shape[0], items.shape[0], len(popular), time.monotonic() - started)
    return path


class BuildLock:
    """An exclusive, non-blocking lock on ``root/.build.lock`` (one builder per machine)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / LOCK
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        if self.acquire():
            self.release()
            return False
        return True


class SeenDelta:
    """Ratings and watch sessions added after a snapshot, read in small batches by a worker thread."""

    OVERLAP = 1000  # re-read a margin of ids: a row with a smaller id may commit after a larger one

    def __init__(self, *, rating_from: int, session_from: int) -> None:
        self.rating_from = rating_from
        self.session_from = session_from
        self._rating_max = rating_from
        self._session_max = session_from
        self.by_viewer: dict[int, frozenset[str]] = {}
        self.pairs = 0

    def poll(self, *, using: str = "default", limit: int = 50_000) -> int:
        """Read new rows; returns how many (viewer, movie) pairs were new to the delta."""
        from recommender.models import Rating, WatchSession

        fresh: dict[int, set[str]] = {}
        for model, start, attr in ((Rating, self.rating_from, "_rating_max"),
                                   (WatchSession, self.session_from, "_session_max")):
            floor = max(start, getattr(self, attr) - self.OVERLAP)
            rows = list(model.objects.using(using).filter(id__gt=floor).order_by("id")
                        .values_list("id", "viewer_id", "movie_id")[:limit])
            for _row_id, viewer_id, movie_id in rows:
                fresh.setdefault(viewer_id, set()).add(movie_id)
            if rows:
                setattr(self, attr, max(getattr(self, attr), rows[-1][0]))
        added = 0
        for viewer_id, movies in fresh.items():
            old = self.by_viewer.get(viewer_id, frozenset())
            if movies - old:
                added += len(movies - old)
                # A new frozenset, swapped in whole: request threads never see a set change under them.
                self.by_viewer[viewer_id] = frozenset(old | movies)
        self.pairs += added
        return added

    def seen(self, viewer_id: int) -> frozenset[str]:
        return self.by_viewer.get(viewer_id, frozenset())
