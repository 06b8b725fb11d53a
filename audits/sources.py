"""What the audits read from the other apps, in one place: data frames and objects, never writes.

The checks in ``audits.checks`` are pure; this module is the boundary to the recommender's
catalog, events, registry, serving and monitoring. Components that are not installed (or have no
data) give ``None`` or empty frames, and the check reports itself unavailable instead of crashing.
"""

from __future__ import annotations

from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import pandas as pd
from django.db.models import Count, Min

from audits.checks.artifacts import ArtifactRef
from audits.errors import AuditCheckError
from recommender.models import Movie, RatingEvent, RecommendationRequest, Viewer, WatchSession


def _optional(module: str, name: str) -> Any | None:
    try:
        return getattr(import_module(module), name)
    except (ImportError, AttributeError):
        return None


# --- registry ---------------------------------------------------------------------------------

def model_version_get(*, version_id: int) -> Any | None:
    model = _optional("recommender.models", "ModelVersion")
    if model is None:
        return None
    return model.objects.select_related("registered_model", "training_run__snapshot").filter(pk=version_id).first()


def production_version() -> Any | None:
    """The version the ``production`` alias points at, or None."""
    alias = _optional("recommender.models", "ModelAlias")
    if alias is None:
        return None
    row = alias.objects.select_related("version__registered_model", "version__training_run__snapshot") \
        .filter(name="production").first()
    return row.version if row else None


def deployment_unreviewed() -> list[dict[str, Any]]:
    """Serving's list of versions serving viewers without an approved promotion (bootstrap excepted)."""
    selector = _optional("recommender.serving.selectors", "deployment_unreviewed")
    return selector() if selector is not None else []


def live_versions() -> dict[str, Any]:
    """alias name → version, for every alias that points somewhere."""
    alias = _optional("recommender.models", "ModelAlias")
    if alias is None:
        return {}
    return {a.name: a.version for a in alias.objects.select_related("version__registered_model")
            if a.version_id is not None}


def serving_model(*, version: Any) -> Any:
    """The verified serving form of a version (raises the registry's ArtifactIntegrityError if tampered)."""
    from recommender.registry.selectors import model_version_load

    return model_version_load(version=version)


