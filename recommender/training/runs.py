"""Training runs: create (validated, then enqueued), cancel, execute (in a worker), repair stuck runs.

Execution stages and their share of the progress bar: loading the snapshot (0–5 %), fitting (5–55 %,
epoch by epoch for the SGD/ALS algorithms), rating predictions (55–65 %), exporting the artifact
(65–80 %), ranking evaluation and cost (80–95 %), registering (95–100 %). A cancellation request is
honoured at each stage boundary and at each epoch. The model version is registered in the same
transaction that marks the run succeeded, from an artifact already renamed into place: a worker
killed at any point leaves no half-registered version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import OperationalError, close_old_connections, connection, transaction
from django.utils import timezone
from surprise import Dataset, Reader

from portal.errors import Conflict, ValidationError
from portal.permissions import require
from portal.queue import task_send
from portal.services import activity_log_record
from recommender.errors import TrainingCancelled
from recommender.models import DatasetSnapshot, ModelVersion, TrainingRun
from recommender.registry import services as registry_services
from recommender.registry.artifacts import artifact_root, load_serving_model, write_artifact
from recommender.training import evaluation as ev
from recommender.training.algorithms import (
    ALGORITHMS,
    FitWatcher,
    algorithm_build,
    algorithm_export,
    algorithm_get,
    validate_hyperparameters,
)
from recommender.training.environment import environment_capture
from recommender.training.snapshots import snapshot_check_trainable, snapshot_load_ratings, snapshot_load_viewers

logger = logging.getLogger(__name__)
TASK_NAME = "recommender.train"


def _label(actor: Any, system: str | None) -> tuple[Any, str]:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor, actor.get_username()
    return None, f"system:{system or 'usher'}"


# --- create / cancel -------------------------------------------------------------------------------

def training_run_validate(
    *, snapshot: DatasetSnapshot, algorithm: str, hyperparameters: dict | None, seed: int, split: dict | None,
) -> tuple[str, dict, dict]:
    """Everything checked before a run exists: algorithm, hyperparameters, split, snapshot size."""
    algo = algorithm_get(algorithm)
    params = validate_hyperparameters(algo.name, hyperparameters)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError(f"seed must be a whole number from 0 to 2^32−1, got {seed!r}", field="seed")
    clean_split = ev.split_validate(split, seed=seed)
    snapshot_check_trainable(snapshot=snapshot)
    return algo.name, params, clean_split


def training_run_create(
    *,
    actor: Any | None,
    snapshot: DatasetSnapshot,
    algorithm: str,
    hyperparameters: dict | None = None,
    seed: int = 0,
    split: dict | None = None,
    register: bool = True,
    registered_model_name: str = "",
    origin: str = TrainingRun.Origin.MANUAL,
    system: str | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Validate, record a queued run, and (after commit) enqueue ``recommender.train`` (``model.build``)."""
    require(actor, "model.build", system=system)
    name, params, clean_split = training_run_validate(
        snapshot=snapshot, algorithm=algorithm, hyperparameters=hyperparameters, seed=seed, split=split
    )
    if len(registered_model_name) > 100:
        raise ValidationError("registered_model_name is at most 100 characters")
    user, label = _label(actor, system)
    with transaction.atomic():
        run = TrainingRun.objects.create(
            snapshot=snapshot, algorithm=name, hyperparameters=params, seed=seed, split=clean_split,
            register=register, registered_model_name=registered_model_name.strip(), origin=origin,
            created_by=user, created_by_label=label,
        )
        activity_log_record(
            actor=user, system=system, action="training_run.created", target=run,
            data={"algorithm": name, "hyperparameters": params, "snapshot": snapshot.pk, "split": clean_split,
                  "seed": seed, "origin": origin},
        )
        if enqueue:
            transaction.on_commit(lambda: training_run_enqueue(run_id=run.pk))
    return run


def training_run_enqueue(*, run_id: int) -> str | None:
    """Send ``recommender.train`` by name to the workers (called after the creating transaction
    commits). With the broker down the run stays queued without a task id, and
    ``training_run_requeue_unsent`` sends it later."""
    task_id = task_send(TASK_NAME, args=[run_id], what=f"training run #{run_id}")
    if task_id:
        TrainingRun.objects.filter(pk=run_id, celery_task_id="").update(celery_task_id=task_id)
    return task_id


