"""Audits benchmark: how long a model-level fairness audit and a security audit take.

    python benchmarks/audits.py [--viewers 6000] [--movies 3000] [--ratings-per-viewer 100] [--seed 5]

Builds a throw-away SQLite database in a temporary folder (migrations applied), a seeded catalog
(viewers with gender, age and occupation; movies with genres, years and popularity) and ratings
with a latent structure (rating events too, the last day's for the security checks), snapshots it,
trains Surprise's SVD through the training app (random 80/20 split), then times:

- the model-level fairness audit of that version (test part rebuilt from the snapshot, top-20 for every
  test viewer, aequitas crosstabs and disparities for three attributes, RMSE and NDCG per group);
- a security audit of the last 24 hours (deploy checks, the API surface walked and probed, rating
  poisoning and velocity over the day's rating events, scraping, artifact integrity, login abuse).

Prints the figures and the machine. No target is set by the issue; the figures are for the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder
from _scratch import scratch_django  # noqa: E402

OCCUPATIONS = ["college/grad student", "technician/engineer", "K-12 student", "other or not specified", "writer",
               "executive/managerial", "academic/educator", "programmer", "self-employed", "artist", "homemaker",
               "retired", "sales/marketing", "doctor/health care", "clerical/admin", "customer service",
               "lawyer", "scientist", "tradesman/craftsman", "unemployed"]
GENRES = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Horror", "Animation", "Documentary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=6000)
    parser.add_argument("--movies", type=int, default=3000)
    parser.add_argument("--ratings-per-viewer", type=int, default=100)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    scratch_django("audits")
    import numpy as np

    from audits import services
    from recommender.models import Movie, Rating, RatingEvent, Viewer
    from recommender.training.runs import training_run_create, training_run_execute_inline
    from recommender.training.snapshots import snapshot_create

    rng = np.random.default_rng(args.seed)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    started = time.perf_counter()
    Viewer.objects.bulk_create([
        Viewer(id=v + 1, age=int(rng.integers(15, 70)), gender="MF"[int(rng.random() < 0.3)],
               occupation=OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))], enriched_at=now)
        for v in range(args.viewers)], batch_size=5000)
    popularity = rng.pareto(1.2, args.movies) + 0.05
    Movie.objects.bulk_create([
        Movie(id=f"movie+{m}+{1950 + m % 75}", title=f"Movie {m}", year=1950 + m % 75, popularity=float(popularity[m]),
              genres=[GENRES[m % len(GENRES)], GENRES[(m * 7) % len(GENRES)]], runtime=100)
        for m in range(args.movies)], batch_size=5000)
    taste, trait = rng.normal(size=(args.viewers, 8)), rng.normal(size=(args.movies, 8))
    weights = popularity / popularity.sum()
    ratings, events = [], []
    for v in range(args.viewers):
        movies = rng.choice(args.movies, size=min(args.ratings_per_viewer, args.movies), replace=False, p=weights)
        scores = 3.4 + (trait[movies] @ taste[v]) * 0.35 + rng.normal(0, 0.6, len(movies))
        for m, score in zip(movies, scores, strict=True):
            stars = int(np.clip(round(score), 1, 5))
            when = now - timedelta(minutes=int(rng.integers(1, 60 * 24 * 30)))
            ratings.append(Rating(viewer_id=v + 1, movie_id=f"movie+{m}+{1950 + m % 75}", rating=stars, time=when))
            events.append(RatingEvent(viewer_id=v + 1, movie_id=f"movie+{m}+{1950 + m % 75}", rating=stars, time=when))
    Rating.objects.bulk_create(ratings, batch_size=10000)
    RatingEvent.objects.bulk_create(events, batch_size=10000)
    built = time.perf_counter() - started
    day_events = sum(1 for e in events if e.time >= now - timedelta(days=1))

    started = time.perf_counter()
    snapshot = snapshot_create(actor=None, system="bench")
    run = training_run_create(actor=None, system="bench", snapshot=snapshot, algorithm="svd", enqueue=False,
                              split={"kind": "random", "test_fraction": 0.2, "seed": 0})
    run = training_run_execute_inline(run=run)
    trained = time.perf_counter() - started
    assert run.status == "succeeded", run.error

    def timed(**kwargs):
        audit = services.audit_run_create(actor=None, enqueue=False, system="bench", **kwargs)
        t0 = time.perf_counter()
        audit = services.audit_run_execute(run_id=audit.pk)
        return audit, time.perf_counter() - t0

    fairness, fairness_s = timed(kind="fairness", model_version=run.model_version)
    security, security_s = timed(kind="security", window_hours=24)
    model = next(c for c in fairness.results["checks"] if c["name"] == "fairness.model")["results"]

    print(f"machine: {machine()}; database: SQLite (temporary)")
    print(f"world: {args.viewers} viewers, {args.movies} movies, {len(ratings)} ratings "
          f"(built in {built:.1f} s); SVD trained in {trained:.1f} s")
    print(f"fairness audit (model level): {fairness_s:.2f} s — {model['viewers']} test viewers, "
          f"{model['test_ratings']} test ratings, 3 attributes; status {fairness.status}, "
          f"{fairness.findings.count()} finding(s)")
    print(f"security audit (24 h window, {day_events} rating events): {security_s:.2f} s; status {security.status}")
    for check in security.results["checks"]:
        print(f"    {check['name']}: {check['summary']}")


if __name__ == "__main__":
    main()
