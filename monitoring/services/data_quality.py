"""Data-quality reports: what was wrong with the event stream and the catalog in a window.

Events are placed in the window by their event time; quarantined lines by when they were
quarantined (a malformed line may carry no usable time). The quarantine *rate* is by arrival: the
ingestion sources' counters (lines read, quarantined) now, against the counters the latest earlier
report recorded — so a backfill of old events does not make a rate out of two different clocks.
Everything is counted in SQL or over columns read with ``values_list``; no model instances are loaded.
"""

from __future__ import annotations

import time as _time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from monitoring import sources
from monitoring.conf import monitoring_setting
from monitoring.models import DataQualityReport
from monitoring.services.windows import window_resolve
from portal.permissions import require
from portal.services import activity_log_record

# A problem goes into the report's ``issues`` when a figure crosses these.
LIMITS = {
    "quarantine_rate": 0.05,
    "unknown_share": 0.10,
    "late_share": 0.01,
    "missing_share": 0.10,
    "duplicates": 0,
    "out_of_range": 0,
}
AGE_RANGE = (5, 100)
RUNTIME_RANGE = (1, 600)
YEAR_RANGE = (1888, None)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _order_problems(times: list, late_seconds: float) -> dict:
    """Out-of-order and late events among rows listed in arrival (id) order."""
    if not times:
        return {"events": 0, "out_of_order": 0, "late": 0, "max_lateness_s": None}
    t = pd.to_datetime(pd.Series(times), utc=True).astype("int64").to_numpy() / 1e9
    previous_max = np.maximum.accumulate(np.concatenate([[-np.inf], t[:-1]]))
    behind = previous_max - t
    out_of_order = int(np.sum(behind > 0))
    late = int(np.sum(behind > late_seconds))
    lateness = float(np.max(behind)) if out_of_order else 0.0
    return {"events": len(times), "out_of_order": out_of_order, "late": late, "max_lateness_s": lateness}