def training_run_requeue_unsent(*, older_than_seconds: int = 120, now=None,
                                system: str = "recommender.training_repair") -> list[int]:
    """Queued runs that never reached the broker (no task id, older than the grace): send them
    again, each with an activity-log entry. A duplicate send is harmless: a run is claimed once."""
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=older_than_seconds)
    sent = []
    unsent = TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, celery_task_id="", queued_at__lt=cutoff)
    for run_id in list(unsent.values_list("pk", flat=True)):
        task_id = training_run_enqueue(run_id=run_id)
        if task_id is None:
            break  # the broker is still away: try again on the next pass
        activity_log_record(actor=None, system=system, action="training_run.requeued",
                            target=TrainingRun.objects.get(pk=run_id), data={"task_id": task_id})
        sent.append(run_id)
    return sent


def training_run_cancel(*, run: TrainingRun, actor: Any | None, reason: str = "",
                        system: str | None = None) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next stage or epoch.

    Anyone who may build models (``model.build``) may cancel any run, another's too: the log
    records who cancelled and whose run it was."""
    require(actor, "model.build", system=system, target=run)
    user, _ = _label(actor, system)
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_terminal:
            raise Conflict(f"run #{locked.pk} is already {locked.status}")
        before = locked.status
        if locked.status == TrainingRun.Status.QUEUED:
            locked.status = TrainingRun.Status.CANCELLED
            locked.finished_at = timezone.now()
            locked.stage = "cancelled"
        locked.cancel_requested = True
        locked.save(update_fields=["status", "finished_at", "stage", "cancel_requested"])
        activity_log_record(actor=user, system=system, action="training_run.cancel_requested", target=locked,
                            data={"before": before, "after": locked.status, "reason": reason,
                                  "run_created_by": locked.created_by_label})
    return locked


# --- execution ---------------------------------------------------------------------------------------

def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _Monitor(threading.Thread):
    """Samples the process's RSS (peak memory) and beats the run's heartbeat while it executes."""

    def __init__(self, run_id: int) -> None:
        super().__init__(daemon=True, name=f"run-{run_id}-monitor")
        self.run_id = run_id
        self.baseline = _rss_bytes()
        self.peak = self.baseline
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self._stop_event.wait(0.2):
                self.peak = max(self.peak, _rss_bytes())
                if time.monotonic() - last_beat > 5:
                    last_beat = time.monotonic()
                    with contextlib.suppress(Exception):
                        TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
                            heartbeat_at=timezone.now())
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class Progress:
    """Writes stage, percent, heartbeat and log to the run (throttled) and checks for cancellation."""

    def __init__(self, run: TrainingRun) -> None:
        self.run_id = run.pk
        self.lines: list[str] = [run.log] if run.log else []
        self.stage = ""
        self.percent = 0.0
        self._last_write = 0.0

    def log(self, text: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.lines.append(f"[{stamp}] {text}")

    def set(self, stage: str | None = None, percent: float | None = None, *, force: bool = False) -> None:
        if stage is not None and stage != self.stage:
            self.stage = stage
            self.log(stage)
            force = True
        if percent is not None:
            self.percent = max(self.percent, min(100.0, float(percent)))
        now = time.monotonic()
        if not force and now - self._last_write < 1.0:
            return
        self._last_write = now
        self.flush()

    def flush(self) -> None:
        try:
            # One statement both reports progress and learns of a cancellation (no row updated).
            updated = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=False).update(
                stage=self.stage[:64], percent=round(self.percent, 1), heartbeat_at=timezone.now(),
                log="\n".join(self.lines)[-100_000:],
            )
            cancelled = updated == 0
        except OperationalError:  # a busy database delays a progress write; it never fails the run
            logger.warning("run %s: progress write skipped (database busy)", self.run_id)
            return
        if cancelled:
            raise TrainingCancelled()

    def span(self, start: float, end: float):
        """A callback mapping a 0–1 fraction into [start, end] percent."""
        return lambda fraction: self.set(percent=start + (end - start) * max(0.0, min(1.0, fraction)))


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_alive(worker: str) -> bool | None:
    """True/False for a process on this host; None when it ran elsewhere (unknown)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(run_id: int, worker: str) -> TrainingRun | None:
    """Move a queued run to running (or take over one whose worker died); None when not ours to run."""
    knobs = settings.RECOMMENDER
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_terminal:
            return None
        now = timezone.now()
        if run.status == TrainingRun.Status.RUNNING:
            alive = _worker_alive(run.worker) if run.worker != worker else False
            stale = run.heartbeat_at is None or (now - run.heartbeat_at).total_seconds() > 60 * knobs[
                "TRAINING_STUCK_MINUTES"]
            if alive or (alive is None and not stale):
                return None  # another live worker has it: this delivery is a duplicate
            if run.attempts >= knobs["TRAINING_MAX_ATTEMPTS"]:
                _finish_failed(run, f"worker lost {run.attempts} times (last: {run.worker}); giving up",
                               system=TASK_NAME)
                return None
            activity_log_record(actor=None, system=TASK_NAME, action="training_run.restarted", target=run,
                                data={"attempt": run.attempts + 1, "lost_worker": run.worker})
            run.log = (run.log + f"\n--- worker {run.worker} was lost; restarting (attempt {run.attempts + 1})").strip()
        elif run.cancel_requested:
            return None
        run.status = TrainingRun.Status.RUNNING
        run.attempts += 1
        run.worker = worker
        run.started_at = now
        run.heartbeat_at = now
        run.stage = "starting"
        run.percent = 0.0
        run.error = ""
        run.save(update_fields=["status", "attempts", "worker", "started_at", "heartbeat_at", "stage", "percent",
                                "error", "log"])
        if run.attempts == 1:
            activity_log_record(actor=None, system=TASK_NAME, action="training_run.started", target=run,
                                data={"before": "queued", "after": "running", "worker": worker})
    return run


