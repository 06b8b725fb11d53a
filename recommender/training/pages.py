"""Portal pages of the training side and the registry (templates under templates/recommender/training/).

Forms post back to their page and call the same services as the REST API; a refusal comes back as a
message naming what was wrong. Running runs' progress bars poll ``/api/v1/training-runs/<id>/progress``.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from portal.api.params import QueryParams
from portal.errors import UsherError
from portal.pages import PortalPage
from portal.permissions import may, user_has_role
from recommender.models import DatasetSnapshot, ModelAlias, ModelVersion, TrainingRun
from recommender.registry import selectors as registry_selectors
from recommender.registry import services as registry_services
from recommender.training import selectors
from recommender.training.algorithms import ALGORITHMS
from recommender.training.forms import AliasMoveForm, ReasonForm, SnapshotForm, TrainingRunForm, VersionEditForm
from recommender.training.retraining import retraining_start
from recommender.training.runs import training_run_cancel, training_run_create
from recommender.training.snapshots import snapshot_create


def _attempt(request, fn, success: str):
    try:
        result = fn()
    except UsherError as exc:
        messages.error(request, exc.message)
        return None
    messages.success(request, success)
    return result


def _metric_groups(metrics: dict) -> list[tuple[str, list[tuple[str, str, object]]]]:
    return [(name.replace("_", " "), [(key, label, metrics.get(key)) for key, label, _ in items])
            for name, items in selectors.COMPARISON_GROUPS.items()]


class RunListView(PortalPage):
    """Training runs with live progress bars, and the form to start runs (several algorithms at once)."""

    template_name = "recommender/training/runs.html"
    title = "Training runs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = QueryParams(self.request, page=True)  # a bad value is named and left out of the filter
        filters = {"status": query.choice("status", TrainingRun.Status.values, default=""),
                   "algorithm": query.text("algorithm", default="")}
        if (snapshot := query.id("snapshot")) is not None:
            filters["snapshot"] = snapshot
        query.report()
        context.update({
            "runs": selectors.training_run_list(filters=filters)[:100],
            "filters": filters,
            "snapshots": DatasetSnapshot.objects.filter(status="ready").order_by("-created_at")[:50],
            "algorithms": [a.describe() for a in ALGORITHMS.values()],
            "algorithm_names": list(ALGORITHMS),
            "statuses": TrainingRun.Status.choices,
            "can_train": may(self.request.user, "model.build"),
        })
        context.setdefault("form", TrainingRunForm(initial={"snapshot": filters.get("snapshot")}))
        return context

    def post(self, request):
        if request.POST.get("action") == "retrain":
            try:
                run = retraining_start(actor=request.user, system="portal")
            except UsherError as exc:  # refused: nothing was snapshotted
                messages.error(request, exc.message)
                return redirect("recommender:training_runs")
            if run is None:
                messages.info(request, "Nothing to retrain (see the activity log).")
            else:
                messages.success(request, "Scheduled retraining started")
            return redirect("recommender:training_runs")
        form = TrainingRunForm(request.POST)

        def create(data: dict) -> list[TrainingRun]:
            # Every run or none; the role was checked (and a refusal logged) by submit(), outside
            # the transaction, which would roll the refusal's log entry back.
            values = {"snapshot": form.snapshot_object(), "hyperparameters": data["hyperparameters"],
                      "seed": data["seed"] if data.get("seed") is not None else 0, "split": form.split()}
            with transaction.atomic():
                return [training_run_create(actor=request.user, algorithm=algorithm, **values)
                        for algorithm in data["algorithm"]]

        runs = form.submit(create, actor=request.user, work="model.build")
        if runs is None:
            return self.form_invalid(form=form)
        for run in runs:
            messages.success(request, f"{run.algorithm}: run #{run.pk} queued")
        return redirect(f"{request.path}?snapshot={form.cleaned_data['snapshot']}")


class RunDetailView(PortalPage):
    """One run: live progress, metrics, per-group metrics, environment, log; cancel."""

    template_name = "recommender/training/run.html"
    title = "Training run"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = get_object_or_404(selectors.training_run_list(), pk=self.kwargs["pk"])
        metrics = run.metrics or {}
        context.update({
            "run": run, "version": selectors.training_run_version(run),
            "groups": _metric_groups(metrics),
            "group_metrics": run.group_metrics or {},
            "title": f"Run #{run.pk}: {run.algorithm}",
            "can_cancel": may(self.request.user, "model.build") and not run.is_terminal,
        })
        context.setdefault("cancel_form", ReasonForm())
        context["cancel_attrs"] = {"data-testid": "cancel"}
        return context

    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        form = ReasonForm(request.POST)
        if form.submit(lambda data: training_run_cancel(run=run, actor=request.user, reason=data["reason"])) is None:
            return self.form_invalid(cancel_form=form)
        messages.success(request, "Cancel requested")
        return redirect("recommender:training_run", pk=pk)


class SnapshotListView(PortalPage):
    """Dataset snapshots and the form to take one."""

    template_name = "recommender/training/snapshots.html"
    title = "Dataset snapshots"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["snapshots"] = selectors.snapshot_list()[:100]
        context["can_create"] = may(self.request.user, "model.build")
        context.setdefault("form", SnapshotForm())
        return context

    def post(self, request):
        form = SnapshotForm(request.POST)
        snapshot = form.submit(lambda data: snapshot_create(actor=request.user, **form.service_params()),
                               actor=request.user, work="model.build")
        if snapshot is None:
            return self.form_invalid(form=form)
        messages.success(request, "Snapshot taken")
        return redirect("recommender:training_snapshot", pk=snapshot.pk)


class SnapshotDetailView(PortalPage):
    """One snapshot: window, filters, counts, files and hashes, and its runs."""

    template_name = "recommender/training/snapshot.html"
    title = "Dataset snapshot"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        snapshot = get_object_or_404(selectors.snapshot_list(), pk=self.kwargs["pk"])
        context.update({"snapshot": snapshot, "title": str(snapshot),
                        "runs": selectors.training_run_list(filters={"snapshot": snapshot.pk})[:100]})
        return context


class CompareView(PortalPage):
    """Runs on one snapshot side by side in four qualities, with charts."""

    template_name = "recommender/training/compare.html"
    title = "Compare runs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = QueryParams(self.request, page=True)
        snapshots = selectors.snapshot_list().filter(run_count__gt=0)[:50]
        snapshot_id = query.id("snapshot")
        query.report()
        if snapshot_id is None:
            latest = TrainingRun.objects.filter(status="succeeded").order_by("-finished_at").first()
            snapshot_id = latest.snapshot_id if latest else None
        comparison = selectors.training_run_comparison(snapshot_id=snapshot_id) if snapshot_id else None
        tables = []
        if comparison:
            for name, metrics in comparison["groups"].items():
                rows = []
                for metric in metrics:
                    cells = [(r["metrics"][metric["key"]], comparison["best"].get(metric["key"]) == r["run"])
                             for r in comparison["runs"]]
                    rows.append({"label": metric["label"], "better": metric["better"], "cells": cells})
                tables.append({"name": name.replace("_", " "), "rows": rows})
        chart = None
        if comparison and comparison["runs"]:
            labels = [f"#{r['run']} {r['algorithm']}" for r in comparison["runs"]]

            def series(key):
                return [r["metrics"].get(key) for r in comparison["runs"]]

            chart = {"labels": labels, "rmse": series("rmse"), "mae": series("mae"), "ndcg": series("ndcg_at_20"),
                     "precision": series("precision_at_20"), "recall": series("recall_at_20"),
                     "fit": series("training_seconds"), "total": series("total_seconds"),
                     "p50": series("latency_p50_ms"), "p99": series("latency_p99_ms"),
                     "size": [None if v is None else v / 1024 for v in series("artifact_bytes")],
                     "memory": [None if v is None else v / 2**20 for v in series("peak_memory_bytes")]}
        context.update({"snapshots": snapshots, "snapshot_id": snapshot_id, "snapshot_choices": [
            (s.pk, f"snapshot #{s.pk} {s.name} ({s.run_count} runs)") for s in snapshots], "comparison": comparison,
                        "tables": tables, "chart": chart})
        return context


class RegistryView(PortalPage):
    """Aliases (with the move form for operators) and every model version."""

    template_name = "recommender/training/registry.html"
    title = "Model registry"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = QueryParams(self.request, page=True)
        status = query.choice("status", ModelVersion.Status.values, default="")
        query.report()
        aliases = {a.name: a for a in registry_selectors.model_alias_list()}
        context.update({
            "aliases": [(name, aliases.get(name)) for name in ModelAlias.Name.values],
            "versions": registry_selectors.model_version_list(filters={"status": status})[:200],
            "status": status, "statuses": ModelVersion.Status.choices,
            "can_move": user_has_role(self.request.user, "operator"),
            "movable": registry_selectors.model_version_list().exclude(status__in=["rejected", "archived"])[:100],
        })
        context.setdefault("form", AliasMoveForm(versions=context["movable"]))
        return context

    def post(self, request):
        movable = registry_selectors.model_version_list().exclude(status__in=["rejected", "archived"])[:100]
        form = AliasMoveForm(request.POST, versions=movable)
        # The service checks the role and the live-traffic rule, and logs a refusal.
        moved = form.submit(lambda data: registry_services.model_alias_move(
            alias=data["alias"], version=ModelVersion.objects.get(pk=data["version"]) if data["version"] else None,
            actor=request.user, reason=data["reason"]))
        if moved is None:
            return self.form_invalid(form=form)
        messages.success(request, "Alias moved")
        return redirect("recommender:registry")


class VersionDetailView(PortalPage):
    """One version: metrics, artifact, tags; request promotion, archive, verify the artifact."""

    template_name = "recommender/training/version.html"
    title = "Model version"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = get_object_or_404(registry_selectors.model_version_list(), pk=self.kwargs["pk"])
        metrics = version.metrics or {}
        context.update({
            "version": version, "run": version.training_run, "title": str(version),
            "groups": _metric_groups(metrics),
            "can_edit": may(self.request.user, "model.build"),
            "can_promote": may(self.request.user, "promotion.request"),
            # the one in production is not promoted again (promotion_request_create answers 409)
            "in_production": version.aliases.filter(name="production").exists(),
        })
        context.setdefault("edit_form", VersionEditForm(initial={"description": version.description,
                                                                 "tags": ", ".join(version.tags or [])}))
        context.setdefault("archive_form", ReasonForm())
        return context

    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        action = request.POST.get("action")
        if action == "verify":
            try:
                model = registry_selectors.model_version_load(version=version)
                messages.success(request, f"Artifact verified: sha256 {version.artifact_sha256[:12]}…, "
                                          f"{model.n_users} users, {len(model.item_ids)} items")
            except UsherError as exc:
                messages.error(request, f"Artifact refused: {exc.message}")
        elif action == "promote":
            # One promotion path: the releases' promotion request form (gate → review → canary).
            return redirect(f"{reverse('releases:overview')}?version={version.pk}#request-promotion")
        elif action == "archive":
            form = ReasonForm(request.POST)
            if form.submit(lambda data: registry_services.model_version_set_status(
                    version=version, status="archived", actor=request.user, reason=data["reason"])) is None:
                return self.form_invalid(archive_form=form)
            messages.success(request, "Archived")
        elif action == "edit":
            form = VersionEditForm(request.POST)
            if form.submit(lambda data: registry_services.model_version_update(
                    version=version, actor=request.user, tags=form.tag_list(),
                    description=data["description"])) is None:
                return self.form_invalid(edit_form=form)
            messages.success(request, "Saved")
        return redirect("recommender:registry_version", pk=pk)


class LineageView(PortalPage):
    """Snapshot → run → version → where it is deployed."""

    template_name = "recommender/training/lineage.html"
    title = "Lineage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = get_object_or_404(registry_selectors.model_version_list(), pk=self.kwargs["pk"])
        context.update({"version": version, "lineage": registry_selectors.model_version_lineage(version=version),
                        "title": f"Lineage of {version}"})
        return context