def data_quality_compute(*, since: datetime, until: datetime, now: datetime | None = None) -> dict:
    """Every figure of a data-quality report for ``[since, until)`` (nothing is stored)."""
    from recommender.models import (
        IngestSource,
        Movie,
        QuarantinedLine,
        RatingEvent,
        RecommendationRequest,
        Viewer,
        WatchSession,
    )

    now = now or timezone.now()
    late_seconds = float(monitoring_setting("LATE_EVENT_SECONDS"))
    ratings = RatingEvent.objects.filter(time__gte=since, time__lt=until).order_by()
    watches = WatchSession.objects.filter(started_at__gte=since, started_at__lt=until).order_by()
    requests = RecommendationRequest.objects.filter(time__gte=since, time__lt=until).order_by()
    n_ratings = ratings.count()
    n_watches = watches.count()
    watch_minutes = watches.aggregate(m=Sum("minutes_watched"))["m"] or 0
    n_requests = requests.count()
    predictions = None
    model = sources.prediction_log_model()
    if model is not None:
        t = sources.PREDICTION_FIELDS["time"]
        predictions = model.objects.filter(**{f"{t}__gte": since, f"{t}__lt": until}).count()
    events = n_ratings + n_watches + n_requests

    quarantine = QuarantinedLine.objects.filter(created_at__gte=since, created_at__lt=until).order_by()
    by_reason = dict(quarantine.values("reason_code").annotate(n=Count("id")).values_list("reason_code", "n"))
    quarantined = sum(by_reason.values())
    rate = quarantine_rate_by_arrival(since=since)
    sections: dict = {
        "volume": {"ratings": n_ratings, "watch_sessions": n_watches, "watch_minutes": watch_minutes,
                   "recommendation_requests": n_requests, "predictions": predictions},
        "quarantine": {"quarantined": quarantined, "rate": rate["rate"], "by_reason": by_reason,
                       "counters": rate["now"], "baseline": rate["baseline"]},
    }

    # Missing and out-of-range values of the viewers and movies the window's events name.
    viewer_ids = set(ratings.values_list("viewer_id", flat=True).distinct()) | set(
        watches.values_list("viewer_id", flat=True).distinct()
    ) | set(requests.values_list("viewer_id", flat=True).distinct())
    movie_ids = set(ratings.values_list("movie_id", flat=True).distinct()) | set(
        watches.values_list("movie_id", flat=True).distinct()
    )
    viewer_rows = _chunked_values(Viewer, viewer_ids, ("id", "age", "gender", "occupation", "enriched_at"))
    movie_rows = _chunked_values(Movie, movie_ids, ("id", "runtime", "genres", "year", "popularity", "enriched_at"))
    enriched_viewers = [r for r in viewer_rows if r[4] is not None]
    enriched_movies = [r for r in movie_rows if r[5] is not None]
    sections["missing"] = {
        "viewers": len(viewer_rows),
        "viewer_age": sum(1 for r in enriched_viewers if r[1] is None),
        "viewer_gender": sum(1 for r in enriched_viewers if not r[2]),
        "viewer_occupation": sum(1 for r in enriched_viewers if not r[3]),
        "movies": len(movie_rows),
        "movie_runtime": sum(1 for r in enriched_movies if r[1] is None),
        "movie_genres": sum(1 for r in enriched_movies if not r[2]),
        "movie_year": sum(1 for r in enriched_movies if r[3] is None),
    }
    runtimes = {r[0]: r[1] for r in movie_rows if r[1]}
    beyond_runtime = 0
    if runtimes:
        for movie_id, highest in watches.values_list("movie_id", "highest_minute"):
            runtime = runtimes.get(movie_id)
            if runtime and highest > runtime + 10:
                beyond_runtime += 1
    sections["out_of_range"] = {
        "ratings_outside_1_5": ratings.filter(Q(rating__lt=1) | Q(rating__gt=5)).count(),
        "viewer_age": sum(1 for r in viewer_rows if r[1] is not None and not AGE_RANGE[0] <= r[1] <= AGE_RANGE[1]),
        "movie_runtime": sum(
            1 for r in movie_rows if r[1] is not None and not RUNTIME_RANGE[0] <= r[1] <= RUNTIME_RANGE[1]
        ),
        "watch_minute_beyond_runtime": beyond_runtime,
        "response_ms_over_60s": requests.filter(response_ms__gt=60_000).count(),
        "status_not_0_or_200": requests.exclude(status__in=(0, 200)).count(),
    }

    stored_rating_dupes = n_ratings - ratings.values("viewer_id", "movie_id", "time", "rating").distinct().count()
    stored_request_dupes = n_requests - requests.values("viewer_id", "time").distinct().count()
    sections["duplicates"] = {
        "rating_events": stored_rating_dupes,
        "recommendation_requests": stored_request_dupes,
        "dropped_by_ingest_total": rate["now"]["duplicates"],
    }

    recommended_unknown = 0
    recommended_total = 0
    lists = sources.client_requests(since, until, with_items=True,
                                    viewer_mod=sources.viewer_mod_for(n_requests, 20_000))
    if not lists.empty:
        items = pd.Series([m for ids in lists["movie_ids"] for m in (ids or [])], dtype="object")
        recommended_total = len(items)
        if recommended_total:
            known = set(
                _chunked_values(Movie, set(items.unique()), ("id",), flat=True)
            )
            recommended_unknown = int((~items.isin(known)).sum())
    unknown_viewers = len(viewer_rows) - len(enriched_viewers) + (len(viewer_ids) - len(viewer_rows))
    unknown_movies = len(movie_rows) - len(enriched_movies) + (len(movie_ids) - len(movie_rows))
    sections["unknown_ids"] = {
        "viewers_without_metadata": unknown_viewers,
        "viewer_share": _share(unknown_viewers, len(viewer_ids)),
        "movies_without_metadata": unknown_movies,
        "movie_share": _share(unknown_movies, len(movie_ids)),
        "recommended_ids_not_in_catalog": recommended_unknown,
        "recommended_ids_checked": recommended_total,
    }

    rating_order = _order_problems(list(ratings.order_by("id").values_list("time", flat=True)), late_seconds)
    request_order = _order_problems(list(requests.order_by("id").values_list("time", flat=True)), late_seconds)
    future_cutoff = now + timedelta(minutes=5)
    sections["late"] = {
        "late_after_seconds": late_seconds,
        "ratings": rating_order,
        "recommendation_requests": request_order,
        "future_events": (
            RatingEvent.objects.filter(time__gt=future_cutoff).count()
            + RecommendationRequest.objects.filter(time__gt=future_cutoff).count()
        ),
    }

    last = sources.last_event_times()
    freshness = {kind: (None if t is None else (now - t).total_seconds()) for kind, t in last.items()}
    per_source = {
        name: {
            "last_batch_age_s": None if batch is None else (now - batch).total_seconds(),
            "last_event_time": event_time, "lag": lag, "last_error": (error or "")[:200],
        }
        for name, batch, event_time, lag, error in IngestSource.objects.values_list(
            "name", "last_batch_at", "last_event_time", "lag", "last_error"
        )
    }
    sections["freshness"] = {"seconds_since_last": freshness, "sources": per_source}

    this_year = now.year
    sections["metadata"] = {
        "movies_total": Movie.objects.count(),
        "movies_without_metadata": Movie.objects.filter(enriched_at__isnull=True).count(),
        "movie_year_out_of_range": Movie.objects.filter(Q(year__lt=YEAR_RANGE[0]) | Q(year__gt=this_year + 1)).count(),
        "movie_runtime_out_of_range": Movie.objects.filter(
            Q(runtime__lt=RUNTIME_RANGE[0]) | Q(runtime__gt=RUNTIME_RANGE[1])
        ).count(),
        "movie_vote_average_out_of_range": Movie.objects.filter(Q(vote_average__lt=0) | Q(vote_average__gt=10)).count(),
        "movie_negative_money": Movie.objects.filter(Q(budget__lt=0) | Q(revenue__lt=0)).count(),
        "movie_negative_popularity": Movie.objects.filter(popularity__lt=0).count(),
        "viewers_total": Viewer.objects.count(),
        "viewers_without_metadata": Viewer.objects.filter(enriched_at__isnull=True).count(),
        "viewer_age_out_of_range": Viewer.objects.filter(Q(age__lt=AGE_RANGE[0]) | Q(age__gt=AGE_RANGE[1])).count(),
        "newest_movie_year": Movie.objects.aggregate(y=Max("year"))["y"],
    }
    return {"events": events, "quarantined": quarantined, "sections": sections,
            "issues": _issues(sections, events=events)}


