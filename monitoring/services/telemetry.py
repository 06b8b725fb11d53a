"""Per-minute telemetry rollups from the prediction log and the platform's recommendation lines.

``telemetry_rollup`` recomputes whole minutes from the raw rows and replaces the stored rollups of
those minutes in one transaction, so running it twice (or over late-arriving rows) is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from monitoring import sources
from monitoring.conf import monitoring_setting
from monitoring.models import LATENCY_BUCKETS_MS, TelemetryMinute

_EDGES = np.asarray(LATENCY_BUCKETS_MS, dtype="float64")


def floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _rollup_frame(frame: pd.DataFrame, *, source: str, latency: str, keys: list[str],
                  labels: dict[int, str]) -> list[TelemetryMinute]:
    if frame.empty:
        return []
    frame = frame.copy()
    frame["minute"] = frame["time"].dt.floor("min")
    available_ms = float(monitoring_setting("AVAILABILITY_LATENCY_MS"))
    frame["available"] = frame["ok"] & (frame[latency] <= available_ms)
    if "model_version_id" in keys:
        frame["model_version_id"] = frame["model_version_id"].fillna(-1).astype("int64")
    has_fallback = "fallback_reason" in frame.columns
    frame["personal"] = (frame["ok"] & ~frame["fallback_reason"].isin(sources.NON_PERSONALIZED_REASONS)
                         if has_fallback else False)
    frame["bucket"] = np.searchsorted(_EDGES, frame[latency].fillna(np.inf).to_numpy(), side="left")
    group_keys = ["minute", *keys]
    grouped = frame.groupby(group_keys, sort=True, dropna=False)
    base = grouped.agg(
        requests=("ok", "size"), ok=("ok", "sum"), available=("available", "sum"), personal=("personal", "sum"),
        latency_max=(latency, "max"), latency_sum=(latency, "sum"),
    )
    quantiles = grouped[latency].quantile([0.5, 0.95, 0.99]).unstack()
    buckets = frame.groupby([*group_keys, "bucket"], dropna=False).size().unstack(fill_value=0)
    buckets = buckets.reindex(columns=range(len(LATENCY_BUCKETS_MS) + 1), fill_value=0)
    statuses = frame.assign(status=frame["status"].astype(str)).groupby([*group_keys, "status"], dropna=False).size()
    if has_fallback:
        reasons = frame[frame["fallback_reason"] != ""].groupby([*group_keys, "fallback_reason"], dropna=False).size()
    rows: list[TelemetryMinute] = []
    status_map: dict = {}
    for index, count in statuses.items():
        status_map.setdefault(index[:-1], {})[index[-1]] = int(count)
    reason_map: dict = {}
    if has_fallback:
        for index, count in reasons.items():
            reason_map.setdefault(index[:-1], {})[index[-1]] = int(count)
    for key, row in base.iterrows():
        key_tuple = key if isinstance(key, tuple) else (key,)
        parts = dict(zip(group_keys, key_tuple, strict=True))
        version_id = parts.get("model_version_id")
        version_id = None if version_id is None or int(version_id) < 0 else int(version_id)
        q = quantiles.loc[key]
        rows.append(TelemetryMinute(
            minute=parts["minute"].to_pydatetime(),
            source=source,
            model_version_id=version_id,
            model_version=labels.get(version_id, "") if version_id is not None else "",
            arm=parts.get("arm", "") or "",
            requests=int(row["requests"]),
            ok=int(row["ok"]),
            errors=int(row["requests"] - row["ok"]),
            available=int(row["available"]),
            status_counts=status_map.get(key_tuple, {}),
            latency_p50_ms=_float(q[0.5]),
            latency_p95_ms=_float(q[0.95]),
            latency_p99_ms=_float(q[0.99]),
            latency_max_ms=_float(row["latency_max"]),
            latency_sum_ms=float(row["latency_sum"] or 0.0),
            latency_buckets=[int(v) for v in buckets.loc[key].tolist()],
            personalized=int(row["personal"]) if has_fallback else None,
            fallback_reasons=reason_map.get(key_tuple, {}),
        ))
    return rows


def _float(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def telemetry_rollup(*, since: datetime | None = None, until: datetime | None = None,
                     chunk: timedelta = timedelta(hours=6)) -> int:
    """Recompute the rollups of every minute in ``[since, until)`` and return the rows written.

    Defaults: ``until`` is the start of the current minute (a minute still running is not rolled
    up), ``since`` is ``MONITORING['ROLLUP_RECOMPUTE_MINUTES']`` before it, which catches prediction
    batches and platform lines that arrive late. Long ranges are processed in chunks.
    """
    until = floor_minute(until or timezone.now())
    since = floor_minute(since or until - timedelta(minutes=int(monitoring_setting("ROLLUP_RECOMPUTE_MINUTES"))))
    if since >= until:
        return 0
    written = 0
    start = since
    while start < until:
        end = min(until, start + chunk)
        written += _rollup_range(start, end)
        start = end
    return written


def _rollup_range(since: datetime, until: datetime) -> int:
    client = sources.client_requests(since, until)
    client["ok"] = client["status"] == 200
    server = sources.predictions(since, until)
    labels = sources.model_version_labels(server["model_version_id"].dropna().unique()) if not server.empty else {}
    rows = _rollup_frame(client, source=TelemetryMinute.Source.CLIENT, latency="response_ms", keys=[], labels={})
    rows += _rollup_frame(server, source=TelemetryMinute.Source.SERVER, latency="latency_ms",
                          keys=["model_version_id", "arm"], labels=labels)
    with transaction.atomic():
        TelemetryMinute.objects.filter(minute__gte=since, minute__lt=until).delete()
        TelemetryMinute.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