def test_part(*, version: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(test ratings: viewer, movie, rating; viewer attributes frozen with the snapshot; split info).

    The test part is rebuilt exactly as training made it: the snapshot's ratings (verified against
    their sha256) split by the run's recorded split with the training app's own ``split_frame``.
    A version trained on every rating (k-fold evaluation) has no held-out part, which is an error.
    """
    from recommender.training import evaluation
    from recommender.training.snapshots import snapshot_load_ratings, snapshot_load_viewers

    run = version.training_run
    snapshot = run.snapshot
    split = dict(run.split or {})
    if split.get("kind") == "kfold":
        raise AuditCheckError(
            f"{version} was trained on every rating of snapshot #{snapshot.pk} (k-fold evaluation), so there is "
            "no held-out test part to audit; train it with a random, temporal or leave-last-n split"
        )
    ratings = snapshot_load_ratings(snapshot=snapshot)
    _train, test = evaluation.split_frame(ratings, split)[0]
    frame = test.rename(columns={"user_id": "viewer", "movie_id": "movie"})[["viewer", "movie", "rating"]]
    viewers = snapshot_load_viewers(snapshot=snapshot).set_index("user_id")
    viewers.index.name = "viewer"
    return frame.reset_index(drop=True), viewers, {
        "snapshot": snapshot.pk, "snapshot_sha256": snapshot.content_sha256, "training_run": run.pk,
        "split": split, "snapshot_ratings": int(len(ratings)), "test_ratings": int(len(test)),
    }


# --- catalog and events -------------------------------------------------------------------------

def viewer_attributes(*, viewer_ids: list[int]) -> pd.DataFrame:
    """Index viewer; gender, age_band, occupation ('unknown' where missing)."""
    rows = []
    for chunk in _chunks(list(viewer_ids)):
        for viewer in Viewer.objects.filter(id__in=chunk).only("id", "age", "gender", "occupation"):
            rows.append((viewer.id, viewer.gender or "unknown", viewer.age_band, viewer.occupation or "unknown"))
    return pd.DataFrame(rows, columns=["viewer", "gender", "age_band", "occupation"]).set_index("viewer")


def movie_titles(*, movie_ids: list[str]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for chunk in _chunks(list(movie_ids)):
        titles.update(Movie.objects.filter(id__in=chunk).exclude(title="").values_list("id", "title"))
    return titles


def rating_events(*, start: datetime, end: datetime) -> pd.DataFrame:
    rows = RatingEvent.objects.filter(time__gte=start, time__lt=end).values_list("viewer_id", "movie_id", "rating",
                                                                                 "time")
    return pd.DataFrame(list(rows), columns=["viewer", "movie", "rating", "time"])


def _chunks(values: list, size: int = 5000):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def viewer_history(*, viewer_ids: list[int], until: datetime) -> pd.DataFrame:
    """Index viewer; total_ratings (distinct movies rated up to ``until``) and first_seen (first event)."""
    rating_rows, watch_rows = [], []
    for chunk in _chunks(list(viewer_ids)):
        rating_rows += list(RatingEvent.objects.filter(viewer_id__in=chunk, time__lt=until).values("viewer_id")
                            .annotate(n=Count("movie_id", distinct=True), first=Min("time"))
                            .values_list("viewer_id", "n", "first"))
        watch_rows += list(WatchSession.objects.filter(viewer_id__in=chunk, started_at__lt=until).values("viewer_id")
                           .annotate(first=Min("started_at")).values_list("viewer_id", "first"))
    frame = pd.DataFrame(index=pd.Index(list(viewer_ids), name="viewer"))
    rated = pd.DataFrame(rating_rows, columns=["viewer", "n", "first"]).set_index("viewer")
    watched = pd.DataFrame(watch_rows, columns=["viewer", "first"]).set_index("viewer")
    frame["total_ratings"] = rated["n"].reindex(frame.index).fillna(0).astype(int)
    firsts = pd.concat([pd.to_datetime(rated["first"], utc=True).reindex(frame.index),
                        pd.to_datetime(watched["first"], utc=True).reindex(frame.index)], axis=1)
    frame["first_seen"] = firsts.min(axis=1)
    return frame


def active_viewers(*, start: datetime, end: datetime) -> set[int]:
    """Viewers the platform's event stream shows active in the window: a recommendation line (their
    client asked), a rating or a watch. A scraper's calls never produce such lines."""
    rated = RatingEvent.objects.filter(time__gte=start, time__lt=end).values_list("viewer_id", flat=True).distinct()
    watched = (WatchSession.objects.filter(last_seen_at__gte=start, started_at__lt=end)
               .values_list("viewer_id", flat=True).distinct())
    asked = (RecommendationRequest.objects.filter(time__gte=start, time__lt=end)
             .values_list("viewer_id", flat=True).distinct())
    return set(rated) | set(watched) | set(asked)


def client_requests(*, start: datetime, end: datetime) -> pd.DataFrame:
    """The platform's own record of its recommendation calls: viewer, status, response_ms, items."""
    rows = RecommendationRequest.objects.filter(time__gte=start, time__lt=end).values_list(
        "viewer_id", "status", "response_ms", "movie_ids")
    return pd.DataFrame(list(rows), columns=["viewer", "status", "response_ms", "items"])


def known_viewer_ids(*, viewer_ids: list[int]) -> set[int]:
    known: set[int] = set()
    for chunk in _chunks(list(viewer_ids)):
        known |= set(Viewer.objects.filter(id__in=chunk).values_list("id", flat=True))
    return known


# --- serving telemetry --------------------------------------------------------------------------

def prediction_log_model() -> Any | None:
    return _optional("recommender.models", "PredictionLog")


def prediction_requests(*, start: datetime, end: datetime, fields: tuple[str, ...]) -> pd.DataFrame | None:
    """Rows of the serving prediction log in the window (None when serving is not installed)."""
    model = prediction_log_model()
    if model is None:
        return None
    rows = model.objects.filter(created_at__gte=start, created_at__lt=end).values_list(*fields)
    return pd.DataFrame(list(rows), columns=list(fields))


