"""Online quality: did the viewer watch what we recommended? The one definition Usher uses.

A served list (a successful answer with at least one movie) **succeeds** when the same viewer
starts watching one of its movies within ``window_minutes`` after it was served (a watch session
whose ``started_at`` falls in ``(served_at, served_at + window]``). Alongside, the mean rating the
viewers gave to recommended-then-watched movies (their current rating, given after the list was
served). Canary and A/B analysis (Releases) call ``online_quality`` with their own grouping and run
their statistical tests on the returned ``successes`` and ``trials``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.utils import timezone

from monitoring import sources
from monitoring.conf import monitoring_setting
from portal.errors import ValidationError

GROUP_KEYS = ("model_version_id", "arm", "bucket", "viewer_id")


@dataclass(frozen=True)
class QualityGroup:
    """Online quality of one group of served lists."""

    key: dict[str, Any]
    trials: int
    successes: int
    rate: float | None
    rated: int = 0
    mean_rating: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    sampled_one_in: int = 1
    # With ``unit_moments``: the group's lists summed per viewer (the unit of randomisation), as
    # {"units": K, "sum_trials_sq": Σnᵢ², "sum_successes_sq": Σsᵢ², "sum_cross": Σsᵢnᵢ} — what the
    # delta-method variance of the success rate needs when one viewer has many lists.
    unit_moments: dict[str, float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def online_quality(
    *,
    since: datetime,
    until: datetime,
    window_minutes: int | None = None,
    group_by: tuple[str, ...] | list[str] = ("model_version_id", "arm"),
    bucket_minutes: int = 60,
    source: str = "server",
    model_version_ids: list[int] | None = None,
    arms: list[str] | None = None,
    complete_only: bool = True,
    now: datetime | None = None,
    max_lists: int | None = None,
    unit_moments: bool = False,
) -> list[QualityGroup]:
    """Successes and trials of the lists served in ``[since, until)``, per group.

    ``group_by``: any of ``model_version_id``, ``arm``, ``bucket`` (served time floored to
    ``bucket_minutes``), ``viewer_id``; ``()`` gives one overall group. ``source``: ``server``
    (the prediction log, with model version and arm), ``client`` (the platform's lines) or ``auto``.
    With ``complete_only`` (the default) lists whose window has not closed by ``now`` are left out,
    so they are not counted as failures too early. Groups with no lists do not appear: an empty
    answer means no data, never a 0% success rate.

    Above ``max_lists`` lists in the range (default ``MONITORING['ONLINE_QUALITY_MAX_LISTS']``; 0 =
    never) a uniform sample of viewers is taken (viewer id a multiple of n) with all their lists and
    watches; ``sampled_one_in`` says n, and successes/trials are the sample's — valid for the same
    tests, with less power.

    ``unit_moments``: also sum each group's lists per viewer and return the second moments of those
    per-viewer sums (``QualityGroup.unit_moments``), for tests whose unit is the viewer, not the list.
    """
    window_minutes = int(window_minutes or monitoring_setting("ONLINE_QUALITY_WINDOW_MINUTES"))
    if window_minutes <= 0:
        raise ValidationError("window_minutes must be positive", detail={"window_minutes": window_minutes})
    unknown = [g for g in group_by if g not in GROUP_KEYS]
    if unknown:
        raise ValidationError(f"cannot group online quality by {', '.join(unknown)}",
                              detail={"allowed": list(GROUP_KEYS)})
    if since >= until:
        raise ValidationError("'since' must be before 'until'")
    now = now or timezone.now()
    window = timedelta(minutes=window_minutes)
    if complete_only:
        until = min(until, now - window)
        if until <= since:
            return []
    if max_lists is None:
        max_lists = int(monitoring_setting("ONLINE_QUALITY_MAX_LISTS"))
    lists, _, step = sources.served_lists_sampled(since, until, source=source, max_rows=max_lists or None)
    if model_version_ids is not None:
        lists = lists[lists["model_version_id"].isin([float(v) for v in model_version_ids])]
    if arms is not None:
        lists = lists[lists["arm"].isin(arms)]
    if lists.empty:
        return []
    lists = lists.reset_index(drop=True)
    lists["list_id"] = lists.index
    lists["model_version_id"] = lists["model_version_id"].fillna(-1).astype("int64")
    if "bucket" in group_by:
        lists["bucket"] = lists["time"].dt.floor(f"{int(bucket_minutes)}min")

    pairs = lists[["list_id", "viewer_id", "time", "items"]].explode("items").rename(columns={"items": "movie_id"})
    pairs = pairs.dropna(subset=["movie_id"])
    watches = sources.watch_starts(since, until + window, viewer_ids=lists["viewer_id"].unique(), viewer_mod=step)
    hits = pairs.merge(watches, on=["viewer_id", "movie_id"], how="inner")
    hits = hits[(hits["started_at"] > hits["time"]) & (hits["started_at"] <= hits["time"] + window)]
    hits = hits.drop_duplicates(["list_id", "movie_id"])
    lists["success"] = lists["list_id"].isin(hits["list_id"].unique())

    ratings = sources.current_ratings(hits["viewer_id"].unique(), since) if not hits.empty else None
    if ratings is not None and not ratings.empty:
        rated = hits.merge(ratings.rename(columns={"time": "rated_at"}), on=["viewer_id", "movie_id"], how="inner")
        rated = rated[rated["rated_at"] >= rated["time"]]
    else:
        rated = pd.DataFrame(columns=["list_id", "rating"])

    keys = list(group_by)
    labels = sources.model_version_labels(lists["model_version_id"][lists["model_version_id"] >= 0].unique()) \
        if "model_version_id" in keys else {}
    if keys:
        totals = lists.groupby(keys, sort=True).agg(trials=("success", "size"), successes=("success", "sum"))
        if not rated.empty:
            # ``rated`` carries viewer_id already: join only the rating onto the lists' own keys.
            rated = rated[["list_id", "rating"]].merge(lists[["list_id", *keys]], on="list_id")
            rating_stats = rated.groupby(keys).agg(rated=("rating", "size"), mean_rating=("rating", "mean"))
            totals = totals.join(rating_stats, how="left")
    else:
        totals = pd.DataFrame({"trials": [len(lists)], "successes": [int(lists["success"].sum())]},
                              index=pd.Index([0]))
        if not rated.empty:
            totals["rated"] = len(rated)
            totals["mean_rating"] = float(rated["rating"].mean())
    moments = _unit_moments(lists, keys) if unit_moments else None
    groups = []
    for index, row in totals.iterrows():
        values = index if isinstance(index, tuple) else (index,)
        key = {}
        for name, value in zip(keys, values, strict=False):
            if name == "model_version_id":
                key[name] = None if int(value) < 0 else int(value)
            elif name == "bucket":
                key[name] = value.to_pydatetime()
            elif name == "viewer_id":
                key[name] = int(value)
            else:
                key[name] = value
        group_labels = {}
        if key.get("model_version_id") is not None:
            group_labels["model_version"] = labels.get(key["model_version_id"], "")
        trials = int(row["trials"])
        successes = int(row["successes"])
        rated_count = row.get("rated")
        mean = row.get("mean_rating")
        groups.append(QualityGroup(
            key=key, trials=trials, successes=successes, rate=successes / trials if trials else None,
            rated=0 if rated_count is None or pd.isna(rated_count) else int(rated_count),
            mean_rating=None if mean is None or pd.isna(mean) else float(mean),
            labels=group_labels, sampled_one_in=step,
            unit_moments=None if moments is None else moments[index if keys else 0],
        ))
    return groups


def _unit_moments(lists: pd.DataFrame, keys: list[str]) -> dict:
    """Per group (index as in ``totals``): K viewers and Σnᵢ², Σsᵢ², Σsᵢnᵢ of their per-viewer sums."""
    frame = lists.assign(success=lists["success"].astype("int64"), _all=0)
    group_keys = keys or ["_all"]
    per_unit = frame.groupby([*group_keys, "viewer_id"], sort=False).agg(
        n=("success", "size"), s=("success", "sum"))
    per_unit = per_unit.assign(nn=per_unit["n"] ** 2, ss=per_unit["s"] ** 2, sn=per_unit["s"] * per_unit["n"])
    summed = per_unit.groupby(level=list(range(len(group_keys)))).agg(
        units=("n", "size"), sum_trials_sq=("nn", "sum"), sum_successes_sq=("ss", "sum"), sum_cross=("sn", "sum"))
    return {index: {name: int(value) for name, value in row.items()} for index, row in summed.iterrows()}
