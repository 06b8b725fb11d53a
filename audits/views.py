"""Portal pages of the audits: overview and runs, one run's report (charts, tables, findings, history),
its JSON export and printable report, the findings list and one finding with its actions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View

from audits import selectors, services, sources
from audits.errors import ValidationError
from audits.forms import AuditRunForm, CommentForm, WaiverForm
from audits.models import AuditFinding, AuditRun, FindingResolution, Severity
from portal.charts import chart_spec
from portal.pages import PortalPage
from portal.permissions import may

# Verdicts in the portal's palette (portal/static/portal/charts.js resolves the names to unfold's colours).
VERDICT_COLORS = {"fail": "red-600", "pass": "green-600", "reference": "primary-600", "not_significant": "orange-500",
                  "insufficient_data": "base-400", "excluded": "base-400", "undefined": "base-400"}


def _disparity_charts(run: AuditRun) -> list[dict]:
    """Chart specs (portal.charts): per attribute, the judged metrics' disparity per group, with the
    band; per dimension, the recommended vs watched exposure."""
    charts = []
    for check in run.results.get("checks", []):
        if check["name"] != "fairness.model" or check["status"] != "ok":
            continue
        results = check["results"]
        low, high = results["band"]
        for attribute, data in results["attributes"].items():
            groups = [g for g in data["groups"] if g["verdict"] not in ("excluded",)]
            datasets = [{
                "type": "bar", "label": f"{metric} disparity",
                "data": [g["metrics"][metric]["disparity"] for g in groups],
                "color": [VERDICT_COLORS.get(g["metrics"][metric].get("verdict", g["verdict"]), "base-400")
                          for g in groups],
            } for metric in results["judged_metrics"]]
            datasets.append({"label": f"band low {low}", "guide": True, "data": [low] * len(groups)})
            datasets.append({"label": f"band high {high}", "guide": True, "data": [high] * len(groups)})
            charts.append(chart_spec(
                id=f"disparity-{attribute}", kind="bar",
                title=f"Disparity by {attribute} (reference {data['reference_group']})",
                labels=[f"{g['group']} ({g['viewers']})" for g in groups], datasets=datasets,
                x_title=f"{attribute} group (viewers)", y_title="disparity (÷ reference)",
                description="Bars: red outside the band, green inside, amber not significant, grey too few "
                            "viewers to judge; the reference group is 1.",
                empty=f"No data yet — no {attribute} group had enough viewers to be judged."))
    for check in run.results.get("checks", []):
        if check["name"] != "fairness.system" or check["status"] != "ok":
            continue
        exposure = (check["results"] or {}).get("exposure") or {}
        for dimension, rows in (exposure.get("dimensions") or {}).items():
            rows = rows[:15]
            name = dimension.replace("_", " ")
            share = [None if r["recommended_share"] is None else round(100 * r["recommended_share"], 3) for r in rows]
            watched = [None if r["watched_share"] is None else round(100 * r["watched_share"], 3) for r in rows]
            charts.append(chart_spec(
                id=f"exposure-{dimension}", kind="bar", title=f"Exposure by {name}",
                labels=[r["category"] for r in rows],
                datasets=[{"label": "share of recommendations", "data": share, "tone": "primary"},
                          {"label": "share of watches", "data": watched, "tone": "reference"}],
                x_title=name, y_title="share", y_unit="%",
                empty=f"No data yet — no recommendation or watch with a known {name} in the audit's window."))
    return charts


class AuditOverviewView(PortalPage):
    """Latest audits, findings needing attention, schedules, the runs, and a form to start one."""

    template_name = "audits/overview.html"
    title = "Audits"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        from portal.api.params import QueryParams

        params = self.request.GET
        query = QueryParams(self.request, page=True)  # a bad value is named and left out of the filter
        filters = {"kind": query.choice("kind", AuditRun.Kind.values, default=""),
                   "status": query.choice("status", AuditRun.Status.values, default=""),
                   "trigger": query.choice("trigger", AuditRun.Trigger.values, default="")}
        query.report()
        runs = Paginator(selectors.audit_run_list(filters=filters, summary=True), 25).get_page(params.get("page"))
        context.update({
            "latest": selectors.audit_latest_runs(),
            "open_counts": selectors.audit_open_counts(),
            "runs": runs, "filters": filters,
            "schedules": selectors.audit_schedule_list(),
            "kinds": AuditRun.Kind.choices, "statuses": AuditRun.Status.choices, "triggers": AuditRun.Trigger.choices,
            "can_start": may(self.request.user, "audit.run"),
            "can_explore": may(self.request.user, "audit.explore"),
            "attention": selectors.audit_finding_list(filters={"status": "open"})[:10],
        })
        context.setdefault("form", AuditRunForm())
        return context

    def post(self, request: HttpRequest):
        form = AuditRunForm(request.POST)

        def start(data: dict) -> AuditRun:
            version = None
            if data.get("model_version") is not None:
                version = sources.model_version_get(version_id=data["model_version"])
                if version is None:
                    raise ValidationError(f"model version #{data['model_version']} does not exist",
                                          field="model_version")
            return services.audit_run_create(kind=data["kind"], actor=request.user, model_version=version,
                                             window_hours=data.get("window_hours"), overrides=data.get("overrides") or {})

        run = form.submit(start, actor=request.user, work="audit.run")
        if run is None:
            return self.form_invalid(form=form)
        messages.success(request, f"Audit #{run.pk} queued" + (
            " (exploratory: the release gate ignores it)." if run.exploratory else "."))
        return redirect("audits:run", pk=run.pk)


class AuditRunView(PortalPage):
    """One run: summary, disparity and exposure charts, per-group tables, checks, findings, history."""

    template_name = "audits/run.html"
    title = "Audit"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = get_object_or_404(selectors.audit_run_list(), pk=self.kwargs["pk"])
        checks = run.results.get("checks", [])
        context.update({
            "run": run,
            "checks": checks,
            "model_check": next((c for c in checks if c["name"] == "fairness.model" and c["status"] == "ok"), None),
            "system_check": next((c for c in checks if c["name"] == "fairness.system" and c["status"] == "ok"), None),
            "findings": selectors.audit_finding_list(filters={"run": run.pk}),
            "history": selectors.audit_run_history(run=run),
            "reviews": selectors.audit_run_reviews(run=run),
            "charts": _disparity_charts(run),
            "can_act": may(self.request.user, "finding.acknowledge"),
            "gate": selectors.audit_release_gate(model_version=run.model_version) if run.model_version_id else None,
            "title": f"{run.kind.title()} audit #{run.pk}",
        })
        context.setdefault("signoff_form", CommentForm(placeholder="Note for the reviewer (optional)"))
        return context

    def post(self, request: HttpRequest, pk: int):
        run = get_object_or_404(selectors.audit_run_list(), pk=pk)
        form = CommentForm(request.POST)
        review = form.submit(lambda data: services.audit_run_signoff_request(run=run, actor=request.user,
                                                                           comment=data["comment"]))
        if review is None:
            return self.form_invalid(signoff_form=form)
        messages.success(request, f"Sign-off requested: review #{review.pk} is in the reviewers' inbox.")
        return redirect("audits:run", pk=pk)


class AuditRunExportView(View):
    """The run as a JSON file."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(selectors.audit_run_list(), pk=pk)
        response = JsonResponse(selectors.audit_run_export(run=run), json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="audit-{run.pk}.json"'
        return response


class AuditRunPrintView(PortalPage):
    """A standalone, printable HTML report of the run (no sidebar, no scripts; bars drawn in CSS)."""

    template_name = "audits/report_print.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = get_object_or_404(selectors.audit_run_list(), pk=self.kwargs["pk"])
        export = selectors.audit_run_export(run=run)
        checks = run.results.get("checks", [])
        context.update({"run": run, "export": export, "checks": checks,
                        "model_check": next((c for c in checks if c["name"] == "fairness.model"
                                             and c["status"] == "ok"), None),
                        "system_check": next((c for c in checks if c["name"] == "fairness.system"
                                              and c["status"] == "ok"), None),
                        "findings": selectors.audit_finding_list(filters={"run": run.pk}),
                        "now": timezone.now()})
        return context


class AuditFindingListView(PortalPage):
    template_name = "audits/findings.html"
    title = "Audit findings"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        from portal.api.params import QueryParams

        params = self.request.GET
        query = QueryParams(self.request, page=True)
        filters = {"status": query.choice("status", AuditFinding.Status.values, default=""),
                   "severity": query.choice("severity", Severity.values, default=""),
                   "kind": query.choice("kind", AuditRun.Kind.values, default=""),
                   "check_name": query.text("check_name", default="")}
        query.report()
        page = Paginator(selectors.audit_finding_list(filters=filters), 50).get_page(params.get("page"))
        context.update({"page_obj": page, "filters": filters, "statuses": AuditFinding.Status.choices,
                        "severities": Severity.choices, "kinds": AuditRun.Kind.choices})
        return context


class AuditFindingView(PortalPage):
    """One finding: evidence, waivers, history; acknowledge, resolve, ask for a waiver."""

    template_name = "audits/finding.html"
    title = "Finding"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        finding = get_object_or_404(selectors.audit_finding_list(), pk=self.kwargs["pk"])
        user = self.request.user
        context.update({
            "finding": finding,
            "history": selectors.audit_finding_history(finding=finding),
            "runs": finding.runs.order_by("-created_at")[:20],
            "can_act": may(user, "finding.acknowledge"),
            "can_resolve": may(user, "resolution.propose"),
            "can_waive": may(user, "waiver.request"),
            "needs_review": services.resolution_needs_review(finding),
            "pending_resolution": next((r for r in finding.resolutions.all()
                                        if r.status == FindingResolution.Status.PENDING), None),
            "default_expiry": (timezone.now() + timedelta(days=30)).date().isoformat(),
            "title": f"Finding #{finding.pk}: {finding.title}",
        })
        context.setdefault("acknowledge_form", CommentForm(placeholder="Who owns it, what happens next (optional)"))
        context.setdefault("resolve_form", CommentForm(placeholder="What was done (required)"))
        context.setdefault("waiver_form", WaiverForm(initial={"expires_at": context["default_expiry"]}))
        return context

    def post(self, request: HttpRequest, pk: int):
        finding = get_object_or_404(selectors.audit_finding_list(), pk=pk)
        action = request.POST.get("action", "")
        user = request.user
        if action == "acknowledge":
            form = CommentForm(request.POST)
            if form.submit(lambda d: services.finding_acknowledge(finding=finding, actor=user, comment=d["comment"]),
                           actor=user, work="finding.acknowledge", target=finding) is None:
                return self.form_invalid(acknowledge_form=form)
            messages.success(request, f"Finding #{pk} acknowledged.")
        elif action == "resolve":
            form = CommentForm(request.POST)
            after = form.submit(lambda d: services.finding_resolve(finding=finding, actor=user, comment=d["comment"]),
                                actor=user, work="resolution.propose", target=finding)
            if after is None:
                return self.form_invalid(resolve_form=form)
            if after.status == AuditFinding.Status.RESOLVED:
                messages.success(request, f"Finding #{pk} resolved.")
            else:
                pending = after.resolutions.filter(status=FindingResolution.Status.PENDING).first()
                messages.success(request, f"Resolution proposed: review #{pending.review_id if pending else '?'} "
                                          "is in the reviewers' inbox (someone other than you decides).")
        elif action == "waive":
            form = WaiverForm(request.POST)
            waiver = form.submit(lambda d: services.finding_waiver_request(
                finding=finding, actor=user, justification=d["justification"], expires_at=d["expires_at"]),
                actor=user, work="waiver.request", target=finding)
            if waiver is None:
                return self.form_invalid(waiver_form=form)
            messages.success(request, f"Waiver requested: review #{waiver.review_id} is in the reviewers' inbox.")
        else:
            messages.error(request, f"unknown action {action!r}")
        return redirect("audits:finding", pk=pk)
