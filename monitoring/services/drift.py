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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from monitoring import sources, stats
from monitoring.conf import monitoring_setting
from monitoring.models import DriftFeature, DriftReport, DriftResult
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


class _Window:
    """Reads one window's features; caches what several features share."""

    def __init__(self, since: datetime | None, until: datetime, movies: Callable[[], pd.DataFrame]) -> None:
        from recommender.models import RatingEvent, WatchSession

        self.since, self.until = since, until
        self._movies = movies
        time_filter = Q(time__lt=until) & (Q(time__gte=since) if since else Q())
        start_filter = Q(started_at__lt=until) & (Q(started_at__gte=since) if since else Q())
        self.ratings = RatingEvent.objects.filter(time_filter).order_by()
        self.watches = WatchSession.objects.filter(start_filter).order_by()
        self._watch_counts: pd.Series | None = None

    def active_viewers(self):
        from recommender.models import Viewer

        return Viewer.objects.filter(
            Q(id__in=self.ratings.values("viewer_id")) | Q(id__in=self.watches.values("viewer_id"))
        ).order_by()

    def watch_counts(self) -> pd.Series:
        if self._watch_counts is None:
            rows = list(self.watches.values("movie_id").annotate(n=Count("id")).values_list("movie_id", "n"))
            self._watch_counts = pd.Series(dict(rows), dtype="float64")
        return self._watch_counts

    # --- the features ---------------------------------------------------------------------
    def rating(self) -> Sample:
        rows = self.ratings.values("rating").annotate(n=Count("id")).values_list("rating", "n")
        return _sample((str(r), n) for r, n in rows)

    def viewer_age(self) -> Sample:
        rows = self.active_viewers().filter(age__isnull=False).values("age").annotate(n=Count("id"))
        return _sample((float(a), n) for a, n in rows.values_list("age", "n"))

    def viewer_gender(self) -> Sample:
        rows = self.active_viewers().values("gender").annotate(n=Count("id")).values_list("gender", "n")
        return _sample(rows)

    def viewer_occupation(self) -> Sample:
        rows = self.active_viewers().values("occupation").annotate(n=Count("id")).values_list("occupation", "n")
        return _sample(rows)

    def watch_genre(self) -> Sample:
        counts = self.watch_counts()
        if counts.empty:
            return _sample([])
        genres = self._movies()["genres"].reindex(counts.index)
        frame = pd.DataFrame({"genre": genres.values, "n": counts.values})
        frame["k"] = frame["genre"].map(lambda g: len(g) if isinstance(g, list) else 0)
        frame = frame[frame["k"] > 0]
        # A movie of k genres spreads each watch over them, so every watch weighs the same.
        frame["n"] = frame["n"] / frame["k"]
        grouped = frame.explode("genre").groupby("genre")["n"].sum()
        return _sample(grouped.items())

    def watched_movie_popularity(self) -> Sample:
        counts = self.watch_counts()
        if counts.empty:
            return _sample([])
        popularity = self._movies()["popularity"].reindex(counts.index)
        frame = pd.DataFrame({"p": popularity.values, "n": counts.values}).dropna()
        return Sample(frame["p"].to_numpy(dtype="float64"), frame["n"].to_numpy(dtype="float64"))

    def activity_per_viewer_day(self) -> Sample:
        from recommender.models import RatingEvent, WatchSession

        params: list = []
        clauses = []
        for table, column in ((RatingEvent._meta.db_table, "time"), (WatchSession._meta.db_table, "started_at")):
            where = f"{column} < %s" + (f" AND {column} >= %s" if self.since else "")
            params.extend([self.until] + ([self.since] if self.since else []))
            clauses.append(f"SELECT viewer_id, {sources.sql_date(column)} AS day FROM {table} WHERE {where}")
        sql = (
            "SELECT n, COUNT(*) FROM (SELECT viewer_id, day, COUNT(*) AS n FROM ("
            + " UNION ALL ".join(clauses)
            + ") events GROUP BY viewer_id, day) per_day GROUP BY n"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [connection.ops.adapt_datetimefield_value(p) for p in params])
            rows = cursor.fetchall()
        return _sample((float(n), c) for n, c in rows)

    def recommended_item(self) -> Sample:
        lists, _ = sources.served_lists(
            self.since or datetime(1970, 1, 1, tzinfo=self.until.tzinfo), self.until,
            max_rows=int(monitoring_setting("DRIFT_MAX_LISTS")),
        )
        if lists.empty:
            return _sample([])
        items = pd.Series([m for ids in lists["items"] for m in ids], dtype="object")
        return _sample(items.value_counts().items())


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


