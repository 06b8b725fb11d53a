"""Benchmark: import_movielens on a synthetic ml-1m-shaped folder (6,040 users, 3,706 movies, N ratings).

Usage: python benchmarks/movielens_import.py [ratings, default 1000000]
Runs against DATABASE_URL (default: a throw-away SQLite file under a temp folder) and prints
ratings/s for the first import (with the CPU time this process used, and the machine's load: on a
busy shared machine the wall time mostly measures waiting), the time of the second (idempotent)
import, and peak RSS. PostgreSQL's own CPU is not in the figure.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="usher-bench-ml-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP / 'bench.sqlite3'}")
os.environ.setdefault("USHER_VAR_DIR", str(TMP / "var"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402


def write_folder(folder: Path, n_ratings: int, n_users: int = 6040, n_movies: int = 3706) -> None:
    rng = random.Random(7)
    folder.mkdir(parents=True)
    with (folder / "movies.dat").open("w", encoding="latin-1") as f:
        for m in range(1, n_movies + 1):
            f.write(f"{m}::Movie Number {m}, The ({1920 + m % 100})::Drama|Comedy\n")
    with (folder / "users.dat").open("w") as f:
        for u in range(1, n_users + 1):
            f.write(f"{u}::{'MF'[u % 2]}::{[1, 18, 25, 35, 45, 50, 56][u % 7]}::{u % 21}::00000\n")
    weights = [1 / (i + 1) ** 0.8 for i in range(n_movies)]
    seen: set[tuple[int, int]] = set()
    with (folder / "ratings.dat").open("w") as f:
        written = 0
        while written < n_ratings:
            users = [rng.randint(1, n_users) for _ in range(10_000)]
            movies = rng.choices(range(1, n_movies + 1), weights=weights, k=10_000)
            for u, m in zip(users, movies, strict=True):
                if (u, m) in seen or written >= n_ratings:
                    continue
                seen.add((u, m))
                f.write(f"{u}::{m}::{rng.randint(1, 5)}::{956703932 + written}\n")
                written += 1


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    folder = TMP / "ml-1m"
    write_folder(folder, n)
    call_command("migrate", verbosity=0)
    engine = django.db.connection.vendor
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    started, cpu_started = time.perf_counter(), cpu()
    call_command("import_movielens", str(folder), "--quiet")
    first, first_cpu = time.perf_counter() - started, cpu() - cpu_started
    started = time.perf_counter()
    call_command("import_movielens", str(folder), "--quiet")
    second = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(f"movielens import on {engine}: {n:,} ratings in {first:.1f} s = {n / first:,.0f} ratings/s "
          f"(this process used {first_cpu:.1f} s of CPU; load average {load:.1f} on {os.cpu_count()} cores); "
          f"second import (idempotent, nothing written) {second:.1f} s; peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