def _finish_failed(run: TrainingRun, error: str, *, system: str, status: str = TrainingRun.Status.FAILED) -> None:
    before = run.status
    TrainingRun.objects.filter(pk=run.pk).update(status=status, error=error[-10_000:], finished_at=timezone.now(),
                                                 stage=status)
    activity_log_record(actor=None, system=system, action=f"training_run.{status}", target=run,
                        data={"before": before, "after": status, "error": error[-500:]})


def _trainset(frame: pd.DataFrame):
    reader = Reader(rating_scale=(1, 5))
    return Dataset.load_from_df(frame[["user_id", "movie_id", "rating"]], reader).build_full_trainset()


def _fit(algo_name: str, params: dict, seed: int, trainset, progress: Progress, start: float, end: float):
    algo = algorithm_build(algo_name, params, seed=seed)
    spec = ALGORITHMS[algo_name]
    epochs = params.get(spec.epochs_param) if spec.epochs_param else None
    if algo_name == "baselineonly":
        epochs = None
    tick = progress.span(start, end)

    def on_epoch(done: int, total: int) -> None:
        tick(done / total)

    def on_message(text: str) -> None:
        progress.log(text)

    watcher = FitWatcher(total_epochs=epochs, on_epoch=on_epoch, on_message=on_message)
    started = time.perf_counter()
    with contextlib.redirect_stdout(watcher):
        algo.fit(trainset)
    seconds = time.perf_counter() - started
    tick(1.0)
    return algo, seconds


def _artifact_dir(run: TrainingRun, *, keep: bool) -> Path:
    if keep:
        name = run.registered_model_name or settings.RECOMMENDER["REGISTERED_MODEL_NAME"]
        return artifact_root() / "models" / name / f"run-{run.pk}-a{run.attempts}"
    return artifact_root() / "tmp" / f"run-{run.pk}-a{run.attempts}-{os.getpid()}"


