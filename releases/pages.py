"""Portal pages of releases and experiments (templates under templates/releases/).

Forms post back to the page; each calls the same service the REST API calls, and a refused form is
drawn again with its error beside the field and what was typed kept (``PortalForm``); the buttons
without a field (start or analyse an experiment, a shadow report) say a refusal as a message."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.dateparse import parse_datetime

from portal.errors import UsherError, ValidationError
from portal.forms import ReviewDecisionForm
from portal.pages import PortalPage
from portal.permissions import may
from recommender.models import ModelVersion
from recommender.registry.selectors import model_version_list
from releases import integrations, selectors, services, stats
from releases.conf import release_setting
from releases.forms import (
    ExperimentForm,
    PromotionRequestForm,
    ReasonForm,
    SampleSizeForm,
    ShadowStartForm,
)
from releases.models import Experiment, Rollout


def _run(request, fn, success: str) -> tuple[bool, object]:
    """Call a service; report its refusal (or the success) as a message. Returns (ok, result)."""
    try:
        result = fn()
    except UsherError as exc:
        messages.error(request, exc.message)
        return False, None
    messages.success(request, success)
    return True, result


def _deployment() -> dict:
    try:
        state = integrations.deployment_state()
    except Exception as exc:  # the page still renders when serving is not set up yet
        return {"error": str(exc)}
    ids = [v for v in (state["production_version"], state["canary_version"], state["shadow_version"]) if v]
    names = {v.pk: str(v) for v in ModelVersion.objects.filter(pk__in=ids).select_related("registered_model")}
    for role in ("production", "canary", "shadow"):
        state[f"{role}_name"] = names.get(state[f"{role}_version"], "—")
    return state


class ReleasesView(PortalPage):
    """Overview: what serves traffic, the active canary, promotion requests, experiments, rollback."""

    template_name = "releases/overview.html"
    title = "Releases"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update({
            "deployment": _deployment(),
            "active": selectors.rollout_active(),
            "promotions": selectors.promotion_list()[:30],
            "rollouts": selectors.rollout_list()[:10],
            "experiments": selectors.experiment_list(filters={"status": "running"}),
            "versions": model_version_list(filters={"status": "candidate"})[:50],
            "approved_versions": model_version_list(filters={"status": "approved"})[:50],
            "previous_production": integrations.previous_production_version(),
            "default_steps": ", ".join(str(s) for s in release_setting("CANARY_STEPS")),
            "default_interval": release_setting("CANARY_INTERVAL_SECONDS"),
            "can_request": may(self.request.user, "promotion.request"),
            "preselect": int(self.request.GET["version"]) if self.request.GET.get("version", "").isdigit() else None,
            "can_operate": may(self.request.user, "release.operate"),
        })
        preselect = context["preselect"]
        context.setdefault("promotion_form", PromotionRequestForm(initial={
            "version": preselect, "canary_steps": context["default_steps"],
            "canary_interval_seconds": context["default_interval"]}))
        context.setdefault("rollback_form", ReasonForm())
        context["disabled_attrs"] = {"disabled": "disabled"}
        return context

    def post(self, request):
        action = request.POST.get("action")
        if action == "request":
            form = PromotionRequestForm(request.POST)
            promotion = form.submit(lambda data: services.promotion_request_create(actor=request.user,
                                                                                  **form.service_params()),
                                    actor=request.user, work="promotion.request")
            if promotion is None:
                return self.form_invalid(promotion_form=form)
            messages.success(request, "Promotion requested: the release gate is running.")
            return redirect("releases:promotion", pk=promotion.pk)
        if action == "rollback_production":
            form = ReasonForm(request.POST)
            if form.submit(lambda data: services.production_rollback(actor=request.user, reason=data["reason"]) or True,
                           actor=request.user, work="release.operate") is None:
                return self.form_invalid(rollback_form=form)
            messages.success(request, "Production rolled back to the previous version.")
        else:
            messages.error(request, f"unknown action '{action}'")
        return redirect("releases:overview")


class PromotionView(PortalPage):
    """One promotion request: the gate's checks with their evidence, the review, the canary, history."""

    template_name = "releases/promotion.html"
    title = "Promotion request"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        promotion = get_object_or_404(selectors.promotion_list(), pk=self.kwargs["pk"])
        checks = selectors.promotion_checks(promotion=promotion)
        for check in checks:
            check.evidence_json = json.dumps(check.evidence, indent=2, default=str)
        context.update({
            "promotion": promotion, "checks": checks,
            "rollout": getattr(promotion, "rollout", None) if hasattr(promotion, "rollout") else None,
            "history": selectors.release_history(target=promotion),
            "is_requester": promotion.requested_by_id == self.request.user.pk,
            "can_review": may(self.request.user, "review.decide"),
            # the same rules as promotion_gate_rerun and promotion_cancel: only the actions that will pass
            "can_rerun": may(self.request.user, "promotion.request"),
            "can_cancel": (promotion.requested_by_id == self.request.user.pk and may(self.request.user, "promotion.request"))
            or may(self.request.user, "release.operate"),
            "title": f"Promotion #{promotion.pk}: {promotion.version}",
        })
        context.setdefault("decide_form", ReviewDecisionForm())
        context.setdefault("rerun_form", ReasonForm(placeholder="What changed (a waiver, a new audit, …)"))
        context.setdefault("cancel_form", ReasonForm(placeholder="Why"))
        return context

    def post(self, request, pk: int):
        promotion = get_object_or_404(selectors.promotion_list(), pk=pk)
        action = request.POST.get("action")
        user = request.user
        if action in ("approve", "reject", "request_changes"):
            form = ReviewDecisionForm(request.POST)
            if form.submit(lambda data: services.promotion_decide(promotion=promotion, actor=user, decision=action,
                                                                  comment=data["comment"])) is None:
                return self.form_invalid(decide_form=form)
            messages.success(request, f"Decision recorded: {action.replace('_', ' ')}.")
        elif action in ("cancel", "rerun_gate"):
            form = ReasonForm(request.POST)
            service, done, name = {
                "cancel": (services.promotion_cancel, "Promotion request cancelled.", "cancel_form"),
                "rerun_gate": (services.promotion_gate_rerun, "The release gate runs again.", "rerun_form"),
            }[action]
            if form.submit(lambda data: service(promotion=promotion, actor=user, reason=data["reason"])) is None:
                return self.form_invalid(**{name: form})
            messages.success(request, done)
        else:
            messages.error(request, f"unknown action '{action}'")
        return redirect("releases:promotion", pk=pk)


