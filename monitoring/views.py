"""Portal pages of monitoring: the dashboard (charts polling the JSON API), SLOs, incidents, drift,
data quality, feedback loops, online quality, alert rules and notifications. Views stay thin:
forms post to the same services the API and the admin use."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone

from monitoring import selectors
from monitoring.conf import monitoring_setting
from monitoring.forms import DataQualityRunForm, DriftRunForm, IncidentActionForm
from monitoring.models import Incident, TelemetryMinute
from monitoring.services import alerts, incidents, notifications
from monitoring.services.data_quality import data_quality_report_create
from monitoring.services.drift import drift_report_create
from monitoring.services.feedback import ADVERSE_DIRECTION, feedback_snapshots_update, feedback_trends
from monitoring.services.quality import online_quality
from monitoring.services.slo import slo_status
from portal.api.params import QueryParams
from portal.charts import chart_spec
from portal.errors import UsherError
from portal.pages import PortalPage
from portal.permissions import may


def _json(value):
    """A page's data for the template's ``json_script`` filter, which escapes it for a <script>
    element (never ``|safe``: upstream labels may hold ``</script>``)."""
    return value


class _OperatorPost:
    """POST handlers: the service checks the role (and logs a refusal); domain errors become a
    message, not a crash."""

    def run(self, request, fn, ok: str, *args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            messages.success(request, ok)
            return result
        except UsherError as exc:
            messages.error(request, exc.message)
            return None


class DashboardView(PortalPage):
    template_name = "monitoring/dashboard.html"
    title = "Monitoring"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        context["slos"] = [slo_status(slo=s, now=now) for s in selectors.slo_list(enabled_only=True)]
        context["active_incidents"] = selectors.incident_list(filters={"active": True})[:10]
        context["latest_drift"] = selectors.drift_report_list().first()
        context["latest_dq"] = selectors.data_quality_report_list().first()
        context["config"] = _json({
            "refreshSeconds": int(monitoring_setting("DASHBOARD_REFRESH_SECONDS")),
            "urls": {
                "summary": reverse("api-monitoring-summary"),
                "telemetry": reverse("api-monitoring-telemetry"),
                "quality": reverse("api-monitoring-online-quality"),
                "drift": reverse("api-monitoring-drift-trend"),
                "feedback": reverse("api-monitoring-feedback"),
                "slos": reverse("api-monitoring-slo-status"),
            },
            "driftCap": selectors.DRIFT_CHART_CAP,
            "availabilityObjective": next((s["objective"] for s in context["slos"] if s["kind"] == "availability"),
                                          None),
        })
        return context


class SLOView(PortalPage):
    template_name = "monitoring/slos.html"
    title = "SLOs and error budgets"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        context["statuses"] = [(s, slo_status(slo=s, now=now)) for s in selectors.slo_list()]
        context["burn_rules"] = selectors.alert_rule_list(filters={"metric": "slo_burn_rate"})
        return context


class IncidentListView(PortalPage):
    template_name = "monitoring/incidents.html"
    title = "Incidents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = QueryParams(self.request, page=True)  # a bad value is named and shows every incident
        status = "" if self.request.GET.get("status") == "" else query.choice(  # "": the form's "all"
            "status", ["active", *Incident.Status.values], default="active")
        if query.report():
            status = ""
        filters = {"active": True} if status == "active" else ({"status": status} if status else {})
        page = Paginator(selectors.incident_list(filters=filters), 50).get_page(self.request.GET.get("page"))
        context.update({"page_obj": page, "status": status, "status_choices": [
            ("active", "active (open or acknowledged)"), *Incident.Status.choices, ("", "all")]})
        return context


class IncidentDetailView(PortalPage, _OperatorPost):
    template_name = "monitoring/incident_detail.html"
    title = "Incident"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident = get_object_or_404(selectors.incident_list(), pk=self.kwargs["pk"])
        context.update({
            "incident": incident,
            "notes": incident.notes.all(),
            "timeline": selectors.incident_timeline(incident=incident),
            "notifications": selectors.notification_list(filters={"incident": incident.pk}),
            "title": f"Incident #{incident.pk}: {incident.title}",
            "can_act": may(self.request.user, "incident.handle"),
        })
        context.setdefault("form", IncidentActionForm())
        return context

    def post(self, request, pk: int):
        incident = get_object_or_404(selectors.incident_list(), pk=pk)
        action = request.POST.get("action")
        actions = {
            "acknowledge": (lambda text: incidents.incident_acknowledge(incident=incident, actor=request.user,
                                                                         comment=text), "Acknowledged."),
            "annotate": (lambda text: incidents.incident_annotate(incident=incident, actor=request.user, text=text),
                         "Note added."),
            "resolve": (lambda text: incidents.incident_resolve(incident=incident, actor=request.user,
                                                                resolution=text), "Resolved."),
        }
        if action not in actions:
            messages.error(request, f"unknown action {action!r}")
            return redirect("monitoring:incident", pk=pk)
        fn, done = actions[action]
        form = IncidentActionForm(request.POST)
        if form.submit(lambda data: fn(data["text"]) or True, actor=request.user, work="incident.handle",
                       target=incident) is None:
            return self.form_invalid(form=form)
        messages.success(request, done)
        return redirect("monitoring:incident", pk=pk)


class DriftListView(PortalPage, _OperatorPost):
    template_name = "monitoring/drift_list.html"
    title = "Drift"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = Paginator(selectors.drift_report_list(), 30).get_page(self.request.GET.get("page"))
        context.update({"page_obj": page, "features": selectors.drift_feature_list()})
        context.setdefault("form", DriftRunForm())
        return context

    def post(self, request):
        form = DriftRunForm(request.POST)
        report = form.submit(lambda data: drift_report_create(window_hours=data.get("hours"), actor=request.user),
                             actor=request.user, work="config.manage")
        if report is None:
            return self.form_invalid(form=form)
        messages.success(request, "Drift report made.")
        return redirect("monitoring:drift_report", pk=report.pk)


def _drift_score_chart(rows: list[dict]) -> dict:
    """The report's drift score per feature: one scale for every test, above 1 = drifted, capped at
    ``DRIFT_CHART_CAP`` so one far-drifted feature leaves the others readable."""
    tested = [r for r in rows if r["drift_score"] is not None]
    return chart_spec(
        id="drift-scores", title="Drift score per feature (above 1 = drifted)", kind="bar",
        labels=[r["feature"] for r in tested],
        datasets=[
            {"label": "drift score (red: drifted)", "data": [round(r["drift_score"], 4) for r in tested],
             "color": ["red-600" if r["drifted"] else "primary-600" for r in tested]},
            {"label": "threshold (1)", "guide": True, "data": [1.0] * len(tested)},
        ],
        x_title="feature", y_title="drift score", y_cap=selectors.DRIFT_CHART_CAP,
        description=f"−log10 p ÷ −log10 alpha for KS and chi-square, distance ÷ threshold for the distances. "
                    f"Scores above {selectors.DRIFT_CHART_CAP:g} are drawn at {selectors.DRIFT_CHART_CAP:g}; "
                    f"the table and the tooltip give the true value.",
        empty="No data yet — no feature could be tested: the reference or the current window holds no events.",
    )


def _drift_histogram_chart(row: dict) -> dict:
    h = row["histogram"]
    numeric = row["kind"] == "numeric"
    return chart_spec(
        id=f"drift-histogram-{row['feature']}", title=f"{row['feature']}: reference vs current", kind="bar",
        labels=h.get("labels") or [],
        datasets=[{"label": "reference (training snapshot)", "tone": "reference",
                   "data": [round(100 * v, 3) for v in h.get("reference") or []]},
                  {"label": "current window", "tone": "primary",
                   "data": [round(100 * v, 3) for v in h.get("current") or []]}],
        x_title="value range" if numeric else "category", y_title="share of observations", y_unit="%",
        empty=f"No data yet — {row['note'] or 'no observation of this feature in either window'}.",
    )


class DriftReportView(PortalPage):
    template_name = "monitoring/drift_report.html"
    title = "Drift report"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        report = get_object_or_404(selectors.drift_report_list(), pk=self.kwargs["pk"])
        rows = selectors.drift_result_rows(report=report)
        context.update({
            "report": report, "results": rows, "title": f"Drift report #{report.pk} ({report.get_status_display()})",
            "score_chart": _drift_score_chart(rows),
            "histogram_charts": [_drift_histogram_chart(r) for r in rows if r["histogram"]],
        })
        return context


class DataQualityListView(PortalPage, _OperatorPost):
    template_name = "monitoring/data_quality_list.html"
    title = "Data quality"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["page_obj"] = Paginator(selectors.data_quality_report_list(), 50).get_page(self.request.GET.get("page"))
        context.setdefault("form", DataQualityRunForm())
        return context

    def post(self, request):
        form = DataQualityRunForm(request.POST)
        report = form.submit(lambda data: data_quality_report_create(window_minutes=data.get("minutes"),
                                                                     actor=request.user),
                             actor=request.user, work="config.manage")
        if report is None:
            return self.form_invalid(form=form)
        messages.success(request, "Data-quality report made.")
        return redirect("monitoring:data_quality_report", pk=report.pk)


class DataQualityReportView(PortalPage):
    template_name = "monitoring/data_quality_report.html"
    title = "Data-quality report"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        report = get_object_or_404(selectors.data_quality_report_list(), pk=self.kwargs["pk"])
        context.update({"report": report, "sections": json.dumps(report.sections, indent=2),
                        "title": f"Data quality {report.window_start:%Y-%m-%d %H:%M}–{report.window_end:%H:%M}"})
        return context


class FeedbackView(PortalPage, _OperatorPost):
    template_name = "monitoring/feedback.html"
    title = "Feedback loops"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["trends"] = feedback_trends()
        context["snapshots"] = list(selectors.feedback_snapshot_list().order_by("-bucket_start")[:60])
        context["config"] = _json({"url": reverse("api-monitoring-feedback"), "metrics": list(ADVERSE_DIRECTION),
                                   "refreshSeconds": int(monitoring_setting("DASHBOARD_REFRESH_SECONDS"))})
        return context

    def post(self, request):
        self.run(request, feedback_snapshots_update, "Feedback-loop buckets recomputed.", buckets=7,
                 actor=request.user)
        return redirect("monitoring:feedback")


class OnlineQualityView(PortalPage):
    template_name = "monitoring/online_quality.html"
    title = "Online quality"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        query = QueryParams(self.request, page=True)  # a bad value is named and its default used
        hours = query.number("hours", default=24.0, minimum=1.0, maximum=24 * 31)
        source = query.choice("source", ("auto", "server", "client"), default="auto")
        query.report()
        groups = online_quality(since=now - timedelta(hours=hours), until=now, group_by=("model_version_id", "arm"),
                                source=source, now=now)
        context.update({"groups": groups, "hours": hours, "source": source,
                        "source_choices": [("auto", "auto"), *TelemetryMinute.Source.choices],
                        "window": monitoring_setting("ONLINE_QUALITY_WINDOW_MINUTES"),
                        "config": _json({"url": reverse("api-monitoring-online-quality"), "hours": hours,
                                         "source": source})})
        return context


class RulesView(PortalPage, _OperatorPost):
    template_name = "monitoring/rules.html"
    title = "Alert rules and notifications"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update({
            "rules": selectors.alert_rule_list(),
            "channels": selectors.notification_channel_list(),
            "notifications": selectors.notification_list()[:50],
            "can_act": may(self.request.user, "config.manage"),
        })
        return context

    def post(self, request):
        action = request.POST.get("action")
        if action == "evaluate":
            evaluations = self.run(request, alerts.alert_rules_evaluate, "Rules evaluated.", actor=request.user,
                                   system=None)
            if evaluations:
                opened = [e.incident_id for e in evaluations if e.opened]
                if opened:
                    messages.warning(request, f"Opened incident(s): {', '.join(f'#{i}' for i in opened)}")
        elif action == "test_channel":
            channel = get_object_or_404(selectors.notification_channel_list(), pk=request.POST.get("channel"))
            result = self.run(request, notifications.notification_channel_test, f"Test sent through {channel.name}.",
                              channel=channel, actor=request.user)
            if result is not None and result.status != "sent":
                messages.error(request, f"{channel.name}: {result.last_error}")
        else:
            messages.error(request, f"unknown action {action!r}")
        return redirect("monitoring:rules")
