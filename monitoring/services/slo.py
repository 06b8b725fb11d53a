"""SLOs and error budgets computed from the telemetry rollups, with multi-window burn rates.

The burn rate over a window is the share of bad requests divided by the error budget: at 1× the
budget lasts exactly the SLO window; at 14.4× a 30-day budget's 2% goes in one hour (Google SRE
workbook, "Alerting on SLOs"). A burn-rate alert fires only when a long and a short window both
burn faster than the factor, so it fires quickly and stops quickly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from monitoring import selectors
from monitoring.models import SLO

# Windows shown with every SLO status (minutes); the alert rules pick their own pairs.
BURN_WINDOWS_MINUTES = (5, 30, 60, 360, 1440, 4320)


def slo_window_counts(*, slo: SLO, since: datetime, until: datetime) -> tuple[float, int]:
    """(good, total) requests of this SLO in ``[since, until)``."""
    return selectors.telemetry_good_total(
        since=since, until=until, source=slo.source, kind=slo.kind, latency_threshold_ms=slo.latency_threshold_ms
    )


def slo_burn_rate(*, slo: SLO, minutes: int, now: datetime | None = None) -> tuple[float | None, dict]:
    """The burn rate over the last ``minutes`` (None when there were no requests) and its figures."""
    now = now or timezone.now()
    since = now - timedelta(minutes=minutes)
    good, total = slo_window_counts(slo=slo, since=since, until=now)
    if total == 0:
        return None, {"window_minutes": minutes, "requests": 0}
    bad_share = (total - good) / total
    rate = bad_share / slo.error_budget
    return rate, {"window_minutes": minutes, "requests": total, "good": round(good, 2),
                  "bad_share": bad_share, "burn_rate": rate}


def slo_status(*, slo: SLO, now: datetime | None = None) -> dict:
    """Where the SLO stands over its window: SLI, error budget consumed and remaining, burn rates.

    ``status`` is ``no_data`` (no requests in the window — not "healthy"), ``ok``, ``burning``
    (the last hour burns faster than 1×) or ``exhausted`` (the budget is spent).
    """
    now = now or timezone.now()
    since = now - timedelta(days=slo.window_days)
    good, total = slo_window_counts(slo=slo, since=since, until=now)
    result: dict = {
        "slo": slo.name, "kind": slo.kind, "source": slo.source, "objective": slo.objective,
        "latency_threshold_ms": slo.latency_threshold_ms if slo.kind == SLO.Kind.LATENCY else None,
        "window_days": slo.window_days, "since": since, "until": now, "requests": total,
        "error_budget": slo.error_budget,
    }
    burn = {}
    for minutes in BURN_WINDOWS_MINUTES:
        rate, _ = slo_burn_rate(slo=slo, minutes=minutes, now=now)
        burn[f"{minutes}m"] = rate
    result["burn_rates"] = burn
    if total == 0:
        result.update({"status": "no_data", "sli": None, "budget_consumed": None, "budget_remaining": None})
        return result
    sli = good / total
    consumed = ((total - good) / total) / slo.error_budget
    hour = burn.get("60m")
    if consumed >= 1:
        status = "exhausted"
    elif hour is not None and hour > 1:
        status = "burning"
    else:
        status = "ok"
    result.update({"status": status, "sli": sli, "good": good, "budget_consumed": consumed,
                   "budget_remaining": 1 - consumed})
    return result
