"""Drift of the data and of what is recommended, against the production model's training snapshot.

Each watched feature (``DriftFeature``) is read for the reference window and the current window as
a weighted sample (values or categories with counts, aggregated in SQL so a million events cost
little), then tested by its kind and sample size: below ``large_sample_min`` a significance test
(KS for numeric, chi-square for categorical; drifted when p < alpha), above it a distance
(Wasserstein / reference std, Jensen–Shannon or PSI; drifted above the threshold), because with
big samples every tiny difference is significant. A side without data gives "no data" for that
feature; a report with no reference or no current data says so instead of "ok".
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from monitoring import sources, stats
from monitoring.conf import monitoring_setting
from monitoring.drift_metrics import DRIFT_METRICS, UnknownDriftMetric, drift_metric_get
from monitoring.models import DriftFeature, DriftReport, DriftResult
from monitoring.services.windows import window_resolve
from portal.permissions import require
from portal.services import activity_log_record

MAX_CATEGORIES = 30
HISTOGRAM_BINS = 20


@dataclass
class Sample:
    """A weighted sample: numeric values or category labels, each with a count."""

    values: np.ndarray
    weights: np.ndarray

    @property
    def n(self) -> int:
        return int(self.weights.sum()) if self.weights.size else 0


def _sample(pairs) -> Sample:
    pairs = [(v, c) for v, c in pairs if v is not None and v != "" and c]
    if not pairs:
        return Sample(np.asarray([]), np.asarray([], dtype="float64"))
    values, weights = zip(*pairs, strict=True)
    return Sample(np.asarray(values), np.asarray(weights, dtype="float64"))


def _counts(series: pd.Series, *, scale: float = 1.0) -> Sample:
    """A sample from value counts (index = values), without empty values or zero counts; vectorised."""
    values = series.index.to_numpy()
    weights = series.to_numpy(dtype="float64") / scale
    keep = (weights > 0) & pd.notna(values) & (values != "")
    return Sample(values[keep], weights[keep])


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime) else p
                             for p in params])
        return cursor.fetchall()


class _Shared:
    """What both windows of a report read once: the catalog's genres and popularity, viewers' demographics."""

    def __init__(self) -> None:
        self._movies: pd.DataFrame | None = None
        self._genres: pd.DataFrame | None = None
        self._viewers: pd.DataFrame | None = None

    def movies(self) -> pd.DataFrame:
        """Movie id → popularity (catalog-wide)."""
        if self._movies is None:
            self._load_movies()
        return self._movies

    def movie_genres(self) -> pd.DataFrame:
        """One row per (movie, genre) with weight 1/k for a movie of k genres, indexed by movie id."""
        if self._genres is None:
            self._load_movies()
        return self._genres

    def _load_movies(self) -> None:
        import json

        from recommender.models import Movie

        rows = _fetch(f"SELECT id, genres, popularity FROM {Movie._meta.db_table}", [])
        ids = [r[0] for r in rows]
        # The genres column is JSON text: one parse for the whole catalog, not one per movie.
        genres = json.loads("[" + ",".join(r[1] if isinstance(r[1], str) else json.dumps(r[1]) for r in rows) + "]")
        self._movies = pd.DataFrame({"popularity": pd.to_numeric(pd.Series([r[2] for r in rows]), errors="coerce")
                                     .to_numpy()}, index=pd.Index(ids, name="id"))
        lists = pd.Series(genres, index=pd.Index(ids, name="id"), dtype="object")
        lists = lists[lists.map(lambda g: isinstance(g, list) and len(g) > 0)]
        exploded = lists.explode()
        self._genres = pd.DataFrame({"genre": exploded.to_numpy(),
                                     "weight": 1.0 / lists.map(len).reindex(exploded.index).to_numpy()},
                                    index=exploded.index)

    def viewers(self) -> pd.DataFrame:
        if self._viewers is None:
            from recommender.models import Viewer

            table = Viewer._meta.db_table
            rows = _fetch(f"SELECT id, age, gender, occupation FROM {table}", [])
            self._viewers = pd.DataFrame(rows, columns=["id", "age", "gender", "occupation"]).set_index("id")
        return self._viewers


class _Window:
    """One window's events, read in one pass per table (raw SQL, columns only), then every feature
    is computed from those columns with pandas."""

    def __init__(self, since: datetime | None, until: datetime, shared: _Shared) -> None:
        self.since, self.until = since, until
        self.shared = shared
        self.ratings: pd.DataFrame | None = None
        self.watches: pd.DataFrame | None = None
        self.items: pd.Series | None = None
        self.lists = 0

    def _where(self, column: str) -> tuple[str, list]:
        if self.since is None:
            return f"{column} < %s", [self.until]
        return f"{column} >= %s AND {column} < %s", [self.since, self.until]

    def load(self) -> _Window:
        """Read the window's columns (may run in its own thread: it touches no shared state)."""
        from recommender.models import RatingEvent, WatchSession

        where, params = self._where("time")
        rows = _fetch(f"SELECT viewer_id, rating, {sources.sql_days('time')} FROM "
                      f"{RatingEvent._meta.db_table} WHERE {where}", params)
        self.ratings = self._with_day(pd.DataFrame(rows, columns=["viewer_id", "rating", "day"]))
        where, params = self._where("started_at")
        rows = _fetch(f"SELECT viewer_id, movie_id, {sources.sql_days('started_at')} FROM "
                      f"{WatchSession._meta.db_table} WHERE {where}", params)
        self.watches = self._with_day(pd.DataFrame(rows, columns=["viewer_id", "movie_id", "day"]))
        lists, _ = sources.served_lists(
            self.since or datetime(1970, 1, 1, tzinfo=self.until.tzinfo), self.until,
            max_rows=int(monitoring_setting("DRIFT_MAX_LISTS")), items_only=True,
        )
        self.items = pd.Series([m for ids in lists["items"] for m in ids], dtype="object")
        self.lists = len(lists)
        return self

    def _with_day(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Days counted from the window's start (24-hour buckets), so a one-day window is one bucket
        whatever the time of day it starts — UTC midnights would split it in two."""
        if frame.empty:
            frame["day"] = frame["day"].astype("int64")
            return frame
        origin = sources.days_of(self.since) if self.since else float(frame["day"].min())
        frame["day"] = np.floor(frame["day"].astype("float64") - origin).astype("int64")
        return frame

    def _watch_counts(self) -> pd.Series:
        return self.watches["movie_id"].value_counts()

    def _active(self) -> pd.DataFrame:
        ids = pd.unique(np.concatenate([self.ratings["viewer_id"].to_numpy(), self.watches["viewer_id"].to_numpy()]))
        viewers = self.shared.viewers()
        return viewers.loc[viewers.index.intersection(ids)]

    # --- the features ---------------------------------------------------------------------
    def rating(self) -> Sample:
        counts = self.ratings["rating"].value_counts()
        counts.index = counts.index.astype(str)
        return _counts(counts)

    def viewer_age(self) -> Sample:
        ages = pd.to_numeric(self._active()["age"], errors="coerce").dropna()
        return _counts(ages.value_counts())

    def viewer_gender(self) -> Sample:
        return _counts(self._active()["gender"].value_counts())

    def viewer_occupation(self) -> Sample:
        return _counts(self._active()["occupation"].value_counts())

    def watch_genre(self) -> Sample:
        counts = self._watch_counts()
        if counts.empty:
            return _sample([])
        # A movie of k genres spreads each watch over them, so every watch weighs the same.
        genres = self.shared.movie_genres()
        joined = genres.join(counts.rename("n"), how="inner")
        return _counts((joined["weight"] * joined["n"]).groupby(joined["genre"]).sum())

    def watched_movie_popularity(self) -> Sample:
        counts = self._watch_counts()
        if counts.empty:
            return _sample([])
        popularity = self.shared.movies()["popularity"].reindex(counts.index)
        frame = pd.DataFrame({"p": popularity.values, "n": counts.values}).dropna()
        return Sample(frame["p"].to_numpy(dtype="float64"), frame["n"].to_numpy(dtype="float64"))

    def activity_per_viewer_day(self) -> Sample:
        both = pd.concat([self.ratings[["viewer_id", "day"]], self.watches[["viewer_id", "day"]]], ignore_index=True)
        if both.empty:
            return _sample([])
        per_day = both.groupby(["viewer_id", "day"], sort=False).size()
        counts = per_day.value_counts()
        counts.index = counts.index.astype("float64")
        return _counts(counts)

    def recommended_item(self) -> Sample:
        # The movies of one list are not independent draws: weigh slots so the sample size is the
        # number of lists, not of slots (else the chi-square test overstates its confidence).
        per_list = len(self.items) / self.lists if self.lists else 1.0
        return _counts(self.items.value_counts(), scale=per_list)


def _load_windows(windows: list[_Window]) -> None:
    """Read the windows, in parallel threads when outside a transaction (each thread has its own
    database connection, and both SQLite and psycopg2 release the GIL while the database works)."""
    if connection.in_atomic_block or not monitoring_setting("DRIFT_PARALLEL") or connection.vendor not in (
            "sqlite", "postgresql") or _in_memory_sqlite():
        for window in windows:
            window.load()
        return
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run(window: _Window) -> _Window:
        try:
            return window.load()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(windows)) as pool:
        list(pool.map(run, windows))


def _in_memory_sqlite() -> bool:
    name = str(connection.settings_dict.get("NAME", ""))
    return connection.vendor == "sqlite" and ("memory" in name or name == "")


FEATURES: dict[str, str] = {
    "rating": "categorical",
    "viewer_age": "numeric",
    "viewer_gender": "categorical",
    "viewer_occupation": "categorical",
    "watch_genre": "categorical",
    "watched_movie_popularity": "numeric",
    "activity_per_viewer_day": "numeric",
    "recommended_item": "categorical",
}


def _aligned(ref: Sample, cur: Sample, limit: int = MAX_CATEGORIES) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts of both sides over the same categories: the ``limit`` biggest (by combined share),
    the rest lumped into "(other)"."""
    r = pd.Series(ref.weights, index=ref.values.astype(str)).groupby(level=0).sum()
    c = pd.Series(cur.weights, index=cur.values.astype(str)).groupby(level=0).sum()
    both = pd.concat([r.rename("r"), c.rename("c")], axis=1).fillna(0.0)
    share = both["r"] / max(both["r"].sum(), 1) + both["c"] / max(both["c"].sum(), 1)
    both = both.loc[share.sort_values(ascending=False).index]
    if len(both) > limit:
        head, tail = both.iloc[:limit], both.iloc[limit:]
        both = pd.concat([head, pd.DataFrame({"r": [tail["r"].sum()], "c": [tail["c"].sum()]}, index=["(other)"])])
    return [str(i) for i in both.index], both["r"].to_numpy(), both["c"].to_numpy()


def _numeric_histogram(ref: Sample, cur: Sample) -> dict:
    values = np.concatenate([ref.values.astype("float64"), cur.values.astype("float64")])
    weights = np.concatenate([ref.weights, cur.weights])
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    low = values[order][np.searchsorted(cumulative, 0.005)]
    high = values[order][min(len(values) - 1, np.searchsorted(cumulative, 0.995))]
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    r, _ = np.histogram(np.clip(ref.values.astype("float64"), low, high), bins=edges, weights=ref.weights)
    c, _ = np.histogram(np.clip(cur.values.astype("float64"), low, high), bins=edges, weights=cur.weights)
    labels = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(HISTOGRAM_BINS)]
    return {"labels": labels, "reference": (r / max(r.sum(), 1)).round(5).tolist(),
            "current": (c / max(c.sum(), 1)).round(5).tolist(), "edges": edges.round(6).tolist()}


