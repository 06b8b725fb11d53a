"""How noisy is the release gate's offline-metrics check, and does it tell a retrain from a regression?

    python benchmarks/gate_noise.py [--seeds 5] [--days 7] [--more-days 3]

On a throwaway database (a temporary SQLite file) and artifact root: the demo's world (the simulator's
defaults, as ``make run`` backfills it) is simulated for ``--days`` into Usher, snapshot #1 taken, and
production trained as the bootstrap trains it (``RETRAIN_ALGORITHM``, default hyperparameters, seed 0,
the default split, whose seed is the run's). Then, through the training pipeline and the registry:

1. the seed spread: the same configuration with seeds 1..N, each with its own split (the training
   form's default) and with production's split (only the model's seed differs); stored RMSE/nDCG@20;
2. the gate's decision (``check_offline_metrics``) for each of those same-configuration candidates:
   false fails, and what the old rule (stored figures, each on its own test part) would have said;
3. regressions: SVD crippled to one factor and one epoch, BaselineOnly, a popularity ranking;
4. the issue's case: ``--more-days`` more traffic, snapshot #2, SVD and SVD++ trained on it;
5. the time per gate check (loading both snapshots and artifacts, scoring, 1000 resamples).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def setup() -> Path:
    from _scratch import scratch_django

    return scratch_django("gate", env={"LOG_LEVEL": "WARNING"}, redis=True).folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--more-days", type=float, default=3.0)
    args = parser.parse_args()
    work = setup()
    try:
        run(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args) -> None:
    import contextlib
    import io
    import logging

    from _machine import machine
    from django.conf import settings

    from recommender.bootstrap import _world
    from recommender.models import ModelVersion
    from recommender.registry.services import model_alias_move
    from recommender.simulator import SimulationConfig
    from recommender.simulator.services import simulator_backfill
    from recommender.training.comparison import split_words
    from recommender.training.runs import training_run_create, training_run_execute
    from recommender.training.snapshots import snapshot_create
    from releases.conf import release_setting
    from releases.services import gate

    logging.disable(logging.WARNING)
    print(machine())
    start = datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(days=args.days + args.more_days)
    t0 = time.perf_counter()
    world = _world()
    with contextlib.redirect_stdout(io.StringIO()):
        simulator_backfill(world=world, days=args.days, end=start + timedelta(days=args.days))
    first = snapshot_create(actor=None, system="benchmark", name="first")
    print(f"world: {world.config.viewers} viewers, {world.config.movies} movies (seed {world.config.seed}); "
          f"{args.days:g} days → snapshot #{first.pk}: {first.rating_count:,} ratings, {first.viewer_count} viewers "
          f"({time.perf_counter() - t0:.0f} s)")
    algorithm = settings.RECOMMENDER["RETRAIN_ALGORITHM"]

    def train(snapshot, *, algo=algorithm, params=None, seed=0, split=None) -> ModelVersion:
        run = training_run_create(actor=None, system="benchmark", snapshot=snapshot, algorithm=algo,
                                  hyperparameters=params, seed=seed, split=split, enqueue=False)
        with contextlib.redirect_stdout(io.StringIO()):
            run = training_run_execute(run_id=run.pk)
        assert run.status == "succeeded", run.error
        return ModelVersion.objects.get(training_run=run)

    production = train(first)
    model_alias_move(alias="production", version=production, actor=None, system="bootstrap", reason="benchmark")
    rules = release_setting("GATE_METRICS")
    print(f"production: {algorithm} default hyperparameters, seed 0, split {split_words(production.training_run.split)}"
          f": stored RMSE {production.metrics['rmse']:.4f}, nDCG@20 {production.metrics['ndcg_at_20']:.4f}")
    print("tolerances: " + ", ".join(f"{m} {r['tolerance']}" for m, r in rules.items())
          + f"; {release_setting('GATE_BOOTSTRAP_RESAMPLES')} resamples, "
          f"{round(100 * release_setting('GATE_CONFIDENCE'))} % interval")
    timings: list[float] = []
    strict_failed: list[bool] = []

    def judge(candidate: ModelVersion) -> tuple:
        started = time.perf_counter()
        result = gate.check_offline_metrics(version=candidate, baseline=production)
        timings.append(time.perf_counter() - started)
        old = gate._compare_stored(candidate, production, rules, list(rules))
        old_failed = any(r["result"] == "failed" for r in old)
        # The stricter rule, for comparison: non-inferiority (fail unless the whole interval of "worse by"
        # is within the tolerance).
        strict = any(r.get("worse_by_interval") and r["worse_by_interval"][1] > r["tolerance"]
                     for r in result.evidence["metrics"])
        strict_failed.append(strict)
        return result, old_failed

    def describe(result) -> str:
        rows = {r["metric"]: r for r in result.evidence["metrics"]}
        parts = []
        for metric in ("rmse", "ndcg_at_20"):
            r = rows.get(metric)
            if r is None or r.get("difference") is None:
                parts.append(f"{metric} —")
                continue
            low, high = r["interval"] if r.get("interval") else (r["difference"], r["difference"])
            parts.append(f"{metric} {r['difference']:+.4f} [{low:+.4f}, {high:+.4f}]")
        s = result.evidence.get("evaluation_set") or {}
        failed = [r["metric"] for r in result.evidence["metrics"] if r["result"] == "failed"]
        return (f"{result.outcome:6s} on {s.get('viewers', '?')} viewers / {s.get('rows', '?')} rows; "
                + "; ".join(parts) + (f"; failed: {', '.join(failed)}" if failed else ""))

    for label, split in (("own split (split seed = run seed)", None),
                         ("production's split (only the model seed differs)", {"kind": "random", "test_fraction": 0.2,
                                                                               "seed": 0})):
        print(f"\n{label}: candidates = the same configuration, seeds 1..{args.seeds}")
        rmse, ndcg, false_fail, old_false_fail = [production.metrics["rmse"]], [production.metrics["ndcg_at_20"]], 0, 0
        strict_false_fail = 0
        for seed in range(1, args.seeds + 1):
            candidate = train(first, seed=seed, split=split)
            rmse.append(candidate.metrics["rmse"])
            ndcg.append(candidate.metrics["ndcg_at_20"])
            result, old_failed = judge(candidate)
            false_fail += result.outcome != "passed"
            strict_false_fail += strict_failed[-1]
            old_false_fail += old_failed
            print(f"  seed {seed}: stored RMSE {candidate.metrics['rmse']:.4f} nDCG {candidate.metrics['ndcg_at_20']:.4f}"
                  f" | gate {describe(result)} | old rule {'FAILED' if old_failed else 'passed'}")
        print(f"  stored figures over seeds 0..{args.seeds}: RMSE {min(rmse):.4f}–{max(rmse):.4f} "
              f"(sd {statistics.stdev(rmse):.4f}), nDCG@20 {min(ndcg):.4f}–{max(ndcg):.4f} (sd {statistics.stdev(ndcg):.4f})")
        print(f"  false fails: gate {false_fail}/{args.seeds}, old rule (stored figures) {old_false_fail}/{args.seeds}, "
              f"non-inferiority rule on the same intervals {strict_false_fail}/{args.seeds}")

    print("\nregressions against production")
    for label, algo, params in (("svd n_factors=1 n_epochs=1", "svd", {"n_factors": 1, "n_epochs": 1}),
                                ("baselineonly", "baselineonly", None), ("popularity", "popularity", None)):
        result, old_failed = judge(train(first, algo=algo, params=params))
        print(f"  {label:28s} gate {describe(result)} | old rule {'FAILED' if old_failed else 'passed'}"
              f" | non-inferiority {'FAILED' if strict_failed[-1] else 'passed'}")

    if args.more_days > 0:
        # Another simulation seed: the same one would replay the same visits (the same viewer–movie pairs).
        more = SimulationConfig(seed=world.config.seed + 2, malformed_rate=0.002, duplicate_rate=0.002)
        with contextlib.redirect_stdout(io.StringIO()):
            simulator_backfill(world=world, days=args.more_days, config=more,
                               end=start + timedelta(days=args.days + args.more_days))
        second = snapshot_create(actor=None, system="benchmark", name="second")
        print(f"\nsnapshot #{second.pk} after {args.more_days:g} more days: {second.rating_count:,} ratings; "
              "candidates trained on it (production stays on snapshot #1)")
        for label, algo in (("svd seed 0", "svd"), ("svd seed 1", "svd"), ("svdpp seed 0", "svdpp")):
            seed = int(label[-1])
            result, old_failed = judge(train(second, algo=algo, seed=seed))
            s = result.evidence.get("evaluation_set") or {}
            excluded = ", ".join(f"{e['rows']} {e['why'].split(' (')[0]}" for e in s.get("excluded", []))
            print(f"  {label:12s} gate {describe(result)} | old rule {'FAILED' if old_failed else 'passed'}"
                  f"\n               held out {s.get('held_out_rows')}, left out: {excluded}")

    print(f"\ntime per gate check (offline metrics): median {statistics.median(timings):.2f} s, "
          f"max {max(timings):.2f} s over {len(timings)} checks")


if __name__ == "__main__":
    main()
