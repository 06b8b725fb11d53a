"""Serving benchmark: GET /recommend under load, against gunicorn with production settings.

    python benchmarks/serve.py [--world small|large|both] [--duration 30] [--connections 16]
                               [--workers 2] [--threads 4] [--keep]

For each world it builds a database and a model, starts gunicorn exactly as ``make run`` does
(``gunicorn.conf.py``) but with production settings (``USHER_PRODUCTION=1``, a generated
``SECRET_KEY``, ``ALLOWED_HOSTS=127.0.0.1``, ``SECURE_SSL_REDIRECT=0``, access log off) and the
prediction log on, drives it on loopback with ``wrk`` (Debian's package; a Python client with
keep-alive is used when wrk is missing) and prints throughput, p50/p90/p99 latency, errors, the
resident memory of each worker, and whether every request reached the prediction log.

Worlds:
  small  943 viewers × 1,682 movies, 100,000 ratings in the database (MovieLens-100k sized);
         the seen index and the fallback are built from the database.
  large  1,000,000 viewers × 27,000 movies, 100 factors, 50 seen movies per viewer. The artifact
         (``write_artifact``) and the seen-index snapshot are synthesised directly: the point is the
         serving path at that size, not training.

With DATABASE_URL=postgres://… it creates and drops its own database ``usher_bench_serve``;
without, it uses SQLite in the temporary folder. The load generator runs on the same machine and
shares its cores with the server: figures are end to end on one box.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _scratch import pg_admin  # noqa: E402 - benchmarks/ is the script's own folder

PORT = int(os.environ.get("BENCH_PORT", "8097"))
NICE = 0  # --nice: run gunicorn and wrk at this niceness (negative needs root)

WRK_LUA = """
local users = tonumber(os.getenv("BENCH_USERS"))
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
init = function(args)
  math.randomseed(seed * 7919 + os.time())
end
request = function()
  return wrk.format("GET", "/recommend/" .. math.random(1, users))
