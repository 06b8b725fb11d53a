"""Feedback loops: is the recommender feeding on itself?

Per time bucket: the concentration of recommended and of watched movies (Gini over the whole
catalog; share of the top 1% of movies), catalog coverage, the share of watches that follow a
recommendation of that movie to that viewer (within the online-quality window), and per-viewer
diversity (mean Gini–Simpson index of the genres each viewer watched). A Mann–Kendall test over
the latest buckets flags a sustained adverse trend (a rise in concentration, a fall in coverage or
diversity).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from monitoring import selectors, sources, stats
from monitoring.conf import monitoring_setting
from monitoring.models import FeedbackLoopSnapshot
from portal.permissions import require
from portal.services import activity_log_record

# Metric → the direction in which it shows a loop tightening.
ADVERSE_DIRECTION = {
    "gini_recommended": "rising",
    "top1_share_recommended": "rising",
    "gini_watched": "rising",
    "top1_share_watched": "rising",
    "share_watches_after_recommendation": "rising",
    "coverage_recommended": "falling",
    "coverage_watched": "falling",
    "per_viewer_diversity": "falling",
}
MAX_LISTS_PER_BUCKET = 100_000


def _concentration(counts: pd.Series, catalog: int) -> tuple[float | None, float | None, float | None]:
    if counts.empty or counts.sum() <= 0:
        return None, None, None
    full = np.zeros(max(catalog, len(counts)), dtype="float64")
    full[: len(counts)] = counts.to_numpy(dtype="float64")
    return stats.gini(full), stats.top_share(full, 0.01), len(counts) / max(catalog, len(counts))


def _gini_simpson(genre_lists: pd.Series) -> float | None:
    counts: dict[str, float] = {}
    for genres in genre_lists:
        if isinstance(genres, list) and genres:
            for g in genres:
                counts[g] = counts.get(g, 0.0) + 1.0 / len(genres)
    total = sum(counts.values())
    if total <= 0:
        return None
    shares = np.asarray(list(counts.values())) / total
    return float(1.0 - np.sum(shares**2))


def feedback_compute(*, since: datetime, until: datetime) -> dict:
    """The feedback-loop figures of ``[since, until)`` (nothing stored)."""
    window = timedelta(minutes=int(monitoring_setting("ONLINE_QUALITY_WINDOW_MINUTES")))
    catalog = sources.catalog_size()
    lists, source = sources.served_lists(since, until, max_rows=MAX_LISTS_PER_BUCKET)
    watches = sources.watch_starts(since, until)
    out: dict = {"lists": len(lists), "watches": len(watches), "catalog_size": catalog, "source": source}
    if not lists.empty:
        recommended = pd.Series([m for ids in lists["items"] for m in ids], dtype="object").value_counts()
        g, top, cov = _concentration(recommended, catalog)
        out.update(gini_recommended=g, top1_share_recommended=top, coverage_recommended=cov)
    if not watches.empty:
        watched = watches["movie_id"].value_counts()
        g, top, cov = _concentration(watched, catalog)
        out.update(gini_watched=g, top1_share_watched=top, coverage_watched=cov)
        # Lists served up to one window before the bucket can explain its first watches.
        before, _ = sources.served_lists(since - window, until, source=source, max_rows=MAX_LISTS_PER_BUCKET)
        if not before.empty:
            pairs = before[["viewer_id", "time", "items"]].explode("items").rename(columns={"items": "movie_id"})
            joined = watches.reset_index().merge(pairs, on=["viewer_id", "movie_id"], how="inner")
            joined = joined[(joined["time"] < joined["started_at"]) & (joined["started_at"] <= joined["time"] + window)]
            out["share_watches_after_recommendation"] = joined["index"].nunique() / len(watches)
        else:
            out["share_watches_after_recommendation"] = None if lists.empty else 0.0
        genres = sources.movie_genres()
        per_viewer = watches.assign(genres=watches["movie_id"].map(genres)).groupby("viewer_id")["genres"]
        diversities = [_gini_simpson(group) for _, group in per_viewer if len(group) >= 2]
        diversities = [d for d in diversities if d is not None]
        out["per_viewer_diversity"] = float(np.mean(diversities)) if diversities else None
    return out


def feedback_snapshot_create(*, since: datetime, until: datetime, actor=None,
                             system: str | None = None) -> FeedbackLoopSnapshot:
    """Compute and store (replace) the snapshot of one bucket."""
    figures = feedback_compute(since=since, until=until)
    fields = {k: figures.get(k) for k in (
        "gini_recommended", "top1_share_recommended", "gini_watched", "top1_share_watched",
        "coverage_recommended", "coverage_watched", "share_watches_after_recommendation", "per_viewer_diversity",
    )}
    with transaction.atomic():
        snapshot, created = FeedbackLoopSnapshot.objects.update_or_create(
            bucket_start=since, bucket_end=until,
            defaults={"lists": figures["lists"], "watches": figures["watches"],
                      "catalog_size": figures["catalog_size"], **fields},
        )
        activity_log_record(actor=actor, system=system or "monitoring.feedback", action="feedback.snapshot",
                            target=snapshot, data={"created": created, "lists": figures["lists"],
                                                   "watches": figures["watches"]})
    return snapshot


def feedback_snapshots_update(*, now: datetime | None = None, buckets: int = 2, bucket_hours: int | None = None,
                              system: str | None = None, actor=None) -> list[FeedbackLoopSnapshot]:
    """(Re)compute the latest ``buckets`` complete buckets, aligned on UTC midnight multiples
    (a person asking needs ``config.manage``)."""
    require(actor, "config.manage", system=system or "monitoring.feedback")
    now = now or timezone.now()
    hours = int(bucket_hours or monitoring_setting("FEEDBACK_BUCKET_HOURS"))
    size = timedelta(hours=hours)
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    end = epoch + ((now - epoch) // size) * size
    snapshots = []
    for i in range(buckets, 0, -1):
        start = end - i * size
        snapshots.append(feedback_snapshot_create(since=start, until=start + size, actor=actor, system=system))
    return snapshots


def feedback_trends(*, until: datetime | None = None, points: int | None = None,
                    metrics: list[str] | None = None, alpha: float | None = None,
                    min_relative_change: float = 0.05) -> dict[str, dict]:
    """Mann–Kendall over the latest ``points`` snapshots ending by ``until``, per metric.

    A metric is ``adverse`` when it moves in its loop-tightening direction with p < alpha
    (Bonferroni-corrected over the metrics tested) and Sen's slope over the span changes it by at
    least ``min_relative_change`` of its median — a sustained, material move, not noise.
    """
    points = int(points or monitoring_setting("FEEDBACK_TREND_POINTS"))
    alpha = float(alpha if alpha is not None else monitoring_setting("TREND_ALPHA"))
    metrics = list(metrics or ADVERSE_DIRECTION)
    qs = selectors.feedback_snapshot_list(until=until).order_by("-bucket_start")[:points]
    rows = list(reversed(list(qs.values("bucket_start", *metrics))))
    corrected = alpha / max(1, len(metrics))
    out: dict[str, dict] = {}
    for metric in metrics:
        series = np.asarray([np.nan if r[metric] is None else r[metric] for r in rows], dtype="float64")
        trend = stats.mann_kendall(series)
        valid = series[~np.isnan(series)]
        median = float(np.median(valid)) if valid.size else None
        change = (trend.slope * (trend.n - 1)) if trend.slope is not None else None
        relative = (abs(change) / abs(median)) if change is not None and median else None
        adverse_dir = ADVERSE_DIRECTION.get(metric, "rising")
        adverse = bool(
            trend.p_value is not None and trend.p_value < corrected and trend.direction == adverse_dir
            and relative is not None and relative >= min_relative_change
        )
        out[metric] = {
            "n": trend.n, "s": trend.s, "tau": trend.tau, "p_value": trend.p_value, "slope_per_bucket": trend.slope,
            "relative_change": relative, "direction": trend.direction, "adverse_direction": adverse_dir,
            "alpha": corrected, "adverse": adverse, "no_data": trend.p_value is None,
        }
    return out