def _evaluate_holdout(run: TrainingRun, ratings: pd.DataFrame, progress: Progress, metrics: dict,
                      timings: dict) -> tuple[dict, dict, tuple[str, str, int, str] | None]:
    """Fit on the train part, evaluate on the test part, write (and verify) the artifact."""
    knobs = settings.RECOMMENDER
    k = knobs["EVAL_K"]
    train, test = ev.split_frame(ratings, run.split)[0]
    if train.empty or test.empty:
        raise ValidationError(f"the {run.split['kind']} split left an empty train or test part")
    metrics.update({"train_ratings": len(train), "test_ratings": len(test), "k": k})
    trainset = _trainset(train)
    progress.set("fitting", 5)
    algo, fit_seconds = _fit(run.algorithm, run.hyperparameters, run.seed, trainset, progress, 5, 55)
    timings["training_seconds"] += fit_seconds
    progress.set("predicting test ratings", 55)
    started = time.perf_counter()
    errors = ev.rating_errors(algo, test)
    metrics.update({"rmse": ev.rmse(errors["error"]), "mae": ev.mae(errors["error"])})
    timings["evaluation_seconds"] += time.perf_counter() - started

    progress.set("exporting artifact", 65)
    kind, constants, arrays = algorithm_export(run.algorithm, algo, trainset, topn=knobs["TOPN_PRECOMPUTED"],
                                               tick=progress.span(65, 78))
    del algo, trainset
    manifest = {
        "kind": kind, "algorithm": run.algorithm, "hyperparameters": run.hyperparameters, "rating_scale": [1, 5],
        "training_run": run.pk, "snapshot_sha256": run.snapshot.content_sha256, "seed": run.seed,
        "created_at": timezone.now().isoformat(), **constants,
    }
    directory = _artifact_dir(run, keep=run.register)
    if directory.exists():
        shutil.rmtree(directory)
    sha, size = write_artifact(directory=directory, manifest=manifest, arrays=arrays)
    del arrays
    model = load_serving_model(directory=directory, expected_sha256=sha)
    metrics["artifact_bytes"] = size

    progress.set("ranking evaluation", 80)
    started = time.perf_counter()
    known = set(train["user_id"].unique().tolist())
    test_users = ev.evaluation_users(train, test, seed=run.seed, limit=knobs["EVAL_MAX_USERS"])
    relevant = ev.relevant_items(test)
    lists = ev.ranking_lists(model, test_users, k)
    progress.set(percent=88)
    metrics.update(ev.ranking_metrics(lists, relevant, k))
    metrics.update(ev.beyond_accuracy(lists, train))
    metrics["evaluated_users"] = len(test_users)
    sample = test_users[: knobs["EVAL_LATENCY_SAMPLE"]] or sorted(known)[: knobs["EVAL_LATENCY_SAMPLE"]]
    metrics.update(ev.latency_figures(model, sample, k))
    viewers = snapshot_load_viewers(snapshot=run.snapshot)
    groups = ev.group_metrics(errors=errors, lists=lists, relevant=relevant, viewers=viewers, k=k)
    timings["evaluation_seconds"] += time.perf_counter() - started
    relative = str(directory.relative_to(artifact_root())) if run.register else ""
    return metrics, groups, ((relative, sha, size, kind) if run.register else None)