end
"""


# --- environment --------------------------------------------------------------------------------------
def configure(workdir: Path) -> dict:
    """Environment for this process and gunicorn: own var dir, own database, production settings."""
    env = {
        "USHER_VAR_DIR": str(workdir / "var"),
        "USHER_ARTIFACT_ROOT": str(workdir / "artifacts"),
        "SERVING_STATE_DIR": str(workdir / "var" / "serving"),
        "SERVING_SNAPSHOT_REFRESH_SECONDS": "86400",  # the snapshot is prepared by the benchmark
        "AXES_ENABLED": "0",
    }
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/usher_bench_serve"
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'var' / 'bench.sqlite3'}"
    os.environ.update(env)
    return env


def create_pg_database(url: str) -> None:
    pg_admin(url, "DROP DATABASE IF EXISTS usher_bench_serve WITH (FORCE)", "CREATE DATABASE usher_bench_serve")


def drop_pg_database(url: str) -> None:
    pg_admin(url, "DROP DATABASE IF EXISTS usher_bench_serve WITH (FORCE)")


# --- worlds ------------------------------------------------------------------------------------------
def slugs(n: int) -> list[str]:
    return [f"bench+movie+{i}+{1950 + i % 75}" for i in range(n)]


def register_version(*, relative: str, sha: str, size: int, label: str):
    """Snapshot → run → approved version rows for a synthesised artifact (origin: benchmark)."""
    from django.utils import timezone

    from recommender.models import DatasetSnapshot, ModelVersion, RegisteredModel, TrainingRun

    snapshot = DatasetSnapshot.objects.create(name=f"bench {label}", window_end=timezone.now(),
                                              content_sha256=secrets.token_hex(32), storage_path="bench")
    run = TrainingRun.objects.create(snapshot=snapshot, algorithm="svd", origin=TrainingRun.Origin.BENCHMARK,
                                     status=TrainingRun.Status.SUCCEEDED, registered_model_name="bench-recommender")
    model, _ = RegisteredModel.objects.get_or_create(name="bench-recommender")
    number = model.versions.count() + 1
    return ModelVersion.objects.create(
        registered_model=model, version=number, training_run=run, algorithm="svd", artifact_path=relative,
        artifact_sha256=sha, artifact_size=size, artifact_kind="factors", status=ModelVersion.Status.APPROVED,
    )


def factor_artifact(*, name: str, n_users: int, items: list[str], dim: int, seen_indptr, seen_indices, seed: int):
    import numpy as np

    from recommender.registry.artifacts import artifact_root, write_artifact

    rng = np.random.default_rng(seed)
    relative = f"models/bench/{name}"
    arrays = {
        "item_ids": np.array(items),
        "user_ids": np.arange(1, n_users + 1, dtype=np.int64),
        "user_factors": (rng.standard_normal((n_users, dim), dtype=np.float32) * 0.1),
        "item_factors": (rng.standard_normal((len(items), dim), dtype=np.float32) * 0.1),
        "user_bias": (rng.standard_normal(n_users, dtype=np.float32) * 0.1),
        "item_bias": (rng.standard_normal(len(items), dtype=np.float32) * 0.3),
        "seen_indptr": seen_indptr,
        "seen_indices": seen_indices,
    }
    sha, size = write_artifact(directory=artifact_root() / relative,
                               manifest={"kind": "factors", "algorithm": "svd", "global_mean": 3.5,
                                         "rating_scale": [1, 5]}, arrays=arrays)
    return relative, sha, size


def build_small(seed: int = 1) -> dict:
    """943 × 1,682 with 100,000 ratings in the database; snapshot built from it."""
    import datetime as dt

    import numpy as np
    from django.utils import timezone

    from recommender.models import Movie, Rating, Viewer
    from recommender.serving.conf import serving_settings
    from recommender.serving.snapshot import snapshot_build

    n_users, n_items, n_ratings = 943, 1682, 100_000
    rng = np.random.default_rng(seed)
    items = slugs(n_items)
    Viewer.objects.bulk_create([Viewer(id=u) for u in range(1, n_users + 1)], batch_size=5000)
    Movie.objects.bulk_create([Movie(id=m, title=m) for m in items], batch_size=5000)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    pairs = set()
    while len(pairs) < n_ratings:
        users = rng.integers(1, n_users + 1, size=n_ratings)
        movies = rng.choice(n_items, size=n_ratings, p=popularity)
        pairs.update(zip(users.tolist(), movies.tolist(), strict=True))
    pairs = sorted(pairs)
    keep = rng.permutation(len(pairs))[:n_ratings]
    pairs = sorted(pairs[i] for i in keep)
    now = timezone.now()
    Rating.objects.bulk_create(
        [Rating(viewer_id=u, movie_id=items[m], rating=int(rng.integers(1, 6)),
                time=now - dt.timedelta(minutes=int(rng.integers(0, 60 * 24 * 30)))) for u, m in pairs],
        batch_size=5000,
    )
    per_user: list[list[int]] = [[] for _ in range(n_users)]
    for u, m in pairs:
        per_user[u - 1].append(m)
    from recommender.registry.artifacts import seen_csr

    indptr, indices = seen_csr([sorted(x) for x in per_user])
    relative, sha, size = factor_artifact(name="small", n_users=n_users, items=items, dim=100, seen_indptr=indptr,
                                          seen_indices=indices, seed=seed)
    config = serving_settings()
    snapshot_build(root=config.snapshot_dir, fallback_size=config.fallback_size, window_days=14, half_life_days=3)
    return {"users": n_users, "items": n_items, "seen_pairs": len(pairs), "artifact": (relative, sha, size)}


def build_large(seed: int = 2, n_users: int = 1_000_000, n_items: int = 27_000, per_user: int = 50) -> dict:
    """1M × 27k: artifact and seen snapshot written directly (no rows in the database)."""
    import numpy as np

    from recommender.serving.conf import serving_settings
    from recommender.serving.snapshot import snapshot_write

    rng = np.random.default_rng(seed)
    items = slugs(n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    cdf = np.cumsum(popularity / popularity.sum())
    draws = np.searchsorted(cdf, rng.random((n_users, per_user), dtype=np.float64)).astype(np.int32)
    draws.sort(axis=1)
    keep = np.ones_like(draws, dtype=bool)
    keep[:, 1:] = draws[:, 1:] != draws[:, :-1]
    counts = keep.sum(axis=1)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = draws[keep].astype(np.int32)
    del draws, keep
    relative, sha, size = factor_artifact(name="large", n_users=n_users, items=items, dim=100, seen_indptr=indptr,
                                          seen_indices=indices, seed=seed)
    freq = np.bincount(indices, minlength=n_items)
    top = np.argsort(-freq, kind="stable")[:200]
    snapshot_write(root=serving_settings().snapshot_dir, viewers=np.arange(1, n_users + 1, dtype=np.int64),
                   indptr=indptr, items=indices, movies=items,
                   popular=[(items[i], float(freq[i])) for i in top],
                   meta={"rating_max_id": 0, "session_max_id": 0, "source": "synthesised by benchmarks/serve.py",
                         "fallback": {"source": "synthesised"}})
    return {"users": n_users, "items": n_items, "seen_pairs": int(indices.shape[0]), "artifact": (relative, sha, size)}


# --- gunicorn ----------------------------------------------------------------------------------------
def start_gunicorn(env: dict, *, workers: int, threads: int, log: Path) -> subprocess.Popen:
    full = {**os.environ, **env, "USHER_PRODUCTION": "1", "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "DEBUG": "0",
            "USHER_BIND": f"127.0.0.1:{PORT}", "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads),
            "WEB_ACCESS_LOG": "", "WEB_LOG_LEVEL": "warning"}
    handle = open(log, "ab")
    command = [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"]
    if NICE:
        command = ["nice", "-n", str(NICE), *command]
    process = subprocess.Popen(command, cwd=ROOT, env=full, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/recommend/1", timeout=2) as response:
                if response.headers.get("X-Model-Version", "fallback") != "fallback":
                    # every worker must be up: ask a few times
                    if len(worker_pids(process.pid)) == workers and all_workers_ready(env, workers):
                        return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("gunicorn did not become ready in time")


def all_workers_ready(env: dict, workers: int) -> bool:
    folder = Path(env["SERVING_STATE_DIR"]) / "workers"
    ready = 0
    for path in folder.glob("*.json"):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("routes", {}).get("production"):
            ready += 1
    return ready >= workers


def worker_pids(master: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [int(p) for p in out.split()]


def memory(pid: int) -> dict:
    """Rss, Pss and the private part of a process, in MB (from /proc/<pid>/smaps_rollup)."""
    values = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) >= 2 and parts[0].rstrip(":") in ("Rss", "Pss", "Private_Clean", "Private_Dirty",
                                                              "Shared_Clean"):
                values[parts[0].rstrip(":")] = int(parts[1]) / 1024
    except OSError:
        return {}
    return {"rss_mb": round(values.get("Rss", 0), 1), "pss_mb": round(values.get("Pss", 0), 1),
            "private_mb": round(values.get("Private_Clean", 0) + values.get("Private_Dirty", 0), 1),
            "shared_file_mb": round(values.get("Shared_Clean", 0), 1)}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return total / os.sysconf("SC_CLK_TCK")


def served_total(env: dict) -> int:
    total = 0
    for path in (Path(env["SERVING_STATE_DIR"]) / "workers").glob("*.json"):
        total += json.loads(path.read_text()).get("served", 0)
    return total


# --- load --------------------------------------------------------------------------------------------
def run_wrk(*, users: int, duration: int, connections: int, workdir: Path) -> dict:
    script = workdir / "bench.lua"
    script.write_text(WRK_LUA)
    out = subprocess.run(
        [*(["nice", "-n", str(NICE)] if NICE else []), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "2s", "-s", str(script),
         f"http://127.0.0.1:{PORT}"],
        capture_output=True, text=True, env={**os.environ, "BENCH_USERS": str(users)},
    ).stdout
    result = {"raw": out}
    if m := re.search(r"(\d+) requests in ([\d.]+)(\w+)", out):
        result["requests"] = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out):
            value, unit = float(m.group(1)), m.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return result


def run_python_client(*, users: int, duration: int, connections: int) -> dict:
    """Fallback load generator: ``connections`` processes, one keep-alive connection each."""
    import http.client
    import multiprocessing
    import random

    def worker(seed: int, queue) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        latencies, errors = [], 0
        end = time.monotonic() + duration
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                conn.request("GET", f"/recommend/{rng.randint(1, users)}")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors += 1
            except OSError:
                errors += 1
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
            latencies.append((time.perf_counter() - started) * 1000)
        queue.put((latencies, errors))

    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(i, queue)) for i in range(connections)]
    for p in procs:
        p.start()
    latencies, errors = [], 0
    for _ in procs:
        lat, err = queue.get()
        latencies += lat
        errors += err
    for p in procs:
        p.join()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"requests": len(latencies), "rps": len(latencies) / duration, "p50_ms": pct(0.5), "p75_ms": pct(0.75),
            "p90_ms": pct(0.9), "p99_ms": pct(0.99), "errors": errors}


def check_answers(users: int) -> None:
    """A few plain requests: one line of 20 ids, the headers, a 400 for a bad id."""
    import random

    for user in random.Random(0).sample(range(1, users + 1), 5):
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/recommend/{user}") as response:
            body = response.read().decode()
            assert response.status == 200 and len(body.split(",")) == 20 and "\n" not in body, body
            assert response.headers["X-Request-Id"] and response.headers["X-Model-Version"] != "fallback"
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{PORT}/recommend/abc")
        raise AssertionError("a bad id was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400


def prediction_rows() -> int:
    from django.db import connections

    from recommender.models import PredictionLog

    connections.close_all()
    return PredictionLog.objects.count()


# --- main --------------------------------------------------------------------------------------------
def bench_world(name: str, args, env: dict, workdir: Path) -> dict:
    from recommender.models import PredictionLog
    from recommender.serving.services import deployment_update

    PredictionLog.objects.all().delete()
    shutil.rmtree(Path(env["SERVING_STATE_DIR"]), ignore_errors=True)
    started = time.monotonic()
    world = build_small() if name == "small" else build_large()
    relative, sha, size = world["artifact"]
    version = register_version(relative=relative, sha=sha, size=size, label=name)
    # Production takes only a version with an approved promotion (the one door to live traffic); the
    # benchmark measures serving, so its records are made as the tests do.
    from releases.tests.factories import approved_promotion

    approved_promotion(version)
    deployment_update(actor=None, system="benchmark", reason=f"benchmark world {name}", production=version)
    print(f"[{name}] world ready in {time.monotonic() - started:.0f}s: {world['users']} viewers × {world['items']} "
          f"movies, {world['seen_pairs']} seen pairs, artifact {size / 1e6:.0f} MB", flush=True)
    log = workdir / f"gunicorn-{name}.log"
    process = start_gunicorn(env, workers=args.workers, threads=args.threads, log=log)
    try:
        check_answers(world["users"])
        use_wrk = shutil.which("wrk") and not args.python_client

        def load(duration: int, connections: int) -> dict:
            if use_wrk:
                return run_wrk(users=world["users"], duration=duration, connections=connections, workdir=workdir)
            return run_python_client(users=world["users"], duration=duration, connections=connections)

        counts = [int(c) for c in str(args.connections).split(",")]
        load(5, counts[0])  # warm-up: page in the parts of the artifact the requests touch
        runs = []
        for connections in counts:
            pids = worker_pids(process.pid)
            cpu_before, gen_before = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_CHILDREN)
            run = {"connections": connections, **{k: v for k, v in load(args.duration, connections).items() if k != "raw"}}
            gen_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            served_cpu = cpu_seconds(pids) - cpu_before
            requests = max(1, run.get("requests", 1))
            run["server_cpu_us_per_request"] = round(served_cpu / requests * 1e6, 1)
            run["loadgen_cpu_us_per_request"] = round(
                (gen_after.ru_utime + gen_after.ru_stime - gen_before.ru_utime - gen_before.ru_stime) / requests * 1e6, 1)
            runs.append(run)
            print(f"[{name}] {connections} connections: {run.get('rps', 0):.0f} req/s, p50 {run.get('p50_ms', 0):.2f} ms, "
                  f"p99 {run.get('p99_ms', 0):.2f} ms, errors {run['errors']}; server CPU "
                  f"{run['server_cpu_us_per_request']} µs/request; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
        workers_memory = {pid: memory(pid) for pid in worker_pids(process.pid)}
        rows_at_end = prediction_rows()
        time.sleep(2.5)  # the workers' status files (and so their request counters) refresh every 2 s
        served = served_total(env)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    rows = prediction_rows()
    mapped = sum(p.stat().st_size for p in (Path(env["USHER_ARTIFACT_ROOT"]) / relative).iterdir())
    snapshot_dir = Path(env["SERVING_STATE_DIR"]) / "snapshots"
    current = (snapshot_dir / "CURRENT").read_text().strip()
    mapped += sum(p.stat().st_size for p in (snapshot_dir / current).iterdir())
    return {"world": name, "users": world["users"], "items": world["items"], "seen_pairs": world["seen_pairs"],
            "runs": runs, "errors": sum(r["errors"] for r in runs), "workers": workers_memory,
            "mapped_files_mb": round(mapped / 2**20, 1), "served_by_workers": served,
            "log_rows_when_load_stopped": rows_at_end, "log_rows_after_sigterm": rows,
            "every_request_logged": rows == served}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", choices=["small", "large", "both"], default="both")
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", default="4,8,16", help="Connection counts to run, one after another.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--python-client", action="store_true", help="Use the Python load generator even if wrk exists.")
    parser.add_argument("--nice", type=int, default=0,
                        help="Niceness for gunicorn and wrk, e.g. -10 when other jobs share the machine (root only).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder and database.")
    args = parser.parse_args()
    global NICE
    NICE = args.nice

    workdir = Path(tempfile.mkdtemp(prefix="usher-bench-serve-"))
    env = configure(workdir)
    if env["DATABASE_URL"].startswith("postgres"):
        create_pg_database(env["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB; "
          f"database: {env['DATABASE_URL'].split('://')[0]}; load generator: "
          f"{'wrk' if shutil.which('wrk') and not args.python_client else 'python'}; "
          f"{args.workers} workers × {args.threads} threads; {args.connections} connections; niceness {args.nice}; "
          f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    try:
        for name in (["small", "large"] if args.world == "both" else [args.world]):
            result = bench_world(name, args, env, workdir)
            results.append(result)
            print(json.dumps(result, indent=2), flush=True)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            if env["DATABASE_URL"].startswith("postgres"):
                drop_pg_database(env["DATABASE_URL"])
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    print("\nworld   conns  req/s   p50 ms  p99 ms  errors  server µs/req  RSS/worker MB (PSS)        logged/served")
    for r in results:
        mem = ", ".join(f"{m['rss_mb']:.0f} ({m['pss_mb']:.0f})" for m in r["workers"].values())
        for run in r["runs"]:
            print(f"{r['world']:<7} {run['connections']:>5}  {run.get('rps', 0):>6.0f}  {run.get('p50_ms', 0):>6.2f}  "
                  f"{run.get('p99_ms', 0):>6.2f}  {run['errors']:>6}  {run['server_cpu_us_per_request']:>13}  {mem:<25}  "
                  f"{r['log_rows_after_sigterm']}/{r['served_by_workers']}")

if __name__ == "__main__":
    main()