def ingest_counters() -> dict[str, int]:
    """Lines read, quarantined and dropped as duplicates, summed over every ingestion source."""
    from recommender.models import IngestSource

    totals = IngestSource.objects.aggregate(read=Sum("lines_read"), quarantined=Sum("quarantined"),
                                            duplicates=Sum("duplicates"))
    return {k: int(v or 0) for k, v in totals.items()}


def quarantine_rate_by_arrival(*, since: datetime) -> dict:
    """Quarantined / read lines that arrived since ``since``: the sources' counters now against those
    recorded by the latest data-quality report made at or before ``since`` (none: since the start).
    ``rate`` is None when no line was read in between."""
    now = ingest_counters()
    earlier = (DataQualityReport.objects.filter(created_at__lte=since).order_by("-created_at", "-id")
               .values_list("sections", flat=True).first())
    baseline = ((earlier or {}).get("quarantine") or {}).get("counters") or {"read": 0, "quarantined": 0}
    read = now["read"] - int(baseline.get("read", 0))
    quarantined = now["quarantined"] - int(baseline.get("quarantined", 0))
    return {"rate": quarantined / read if read > 0 else None, "read": read, "quarantined": quarantined,
            "now": now, "baseline": baseline}


def _chunked_values(model, ids: set, fields: tuple[str, ...], flat: bool = False) -> list:
    ids = list(ids)
    out: list = []
    for start in range(0, len(ids), 5000):
        qs = model.objects.filter(pk__in=ids[start:start + 5000]).order_by()
        out.extend(qs.values_list(*fields, flat=flat) if flat else qs.values_list(*fields))
    return out


