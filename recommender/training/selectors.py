"""Reads of the training side: snapshots, runs, progress, and the side-by-side comparison."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from recommender.models import DatasetSnapshot, ModelVersion, TrainingRun

# The four qualities of the comparison page and API, with the direction that is better.
COMPARISON_GROUPS: dict[str, list[tuple[str, str, str]]] = {
    "accuracy": [
        ("rmse", "RMSE", "lower"), ("mae", "MAE", "lower"), ("precision_at_20", "Precision@20", "higher"),
        ("recall_at_20", "Recall@20", "higher"), ("ndcg_at_20", "NDCG@20", "higher"), ("map_at_20", "MAP@20", "higher"),
        ("hit_rate_at_20", "Hit rate@20", "higher"), ("coverage", "Coverage", "higher"),
        ("novelty", "Novelty", "higher"), ("personalization", "Personalization", "higher"),
        ("average_popularity", "Avg popularity", "lower"), ("gini", "Gini of exposure", "lower"),
    ],
    "training_cost": [
        ("training_seconds", "Fit time (s)", "lower"), ("total_seconds", "Run time (s)", "lower"),
        ("peak_memory_bytes", "Peak memory (bytes)", "lower"),
    ],
    "inference_cost": [("latency_p50_ms", "Latency p50 (ms)", "lower"), ("latency_p99_ms", "Latency p99 (ms)", "lower")],
    "size": [("artifact_bytes", "Artifact (bytes)", "lower")],
}


def snapshot_list(*, filters: dict | None = None) -> QuerySet[DatasetSnapshot]:
    filters = filters or {}
    qs = DatasetSnapshot.objects.select_related("created_by").annotate(run_count=Count("runs")).order_by(
        "-created_at", "-pk")
    if filters.get("content_sha256"):
        qs = qs.filter(content_sha256__startswith=filters["content_sha256"])
    return qs


def training_run_list(*, filters: dict | None = None) -> QuerySet[TrainingRun]:
    filters = filters or {}
    qs = TrainingRun.objects.select_related("snapshot", "model_version__registered_model").order_by("-queued_at", "-pk")
    for key in ("status", "algorithm", "origin"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("snapshot"):
        qs = qs.filter(snapshot_id=filters["snapshot"])
    if filters.get("ids"):
        qs = qs.filter(pk__in=filters["ids"])
    return qs


def training_run_version(run: TrainingRun) -> ModelVersion | None:
    try:
        return run.model_version
    except ModelVersion.DoesNotExist:
        return None


def training_run_progress(*, run: TrainingRun) -> dict:
    """The small JSON the portal's progress bars poll."""
    version = training_run_version(run)
    return {
        "id": run.pk, "status": run.status, "stage": run.stage, "percent": run.percent,
        "cancel_requested": run.cancel_requested, "attempts": run.attempts,
        "started_at": run.started_at, "finished_at": run.finished_at, "heartbeat_at": run.heartbeat_at,
        "error": run.error.splitlines()[0] if run.error else "",
        "model_version": version.pk if version else None,
        "log_tail": run.log.splitlines()[-8:],
    }


def training_run_comparison(*, snapshot_id: int | None = None, run_ids: list[int] | None = None) -> dict:
    """Succeeded runs side by side in four qualities; the best value of each metric is marked."""
    qs = training_run_list(filters={"status": TrainingRun.Status.SUCCEEDED, "snapshot": snapshot_id,
                                    "ids": run_ids}).order_by("algorithm", "pk")
    runs = list(qs[:50])
    rows = []
    for run in runs:
        version = training_run_version(run)
        rows.append({
            "run": run.pk, "algorithm": run.algorithm, "hyperparameters": run.hyperparameters,
            "snapshot": run.snapshot_id, "split": run.split, "model_version": version.pk if version else None,
            "model_version_name": str(version) if version else None,
            "metrics": {key: run.metrics.get(key) for group in COMPARISON_GROUPS.values() for key, _, _ in group},
        })
    best: dict[str, int] = {}
    for group in COMPARISON_GROUPS.values():
        for key, _, direction in group:
            values = [(r["metrics"][key], r["run"]) for r in rows if isinstance(r["metrics"][key], int | float)]
            if len(values) > 1:
                best[key] = (min(values) if direction == "lower" else max(values))[1]
    snapshots = sorted({r["snapshot"] for r in rows})
    return {
        "snapshot": snapshot_id, "snapshots": snapshots, "same_snapshot": len(snapshots) <= 1,
        "groups": {name: [{"key": k, "label": label, "better": d} for k, label, d in metrics]
                   for name, metrics in COMPARISON_GROUPS.items()},
        "runs": rows, "best": best,
    }