def drift_compare(feature: DriftFeature, ref: Sample, cur: Sample) -> dict:
    """Test one feature; returns the fields of a ``DriftResult``."""
    out: dict = {"feature": feature.name, "kind": feature.kind, "n_reference": ref.n, "n_current": cur.n,
                 "test": "", "statistic": None, "p_value": None, "score": None, "threshold": None,
                 "drifted": None, "histogram": {}, "note": ""}
    if ref.n == 0 or cur.n == 0:
        out["note"] = "no data in the " + ("reference" if ref.n == 0 else "current") + " window"
        return out
    small = min(ref.n, cur.n) < feature.large_sample_min
    if feature.kind == DriftFeature.Kind.NUMERIC:
        rv, cv = ref.values.astype("float64"), cur.values.astype("float64")
        out["histogram"] = _numeric_histogram(ref, cur)
        if small:
            statistic, p = stats.ks_weighted(rv, ref.weights, cv, cur.weights)
            out.update(test="ks", statistic=statistic, p_value=p, score=p, threshold=feature.alpha,
                       drifted=p < feature.alpha)
            return out
        if feature.large_metric == DriftFeature.Metric.WASSERSTEIN:
            score = stats.wasserstein_normed(rv, ref.weights, cv, cur.weights)
        else:
            # Distances between distributions need bins: the reference's deciles.
            edges = np.unique(np.quantile(np.repeat(rv, np.minimum(ref.weights, 1000).astype(int)),
                                          np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            r, _ = np.histogram(rv, bins=edges, weights=ref.weights)
            c, _ = np.histogram(cv, bins=edges, weights=cur.weights)
            score = stats.psi(r, c) if feature.large_metric == DriftFeature.Metric.PSI else stats.jensen_shannon(r, c)
        out.update(test=feature.large_metric, statistic=score, score=score, threshold=feature.large_threshold,
                   drifted=score > feature.large_threshold)
        return out
    labels, r, c = _aligned(ref, cur)
    shown = min(len(labels), 20)
    out["histogram"] = {"labels": labels[:shown], "reference": (r / r.sum()).round(5)[:shown].tolist(),
                        "current": (c / c.sum()).round(5)[:shown].tolist()}
    if small:
        statistic, p = stats.chi_square(r, c)
        out.update(test="chi2", statistic=statistic, p_value=p, score=p, threshold=feature.alpha,
                   drifted=p < feature.alpha)
        return out
    metric = feature.large_metric
    if metric == DriftFeature.Metric.WASSERSTEIN:
        metric = DriftFeature.Metric.JENSEN_SHANNON
        out["note"] = "Wasserstein needs an order; categorical features use Jensen–Shannon"
    score = stats.psi(r, c) if metric == DriftFeature.Metric.PSI else stats.jensen_shannon(r, c)
    out.update(test=metric, statistic=score, score=score, threshold=feature.large_threshold,
               drifted=score > feature.large_threshold)
    return out


def _movies_loader() -> Callable[[], pd.DataFrame]:
    cache: dict = {}

    def load() -> pd.DataFrame:
        if "frame" not in cache:
            from recommender.models import Movie

            rows = list(Movie.objects.order_by().values_list("id", "genres", "popularity"))
            frame = pd.DataFrame(rows, columns=["id", "genres", "popularity"]).set_index("id")
            cache["frame"] = frame
        return cache["frame"]

    return load


def drift_report_create(
    *,
    current_since: datetime | None = None,
    current_until: datetime | None = None,
    reference: sources.Reference | None = None,
    now: datetime | None = None,
    actor=None,
    system: str | None = None,
) -> DriftReport:
    """Compare the current window (default: the last ``MONITORING['DRIFT_WINDOW_HOURS']``) with
    the reference (default: the production model's training snapshot) and store the report."""
    now = now or timezone.now()
    current_until = current_until or now
    current_since = current_since or current_until - timedelta(hours=int(monitoring_setting("DRIFT_WINDOW_HOURS")))
    started = _time.perf_counter()
    reference = reference or sources.production_reference()
    features = list(DriftFeature.objects.filter(enabled=True).order_by("name"))
    results: list[dict] = []
    if reference is None:
        status = DriftReport.Status.NO_REFERENCE
    else:
        movies = _movies_loader()
        ref_window = _Window(reference.since, reference.until, movies)
        cur_window = _Window(current_since, current_until, movies)
        for feature in features:
            extractor = getattr(_Window, feature.name, None) if feature.name in FEATURES else None
            if extractor is None:
                results.append({"feature": feature.name, "kind": feature.kind, "drifted": None,
                                "note": "no extractor for this feature name"})
                continue
            results.append(drift_compare(feature, extractor(ref_window), extractor(cur_window)))
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
