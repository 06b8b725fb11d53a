"""Column reads of the data other apps own: the prediction log, the platform's recommendation lines,
watch sessions, ratings, the catalog and the model registry.

Monitoring never loads model instances in bulk: it reads the columns it needs with
``values_list`` (or an aggregate in SQL) into pandas frames. The models of apps that may not be
installed yet (the serving app's prediction log, the registry) are looked up by name, and a missing
model reads as "no rows", so every caller sees no data rather than a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from django.apps import apps
from django.db import connection
from django.db.models.functions import Mod

# The prediction log's columns as the serving app names them (recommender/models/serving.py).
PREDICTION_FIELDS = {
    "request_id": "request_id",
    "time": "created_at",
    "viewer_id": "viewer_id",
    "model_version_id": "model_version_id",
    "arm": "arm",
    "items": "items",
    "latency_ms": "latency_ms",
    "status": "status",
    "fallback_reason": "fallback_reason",
}
OK_STATUSES = {200, "200", "ok", "OK"}
# Fallback reasons whose answer is the popular list, not a model's (recommender.serving.runtime.POPULAR_REASONS);
# other reasons (arm_unavailable, last_good_model) are still a model's personalized answer.
NON_PERSONALIZED_REASONS = frozenset({"unknown_viewer", "no_model", "model_error", "internal_error"})


def optional_model(app_label: str, name: str):
    """The model class, or None while the app that owns it has not landed."""
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def prediction_log_model():
    return optional_model("recommender", "PredictionLog")


def _utc(values: Iterable) -> pd.Series:
    return pd.to_datetime(pd.Series(list(values), dtype="object"), utc=True)


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
    for name, dtype in columns.items():
        if dtype == "datetime64[ns, UTC]":
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


PREDICTION_COLUMNS = {
    "time": "datetime64[ns, UTC]", "viewer_id": "int64", "model_version_id": "float64", "arm": "object",
    "latency_ms": "float64", "status": "object", "ok": "bool", "fallback_reason": "object",
}


def predictions(since: datetime, until: datetime, *, with_items: bool = False, viewer_mod: int = 1) -> pd.DataFrame:
    """Prediction-log rows with ``since <= time < until``: time, viewer_id, model_version_id, arm,
    latency_ms, status, ok (status 200), fallback_reason, and with ``with_items`` the served items.
    ``viewer_mod`` > 1 keeps the viewers whose id is a multiple of it (a sample of viewers)."""
    model = prediction_log_model()
    columns = dict(PREDICTION_COLUMNS)
    if with_items:
        columns["items"] = "object"
    if model is None:
        return _empty(columns)
    f = PREDICTION_FIELDS
    names = ["time", "viewer_id", "model_version_id", "arm", "latency_ms", "status", "fallback_reason"]
    if with_items:
        names.append("items")
    qs = _viewer_sample(model.objects.filter(**{f"{f['time']}__gte": since, f"{f['time']}__lt": until}).order_by(),
                        f["viewer_id"], viewer_mod)
    rows = list(qs.values_list(*[f[n] for n in names]))
    if not rows:
        return _empty(columns)
    frame = pd.DataFrame(rows, columns=names)
    frame["time"] = _utc(frame["time"])
    frame = frame[frame["viewer_id"].notna()] if with_items else frame
    frame["viewer_id"] = frame["viewer_id"].fillna(-1).astype("int64")
    frame["model_version_id"] = pd.to_numeric(frame["model_version_id"], errors="coerce").astype("float64")
    frame["arm"] = frame["arm"].fillna("").astype(str)
    frame["fallback_reason"] = frame["fallback_reason"].fillna("").astype(str)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce").astype("float64")
    frame["ok"] = frame["status"].isin(OK_STATUSES)
    return frame


CLIENT_COLUMNS = {"time": "datetime64[ns, UTC]", "viewer_id": "int64", "status": "int64", "response_ms": "float64"}


def _viewer_sample(qs, field: str, viewer_mod: int):
    """Keep the rows of viewers whose id is a multiple of ``viewer_mod``: a uniform sample of viewers
    that keeps each sampled viewer's lists and watches together (what online quality joins)."""
    if viewer_mod <= 1:
        return qs
    return qs.alias(_viewer_mod=Mod(field, int(viewer_mod))).filter(_viewer_mod=0)


