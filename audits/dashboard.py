"""The audits' figures on the portal dashboard: latest runs, findings needing attention, a chart."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.utils import timezone

from audits import selectors
from audits.models import AuditFinding


def cards(request: HttpRequest) -> list[dict]:
    latest = selectors.audit_latest_runs()
    counts = selectors.audit_open_counts()
    out = [{
        "title": "Audit findings needing attention (high or critical)",
        "value": counts["high"] + counts["critical"],
        "link": "audits:findings",
        "icon": "report",
        "description": ", ".join(f"{n} {sev}" for sev, n in counts.items() if n) or "none open or acknowledged",
    }]
    for kind, run in latest.items():
        if run is None:
            value, description = "never run", "scheduled by beat; or: manage.py audit " + kind
        elif run.status == "failed":
            value, description = f"#{run.pk} failed", (run.error.splitlines()[0] if run.error else "")[:120]
        else:
            value = f"#{run.pk} {'passed' if run.passed else 'failed checks'}"
            description = f"{run.finished_at:%Y-%m-%d %H:%M}, {run.finding_count} finding(s)"
        if run is not None and run.exploratory:  # the same label as the audits' pages: not gate evidence
            description = f"exploratory (the gate ignores it) · {description}"
        out.append({"title": f"Latest {kind} audit", "value": value, "icon": "fact_check",
                    "link": f"/portal/audits/runs/{run.pk}/" if run else "audits:overview",
                    "description": description})
    return out


def charts(request: HttpRequest) -> list[dict]:
    since = (timezone.now() - timedelta(days=13)).date()
    days = [since + timedelta(days=i) for i in range(14)]
    rows = (AuditFinding.objects.filter(first_seen_at__date__gte=since).annotate(day=TruncDate("first_seen_at"))
            .values("day", "kind").annotate(n=Count("id")))
    counts = {(r["day"], r["kind"]): r["n"] for r in rows}
    return [{
        "title": "Audit findings raised, last 14 days",
        "type": "bar",
        "link": "audits:findings",
        "x_title": "day first seen (month-day)",
        "y_title": "findings raised",
        "y_unit": "per day",
        "zero_is_empty": True,
        "empty": "No data yet — no finding raised in the last 14 days; fairness and security audits run on "
                 "beat's schedule (or: manage.py audit <kind>).",
        "data": {
            "labels": [d.strftime("%m-%d") for d in days],
            "datasets": [{"label": f"{kind} findings", "data": [counts.get((d, kind), 0) for d in days]}
                         for kind in ("fairness", "security")],
        },
    }]