class RolloutView(PortalPage):
    """One canary rollout: each step with its numbers and who or what decided; operator controls."""

    template_name = "releases/rollout.html"
    title = "Canary rollout"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rollout = get_object_or_404(selectors.rollout_list(), pk=self.kwargs["pk"])
        steps = list(selectors.rollout_steps(rollout=rollout))
        for step in steps:
            step.headline = _step_headline(step.metrics)
        chart = {
            "labels": [f"r{s.revision} {s.created_at:%H:%M}" for s in steps],
            "percent": [s.to_percent for s in steps],
            "canary": [(s.metrics.get("canary") or {}).get("rate") for s in steps],
            "production": [(s.metrics.get("production") or {}).get("rate") for s in steps],
        }
        has_quality = any(v is not None for v in chart["canary"] + chart["production"])
        evidence = selectors.rollout_evidence(rollout=rollout)
        window = release_setting("CANARY_QUALITY_WINDOW_MINUTES") or integrations.quality_window_minutes()
        now = f" Now: {evidence['message']}." if evidence and evidence.get("message") else ""
        context.update({
            "rollout": rollout, "steps": steps, "chart": chart, "has_quality": has_quality,
            "evidence": evidence, "quality_window": window,
            "quality_empty": (f"Canary vs production online quality: no data yet. A served list counts once its "
                              f"{window}-minute success window has closed; each check records both rates here.{now}"),
            "history": selectors.release_history(target=rollout),
            "can_operate": may(self.request.user, "release.operate"),
            "title": f"Canary #{rollout.pk}: {rollout.version}",
        })
        context.setdefault("operate_form", ReasonForm(placeholder="Reason (recorded)"))
        return context

    def post(self, request, pk: int):
        rollout = get_object_or_404(Rollout.objects.all(), pk=pk)
        action = request.POST.get("action")
        if action not in ("pause", "resume", "advance", "rollback"):
            messages.error(request, f"unknown action '{action}'")
            return redirect("releases:rollout", pk=pk)
        form = ReasonForm(request.POST, placeholder="Reason (recorded)")
        fn = getattr(services, f"rollout_{action}")
        if form.submit(lambda data: fn(rollout=rollout, actor=request.user, reason=data["reason"]),
                       actor=request.user, work="release.operate") is None:
            return self.form_invalid(operate_form=form)
        messages.success(request, f"Rollout #{pk}: {ROLLOUT_DONE[action]}.")
        return redirect("releases:rollout", pk=pk)