def _numeric_distance(feature: DriftFeature, ref: Sample, cur: Sample) -> tuple[str, float]:
    metric = drift_metric_get(feature.large_metric)
    rv, cv = ref.values.astype("float64"), cur.values.astype("float64")
    if metric.on_values is not None:
        return metric.name, metric.on_values(rv, ref.weights, cv, cur.weights)
    # Distances between distributions need bins: the reference's deciles.
    edges = np.unique(np.quantile(np.repeat(rv, np.minimum(ref.weights, 1000).astype(int)),
                                  np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    r, _ = np.histogram(rv, bins=edges, weights=ref.weights)
    c, _ = np.histogram(cv, bins=edges, weights=cur.weights)
    return metric.name, metric.on_counts(r, c)


def _categorical_distance(feature: DriftFeature, r: np.ndarray, c: np.ndarray) -> tuple[str, float]:
    metric = drift_metric_get(feature.large_metric)
    if metric.on_counts is None:  # a distance on ordered values: its unordered stand-in
        metric = drift_metric_get(metric.unordered)
    return metric.name, metric.on_counts(r, c)


def drift_compare(feature: DriftFeature, ref: Sample, cur: Sample, *, tests: int = 1,
                  effect_floor: bool = False) -> dict:
    """Test one feature; returns the fields of a ``DriftResult``. A significance test judges at the
    feature's ``alpha`` divided by ``tests`` (the features tested in one report, under
    ``MONITORING['DRIFT_CORRECTION'] = "bonferroni"``), so a stable world's report flags any feature by
    chance in at most ``alpha`` of reports, not ``alpha`` × features. With ``effect_floor``
    (``MONITORING['DRIFT_EFFECT_FLOOR']``) a significant difference is drift only when its distance
    also exceeds the feature's ``large_threshold``: significant and big enough to matter."""
    try:
        drift_metric_get(feature.large_metric)
    except UnknownDriftMetric as exc:
        raise UnknownDriftMetric(f"drift feature '{feature.name}': {exc}") from None
    alpha = feature.alpha / max(int(tests), 1)
    out: dict = {"feature": feature.name, "kind": feature.kind, "n_reference": ref.n, "n_current": cur.n,
                 "test": "", "statistic": None, "p_value": None, "score": None, "threshold": None,
                 "drifted": None, "histogram": {}, "note": ""}
    if ref.n == 0 or cur.n == 0:
        out["note"] = "no data in the " + ("reference" if ref.n == 0 else "current") + " window"
        return out
    small = min(ref.n, cur.n) < feature.large_sample_min

    def floor(metric: str, distance: float) -> None:
        if effect_floor and out["drifted"] and distance <= feature.large_threshold:
            out["drifted"] = False
            out["note"] = (f"significant, but the {metric.replace('_', ' ')} distance {distance:.3g} is within "
                           f"{feature.large_threshold:g}: too small to matter")

    if feature.kind == DriftFeature.Kind.NUMERIC:
        rv, cv = ref.values.astype("float64"), cur.values.astype("float64")
        out["histogram"] = _numeric_histogram(ref, cur)
        if small:
            statistic, p = stats.ks_weighted(rv, ref.weights, cv, cur.weights)
            out.update(test="ks", statistic=statistic, p_value=p, score=p, threshold=alpha, drifted=p < alpha)
            floor(*_numeric_distance(feature, ref, cur))
            return out
        metric, score = _numeric_distance(feature, ref, cur)
        out.update(test=metric, statistic=score, score=score, threshold=feature.large_threshold,
                   drifted=score > feature.large_threshold)
        return out
    labels, r, c = _aligned(ref, cur)
    shown = min(len(labels), 20)
    out["histogram"] = {"labels": labels[:shown], "reference": (r / r.sum()).round(5)[:shown].tolist(),
                        "current": (c / c.sum()).round(5)[:shown].tolist()}
    if small:
        statistic, p = stats.chi_square(r, c)
        out.update(test="chi2", statistic=statistic, p_value=p, score=p, threshold=alpha, drifted=p < alpha)
        floor(*_categorical_distance(feature, r, c))
        return out
    metric, score = _categorical_distance(feature, r, c)
    if metric != feature.large_metric:
        out["note"] = (f"{DRIFT_METRICS[feature.large_metric].short} needs an order; categorical features use "
                       f"{DRIFT_METRICS[metric].short}")
    out.update(test=metric, statistic=score, score=score, threshold=feature.large_threshold,
               drifted=score > feature.large_threshold)
    return out


def drift_report_create(
    *,
    current_since: datetime | None = None,
    current_until: datetime | None = None,
    window_hours: float | None = None,
    reference: sources.Reference | None = None,
    now: datetime | None = None,
    actor=None,
    system: str | None = None,
) -> DriftReport:
    """Compare the current window (default: the last ``MONITORING['DRIFT_WINDOW_HOURS']``) with
    the reference (default: the production model's training snapshot) and store the report.
    A person asking for one needs ``config.manage``."""
    require(actor, "config.manage", system=system or "monitoring.drift")
    now = now or timezone.now()
    current_until = current_until or now
    current_since = window_resolve(since=current_since, until=current_until, length=window_hours, unit="hours",
                                   default=int(monitoring_setting("DRIFT_WINDOW_HOURS")),
                                   since_field="current_since", length_field="window_hours")
    started = _time.perf_counter()
    reference = reference or sources.production_reference()
    features = list(DriftFeature.objects.filter(enabled=True).order_by("name"))
    results: list[dict] = []
    if reference is None:
        status = DriftReport.Status.NO_REFERENCE
    else:
        shared = _Shared()
        ref_window = _Window(reference.since, reference.until, shared)
        cur_window = _Window(current_since, current_until, shared)
        _load_windows([ref_window, cur_window])
        correction = str(monitoring_setting("DRIFT_CORRECTION") or "none")
        if correction not in ("bonferroni", "none"):
            raise ValueError(f"MONITORING['DRIFT_CORRECTION'] must be 'bonferroni' or 'none', not {correction!r}")
        tests = sum(1 for f in features if f.name in FEATURES) if correction == "bonferroni" else 1
        effect_floor = bool(monitoring_setting("DRIFT_EFFECT_FLOOR"))
        for feature in features:
            extractor = getattr(_Window, feature.name, None) if feature.name in FEATURES else None
            if extractor is None:
                results.append({"feature": feature.name, "kind": feature.kind, "drifted": None,
                                "note": "no extractor for this feature name"})
                continue
            results.append(drift_compare(feature, extractor(ref_window), extractor(cur_window), tests=tests,
                                         effect_floor=effect_floor))
        tested = [r for r in results if r.get("drifted") is not None]
        if not tested:
            status = DriftReport.Status.NO_DATA
        elif any(r["drifted"] for r in tested):
            status = DriftReport.Status.DRIFT
        else:
            status = DriftReport.Status.OK
    drifted = [r["feature"] for r in results if r.get("drifted")]
    with transaction.atomic():
        report = DriftReport.objects.create(
            status=status,
            reference=reference.description if reference else {"kind": "none", "why": "nothing in production"},
            reference_since=reference.since if reference else None,
            reference_until=reference.until if reference else None,
            current_since=current_since, current_until=current_until,
            drifted_features=len(drifted),
            tested_features=sum(1 for r in results if r.get("drifted") is not None),
            duration_ms=(_time.perf_counter() - started) * 1000,
        )
        DriftResult.objects.bulk_create([
            DriftResult(report=report, **{k: v for k, v in r.items() if k in _RESULT_FIELDS}) for r in results
        ])
        activity_log_record(actor=actor, system=system or "monitoring.drift", action="drift.reported",
                            target=report, data={"status": status, "drifted": drifted})
    return report


_RESULT_FIELDS = {f.name for f in DriftResult._meta.fields} - {"id", "report"}
