"""Portal pages of the training side and the registry (templates under templates/recommender/training/).

Forms post back to their page and call the same services as the REST API; a refusal comes back as a
message naming what was wrong. Running runs' progress bars poll ``/api/v1/training-runs/<id>/progress``.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from portal.api.params import QueryParams
from portal.errors import UsherError, ValidationError
from portal.pages import PortalPage
from portal.permissions import may, user_has_role
from recommender.models import DatasetSnapshot, ModelAlias, ModelVersion, TrainingRun
from recommender.registry import selectors as registry_selectors
from recommender.registry import services as registry_services
from recommender.training import selectors
from recommender.training.algorithms import ALGORITHMS
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


def _parse_params(text: str) -> dict:
    """``{"n_factors": 50}`` or lines of ``name=value``."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"hyperparameters are not valid JSON: {exc.msg}")
        if not isinstance(value, dict):
            raise ValidationError("hyperparameters must be a JSON object")
        return value
    params = {}
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            if "=" not in line:
                raise ValidationError(f"'{line.strip()}' is not name=value")
            name, value = line.split("=", 1)
            params[name.strip()] = value.strip()
    return params


def _metric_groups(metrics: dict) -> list[tuple[str, list[tuple[str, str, object]]]]:
    return [(name.replace("_", " "), [(key, label, metrics.get(key)) for key, label, _ in items])
            for name, items in selectors.COMPARISON_GROUPS.items()]


def _split_from_form(data) -> dict:
    kind = data.get("split_kind") or "random"
    split: dict = {"kind": kind}
    try:
        if kind in ("random", "temporal") and data.get("test_fraction"):
            split["test_fraction"] = float(data["test_fraction"])
        if kind == "leave_last_n" and data.get("n"):
            split["n"] = int(data["n"])
        if kind == "kfold" and data.get("folds"):
            split["folds"] = int(data["folds"])
    except ValueError:
        raise ValidationError("split options must be numbers")
    return split


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
            "statuses": TrainingRun.Status.values,
            "can_train": may(self.request.user, "model.build"),
        })
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
        algorithms = request.POST.getlist("algorithm")
        if not algorithms:
            messages.error(request, "choose at least one algorithm")
            return redirect("recommender:training_runs")
        snapshot = DatasetSnapshot.objects.filter(pk=request.POST.get("snapshot") or 0).first()
        if snapshot is None:
            messages.error(request, "choose a snapshot")
            return redirect("recommender:training_runs")
        for algorithm in algorithms:
            def create(algorithm=algorithm):
                params = _parse_params(request.POST.get("hyperparameters", "")) if len(algorithms) == 1 else {}
                seed = request.POST.get("seed") or "0"
                if not seed.isdigit():
                    raise ValidationError(f"seed must be a whole number, got {seed!r}")
                return training_run_create(actor=request.user, snapshot=snapshot, algorithm=algorithm,
                                           hyperparameters=params, seed=int(seed), split=_split_from_form(request.POST))
            _attempt(request, create, f"{algorithm}: run queued")
        return redirect(f"{request.path}?snapshot={snapshot.pk}")


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
        return context

    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        _attempt(request, lambda: training_run_cancel(run=run, actor=request.user,
                                                      reason=request.POST.get("reason", "")), "Cancel requested")
        return redirect("recommender:training_run", pk=pk)


class SnapshotListView(PortalPage):
    """Dataset snapshots and the form to take one."""

    template_name = "recommender/training/snapshots.html"
    title = "Dataset snapshots"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["snapshots"] = selectors.snapshot_list()[:100]
        context["can_create"] = may(self.request.user, "model.build")
        return context

    def post(self, request):
        def create():
            values = {}
            for key in ("window_start", "window_end"):
                raw = request.POST.get(key, "").strip()
                if raw:
                    parsed = parse_datetime(raw) or parse_datetime(raw + ":00")
                    if parsed is None:
                        raise ValidationError(f"{key} is not a date and time: {raw!r}")
                    if parsed.tzinfo is None:
                        from django.utils import timezone

                        parsed = timezone.make_aware(parsed)
                    values[key] = parsed
            filters = {}
            for key in ("min_viewer_ratings", "min_movie_ratings"):
                raw = request.POST.get(key, "").strip()
                if raw:
                    if not raw.isdigit():
                        raise ValidationError(f"{key} must be a whole number")
                    filters[key] = int(raw)
            return snapshot_create(actor=request.user, name=request.POST.get("name", ""),
                                   include_implicit=bool(request.POST.get("include_implicit")), filters=filters,
                                   **values)
        snapshot = _attempt(request, create, "Snapshot taken")
        if snapshot is not None:
            return redirect("recommender:training_snapshot", pk=snapshot.pk)
        return redirect("recommender:training_snapshots")


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
        context.update({"snapshots": snapshots, "snapshot_id": snapshot_id, "comparison": comparison,
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
            "status": status, "statuses": ModelVersion.Status.values,
            "can_move": user_has_role(self.request.user, "operator"),
            "movable": registry_selectors.model_version_list().exclude(status__in=["rejected", "archived"])[:100],
        })
        return context

    def post(self, request):
        def move():
            alias = request.POST.get("alias", "")
            raw = request.POST.get("version", "")
            version = None
            if raw:
                version = ModelVersion.objects.filter(pk=raw).first()
                if version is None:
                    raise ValidationError(f"model version #{raw} does not exist")
            return registry_services.model_alias_move(alias=alias, version=version, actor=request.user,
                                                      reason=request.POST.get("reason", ""))
        # The service checks the role and the live-traffic rule, and logs a refusal.
        _attempt(request, move, "Alias moved")
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
        return context

    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        action = request.POST.get("action")
        reason = request.POST.get("reason", "")
        if action == "verify":
            try:
                model = registry_selectors.model_version_load(version=version)
                messages.success(request, f"Artifact verified: sha256 {version.artifact_sha256[:12]}…, "
                                          f"{model.n_users} users, {len(model.item_ids)} items")
            except UsherError as exc:
                messages.error(request, f"Artifact refused: {exc.message}")
        elif action == "promote":
            # One promotion path: the releases' promotion request form (gate → review → canary).
            return redirect(f"{reverse('recommender:releases')}?version={version.pk}#request-promotion")
        elif action == "archive":
            _attempt(request, lambda: registry_services.model_version_set_status(
                version=version, status="archived", actor=request.user, reason=reason), "Archived")
        elif action == "edit":
            tags = [t for t in request.POST.get("tags", "").split(",") if t.strip()]
            _attempt(request, lambda: registry_services.model_version_update(
                version=version, actor=request.user, tags=tags, description=request.POST.get("description", "")),
                "Saved")
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