def viewer_mod_for(count: int, max_rows: int | None) -> int:
    """The sampling step that brings ``count`` rows down to about ``max_rows``."""
    return max(1, -(-count // max_rows)) if max_rows and count > max_rows else 1


def client_requests(since: datetime, until: datetime, *, with_items: bool = False,
                    viewer_mod: int = 1) -> pd.DataFrame:
    """The platform's recommendation lines with ``since <= time < until``: time, viewer_id, status,
    response_ms (and ``movie_ids`` with ``with_items``); ``viewer_mod`` samples viewers."""
    from recommender.models import RecommendationRequest

    names = ["time", "viewer_id", "status", "response_ms"] + (["movie_ids"] if with_items else [])
    qs = _viewer_sample(RecommendationRequest.objects.filter(time__gte=since, time__lt=until).order_by(),
                        "viewer_id", viewer_mod)
    rows = list(qs.values_list(*names))
    if not rows:
        return _empty({**CLIENT_COLUMNS, **({"movie_ids": "object"} if with_items else {})})
    frame = pd.DataFrame(rows, columns=names)
    frame["time"] = _utc(frame["time"])
    frame["response_ms"] = frame["response_ms"].astype("float64")
    return frame


def served_lists(since: datetime, until: datetime, *, source: str = "auto", max_rows: int | None = None,
                 items_only: bool = False) -> tuple[pd.DataFrame, str]:
    """Successful answers with their items: time, viewer_id, model_version_id, arm, items.

    ``source``: ``server`` (the prediction log), ``client`` (the platform's lines) or ``auto`` (the
    prediction log when it has rows in the range, else the platform's lines). Returns the frame and
    the source used. ``max_rows`` keeps about that many by sampling viewers (``viewer_mod_for``);
    ``items_only`` returns just the ``items`` column (read as raw JSON text, parsed in one go).
    """
    frame, used, _ = served_lists_sampled(since, until, source=source, max_rows=max_rows, items_only=items_only)
    return frame, used


def served_lists_sampled(since: datetime, until: datetime, *, source: str = "auto", max_rows: int | None = None,
                         items_only: bool = False) -> tuple[pd.DataFrame, str, int]:
    """``served_lists`` that also returns the viewer sampling step used (1 = every viewer)."""
    if source not in ("auto", "server", "client"):
        raise ValueError(f"unknown source {source!r}")
    model = prediction_log_model()
    if source in ("auto", "server") and model is not None:
        f = PREDICTION_FIELDS
        qs = model.objects.filter(**{f"{f['time']}__gte": since, f"{f['time']}__lt": until})
        count = qs.count() if (source == "auto" or max_rows) else 0
        if source == "server" or count:
            step = viewer_mod_for(count, max_rows)
            frame = predictions(since, until, with_items=True, viewer_mod=step)
            # .loc with an explicit boolean mask: an empty object-dtype mask would select columns
            frame = frame.loc[frame["ok"].astype(bool) & frame["items"].map(bool).astype(bool)]
            columns = ["items"] if items_only else ["time", "viewer_id", "model_version_id", "arm", "items"]
            return frame[columns].reset_index(drop=True), "server", step
    if source == "server":
        return _empty({"time": "datetime64[ns, UTC]", "viewer_id": "int64", "model_version_id": "float64",
                       "arm": "object", "items": "object"}), "server", 1
    from recommender.models import RecommendationRequest

    step = 1
    if max_rows:
        step = viewer_mod_for(RecommendationRequest.objects.filter(time__gte=since, time__lt=until).count(), max_rows)
    if items_only:
        return pd.DataFrame({"items": _client_items(since, until, step)}), "client", step
    frame = client_requests(since, until, with_items=True, viewer_mod=step)
    frame = frame.loc[(frame["status"] == 200) & frame["movie_ids"].map(bool).astype(bool)]
    out = pd.DataFrame({
        "time": frame["time"], "viewer_id": frame["viewer_id"], "model_version_id": np.nan, "arm": "",
        "items": frame["movie_ids"],
    })
    return out.reset_index(drop=True), "client", step


def _client_items(since: datetime, until: datetime, viewer_mod: int) -> list[list[str]]:
    """The movie lists of successful platform lines (of the sampled viewers), parsed in one call."""
    import json

    from recommender.models import RecommendationRequest

    table = RecommendationRequest._meta.db_table
    sample = f" AND viewer_id %% {int(viewer_mod)} = 0" if viewer_mod > 1 else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT movie_ids FROM {table} WHERE time >= %s AND time < %s AND status = 200{sample}",
            [connection.ops.adapt_datetimefield_value(since), connection.ops.adapt_datetimefield_value(until)],
        )
        texts = [row[0] if isinstance(row[0], str) else json.dumps(row[0]) for row in cursor.fetchall()]
    if not texts:
        return []
    return [items for items in json.loads("[" + ",".join(texts) + "]") if items]


def watch_starts(since: datetime, until: datetime, *, viewer_ids: Iterable[int] | None = None,
                 viewer_mod: int = 1) -> pd.DataFrame:
    """Watch sessions started in ``[since, until)``: viewer_id, movie_id, started_at."""
    from recommender.models import WatchSession

    qs = _viewer_sample(WatchSession.objects.filter(started_at__gte=since, started_at__lt=until).order_by(),
                        "viewer_id", viewer_mod)
    if viewer_ids is not None:
        ids = list(set(viewer_ids))
        if len(ids) <= 5000:
            qs = qs.filter(viewer_id__in=ids)
    rows = list(qs.values_list("viewer_id", "movie_id", "started_at"))
    if not rows:
        return _empty({"viewer_id": "int64", "movie_id": "object", "started_at": "datetime64[ns, UTC]"})
    frame = pd.DataFrame(rows, columns=["viewer_id", "movie_id", "started_at"])
    frame["started_at"] = _utc(frame["started_at"])
    return frame


def current_ratings(viewer_ids: Iterable[int], since: datetime) -> pd.DataFrame:
    """The current ratings given since ``since`` by these viewers: viewer_id, movie_id, rating, time."""
    from recommender.models import Rating

    ids = sorted(set(int(v) for v in viewer_ids))
    chunks = [ids[i:i + 5000] for i in range(0, len(ids), 5000)]
    rows: list = []
    for chunk in chunks:
        rows.extend(
            Rating.objects.filter(viewer_id__in=chunk, time__gte=since).order_by()
            .values_list("viewer_id", "movie_id", "rating", "time")
        )
    if not rows:
        return _empty({"viewer_id": "int64", "movie_id": "object", "rating": "int64",
                       "time": "datetime64[ns, UTC]"})
    frame = pd.DataFrame(rows, columns=["viewer_id", "movie_id", "rating", "time"])
    frame["time"] = _utc(frame["time"])
    return frame


def movie_genres() -> pd.Series:
    """Movie id → list of genre names, for the whole catalog."""
    from recommender.models import Movie

    rows = list(Movie.objects.order_by().values_list("id", "genres"))
    return pd.Series({mid: (g if isinstance(g, list) else []) for mid, g in rows}, dtype="object")


def catalog_size() -> int:
    from recommender.models import Movie

    return Movie.objects.count()


def model_version_labels(ids: Iterable) -> dict[int, str]:
    """Model version id → its label (``name vN``); ids the registry does not know read as ``#id``."""
    wanted = {int(i) for i in ids if i is not None and not (isinstance(i, float) and np.isnan(i))}
    labels = {i: f"#{i}" for i in wanted}
    model = optional_model("recommender", "ModelVersion")
    if model is None or not wanted:
        return labels
    for version in model.objects.filter(id__in=wanted).select_related("registered_model"):
        labels[version.id] = str(version)
    return labels


@dataclass(frozen=True)
class Reference:
    """A reference window for drift: what the production model was trained on."""

    since: datetime | None
    until: datetime
    description: dict


def production_reference() -> Reference | None:
    """The production model's training snapshot window, or None when nothing is in production."""
    alias_model = optional_model("recommender", "ModelAlias")
    if alias_model is None:
        return None
    alias = (
        alias_model.objects.filter(name="production")
        .select_related("version__training_run__snapshot", "version__registered_model")
        .first()
    )
    if alias is None or alias.version_id is None:
        return None
    version = alias.version
    snapshot = version.training_run.snapshot
    since = snapshot.window_start or snapshot.first_event_at
    until = snapshot.window_end
    return Reference(
        since=since,
        until=until,
        description={
            "kind": "production training snapshot",
            "model_version_id": version.id,
            "model_version": str(version),
            "snapshot_id": snapshot.id,
            "snapshot_sha256": snapshot.content_sha256,
        },
    )


def _event_tables() -> dict[str, tuple]:
    """Event type -> (model, its time field), for freshness."""
    from recommender.models import RatingEvent, RecommendationRequest, WatchSession

    tables = {"rating": (RatingEvent, "time"), "watch": (WatchSession, "last_seen_at"),
              "recommendation": (RecommendationRequest, "time")}
    model = prediction_log_model()
    if model is not None:
        tables["prediction"] = (model, PREDICTION_FIELDS["time"])
    return tables


def last_event_times() -> dict[str, datetime | None]:
    """The time of the latest event of each type (for freshness)."""
    from django.db.models import Max

    return {kind: model.objects.aggregate(t=Max(field))["t"] for kind, (model, field) in _event_tables().items()}


def event_count(*, event_type: str, since: datetime, until: datetime) -> int:
    """Events of ``event_type`` with a time in ``[since, until]`` (the traffic a freshness rule expects)."""
    model, field = _event_tables()[event_type]
    return model.objects.filter(**{f"{field}__gte": since, f"{field}__lte": until}).count()


def sql_days(column: str) -> str:
    """SQL for a timestamp column as a number of days (a float; only differences matter), cheap on
    both back ends."""
    if connection.vendor == "sqlite":
        return f"julianday({column})"
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column}) / 86400.0"
    raise NotImplementedError(f"no day arithmetic for {connection.vendor}")


def days_of(value: datetime) -> float:
    """``value`` on the scale of ``sql_days`` (julianday on SQLite, epoch days on PostgreSQL)."""
    epoch_days = value.timestamp() / 86400.0
    return epoch_days + 2440587.5 if connection.vendor == "sqlite" else epoch_days
