"""Is the simulated world learnable? SVD (Surprise) against popularity on a simulated backfill.

Usage: python benchmarks/simulator_learnability.py [days, default 7] [viewers, default 500] [movies, default 300]
Prints RMSE of SVD and of a popularity baseline (each movie's mean rating, shrunk to the global mean),
and hit rate@10 on held-out 4–5 star ratings: SVD's top 10 against the 10 most-rated movies.
No database: the lines are parsed in memory with the ingestion parser.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from surprise import SVD, Dataset, Reader  # noqa: E402

from recommender.ingest.parser import RatingEvent, parse_line  # noqa: E402
from recommender.simulator import SimulationConfig, Simulator, World, WorldConfig  # noqa: E402


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("days", type=float, nargs="?", default=7.0)
    parser.add_argument("viewers", type=int, nargs="?", default=WorldConfig.viewers)
    parser.add_argument("movies", type=int, nargs="?", default=WorldConfig.movies)
    parser.add_argument("--mean-rating", type=float, default=WorldConfig.mean_rating)
    parser.add_argument("--temperature", type=float, default=SimulationConfig.taste_temperature)
    parser.add_argument("--popularity-exponent", type=float, default=SimulationConfig.popularity_exponent)
    args = parser.parse_args()
    days, viewers, movies = args.days, args.viewers, args.movies
    started = time.perf_counter()
    world = World.build(WorldConfig(seed=42, viewers=viewers, movies=movies, mean_rating=args.mean_rating))
    sim = Simulator(world, SimulationConfig(seed=43, taste_temperature=args.temperature,
                                            popularity_exponent=args.popularity_exponent))
    sim.run_backfill(days=days)
    latest: dict[tuple[int, str], RatingEvent] = {}
    for line in sim.sink.lines:
        ev = parse_line(line)
        if isinstance(ev, RatingEvent):
            latest[(ev.user_id, ev.movie_id)] = ev
    rows = [(u, m, ev.rating) for (u, m), ev in latest.items()]
    rng = np.random.default_rng(0)
    test_mask = rng.random(len(rows)) < 0.2
    train = [r for r, t in zip(rows, test_mask, strict=True) if not t]
    test = [r for r, t in zip(rows, test_mask, strict=True) if t]
    algo = SVD(n_factors=world.config.factors, n_epochs=60, lr_all=0.007, reg_all=0.1, random_state=0)
    trainset = Dataset.load_from_df(__import__("pandas").DataFrame(train, columns=["u", "i", "r"]),
                                    Reader(rating_scale=(1, 5))).build_full_trainset()
    algo.fit(trainset)
    mu = np.mean([r for *_, r in train])
    sums, counts = defaultdict(float), defaultdict(int)
    for _, m, r in train:
        sums[m] += r
        counts[m] += 1
    pop_pred = {m: (sums[m] + 5 * mu) / (counts[m] + 5) for m in counts}
    svd_err = [(algo.predict(u, m).est - r) ** 2 for u, m, r in test]
    pop_err = [(pop_pred.get(m, mu) - r) ** 2 for u, m, r in test]
    # Ranking: for each viewer with a held-out 4–5 star movie, is one in the top 10 of unseen movies?
    seen = defaultdict(set)
    for u, m, _ in train:
        seen[u].add(m)
    liked = defaultdict(set)
    for u, m, r in test:
        if r >= 4:
            liked[u].add(m)
    most_rated = sorted(counts, key=lambda m: -counts[m])
    all_movies = list(counts)
    svd_hits = pop_hits = 0
    for u, wanted in liked.items():
        pop_top = [m for m in most_rated if m not in seen[u]][:10]
        scores = [(algo.predict(u, m).est, m) for m in all_movies if m not in seen[u]]
        svd_top = [m for _, m in sorted(scores, reverse=True)[:10]]
        svd_hits += bool(wanted & set(svd_top))
        pop_hits += bool(wanted & set(pop_top))
    n = max(1, len(liked))
    print(f"simulated {days:g} days, {viewers} viewers, {movies} movies: {len(rows):,} ratings "
          f"({len(rows) / viewers:.1f} per viewer), {len(sim.sink.lines):,} lines")
    stars = np.array([r for *_, r in rows])
    print("ratings: mean {:.2f}, share of 1..5 stars {}".format(
        stars.mean(), " ".join(f"{(stars == k).mean():.2f}" for k in range(1, 6))))
    print(f"RMSE  SVD {np.sqrt(np.mean(svd_err)):.3f}  popularity {np.sqrt(np.mean(pop_err)):.3f}")
    print(f"hit rate@10 on held-out 4-5 stars ({len(liked)} viewers)  SVD {svd_hits / n:.3f}  "
          f"popularity {pop_hits / n:.3f}  ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
