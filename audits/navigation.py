"""The audits' section of the portal sidebar."""

from __future__ import annotations

from django.urls import reverse_lazy


def open_findings_badge(request) -> str:
    """Findings still open, shown beside the findings link."""
    from audits.models import AuditFinding

    if not request.user.is_authenticated:
        return ""
    count = AuditFinding.objects.filter(status=AuditFinding.Status.OPEN).count()
    return str(count) if count else ""


def sections(request) -> list[dict]:
    return [
        {
            "title": "Audits",
            "separator": True,
            "items": [
                {"title": "Audit runs", "icon": "fact_check", "link": reverse_lazy("audits:overview")},
                {"title": "Findings", "icon": "report", "link": reverse_lazy("audits:findings"),
                 "badge": "audits.navigation.open_findings_badge"},
                {"title": "Audit schedules", "icon": "schedule",
                 "link": reverse_lazy("portal:schedules") + "?app=audits"},
            ],
        }
    ]
