"""Ingest benchmark: parse rate on one core, end-to-end rate into PostgreSQL, resident memory.

    python benchmarks/ingest.py [--lines 1000000] [--parse-lines 300000] [--seed 7] [--keep]

Generates lines in the platform's format with its own seeded generator (watch sessions, ratings,
recommendation calls with successes and failures, about 1% malformed lines). The end-to-end part
needs DATABASE_URL=postgres://…; it creates and drops its own database (usher_bench_ingest) and
prints RSS at intervals while ingesting the whole file, to show memory stays flat.
Targets on the 2-core reference machine: parse >= 100,000 lines/s; stored >= 20,000 lines/s.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "the love night last dark man world star war story city blue house king girl dead life road "
    "monsters inc. rosencrantz guildenstern are time red secret garden lost river moon fire day".split()
)


def generate(n: int, seed: int = 7) -> Iterator[str]:
    """``n`` lines: ~80% watch minutes, ~13% recommendation calls, ~6% ratings, ~1% malformed."""
    from recommender.ingest import parser as events

    rng = random.Random(seed)
    movies = []
    for i in range(5000):
        title = "+".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
        if rng.random() < 0.1:
            title = title.replace("+", "++", 1) if "+" in title else title + "_"
        movies.append(f"{title}+{1950 + i % 75}" if rng.random() > 0.02 else f"{title}{i}+")
    users = 100_000
    active = [[rng.randrange(users), rng.choice(movies), 0] for _ in range(3000)]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    malformed = [
        "{t},{u},GET /rate/{m}=7",
        "{t},{u},GET /rate/{m}=",
        "2025-13-01T00:00,{u},GET /rate/{m}=3",
        "{t},abc,GET /data/m/{m}/3.mpg",
        "{t},{u},recommendation request s:8082, status 200, result: {m}",
        "{t},{u},POST /unknown",
        "{t},{u}",
    ]
    for _ in range(n):
        now += timedelta(microseconds=rng.randrange(1, 4000))
        r = rng.random()
        if r < 0.80:
            session = rng.choice(active)
            line = events.format_watch(events.WatchEvent(now, session[0], session[1], session[2]))
            session[2] += 1
            if rng.random() < 0.01:
                session[:] = [rng.randrange(users), rng.choice(movies), 0]
        elif r < 0.93:
            user = rng.randrange(users)
            if rng.random() < 0.9:
                ev = events.RecommendationEvent(
                    now, user, "usher.example:8082", 200, tuple(rng.sample(movies, 20)), rng.randrange(5, 400), ""
                )
            else:
                ev = events.RecommendationEvent(
                    now,
                    user,
                    "usher.example:8082",
                    0,
                    (),
                    600,
                    "java.net.SocketTimeoutException: Read timed out, host: usher:8082",
                )
            line = events.format_recommendation(ev)
        elif r < 0.99:
            line = events.format_rating(events.RatingEvent(now, rng.randrange(users), rng.choice(movies), rng.randint(1, 5)))
        else:
            t = now.strftime("%Y-%m-%dT%H:%M:%S")
            line = rng.choice(malformed).format(t=t, u=rng.randrange(users), m=rng.choice(movies))
        if rng.random() < 0.05 and "." in line[:30]:  # nanosecond precision on some lines
            line = line.replace(",", f"{rng.randrange(1000):03d},", 1)
        yield line


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for row in fh:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), from /proc."""
    if pid is None:
        usage = os.times()
        return usage.user + usage.system
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_parse(n: int, seed: int) -> tuple[float, float]:
    """Best of three passes: (lines per wall-clock second, lines per CPU second of this thread)."""
    from recommender.ingest.parser import parse_line

    lines = list(generate(n, seed))
    gc.collect()
    best_wall = best_cpu = 0.0
    for _ in range(3):
        started, cpu_started = time.perf_counter(), time.thread_time()
        for line in lines:
            parse_line(line)
        best_wall = max(best_wall, n / (time.perf_counter() - started))
        best_cpu = max(best_cpu, n / (time.thread_time() - cpu_started))
    return best_wall, best_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines ingested end to end")
    parser.add_argument("--parse-lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--parse-only", action="store_true", help="only the parse figure (run in a child process)")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    base_url = os.environ.get("DATABASE_URL", "")
    postgres = base_url.startswith(("postgres://", "postgresql://"))
    bench_db = "usher_bench_ingest"
    if postgres:
        os.environ["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + bench_db
    import django

    django.setup()
    from django.db import connection

    from recommender.ingest.services import ingest_lines

    if args.parse_only:
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the parse figure is for one core
            pinned = True
        except (AttributeError, OSError):
            pinned = False
        rate, cpu_rate = bench_parse(args.parse_lines, args.seed)
        print(
            f"parse: {rate:,.0f} lines/s wall clock on one core{' (pinned)' if pinned else ''}, "
            f"{cpu_rate:,.0f} lines per CPU second, over {args.parse_lines:,} lines (target >= 100,000)"
        )
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other processes share the cores)")
    # The parse figure comes from a child process, so this process's memory figures start clean.
    import subprocess

    subprocess.run(
        [sys.executable, __file__, "--parse-only", "--parse-lines", str(args.parse_lines), "--seed", str(args.seed)],
        check=True,
        env={key: value for key, value in os.environ.items() if key != "DATABASE_URL"},
    )
    sys.stdout.flush()

    if not postgres:
        print("end-to-end: skipped (set DATABASE_URL=postgres://… to measure the rate into PostgreSQL)")
        return 0

    import psycopg2

    admin_dsn = base_url.rsplit("/", 1)[0] + "/postgres"
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {bench_db}")
        cur.execute(f"CREATE DATABASE {bench_db}")
    try:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.log"
            with open(path, "w") as fh:
                for line in generate(args.lines, args.seed + 1):
                    fh.write(line + "\n")
            print(
                f"file: {args.lines:,} lines, {path.stat().st_size / 1e6:,.0f} MB; RSS before ingest {rss_mb():.0f} MB"
            )
            done = 0
            next_report = 0
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                backend = cur.fetchone()[0]
            cpu_before = (cpu_seconds(), cpu_seconds(backend))
            started = time.perf_counter()

            def report(batch) -> None:
                nonlocal done, next_report
                done += batch.lines_read
                if done >= next_report:
                    elapsed = time.perf_counter() - started
                    print(f"  {done:>9,} lines  {done / elapsed:>8,.0f} lines/s  RSS {rss_mb():6.1f} MB", flush=True)
                    next_report += max(args.lines // 10, 1)

            gc.freeze()  # as the ingest and consume commands do
            with open(path) as fh:
                summary = ingest_lines(lines=fh, source="bench", batch_size=args.batch_size, on_batch=report)
            elapsed = time.perf_counter() - started
            own_cpu = cpu_seconds() - cpu_before[0]
            pg_cpu = cpu_seconds(backend) - cpu_before[1]
        print(f"end-to-end: {args.lines / elapsed:,.0f} lines/s into PostgreSQL ({elapsed:.1f} s; target >= 20,000)")
        # On a shared machine the wall-clock rate depends on what else runs. The CPU each side used
        # tells what the pipeline does with a core each (Python process, PostgreSQL backend).
        print(
            f"cpu: ingest process {own_cpu:.1f} s, PostgreSQL backend {pg_cpu:.1f} s -> "
            f"{args.lines / max(own_cpu, pg_cpu):,.0f} lines/s with one core each "
            f"({args.lines / (own_cpu + pg_cpu):,.0f} lines/s on a single core for both)"
        )
        print(f"summary: {summary.as_dict()}")
        print(f"RSS at the end: {rss_mb():.0f} MB; load average {os.getloadavg()[0]:.2f}")
        with open("/proc/self/status") as fh:
            print("  " + next(row.strip() for row in fh if row.startswith("VmHWM")))
    finally:
        connection.close()
        if not args.keep:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {bench_db} WITH (FORCE)")
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
