"""Dataset snapshots: export a time window of ratings (and watch sessions) to content-hashed files.

Files (under ``ARTIFACT_ROOT/snapshots/<content sha256>/``, gzip with a zero mtime):

- ``ratings.csv.gz``: ``user_id,movie_id,rating,timestamp,source`` — the training set: explicit
  ratings (source ``e``) plus, when the snapshot asks for it, implicit ratings from watch sessions
  (source ``i``, rule below); sorted by user, movie.
- ``watch_sessions.csv.gz``: ``user_id,movie_id,started_at,last_seen_at,minutes_watched,highest_minute``.
- ``viewers.csv.gz``: ``user_id,gender,age_band,occupation`` of the viewers in the ratings (for
  per-group evaluation).

``content_sha256`` is the sha256 of ``<name>\\n<sha256 of the uncompressed file>\\n`` for the three
files in that order: the same rows always give the same hash, whatever the gzip level.

Implicit-rating rule (only where the viewer has no explicit rating of the movie in the window):
minutes = sum of ``minutes_watched`` over the viewer's sessions of that movie; sessions totalling
fewer than ``IMPLICIT_MIN_MINUTES`` are ignored; fraction = minutes / runtime (the movie's runtime,
or ``IMPLICIT_DEFAULT_RUNTIME``), capped at 1; rating = 4 if fraction ≥ 0.8, 3 if ≥ 0.5, 2 if ≥ 0.25,
else 1; its timestamp is the last session's ``last_seen_at``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.errors import ValidationError
from portal.permissions import require
from portal.services import activity_log_record
from recommender.errors import ArtifactIntegrityError
from recommender.models import DatasetSnapshot, Movie, Rating, Viewer, WatchSession
from recommender.registry.artifacts import artifact_abspath, artifact_root

RATINGS_FILE = "ratings.csv.gz"
WATCH_FILE = "watch_sessions.csv.gz"
VIEWERS_FILE = "viewers.csv.gz"
FILE_ORDER = (RATINGS_FILE, WATCH_FILE, VIEWERS_FILE)
FILTER_KEYS = ("min_viewer_ratings", "min_movie_ratings")


def implicit_rating(minutes: float, runtime: float | None) -> int | None:
    """The documented rule turning watched minutes into a 1–4 rating (None: too little to tell)."""
    knobs = settings.RECOMMENDER
    if minutes < knobs["IMPLICIT_MIN_MINUTES"]:
        return None
    runtime = runtime if runtime and runtime > 0 else knobs["IMPLICIT_DEFAULT_RUNTIME"]
    fraction = min(1.0, minutes / runtime)
    if fraction >= 0.8:
        return 4
    if fraction >= 0.5:
        return 3
    if fraction >= 0.25:
        return 2
    return 1


def _age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    for upper, label in ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54")):
        if age < upper:
            return label
    return "55+"


def _epoch(values: pd.Series) -> pd.Series:
    return (pd.to_datetime(values, utc=True).astype("int64") // 1_000_000_000).astype("int64")


def _normalise_filters(filters: dict | None) -> dict:
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ValidationError(f"unknown snapshot filter(s): {', '.join(unknown)}", detail={"allowed": list(FILTER_KEYS)},
                              field="filters")
    clean = {}
    for key in FILTER_KEYS:
        value = filters.get(key, 0) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"snapshot filter '{key}' must be a whole number ≥ 0, got {value!r}",
                                  field=f"filters.{key}")
        clean[key] = value
    return clean


def _ratings_frame(*, start: datetime | None, end: datetime) -> pd.DataFrame:
    qs = Rating.objects.filter(time__lt=end)
    if start is not None:
        qs = qs.filter(time__gte=start)
    rows = list(qs.values_list("viewer_id", "movie_id", "rating", "time").iterator(chunk_size=20_000))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "time"])
    frame["user_id"] = frame["user_id"].astype("int64")
    frame["rating"] = frame["rating"].astype("int64")
    frame["timestamp"] = _epoch(frame["time"]) if len(frame) else pd.Series([], dtype="int64")
    frame["source"] = "e"
    return frame.drop(columns=["time"])


def _watch_frame(*, start: datetime | None, end: datetime) -> pd.DataFrame:
    qs = WatchSession.objects.filter(started_at__lt=end)
    if start is not None:
        qs = qs.filter(started_at__gte=start)
    rows = list(qs.values_list("viewer_id", "movie_id", "started_at", "last_seen_at", "minutes_watched",
                               "highest_minute").iterator(chunk_size=20_000))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "started_at", "last_seen_at", "minutes_watched",
                                        "highest_minute"])
    frame["user_id"] = frame["user_id"].astype("int64")
    if len(frame):
        frame["started_at"] = _epoch(frame["started_at"])
        frame["last_seen_at"] = _epoch(frame["last_seen_at"])
    return frame.sort_values(["user_id", "movie_id", "started_at"], kind="mergesort").reset_index(drop=True)


def _implicit_frame(watch: pd.DataFrame, explicit: pd.DataFrame) -> pd.DataFrame:
    if watch.empty:
        return explicit.iloc[0:0]
    grouped = watch.groupby(["user_id", "movie_id"], sort=True).agg(
        minutes=("minutes_watched", "sum"), timestamp=("last_seen_at", "max")
    ).reset_index()
    rated = pd.MultiIndex.from_frame(explicit[["user_id", "movie_id"]])
    grouped = grouped[~pd.MultiIndex.from_frame(grouped[["user_id", "movie_id"]]).isin(rated)]
    runtimes = dict(Movie.objects.filter(id__in=grouped["movie_id"].unique().tolist()).values_list("id", "runtime"))
    grouped["rating"] = [implicit_rating(m, runtimes.get(i)) for m, i in zip(grouped["minutes"], grouped["movie_id"],
                                                                              strict=True)]
    grouped = grouped[grouped["rating"].notna()]
    grouped["rating"] = grouped["rating"].astype("int64")
    grouped["source"] = "i"
    return grouped[["user_id", "movie_id", "rating", "timestamp", "source"]]


def _apply_filters(ratings: pd.DataFrame, filters: dict) -> pd.DataFrame:
    """One pass: movies with too few ratings go first, then viewers with too few."""
    if filters["min_movie_ratings"] > 1:
        counts = ratings["movie_id"].map(ratings["movie_id"].value_counts())
        ratings = ratings[counts >= filters["min_movie_ratings"]]
    if filters["min_viewer_ratings"] > 1:
        counts = ratings["user_id"].map(ratings["user_id"].value_counts())
        ratings = ratings[counts >= filters["min_viewer_ratings"]]
    return ratings


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def _content_hash(file_hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in FILE_ORDER:
        digest.update(f"{name}\n{file_hashes[name]}\n".encode())
    return digest.hexdigest()


def snapshot_create(
    *,
    actor: Any | None,
    name: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    include_implicit: bool = False,
    filters: dict | None = None,
    system: str | None = None,
) -> DatasetSnapshot:
    """Export the window's ratings (and watch sessions) to files, hash them, and record the snapshot.

    An empty result is refused with a clear error. Files of identical content are stored once.
    Needs ``model.build`` (a schedule or command names itself with ``system=``).
    """
    require(actor, "model.build", system=system)
    window_end = window_end or timezone.now()
    if window_start is not None and window_start >= window_end:
        raise ValidationError(f"window_start ({window_start.isoformat()}) must be before window_end "
                              f"({window_end.isoformat()})", field="window_start")
    clean_filters = _normalise_filters(filters)

    explicit = _ratings_frame(start=window_start, end=window_end)
    watch = _watch_frame(start=window_start, end=window_end)
    parts = [explicit]
    if include_implicit:
        parts.append(_implicit_frame(watch, explicit))
    ratings = pd.concat(parts, ignore_index=True) if len(parts) > 1 else explicit
    ratings = _apply_filters(ratings, clean_filters)
    ratings = ratings.sort_values(["user_id", "movie_id"], kind="mergesort").reset_index(drop=True)
    if ratings.empty:
        span = f"{window_start.isoformat() if window_start else 'the beginning'} to {window_end.isoformat()}"
        raise ValidationError(f"no ratings from {span} match the snapshot's filters: nothing to snapshot",
                              detail={"explicit_in_window": len(explicit), "watch_sessions": len(watch)})

    users = ratings["user_id"].unique()
    viewer_rows = list(Viewer.objects.filter(id__in=users.tolist()).values_list("id", "gender", "age", "occupation"))
    viewers = pd.DataFrame(viewer_rows, columns=["user_id", "gender", "age", "occupation"])
    viewers["age_band"] = [_age_band(int(a) if pd.notna(a) else None) for a in viewers["age"]]
    viewers = viewers[["user_id", "gender", "age_band", "occupation"]].sort_values("user_id").reset_index(drop=True)

    payloads = {RATINGS_FILE: _csv_bytes(ratings), WATCH_FILE: _csv_bytes(watch), VIEWERS_FILE: _csv_bytes(viewers)}
    hashes = {n: hashlib.sha256(b).hexdigest() for n, b in payloads.items()}
    content_sha = _content_hash(hashes)
    relative = f"snapshots/{content_sha}"
    folder = artifact_root() / relative
    if not folder.exists():
        tmp = artifact_root() / "snapshots" / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            for file_name, data in payloads.items():
                with open(tmp / file_name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                                        filename="") as handle:
                    handle.write(data)
                    handle.flush()
                    raw.flush()
                    os.fsync(raw.fileno())
            try:
                os.rename(tmp, folder)
            except OSError:  # another process stored the same content meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    files = {
        n: {"sha256": hashes[n], "bytes": (folder / n).stat().st_size,
            "rows": {RATINGS_FILE: len(ratings), WATCH_FILE: len(watch), VIEWERS_FILE: len(viewers)}[n]}
        for n in FILE_ORDER
    }
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.create(
            name=name[:200], window_start=window_start, window_end=window_end, filters=clean_filters,
            include_implicit=include_implicit, rating_count=len(ratings),
            explicit_rating_count=int((ratings["source"] == "e").sum()),
            implicit_rating_count=int((ratings["source"] == "i").sum()),
            watch_session_count=len(watch), viewer_count=int(users.size),
            movie_count=int(ratings["movie_id"].nunique()),
            first_event_at=datetime.fromtimestamp(int(ratings["timestamp"].min()), tz=UTC),
            last_event_at=datetime.fromtimestamp(int(ratings["timestamp"].max()), tz=UTC),
            content_sha256=content_sha, storage_path=relative, size_bytes=sum(f["bytes"] for f in files.values()),
            files=files, created_by=user,
            created_by_label=user.get_username() if user else f"system:{system or 'usher'}",
        )
        activity_log_record(
            actor=user, system=system, action="dataset_snapshot.created", target=snapshot,
            data={"content_sha256": content_sha, "ratings": len(ratings), "watch_sessions": len(watch),
                  "window_start": window_start, "window_end": window_end, "filters": clean_filters,
                  "include_implicit": include_implicit},
        )
    return snapshot


def _read_verified(snapshot: DatasetSnapshot, file_name: str) -> bytes:
    path = artifact_abspath(snapshot.storage_path) / file_name
    if not path.is_file():
        raise ArtifactIntegrityError(f"snapshot #{snapshot.pk}: {file_name} is missing from {path.parent}")
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    expected = (snapshot.files.get(file_name) or {}).get("sha256")
    found = hashlib.sha256(data).hexdigest()
    if expected and found != expected:
        raise ArtifactIntegrityError(
            f"snapshot #{snapshot.pk}: {file_name} sha256 {found[:12]}… does not match the recorded {expected[:12]}…",
            detail={"file": file_name, "expected": expected, "found": found},
        )
    return data


def snapshot_load_ratings(*, snapshot: DatasetSnapshot) -> pd.DataFrame:
    """The snapshot's training ratings (verified against their sha256): user_id, movie_id, rating, timestamp."""
    data = _read_verified(snapshot, RATINGS_FILE)
    return pd.read_csv(
        io.BytesIO(data), dtype={"user_id": np.int64, "movie_id": str, "rating": np.float64, "timestamp": np.int64,
                                 "source": str},
        keep_default_na=False,
    )