def online_quality_by_viewer(*, start: datetime, end: datetime) -> pd.DataFrame | None:
    """Index viewer; trials, successes — the monitoring app's online quality per viewer (None if absent).

    ``monitoring.services.quality.online_quality(group_by=("viewer_id",))`` is the one definition: a
    served list succeeds when its viewer starts watching one of its movies within the window; lists
    whose window has not closed are left out. "auto" reads the prediction log when it has answers in
    the window, else the platform's own lines.
    """
    online_quality = _optional("monitoring.services.quality", "online_quality")
    if online_quality is None:
        return None
    groups = online_quality(since=start, until=end, group_by=("viewer_id",), source="auto")
    rows = [(g.key["viewer_id"], g.trials, g.successes) for g in groups]
    return pd.DataFrame(rows, columns=["viewer", "trials", "successes"]).set_index("viewer").astype(int)


def watched_movies(*, start: datetime, end: datetime) -> pd.Series:
    """One movie id per watch session started in the window."""
    return pd.Series(list(WatchSession.objects.filter(started_at__gte=start, started_at__lt=end)
                          .values_list("movie_id", flat=True)), dtype=object)


def movie_table(*, movie_ids: list[str]) -> pd.DataFrame:
    """Index movie id; genres (list), year, popularity — and the popularity of the whole catalog for tiers."""
    rows = []
    for chunk in _chunks(list(movie_ids)):
        rows += list(Movie.objects.filter(id__in=chunk).values_list("id", "genres", "year", "popularity"))
    frame = pd.DataFrame(rows, columns=["movie", "genres", "year", "popularity"]).set_index("movie")
    return frame.reindex(list(movie_ids))


def catalog_popularity() -> pd.Series:
    return pd.Series(list(Movie.objects.exclude(popularity__isnull=True).values_list("popularity", flat=True)),
                     dtype=float)


# --- login failures (django-axes) ---------------------------------------------------------------

def login_failures(*, start: datetime, end: datetime) -> tuple[pd.DataFrame, str]:
    """(time, ip, username, count) rows and where they came from.

    ``AccessFailureLog`` has one row per failure when ``AXES_ENABLE_ACCESS_FAILURE_LOG`` is on; axes'
    ``AccessAttempt`` always has one row per (username, address, agent) with its failure count and the
    time of its latest failure, which is what is used otherwise.
    """
    from axes.models import AccessAttempt, AccessFailureLog

    columns = ["time", "ip", "username", "count"]
    failures = AccessFailureLog.objects.filter(attempt_time__gte=start, attempt_time__lt=end)
    if failures.exists():
        rows = [(t, ip, u, 1) for t, ip, u in failures.values_list("attempt_time", "ip_address", "username")]
        return pd.DataFrame(rows, columns=columns), "axes AccessFailureLog (one row per failed login)"
    attempts = AccessAttempt.objects.filter(attempt_time__gte=start, attempt_time__lt=end)
    rows = list(attempts.values_list("attempt_time", "ip_address", "username", "failures_since_start"))
    return pd.DataFrame(rows, columns=columns), "axes AccessAttempt (failure counts per username and address)"


# --- stored artifacts ---------------------------------------------------------------------------

def artifact_refs(*, version: Any | None = None) -> tuple[list[ArtifactRef], str]:
    """Every registered model version's artifact and every ready snapshot's files (or one version's)."""
    model_version = _optional("recommender.models", "ModelVersion")
    snapshot_model = _optional("recommender.models", "DatasetSnapshot")
    if model_version is None:
        return [], "the model registry is not installed: no artifacts to verify"
    from recommender.registry.artifacts import artifact_abspath

    def _folder(relative: str) -> tuple[Path | None, str]:
        try:
            return artifact_abspath(relative), ""
        except Exception as exc:  # noqa: BLE001 - a path escaping ARTIFACT_ROOT is itself the finding
            return None, str(getattr(exc, "message", exc))

    refs: list[ArtifactRef] = []
    versions = [version] if version is not None else model_version.objects.select_related("registered_model")
    for v in versions:
        folder, problem = _folder(v.artifact_path)
        refs.append(ArtifactRef(kind="model_version", ident=v.pk, label=str(v), directory=folder,
                                manifest_sha256=v.artifact_sha256, problem=problem))
    if version is None and snapshot_model is not None:
        for s in snapshot_model.objects.filter(status="ready"):
            folder, problem = _folder(s.storage_path)
            refs.append(ArtifactRef(kind="snapshot", ident=s.pk, label=str(s), directory=folder,
                                    files={n: f.get("sha256", "") for n, f in (s.files or {}).items()},
                                    problem=problem))
    return refs, ""
