"""Train a model: ``python manage.py train --algorithm svd [--param n_factors=100 ...] [--snapshot ID] [--wait]``."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from portal.errors import UsherError
from recommender.training.algorithms import ALGORITHMS

SHOWN = ("rmse", "mae", "precision_at_20", "recall_at_20", "ndcg_at_20", "map_at_20", "hit_rate_at_20", "coverage",
         "novelty", "personalization", "average_popularity", "gini", "training_seconds", "latency_p50_ms",
         "latency_p99_ms", "artifact_bytes", "peak_memory_bytes")


def _param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise CommandError(f"--param takes name=value, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


class Command(BaseCommand):
    help = ("Queue a training run (prints its id). Without --snapshot, a snapshot of all data is taken first. "
            "--wait polls until it ends and prints the metrics; --inline trains in this process instead.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--algorithm", required=True, help=f"one of: {', '.join(ALGORITHMS)}")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--snapshot", type=int, help="dataset snapshot id")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--split", default="random", choices=["random", "temporal", "leave_last_n", "kfold"])
        parser.add_argument("--test-fraction", type=float)
        parser.add_argument("--n", type=int, help="leave_last_n: ratings per viewer held out")
        parser.add_argument("--folds", type=int, help="kfold: number of folds")
        parser.add_argument("--no-register", action="store_true", help="evaluate only, register no version")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end and print its metrics")
        parser.add_argument("--inline", action="store_true", help="train in this process (no worker needed)")
        parser.add_argument("--timeout", type=float, default=3600, help="--wait gives up after this many seconds")
        parser.add_argument("--json", action="store_true", help="print the final run as JSON")

    def handle(self, *args, **opts) -> None:
        from recommender.models import DatasetSnapshot, TrainingRun
        from recommender.training.runs import training_run_create, training_run_execute
        from recommender.training.snapshots import snapshot_create

        params = dict(_param(p) for p in opts["param"])
        split: dict = {"kind": opts["split"]}
        for key, option in (("test_fraction", "test_fraction"), ("n", "n"), ("folds", "folds")):
            if opts[option] is not None:
                split[key] = opts[option]
        try:
            if opts["snapshot"] is not None:
                snapshot = DatasetSnapshot.objects.filter(pk=opts["snapshot"]).first()
                if snapshot is None:
                    raise CommandError(f"snapshot #{opts['snapshot']} does not exist")
            else:
                snapshot = snapshot_create(actor=None, system="manage.py train", name="cli")
                self.stdout.write(f"snapshot #{snapshot.pk}: {snapshot.rating_count} ratings, "
                                  f"sha256 {snapshot.content_sha256[:16]}")
            run = training_run_create(
                actor=None, system="manage.py train", snapshot=snapshot, algorithm=opts["algorithm"],
                hyperparameters=params, seed=opts["seed"], split=split, register=not opts["no_register"],
                enqueue=not opts["inline"],
            )
        except UsherError as exc:
            raise CommandError(f"{exc.message}" + (f" {json.dumps(exc.detail)}" if exc.detail else ""))
        self.stdout.write(f"run #{run.pk} queued: {run.algorithm} {run.hyperparameters}")
        if opts["inline"]:
            training_run_execute(run_id=run.pk)
        elif opts["wait"]:
            deadline = time.monotonic() + opts["timeout"]
            last = None
            while True:
                run.refresh_from_db()
                state = (run.status, run.stage, int(run.percent))
                if state != last:
                    self.stderr.write(f"  {run.status} {run.stage} {run.percent:.0f}%")
                    last = state
                if run.is_terminal:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"run #{run.pk} still {run.status} after {opts['timeout']:.0f} s "
                                       "(is a worker running?)")
                time.sleep(1)
        else:
            return
        run = TrainingRun.objects.get(pk=run.pk)
        if opts["json"]:
            self.stdout.write(json.dumps({"id": run.pk, "status": run.status, "metrics": run.metrics,
                                          "error": run.error}, default=str))
        else:
            self._print(run)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run #{run.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}")

    def _print(self, run) -> None:
        self.stdout.write(f"run #{run.pk} {run.status} in {run.total_seconds or 0:.1f} s")
        for key in SHOWN:
            if run.metrics.get(key) is not None:
                value = run.metrics[key]
                self.stdout.write(f"  {key:20s} {value:.4f}" if isinstance(value, float) else f"  {key:20s} {value}")
        version = getattr(run, "model_version", None)
        if version:
            self.stdout.write(f"registered {version} (sha256 {version.artifact_sha256[:16]})")
