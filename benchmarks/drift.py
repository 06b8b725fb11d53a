"""Drift benchmark: one drift report over 1,000,000 events in the current window (and as many in the
reference window), on SQLite by default or PostgreSQL with DATABASE_URL=postgres://….

    python benchmarks/drift.py [--events 1000000] [--viewers 100000] [--movies 27000] [--seed 11] [--repeat 3]
                               [--sqlite-path FILE] [--keep] [--reuse] [--profile]

Builds its own seeded world in a throw-away database (a temporary SQLite file, or a database
``usher_bench_drift`` it creates and drops next to DATABASE_URL's; ``--sqlite-path`` and
``--keep``/``--reuse`` keep a world for later runs, as building it takes minutes): viewers with demographics,
movies with genres and a long-tailed popularity, and per window 40% rating events, 50% watch
sessions and 10% recommendation lines of 20 movies. The current window carries injected drift
(harsher ratings, a younger audience, a shifted genre taste). Rows are written in time order, as a
stream arrives. Then it times ``drift_report_create`` (the whole report: one columnar read per table
and window, every feature computed and tested, the report stored), prints wall-clock and CPU time,
the load average and the machine. Target on the 2-core reference machine: <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder

GENRES = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Horror", "Animation", "Documentary", "Crime",
          "Science Fiction", "Adventure", "Family", "Fantasy", "Mystery", "War", "History", "Music", "Western"]
OCCUPATIONS = ["college/grad student", "technician/engineer", "K-12 student", "other or not specified", "writer",
               "executive/managerial", "academic/educator", "programmer", "self-employed", "artist", "homemaker",
               "retired", "sales/marketing", "doctor/health care", "clerical/admin", "customer service",
               "lawyer", "scientist", "tradesman/craftsman", "unemployed"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
REFERENCE = (T0, T0 + timedelta(days=7))
CURRENT = (T0 + timedelta(days=7), T0 + timedelta(days=8))


def build_world(*, viewers: int, movies: int, seed: int) -> tuple[list[str], list[int]]:
    from django.utils import timezone

    from recommender.models import Movie, Viewer

    rng = random.Random(seed)
    now = timezone.now()
    movie_ids = [f"bench+movie+{i}+{1950 + i % 75}" for i in range(movies)]
    Movie.objects.bulk_create([
        Movie(id=mid, title=mid, genres=rng.sample(GENRES, rng.randint(1, 3)), year=1950 + i % 75,
              runtime=80 + i % 60, popularity=round(100.0 / (1 + i) ** 0.7 + rng.random(), 4), enriched_at=now)
        for i, mid in enumerate(movie_ids)
    ], batch_size=5000)
    Viewer.objects.bulk_create([
        Viewer(id=v, age=rng.randint(13, 75), gender=rng.choice("MF"), occupation=rng.choice(OCCUPATIONS),
               enriched_at=now)
        for v in range(1, viewers + 1)
    ], batch_size=10_000)
    return movie_ids, list(range(1, viewers + 1))


def fill_window(*, window: tuple[datetime, datetime], events: int, movie_ids: list[str], viewer_ids: list[int],
                seed: int, drifted: bool) -> dict[str, int]:
    """``events`` rows in the window: 40% rating events, 50% watch sessions, 10% recommendation lines,
    written in time order (as a stream arrives)."""
    import numpy as np

    from recommender.models import RatingEvent, RecommendationRequest, WatchSession

    rng = np.random.default_rng(seed)
    span = (window[1] - window[0]).total_seconds()
    n_movies = len(movie_ids)
    # Long-tailed popularity; the drifted window favours a different slice of the catalog.
    weights = 1.0 / (np.arange(n_movies) + 1) ** 0.9
    if drifted:
        weights = np.roll(weights, n_movies // 3)
    weights /= weights.sum()
    viewers = np.asarray(viewer_ids)
    if drifted:  # a younger audience: the first third of the viewer ids, whose ages are re-drawn young below
        viewers = viewers[: len(viewers) // 3]
    rating_p = [0.15, 0.2, 0.3, 0.2, 0.15] if drifted else [0.05, 0.1, 0.25, 0.35, 0.25]
    n_ratings, n_watches = int(events * 0.4), int(events * 0.5)
    n_requests = events - n_ratings - n_watches
    counts = {"rating_events": n_ratings, "watch_sessions": n_watches, "recommendation_requests": n_requests}
    chunk = 50_000
    rating_times = np.sort(rng.random(n_ratings) * span)
    watch_times = np.sort(rng.random(n_watches) * span)
    request_times = np.sort(rng.random(n_requests) * span)
    for start in range(0, n_ratings, chunk):
        k = min(chunk, n_ratings - start)
        vs, ms = rng.choice(viewers, k), rng.choice(n_movies, k, p=weights)
        rs, ts = rng.choice(5, k, p=rating_p) + 1, rating_times[start:start + k]
        RatingEvent.objects.bulk_create([
            RatingEvent(viewer_id=int(v), movie_id=movie_ids[m], rating=int(r), time=window[0] + timedelta(seconds=t))
            for v, m, r, t in zip(vs, ms, rs, ts, strict=True)], batch_size=10_000)
    for start in range(0, n_watches, chunk):
        k = min(chunk, n_watches - start)
        vs, ms, ts = rng.choice(viewers, k), rng.choice(n_movies, k, p=weights), watch_times[start:start + k]
        minutes = rng.integers(1, 120, k)
        WatchSession.objects.bulk_create([
            WatchSession(viewer_id=int(v), movie_id=movie_ids[m], started_at=window[0] + timedelta(seconds=t),
                         last_seen_at=window[0] + timedelta(seconds=t, minutes=int(n)), first_minute=0,
                         last_minute=int(n), highest_minute=int(n), minutes_watched=int(n) + 1)
            for v, m, t, n in zip(vs, ms, ts, minutes, strict=True)], batch_size=10_000)
    for start in range(0, n_requests, chunk):
        k = min(chunk, n_requests - start)
        vs, ts = rng.choice(viewers, k), request_times[start:start + k]
        lists = rng.choice(n_movies, (k, 20), p=weights)
        RecommendationRequest.objects.bulk_create([
            RecommendationRequest(time=window[0] + timedelta(seconds=t), viewer_id=int(v), server="bench:8082",
                                  status=200, movie_ids=[movie_ids[m] for m in row], response_ms=40)
            for v, t, row in zip(vs, ts, lists, strict=True)], batch_size=10_000)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events per window")
    parser.add_argument("--viewers", type=int, default=100_000)
    parser.add_argument("--movies", type=int, default=27_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3, help="timed reports (the best and all are printed)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL benchmark database")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: reuse a kept benchmark database")
    parser.add_argument("--profile", action="store_true", help="print where the last report spent its time")
    parser.add_argument("--sqlite-path", help="build the SQLite world in this file and reuse it on later runs")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["DEBUG"] = "false"  # no query log: the figures are of the code, not of the debug toolbar
    base_url = os.environ.get("DATABASE_URL", "")
    postgres = base_url.startswith(("postgres://", "postgresql://"))
    bench_db = "usher_bench_drift"
    tmp = tempfile.TemporaryDirectory(prefix="usher-bench-drift-")
    if postgres:
        os.environ["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + bench_db
        import psycopg2

        admin = psycopg2.connect(base_url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_db])
            reuse = args.reuse and cur.fetchone() is not None
            if not reuse:
                cur.execute(f"DROP DATABASE IF EXISTS {bench_db}")
                cur.execute(f"CREATE DATABASE {bench_db}")
    else:
        path = args.sqlite_path or f"{tmp.name}/bench.sqlite3"
        reuse = bool(args.sqlite_path) and Path(path).exists()
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(path).resolve()}"
    os.environ.setdefault("REDIS_URL", "")
    reuse = locals().get("reuse", False)
    args.keep = args.keep or args.reuse
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        from monitoring.conf import monitoring_setting
        from monitoring.services.drift import drift_report_create
        from monitoring.sources import Reference
        from recommender.models import Viewer

        print(f"machine: {machine()}")
        print(f"database: {connection.vendor} {connection.Database.__name__}"
              f" {getattr(connection.Database, 'sqlite_version', '')}".rstrip())
        started = time.perf_counter()
        if reuse:
            from recommender.models import RatingEvent, RecommendationRequest, WatchSession

            def counts(window):
                return {"rating_events": RatingEvent.objects.filter(time__gte=window[0], time__lt=window[1]).count(),
                        "watch_sessions": WatchSession.objects.filter(started_at__gte=window[0],
                                                                      started_at__lt=window[1]).count(),
                        "recommendation_requests": RecommendationRequest.objects.filter(
                            time__gte=window[0], time__lt=window[1]).count()}

            ref_counts, cur_counts = counts(REFERENCE), counts(CURRENT)
        else:
            movie_ids, viewer_ids = build_world(viewers=args.viewers, movies=args.movies, seed=args.seed)
            ref_counts = fill_window(window=REFERENCE, events=args.events, movie_ids=movie_ids,
                                     viewer_ids=viewer_ids, seed=args.seed + 1, drifted=False)
            cur_counts = fill_window(window=CURRENT, events=args.events, movie_ids=movie_ids, viewer_ids=viewer_ids,
                                     seed=args.seed + 2, drifted=True)
            # The drifted window's audience (the first third of the viewers) is young.
            Viewer.objects.filter(id__lte=viewer_ids[len(viewer_ids) // 3 - 1]).update(age=20)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        print(f"world: {args.viewers:,} viewers, {args.movies:,} movies; built in {time.perf_counter() - started:.0f} s")
        print(f"reference window {REFERENCE[0]:%Y-%m-%d}–{REFERENCE[1]:%Y-%m-%d}: {sum(ref_counts.values()):,} events"
              f" {ref_counts}")
        print(f"current window   {CURRENT[0]:%Y-%m-%d}–{CURRENT[1]:%Y-%m-%d}: {sum(cur_counts.values()):,} events"
              f" {cur_counts} (drift injected)")
        reference = Reference(since=REFERENCE[0], until=REFERENCE[1], description={"kind": "benchmark window"})
        times: list[float] = []
        cpu_times: list[float] = []
        report = None
        load_before = os.getloadavg()[0]
        for i in range(args.repeat):
            profiler = None
            if args.profile and i == args.repeat - 1:
                import cProfile

                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
            t, cpu = time.perf_counter(), time.process_time()
            report = drift_report_create(current_since=CURRENT[0], current_until=CURRENT[1], reference=reference,
                                         system="benchmark")
            times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - cpu)
            if profiler is not None:
                import pstats

                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        print(f"drift report: best {min(times):.2f} s wall, all {', '.join(f'{t:.2f}' for t in times)} s"
              f" (target <= 10 s) over {sum(cur_counts.values()):,} current + {sum(ref_counts.values()):,} reference"
              " events")
        print(f"CPU time of the process per report: {', '.join(f'{t:.2f}' for t in cpu_times)} s"
              f" (both windows read in parallel: {monitoring_setting('DRIFT_PARALLEL')});"
              f" load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
        print(f"report #{report.pk}: {report.status}, {report.drifted_features}/{report.tested_features} drifted")
        for r in report.results.order_by("feature"):
            shown = "no data" if r.drifted is None else ("DRIFTED" if r.drifted else "stable")
            print(f"  {r.feature:<26} {r.test:<15} score {r.score if r.score is None else round(r.score, 4)!s:<10}"
                  f" threshold {r.threshold!s:<6} n {r.n_reference:>9,} / {r.n_current:>9,}  {shown}")
        return 0
    finally:
        connection.close()
        if postgres and not args.keep:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {bench_db}")
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
