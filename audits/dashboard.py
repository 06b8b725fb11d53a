"""The audits' figures on the portal dashboard."""

from __future__ import annotations

from django.http import HttpRequest

from audits import selectors


def cards(request: HttpRequest) -> list[dict]:
    latest = selectors.audit_latest_runs()
    counts = selectors.audit_open_counts()
    out = [{
        "title": "Audit findings needing attention (high or critical)",
        "value": counts["high"] + counts["critical"],
        "link": "audits:findings",
    }]
    for kind, run in latest.items():
        if run is None:
            value = "never run"
        elif run.status == "failed":
            value = f"#{run.pk} failed"
        else:
            value = f"#{run.pk} {'passed' if run.passed else 'failed checks'}"
        out.append({"title": f"Latest {kind} audit", "value": value, "link": "audits:overview"})
    return out