def snapshot_load_viewers(*, snapshot: DatasetSnapshot) -> pd.DataFrame:
    """Viewer attributes frozen with the snapshot: user_id, gender, age_band, occupation."""
    data = _read_verified(snapshot, VIEWERS_FILE)
    return pd.read_csv(io.BytesIO(data), dtype={"user_id": np.int64, "gender": str, "age_band": str,
                                                "occupation": str}, keep_default_na=False)


def snapshot_check_trainable(*, snapshot: DatasetSnapshot) -> None:
    """Refuse (ValidationError) a snapshot too small to train and evaluate on."""
    knobs = settings.RECOMMENDER
    problems = []
    if snapshot.status != DatasetSnapshot.Status.READY:
        problems.append(f"it is {snapshot.status}")
    if snapshot.rating_count < knobs["TRAINING_MIN_RATINGS"]:
        problems.append(f"it has {snapshot.rating_count} ratings (at least {knobs['TRAINING_MIN_RATINGS']} needed)")
    if snapshot.viewer_count < knobs["TRAINING_MIN_VIEWERS"]:
        problems.append(f"it has {snapshot.viewer_count} viewers (at least {knobs['TRAINING_MIN_VIEWERS']} needed)")
    if snapshot.movie_count < knobs["TRAINING_MIN_MOVIES"]:
        problems.append(f"it has {snapshot.movie_count} movies (at least {knobs['TRAINING_MIN_MOVIES']} needed)")
    if problems:
        raise ValidationError(f"snapshot #{snapshot.pk} is too small to train on: " + "; ".join(problems),
                              detail={"snapshot": snapshot.pk, "problems": problems}, field="snapshot")


def snapshot_path(*, snapshot: DatasetSnapshot) -> Path:
    return artifact_abspath(snapshot.storage_path)