ROLLOUT_DONE = {"pause": "paused", "resume": "resumed", "advance": "advanced to the next step",
                "rollback": "rolled back, every request goes to production again"}


def _step_headline(metrics: dict) -> dict:
    if not metrics:
        return {}
    prod, canary = metrics.get("production") or {}, metrics.get("canary") or {}
    seq = metrics.get("sequential") or {}
    guard = (metrics.get("guardrails") or {}).get("observed") or {}
    return {"prod": prod, "canary": canary, "seq": seq, "guard": guard,
            "breaches": (metrics.get("guardrails") or {}).get("breaches") or []}


class ExperimentsView(PortalPage):
    """Experiments: the list, a form to define one, and the sample-size calculator."""

    template_name = "releases/experiments.html"
    title = "Experiments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        calc = None
        sample = SampleSizeForm(params if params.get("baseline") or params.get("mde") else None,
                                initial={"design_effect": None})
        sample.fields["design_effect"].widget.attrs["placeholder"] = release_setting("EXPERIMENT_PRIOR_DESIGN_EFFECT")
        if sample.is_bound and sample.is_valid():
            data = sample.cleaned_data
            try:
                calc = {"baseline": data["baseline"], "mde": data["mde"],
                        "alpha": data["alpha"] if data.get("alpha") is not None else 0.05,
                        "power": data["power"] if data.get("power") is not None else 0.8,
                        "relative": bool(data.get("relative"))}
                calc["per_arm"] = stats.sample_size_two_proportions(**calc)
                if data.get("lists_per_viewer") is not None:
                    given = data.get("design_effect")
                    design_effect = given if given is not None else float(
                        release_setting("EXPERIMENT_PRIOR_DESIGN_EFFECT"))
                    plan = stats.sample_size_viewers(
                        baseline=calc["baseline"], mde=calc["mde"], alpha=calc["alpha"], power=calc["power"],
                        relative=calc["relative"], design_effect=design_effect,
                        lists_per_viewer=data["lists_per_viewer"])
                    calc.update({"plan": plan.as_dict(), "lists_per_viewer": data["lists_per_viewer"],
                                 "design_effect": given, "design_effect_source": "given" if given is not None
                                 else "prior"})
            except ValueError as exc:  # the statistics' own check names the value
                sample.add_error(None, str(exc))
                calc = None
        context.update({
            "experiments": selectors.experiment_list(),
            "versions": model_version_list().exclude(status__in=["rejected", "archived"])[:100],
            "calc": calc, "arm_rows": range(4), "sample_form": sample,
            "prior_design_effect": release_setting("EXPERIMENT_PRIOR_DESIGN_EFFECT"),
            "can_create": may(self.request.user, "experiment.manage"),
        })
        context.setdefault("experiment_form", ExperimentForm())
        return context

    def post(self, request):
        form = ExperimentForm(request.POST)
        experiment = form.submit(lambda data: services.experiment_create(actor=request.user, **form.service_params()),
                                 actor=request.user, work="experiment.manage")
        if experiment is None:
            return self.form_invalid(experiment_form=form)
        messages.success(request, "Experiment created (draft).")
        return redirect("releases:experiment", pk=experiment.pk)