def _evaluate_kfold(run: TrainingRun, ratings: pd.DataFrame, progress: Progress, metrics: dict,
                    timings: dict) -> tuple[dict, dict, tuple[str, str, int, str] | None]:
    """k-fold cross-validation of RMSE/MAE (like Surprise's ``cross_validate``); then, when the run
    registers, a final fit on every rating for the artifact (ranking metrics need a hold-out split)."""
    # Like Surprise's cross_validate: the ratings become Surprise's raw ratings once, and each fold's
    # train and test sets are built from row positions.
    data = Dataset.load_from_df(ratings[["user_id", "movie_id", "rating"]], Reader(rating_scale=(1, 5)))
    raw = data.raw_ratings
    folds = ev.kfold_positions(len(ratings), run.split)
    n = len(folds)
    span = 80 if run.register else 95
    rmses, maes, fits = [], [], []
    for index, (train_positions, test_positions) in enumerate(folds):
        lo = 5 + (span - 5) * index / n
        hi = 5 + (span - 5) * (index + 1) / n
        progress.set(f"fold {index + 1}/{n}: fitting", lo)
        trainset = data.construct_trainset([raw[i] for i in train_positions.tolist()])
        algo, fit_seconds = _fit(run.algorithm, run.hyperparameters, run.seed, trainset, progress, lo,
                                 lo + (hi - lo) * 0.8)
        fits.append(fit_seconds)
        started = time.perf_counter()
        errors = ev.rating_errors(algo, data.construct_testset([raw[i] for i in test_positions.tolist()]))
        timings["evaluation_seconds"] += time.perf_counter() - started
        rmses.append(ev.rmse(errors["error"]))
        maes.append(ev.mae(errors["error"]))
        del algo, trainset
    timings["training_seconds"] += sum(fits)
    metrics.update({
        "rmse": float(np.mean(rmses)), "mae": float(np.mean(maes)), "rmse_std": float(np.std(rmses)),
        "mae_std": float(np.std(maes)), "fold_rmse": rmses, "fold_mae": maes, "fold_fit_seconds": fits,
        "folds": n, "train_ratings": len(ratings),
    })
    if not run.register:
        return metrics, {}, None
    progress.set("fitting on all ratings", 80)
    trainset = data.build_full_trainset()
    algo, fit_seconds = _fit(run.algorithm, run.hyperparameters, run.seed, trainset, progress, 80, 88)
    timings["training_seconds"] += fit_seconds
    progress.set("exporting artifact", 88)
    knobs = settings.RECOMMENDER
    kind, constants, arrays = algorithm_export(run.algorithm, algo, trainset, topn=knobs["TOPN_PRECOMPUTED"])
    manifest = {"kind": kind, "algorithm": run.algorithm, "hyperparameters": run.hyperparameters,
                "rating_scale": [1, 5], "training_run": run.pk, "snapshot_sha256": run.snapshot.content_sha256,
                "seed": run.seed, "created_at": timezone.now().isoformat(), **constants}
    directory = _artifact_dir(run, keep=True)
    if directory.exists():
        shutil.rmtree(directory)
    sha, size = write_artifact(directory=directory, manifest=manifest, arrays=arrays)
    model = load_serving_model(directory=directory, expected_sha256=sha)
    metrics["artifact_bytes"] = size
    users = sorted(ratings["user_id"].unique().tolist())[: knobs["EVAL_LATENCY_SAMPLE"]]
    metrics.update(ev.latency_figures(model, users, knobs["EVAL_K"]))
    return metrics, {}, (str(directory.relative_to(artifact_root())), sha, size, kind)


