"""SLOs and error budgets computed from the telemetry rollups, with multi-window burn rates.

The burn rate over a window is the share of bad requests divided by the error budget: at 1× the
budget lasts exactly the SLO's period; at 14.4× a 30-day budget's 2% goes in one hour (Google SRE
workbook, "Alerting on SLOs"). A burn-rate alert fires only when a long and a short window both
burn faster than the factor, so it fires quickly and stops quickly.

The alert tiers follow the SLO's own period P (``slo_burn_tiers``). Each tier is a share f of the
budget that may burn within its long window W before someone is told; burning f of the budget in W
means a burn rate of f · P / W. The workbook's windows are kept (1 h/5 min, 6 h/30 min, 3 d/6 h:
they are about how fast a person must act and how fast the alert resets, not about the period) and
the factor is recomputed from P: 14.4 / 6 / 1 for 30 days, 3.36 / 1.4 for the first two tiers of a
7-day SLO. Keeping windows and budget shares keeps the time to exhaustion at the threshold, W / f,
the same for every period (50 h for a page, 5 days for the slow burn). A factor below 1 would
alert on a burn the budget survives, so a tier whose f · P / W falls below 1 fires at 1× over the
window in which 1× spends f of the budget, W = f · P (for a 7-day SLO: 10% = 16.8 h, short window
W/12 = 84 min). Scaling the windows by P / 30 d instead would give a 7-day SLO a 14-minute page
window with a 70-second short window — one or two per-minute rollups, a noisy and flapping alert.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from monitoring import selectors
from monitoring.models import SLO

# Windows shown with every SLO status (minutes); the alert rules' windows come from ``slo_burn_tiers``.
BURN_WINDOWS_MINUTES = (5, 30, 60, 360, 1440, 4320)

# (tier, share of the budget, long window in minutes, short window in minutes, severity): the Google
# SRE workbook's multi-window, multi-burn-rate alerts for a 30-day period.
BURN_TIERS = (
    ("fast", 0.02, 60, 5, "critical"),
    ("slow", 0.05, 360, 30, "critical"),
    ("leak", 0.10, 4320, 360, "warning"),
)


@dataclass(frozen=True)
class BurnTier:
    """One burn-rate alert tier of an SLO: fire when both windows burn faster than ``factor``."""

    tier: str
    budget_fraction: float
    long_minutes: int
    short_minutes: int
    factor: float
    severity: str
    period_days: int
    adjusted: bool  # the factor would have been below 1: 1× over the window that spends the fraction

    @property
    def label(self) -> str:
        return (f"{self.budget_fraction:.0%} of the {self.period_days}-day budget in {_duration(self.long_minutes)} "
                f"({_duration(self.long_minutes)}/{_duration(self.short_minutes)} at {self.factor:g}×)")

    def as_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def _duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m" if minutes < 120 else f"{minutes / 60:.1f}h"


def burn_tier(*, tier: str, period_days: int) -> BurnTier:
    """The tier's windows and factor for an SLO period of ``period_days`` (see the module docstring)."""
    spec = next((t for t in BURN_TIERS if t[0] == tier), None)
    if spec is None:
        raise ValueError(f"unknown burn-rate tier {tier!r}; known: {[t[0] for t in BURN_TIERS]}")
    name, fraction, long_minutes, short_minutes, severity = spec
    period_minutes = int(period_days) * 1440
    factor = round(fraction * period_minutes / long_minutes, 6)
    adjusted = factor < 1
    if adjusted:
        factor = 1.0
        long_minutes = max(1, int(round(fraction * period_minutes)))
        short_minutes = max(1, math.ceil(long_minutes / 12))
    return BurnTier(name, fraction, long_minutes, short_minutes, factor, severity, int(period_days), adjusted)


def slo_burn_tiers(*, slo: SLO) -> list[BurnTier]:
    """The SLO's alert tiers, computed from its period (``window_days``)."""
    return [burn_tier(tier=t[0], period_days=slo.window_days) for t in BURN_TIERS]


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
    """Where the SLO stands over its window: SLI, error budget consumed and remaining, burn rates,
    and its burn-rate alert tiers (windows and factors from its period) with their current burn.

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
    rates: dict[int, float | None] = {}

    def rate_over(minutes: int) -> float | None:
        if minutes not in rates:
            rates[minutes] = slo_burn_rate(slo=slo, minutes=minutes, now=now)[0]
        return rates[minutes]

    burn = {f"{minutes}m": rate_over(minutes) for minutes in BURN_WINDOWS_MINUTES}
    result["burn_rates"] = burn
    tiers = []
    for tier in slo_burn_tiers(slo=slo):
        long_rate, short_rate = rate_over(tier.long_minutes), rate_over(tier.short_minutes)
        burning = long_rate is not None and short_rate is not None and min(long_rate, short_rate) > tier.factor
        tiers.append({**tier.as_dict(), "long_rate": long_rate, "short_rate": short_rate, "burning": burning})
    result["burn_tiers"] = tiers
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