class ExperimentView(PortalPage):
    """An experiment's results: per-arm charts over time, the statistics and the decision."""

    template_name = "releases/experiment.html"
    title = "Experiment"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        experiment = get_object_or_404(selectors.experiment_list(), pk=self.kwargs["pk"])
        latest = selectors.experiment_latest_snapshot(experiment=experiment)
        control = next((a.name for a in experiment.arms.all() if a.is_control), None)
        rows = []
        if latest:
            for name, arm in latest.arms.items():
                rows.append({"name": name, **arm, "z": (latest.ztest or {}).get(name),
                             "seq": (latest.sequential or {}).get(name),
                             "progress": ((latest.sample_size or {}).get("progress") or {}).get(name),
                             "achieved_viewers": ((latest.sample_size or {}).get("achieved_viewers") or {}).get(name),
                             "power": ((latest.sample_size or {}).get("achieved_power") or {}).get(name)})
        context.update({
            "experiment": experiment, "latest": latest, "rows": rows, "control": control,
            "chart": selectors.experiment_chart(experiment=experiment),
            "history": selectors.release_history(target=experiment),
            "can_operate": may(self.request.user, "experiment.manage"),
            "title": f"Experiment: {experiment.name}",
        })
        context.setdefault("stop_form", ReasonForm(placeholder="Why stop"))
        return context

    def post(self, request, pk: int):
        experiment = get_object_or_404(Experiment.objects.all(), pk=pk)
        action = request.POST.get("action")
        if action == "start":
            _run(request, lambda: services.experiment_start(experiment=experiment, actor=request.user),
                 "Experiment started.")
        elif action == "stop":
            form = ReasonForm(request.POST)
            if form.submit(lambda data: services.experiment_stop(experiment=experiment, actor=request.user,
                                                                 reason=data["reason"])) is None:
                return self.form_invalid(stop_form=form)
            messages.success(request, "Experiment stopped; the final analysis is recorded.")
        elif action == "analyze":
            _run(request, lambda: services.experiment_analyze(experiment=experiment, actor=request.user, system=None),
                 "Analysis recorded.")
        else:
            messages.error(request, f"unknown action '{action}'")
        return redirect("releases:experiment", pk=pk)


class ShadowView(PortalPage):
    """Shadow: which candidate mirrors production, its agreement over time, recent comparisons."""

    template_name = "releases/shadow.html"
    title = "Shadow"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        reports = list(selectors.shadow_report_list()[:48])
        context.update({
            "deployment": _deployment(),
            "reports": reports,
            "chart": {
                "labels": [r.window_end.strftime("%m-%d %H:%M") for r in reversed(reports)],
                "overlap": [r.mean_overlap for r in reversed(reports)],
                "kendall": [r.mean_kendall_tau for r in reversed(reports)],
                "spearman": [r.mean_spearman_rho for r in reversed(reports)],
            },
            "comparisons": selectors.shadow_comparison_list()[:20],
            "versions": model_version_list().exclude(status__in=["rejected", "archived"])[:100],
            "can_operate": may(self.request.user, "release.operate"),
        })
        context.setdefault("shadow_form", ShadowStartForm())
        context.setdefault("shadow_stop_form", ReasonForm())
        return context

    def post(self, request):
        p = request.POST
        action = p.get("action")
        if action == "start":
            form = ShadowStartForm(p)
            if form.submit(lambda data: services.shadow_start(version=form.fields["version"].version(data["version"]),
                                                              actor=request.user, reason=data["reason"]) or True,
                           actor=request.user, work="release.operate") is None:
                return self.form_invalid(shadow_form=form)
            messages.success(request, "Shadow started: production's requests are mirrored to it.")
        elif action == "stop":
            form = ReasonForm(p)
            if form.submit(lambda data: services.shadow_stop(actor=request.user, reason=data["reason"]) or True,
                           actor=request.user, work="release.operate") is None:
                return self.form_invalid(shadow_stop_form=form)
            messages.success(request, "Shadow stopped.")
        elif action == "report":
            def report():
                since = parse_datetime(p["since"]) if p.get("since") else None
                if services.shadow_report_create(actor=request.user, since=since) is None:
                    raise ValidationError("no mirrored requests in that window")
            _run(request, report, "Shadow report recorded.")
        else:
            messages.error(request, f"unknown action '{action}'")
        return redirect("releases:shadow")