def training_run_execute(*, run_id: int, worker: str | None = None) -> TrainingRun | None:
    """Run a queued run to the end in this process (the Celery task calls this).

    Idempotent: a run that is not queued (or whose worker is alive) is left alone and None returned.
    """
    worker = worker or _worker_id()
    run = _claim(run_id, worker)
    if run is None:
        return None
    progress = Progress(run)
    monitor = _Monitor(run.pk)
    monitor.start()
    timings = {"training_seconds": 0.0, "evaluation_seconds": 0.0}
    started = time.perf_counter()
    artifact_dir: Path | None = None
    try:
        environment = environment_capture()
        TrainingRun.objects.filter(pk=run.pk).update(environment=environment)
        settings_text = "; ".join(f"{k}={v}" for k, v in (run.hyperparameters or {}).items()) or "default settings"
        split_text = "; ".join(f"{k}={v}" for k, v in (run.split or {}).items()) or "default"
        progress.log(f"attempt {run.attempts} on {worker}: {run.algorithm} ({settings_text}), split {split_text}")
        progress.set("loading snapshot", 1)
        ratings = snapshot_load_ratings(snapshot=run.snapshot)
        progress.set("splitting", 4)
        metrics: dict = {"snapshot_ratings": len(ratings)}
        if run.split["kind"] == "kfold":
            metrics, groups, artifact = _evaluate_kfold(run, ratings, progress, metrics, timings)
        else:
            metrics, groups, artifact = _evaluate_holdout(run, ratings, progress, metrics, timings)
        if artifact is not None:
            artifact_dir = artifact_root() / artifact[0]
        monitor.stop()
        total = time.perf_counter() - started
        metrics.update({
            "training_seconds": timings["training_seconds"], "evaluation_seconds": timings["evaluation_seconds"],
            "total_seconds": total, "peak_memory_bytes": monitor.peak,
            "memory_increase_bytes": max(0, monitor.peak - monitor.baseline),
        })
        metrics = ev.sanitize(metrics)
        groups = ev.sanitize(groups)
        progress.set("registering", 95, force=True)
        with transaction.atomic():
            locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
            if locked.cancel_requested:
                raise TrainingCancelled()
            if locked.status != TrainingRun.Status.RUNNING or locked.worker != worker:
                raise Conflict(f"run #{run.pk} was taken over ({locked.status}, {locked.worker}); not registering")
            version = None
            if artifact is not None:
                relative, sha, size, kind = artifact
                version = registry_services.model_version_register(
                    run=locked, artifact_path=relative, artifact_sha256=sha, artifact_size=size, artifact_kind=kind,
                    metrics=metrics, system=TASK_NAME,
                    description=f"{ALGORITHMS[run.algorithm].label} on snapshot #{run.snapshot_id}",
                )
            progress.log(f"done in {total:.1f} s" + (f": registered {version}" if version else ""))
            locked.status = TrainingRun.Status.SUCCEEDED
            locked.stage = "done"
            locked.percent = 100.0
            locked.finished_at = timezone.now()
            locked.heartbeat_at = locked.finished_at
            locked.metrics = metrics
            locked.group_metrics = groups
            locked.training_seconds = timings["training_seconds"]
            locked.evaluation_seconds = timings["evaluation_seconds"]
            locked.total_seconds = total
            locked.peak_memory_bytes = monitor.peak
            locked.log = "\n".join(progress.lines)[-100_000:]
            locked.save()
            activity_log_record(
                actor=None, system=TASK_NAME, action="training_run.succeeded", target=locked,
                data={"before": "running", "after": "succeeded", "version": version.pk if version else None,
                      "rmse": metrics.get("rmse"), "ndcg_at_20": metrics.get("ndcg_at_20")},
            )
        if not run.register:
            _remove_tmp(run)
        run.refresh_from_db()
        return run
    except TrainingCancelled:
        monitor.stop()
        _cleanup(run, artifact_dir)
        progress.log("cancelled")
        TrainingRun.objects.filter(pk=run.pk).update(log="\n".join(progress.lines)[-100_000:])
        _finish_failed(run, "cancelled on request", system=TASK_NAME, status=TrainingRun.Status.CANCELLED)
    except Exception as exc:  # noqa: BLE001 - any failure ends the run as failed, with its reason
        monitor.stop()
        _cleanup(run, artifact_dir)
        text = f"{type(exc).__name__}: {exc}"
        progress.log(f"failed: {text}")
        logger.exception("training run %s failed", run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(log="\n".join(progress.lines)[-100_000:])
        _finish_failed(run, text + "\n\n" + traceback.format_exc(limit=8), system=TASK_NAME)
    run.refresh_from_db()
    return run


def _remove_tmp(run: TrainingRun) -> None:
    for path in (artifact_root() / "tmp").glob(f"run-{run.pk}-*"):
        shutil.rmtree(path, ignore_errors=True)


def _cleanup(run: TrainingRun, artifact_dir: Path | None) -> None:
    """Remove the artifacts of a run that did not register (never a registered version's)."""
    if ModelVersion.objects.filter(training_run_id=run.pk).exists():
        return
    _remove_tmp(run)
    for path in (artifact_root() / "models").glob(f"*/run-{run.pk}-a*"):
        shutil.rmtree(path, ignore_errors=True)
    if artifact_dir is not None:
        shutil.rmtree(artifact_dir, ignore_errors=True)


def training_run_repair_stuck(*, older_than_minutes: int | None = None, system: str = "recommender.training_repair"
                              ) -> list[int]:
    """Fail runs in ``running`` whose heartbeat is older than the limit (their worker died) and clear
    their unregistered artifacts. Returns the ids repaired."""
    minutes = settings.RECOMMENDER["TRAINING_STUCK_MINUTES"] if older_than_minutes is None else older_than_minutes
    cutoff = timezone.now() - timezone.timedelta(minutes=minutes)
    repaired = []
    stuck = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    for run_id in list(stuck.values_list("pk", flat=True)):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().filter(
                pk=run_id, status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff).first()
            if run is None:
                continue
            _finish_failed(run, f"no heartbeat since {run.heartbeat_at.isoformat()} (worker {run.worker} lost); "
                                "marked failed by the repair task", system=system)
        _cleanup(run, None)
        repaired.append(run_id)
    return repaired


def training_run_execute_inline(*, run: TrainingRun) -> TrainingRun:
    """Execute a run in this process (CLI ``--inline``, bootstrap, benchmarks)."""
    close_old_connections()
    result = training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return result or run
