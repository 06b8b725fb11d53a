"""Synthetic traffic for release tests: prediction-log rows on a route, and the watch sessions
that make a chosen share of them succeed under monitoring's online-quality definition."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

from recommender.models import Movie, PredictionLog, Viewer, WatchSession

_viewer_ids = itertools.count(5_000_000)


def served(*, route: str, version_id: int | None, lists: int, successes: int, start: datetime,
           spacing_seconds: float = 5.0, status: int = 200, latency_ms: float = 20.0, fallback: str = "",
           viewers: list[int] | None = None) -> list[int]:
    """``lists`` answers on ``route`` from ``start`` on; the first ``successes`` are followed by a
    watch of their first movie 5 minutes later. Each list goes to a new viewer unless ``viewers``
    (cycled) is given. Returns the viewer ids used."""
    movie, _ = Movie.objects.get_or_create(id="release+test+2000", defaults={"title": "Release Test"})
    ids = viewers or [next(_viewer_ids) for _ in range(lists)]
    Viewer.objects.bulk_create([Viewer(id=v) for v in set(ids)], ignore_conflicts=True)
    logs, sessions = [], []
    for i in range(lists):
        viewer = ids[i % len(ids)]
        at = start + timedelta(seconds=i * spacing_seconds)
        logs.append(PredictionLog(
            request_id=uuid.uuid4(), created_at=at, endpoint="plain", viewer_id=viewer, model_version_id=version_id,
            model_label=f"v{version_id}", arm=route, items=[movie.pk, "other+movie+1999"], latency_ms=latency_ms,
            status=status, fallback_reason=fallback,
        ))
        if i < successes:
            watch = at + timedelta(minutes=5)
            sessions.append(WatchSession(viewer_id=viewer, movie=movie, started_at=watch, last_seen_at=watch,
                                         first_minute=0, last_minute=0, highest_minute=0, minutes_watched=1))
    PredictionLog.objects.bulk_create(logs)
    WatchSession.objects.bulk_create(sessions)
    return ids
