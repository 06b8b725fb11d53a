"""Reads of the catalog: movies and viewers with their ratings, watch sessions and recommendations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from recommender.models import (
    Movie,
    QuarantinedLine,
    Rating,
    RatingEvent,
    RecommendationRequest,
    Viewer,
    WatchSession,
)


def movie_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Movie]:
    """Movies, filtered by ``q`` (title or id contains), ``genre``, ``year``, ``year_from``, ``year_to``."""
    filters = filters or {}
    qs = Movie.objects.all()
    if filters.get("q"):
        q = str(filters["q"]).strip()
        qs = qs.filter(Q(title__icontains=q) | Q(id__icontains=q.replace(" ", "+").lower()))
    if filters.get("genre"):
        genre = str(filters["genre"]).strip()
        # JSON containment is not on SQLite; a quoted substring match on the JSON text works on both.
        qs = qs.filter(genres__icontains=f'"{genre}"')
    for key, lookup in (("year", "year"), ("year_from", "year__gte"), ("year_to", "year__lte")):
        value = filters.get(key)
        if value not in (None, ""):
            qs = qs.filter(**{lookup: int(value)})
    return qs.order_by("id")


def movie_get(*, movie_id: str) -> Movie | None:
    return Movie.objects.filter(id=movie_id).first()


def movie_rating_histogram(*, movie_id: str) -> dict[int, int]:
    """Current ratings of a movie by star (1–5), zero-filled."""
    counts = dict(Rating.objects.filter(movie_id=movie_id).values_list("rating").annotate(n=Count("id")))
    return {star: counts.get(star, 0) for star in range(1, 6)}


def movie_stats(*, movie_id: str) -> dict[str, Any]:
    """Ratings count and mean, rating events, watch sessions, viewers, minutes, and recommendations."""
    ratings = Rating.objects.filter(movie_id=movie_id).aggregate(n=Count("id"), mean=Avg("rating"))
    watches = WatchSession.objects.filter(movie_id=movie_id).aggregate(
        sessions=Count("id"), viewers=Count("viewer", distinct=True), minutes=Sum("minutes_watched"),
        last=Max("last_seen_at"),
    )
    return {
        "ratings": ratings["n"], "mean_rating": ratings["mean"],
        "rating_events": RatingEvent.objects.filter(movie_id=movie_id).count(),
        "watch_sessions": watches["sessions"], "watch_viewers": watches["viewers"],
        "minutes_watched": watches["minutes"] or 0, "last_watched": watches["last"],
    }


def movie_recent_ratings(*, movie_id: str, limit: int = 20) -> list[Rating]:
    """The latest current ratings of a movie."""
    return list(Rating.objects.filter(movie_id=movie_id).order_by("-time")[:limit])


def viewer_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Viewer]:
    """Viewers, filtered by ``id``, ``gender``, ``occupation``, ``age_min``, ``age_max``, ``stub`` (true/false)."""
    filters = filters or {}
    qs = Viewer.objects.all()
    if filters.get("id") not in (None, ""):
        qs = qs.filter(id=int(filters["id"]))
    if filters.get("gender"):
        qs = qs.filter(gender=str(filters["gender"]).upper())
    if filters.get("occupation"):
        qs = qs.filter(occupation=filters["occupation"])
    if filters.get("age_min") not in (None, ""):
        qs = qs.filter(age__gte=int(filters["age_min"]))
    if filters.get("age_max") not in (None, ""):
        qs = qs.filter(age__lte=int(filters["age_max"]))
    if filters.get("stub") in ("true", "1", True):
        qs = qs.filter(enriched_at__isnull=True)
    elif filters.get("stub") in ("false", "0", False):
        qs = qs.filter(enriched_at__isnull=False)
    return qs.order_by("id")


def viewer_get(*, viewer_id: int) -> Viewer | None:
    return Viewer.objects.filter(id=viewer_id).first()


def viewer_history(*, viewer_id: int, limit: int = 50) -> dict[str, Any]:
    """A viewer's latest ratings, rating events, watch sessions and recommendations received."""
    ratings = list(Rating.objects.filter(viewer_id=viewer_id).select_related("movie").order_by("-time")[:limit])
    sessions = list(
        WatchSession.objects.filter(viewer_id=viewer_id).select_related("movie").order_by("-last_seen_at")[:limit]
    )
    recs = list(RecommendationRequest.objects.filter(viewer_id=viewer_id).order_by("-time")[:limit])
    return {
        "ratings": ratings,
        "watch_sessions": sessions,
        "recommendations": recs,
        "counts": {
            "ratings": Rating.objects.filter(viewer_id=viewer_id).count(),
            "watch_sessions": WatchSession.objects.filter(viewer_id=viewer_id).count(),
            "recommendations": RecommendationRequest.objects.filter(viewer_id=viewer_id).count(),
        },
    }


def catalog_stub_ids(*, limit: int | None = None) -> tuple[list[int], list[str]]:
    """Ids of viewers and movies that are still stubs (no metadata yet), oldest first."""
    viewers = Viewer.objects.filter(enriched_at__isnull=True).order_by("first_seen_at", "id").values_list("id", flat=True)
    movies = Movie.objects.filter(enriched_at__isnull=True).order_by("first_seen_at", "id").values_list("id", flat=True)
    if limit:
        viewers, movies = viewers[:limit], movies[:limit]
    return list(viewers), list(movies)


def genre_names() -> list[str]:
    """Distinct genre names in the catalog (scans the genres column; fine for tens of thousands of movies)."""
    names: set[str] = set()
    for genres in Movie.objects.exclude(genres=[]).values_list("genres", flat=True).iterator(chunk_size=5000):
        names.update(g for g in genres or [] if isinstance(g, str))
    return sorted(names)


def catalog_counts() -> dict[str, int]:
    """Figures for the dashboard: movies, viewers, ratings, watch sessions, quarantined lines, events last hour."""
    hour_ago = timezone.now() - timedelta(hours=1)
    return {
        "movies": Movie.objects.count(),
        "viewers": Viewer.objects.count(),
        "ratings": Rating.objects.count(),
        "watch_sessions": WatchSession.objects.count(),
        "quarantined": QuarantinedLine.objects.count(),
        "events_last_hour": (
            RatingEvent.objects.filter(time__gte=hour_ago).count()
            + RecommendationRequest.objects.filter(time__gte=hour_ago).count()
            + WatchSession.objects.filter(last_seen_at__gte=hour_ago).count()
        ),
    }


def quarantine_sources() -> list[str]:
    """Distinct sources that have quarantined lines (for the quarantine browser's filter)."""
    return list(QuarantinedLine.objects.order_by("source").values_list("source", flat=True).distinct())