def _issues(sections: dict, *, events: int) -> list[str]:
    issues: list[str] = []
    q = sections["quarantine"]
    if q["rate"] is not None and q["rate"] > LIMITS["quarantine_rate"]:
        top = ", ".join(f"{k} {v}" for k, v in sorted(q["by_reason"].items(), key=lambda kv: -kv[1])[:3])
        issues.append(f"quarantine rate {q['rate']:.1%} exceeds {LIMITS['quarantine_rate']:.0%} ({top})")
    missing = sections["missing"]
    for key, whole in (("viewer_age", "viewers"), ("movie_runtime", "movies"), ("movie_genres", "movies")):
        share = _share(missing[key], missing[whole])
        if share is not None and share > LIMITS["missing_share"]:
            issues.append(f"{key.replace('_', ' ')} missing for {share:.1%} of the {whole} seen")
    for key, count in sections["out_of_range"].items():
        if count > LIMITS["out_of_range"]:
            issues.append(f"{count} out-of-range value(s): {key.replace('_', ' ')}")
    dup = sections["duplicates"]
    for key in ("rating_events", "recommendation_requests"):
        if dup[key] > LIMITS["duplicates"]:
            issues.append(f"{dup[key]} duplicate {key.replace('_', ' ')} stored")
    unknown = sections["unknown_ids"]
    for key in ("viewer_share", "movie_share"):
        if unknown[key] is not None and unknown[key] > LIMITS["unknown_share"]:
            issues.append(f"{unknown[key]:.1%} of the {key.split('_')[0]}s seen have no metadata")
    if unknown["recommended_ids_not_in_catalog"]:
        issues.append(f"{unknown['recommended_ids_not_in_catalog']} recommended movie id(s) are not in the catalog")
    for kind in ("ratings", "recommendation_requests"):
        info = sections["late"][kind]
        share = _share(info["late"], info["events"])
        if share is not None and share > LIMITS["late_share"]:
            issues.append(f"{share:.1%} of {kind.replace('_', ' ')} arrived late (> {sections['late']['late_after_seconds']:.0f} s)")
    if sections["late"]["future_events"]:
        issues.append(f"{sections['late']['future_events']} event(s) are timed in the future")
    return issues


def data_quality_report_create(*, since: datetime | None = None, until: datetime | None = None,
                               window_minutes: float | None = None, now: datetime | None = None, actor=None,
                               system: str | None = None) -> DataQualityReport:
    """Compute and store the report of ``[since, until)`` (default: the last
    ``MONITORING['DATA_QUALITY_WINDOW_MINUTES']``). A window with no events and no quarantined
    lines is ``no_data`` — never ``ok``. A person asking for one needs ``config.manage``."""
    require(actor, "config.manage", system=system or "monitoring.data_quality")
    now = now or timezone.now()
    until = until or now
    since = window_resolve(since=since, until=until, length=window_minutes, unit="minutes",
                           default=int(monitoring_setting("DATA_QUALITY_WINDOW_MINUTES")),
                           since_field="since", length_field="window_minutes")
    started = _time.perf_counter()
    figures = data_quality_compute(since=since, until=until, now=now)
    if figures["events"] == 0 and figures["quarantined"] == 0:
        status = DataQualityReport.Status.NO_DATA
    elif figures["issues"]:
        status = DataQualityReport.Status.ISSUES
    else:
        status = DataQualityReport.Status.OK
    with transaction.atomic():
        report = DataQualityReport.objects.create(
            window_start=since, window_end=until, status=status, events=figures["events"],
            quarantined=figures["quarantined"], quarantine_rate=figures["sections"]["quarantine"]["rate"],
            sections=_jsonable(figures["sections"]), issues=figures["issues"],
            duration_ms=(_time.perf_counter() - started) * 1000,
        )
        activity_log_record(actor=actor, system=system or "monitoring.data_quality", action="data_quality.reported",
                            target=report, data={"status": status, "issues": len(figures["issues"])})
    return report


def _jsonable(value):
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
