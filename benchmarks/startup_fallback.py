"""How long a web worker's start-up fallback takes to compute, against the full snapshot build.

    python benchmarks/startup_fallback.py [--ratings 100000,1000000] [--repeat 5]

Until the first seen-index snapshot exists, a worker reads a fallback list itself when it starts
(``Runtime.load_startup_fallback``, before gunicorn lets it accept a request), so that ``/recommend``
never answers an empty line (docs/serving.md, "Ready"). It reads the catalog's movies by popularity
(``catalog_popularity``) rather than the events' popular-and-recent ranking (``popular_recent``,
what the snapshot holds), because the latter grows with the events. This prints both for each
ratings count (viewers and movies in MovieLens proportions, ratings over 30 days), beside the time
of a full snapshot build (``snapshot_build``: the seen index of every rating plus the list).

With DATABASE_URL=postgres://… it creates and drops its own database ``usher_bench_fallback``;
without, it uses SQLite in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _scratch import pg_admin  # noqa: E402 - benchmarks/ is the script's own folder

DB_NAME = "usher_bench_fallback"


def configure(workdir: Path) -> str:
    base = os.environ.get("DATABASE_URL", "")
    url = base.rsplit("/", 1)[0] + f"/{DB_NAME}" if base.startswith("postgres") else \
        f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update({"USHER_VAR_DIR": str(workdir / "var"), "DATABASE_URL": url, "AXES_ENABLED": "0",
                       "DJANGO_SETTINGS_MODULE": "portal.settings"})
    return url


def fill(n_ratings: int, seed: int = 1) -> tuple[int, int]:
    """Viewers, movies and up to ``n_ratings`` popularity-skewed ratings over the last 30 days."""
    import datetime as dt

    import numpy as np
    from django.utils import timezone

    from recommender.models import Movie, Rating, Viewer

    Rating.objects.all().delete()
    n_users = max(100, n_ratings // 106)  # MovieLens-100k: 943 viewers, 1,682 movies per 100,000 ratings
    n_items = max(100, n_ratings // 60)
    rng = np.random.default_rng(seed)
    Viewer.objects.bulk_create([Viewer(id=u) for u in range(1, n_users + 1)], batch_size=5000, ignore_conflicts=True)
    items = [f"bench+movie+{i}+{1950 + i % 75}" for i in range(n_items)]
    Movie.objects.bulk_create([Movie(id=m, title=m) for m in items], batch_size=5000, ignore_conflicts=True)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    users = rng.integers(1, n_users + 1, size=n_ratings)
    movies = rng.choice(n_items, size=n_ratings, p=popularity)
    minutes = rng.integers(0, 60 * 24 * 30, size=n_ratings)
    now = timezone.now()
    batch: list = []
    for u, m, age in zip(users.tolist(), movies.tolist(), minutes.tolist(), strict=True):
        batch.append(Rating(viewer_id=u, movie_id=items[m], rating=int(1 + (u + m) % 5),
                            time=now - dt.timedelta(minutes=age)))
        if len(batch) >= 20_000:
            Rating.objects.bulk_create(batch, batch_size=20_000, ignore_conflicts=True)  # one per viewer and movie
            batch = []
    Rating.objects.bulk_create(batch, batch_size=20_000, ignore_conflicts=True)
    return n_users, n_items


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _ms(seconds: list[float]) -> str:
    """median (min–max) in ms"""
    return f"{statistics.median(seconds) * 1000:.0f} ms ({min(seconds) * 1000:.0f}–{max(seconds) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="usher-bench-fallback-"))
    url = configure(workdir)
    if url.startswith("postgres"):
        pg_admin(url, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from recommender.models import Rating
    from recommender.serving.conf import serving_settings
    from recommender.serving.snapshot import catalog_popularity, popular_recent, snapshot_build

    call_command("migrate", verbosity=0)
    config = serving_settings()
    print(f"database: {url.split('://')[0]}; load average before: {os.getloadavg()[0]:.1f}; "
          f"fallback size {config.fallback_size}, window {config.fallback_window_days} days", flush=True)
    print("ratings     viewers  movies   catalog_popularity (start-up)  popular_recent      snapshot build")
    try:
        for n in [int(x) for x in args.ratings.split(",")]:
            n_users, n_items = fill(n)
            n = Rating.objects.count()  # draws of a viewer and movie already rated are dropped
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            startup = timed(lambda: catalog_popularity(size=config.fallback_size), args.repeat)
            recent = timed(lambda: popular_recent(size=config.fallback_size, window_days=config.fallback_window_days,
                                                  half_life_days=config.fallback_half_life_days), args.repeat)
            build = timed(lambda: snapshot_build(root=workdir / "snapshots", fallback_size=config.fallback_size,
                                                 window_days=config.fallback_window_days,
                                                 half_life_days=config.fallback_half_life_days), 1)
            print(f"{n:>9,}  {n_users:>8,}  {n_items:>6,}   {_ms(startup):>28}  {_ms(recent):>18}  {build[0]:>10.2f} s",
                  flush=True)
    finally:
        connection.close()
        if url.startswith("postgres"):
            pg_admin(url, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
