"""Audits overview benchmark: how long ``/portal/audits/`` takes with many stored audit runs.

    python benchmarks/audits_overview.py [--viewers 1500] [--movies 800] [--ratings-per-viewer 40] [--runs 300]

Builds a throw-away SQLite database (migrations applied), a small seeded world (as
``benchmarks/audits.py``), trains SVD, executes one real fairness audit of the version and one real
security audit of the live deployment (their stored results are the real size), then copies those
two runs with their findings until ``--runs`` runs are stored, and times the overview page (and the
findings list) through Django's test client as an admin: the median of 5 requests, the number of SQL
queries, and the bytes of stored results the page's queries read. The page only reads stored rows:
no check runs on the request path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder
from _scratch import scratch_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1500)
    parser.add_argument("--movies", type=int, default=800)
    parser.add_argument("--ratings-per-viewer", type=int, default=40)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    scratch_django("audits-overview")
    import numpy as np
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from audits import services
    from audits.models import AuditFinding, AuditRun
    from recommender.models import Movie, Rating, RatingEvent, Viewer
    from recommender.training.runs import training_run_create, training_run_execute_inline
    from recommender.training.snapshots import snapshot_create

    rng = np.random.default_rng(args.seed)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    Viewer.objects.bulk_create([Viewer(id=v + 1, age=int(rng.integers(15, 70)), gender="MF"[int(rng.random() < 0.3)],
                                       occupation="writer" if v % 3 else "artist", enriched_at=now)
                                for v in range(args.viewers)], batch_size=5000)
    popularity = rng.pareto(1.2, args.movies) + 0.05
    Movie.objects.bulk_create([Movie(id=f"movie+{m}+{1950 + m % 75}", title=f"Movie {m}", year=1950 + m % 75,
                                     popularity=float(popularity[m]), genres=["Drama"], runtime=100)
                               for m in range(args.movies)], batch_size=5000)
    weights = popularity / popularity.sum()
    ratings, events = [], []
    for v in range(args.viewers):
        for m in rng.choice(args.movies, size=min(args.ratings_per_viewer, args.movies), replace=False, p=weights):
            stars, when = int(rng.integers(1, 6)), now - timedelta(minutes=int(rng.integers(1, 60 * 24 * 30)))
            ratings.append(Rating(viewer_id=v + 1, movie_id=f"movie+{m}+{1950 + m % 75}", rating=stars, time=when))
            events.append(RatingEvent(viewer_id=v + 1, movie_id=f"movie+{m}+{1950 + m % 75}", rating=stars, time=when))
    Rating.objects.bulk_create(ratings, batch_size=10000)
    RatingEvent.objects.bulk_create(events, batch_size=10000)
    snapshot = snapshot_create(actor=None, system="bench")
    run = training_run_execute_inline(run=training_run_create(
        actor=None, system="bench", snapshot=snapshot, algorithm="svd", enqueue=False,
        split={"kind": "random", "test_fraction": 0.2, "seed": 0}))
    assert run.status == "succeeded", run.error
    real = []
    for kwargs in ({"kind": "fairness", "model_version": run.model_version}, {"kind": "security", "window_hours": 24}):
        audit = services.audit_run_create(actor=None, enqueue=False, system="bench", **kwargs)
        real.append(services.audit_run_execute(run_id=audit.pk))
    result_bytes = [len(str(r.results)) + len(r.report) + len(str(r.params)) for r in real]

    # Copies of the two real runs (their findings too) up to --runs stored runs.
    copies = []
    for i in range(args.runs - len(real)):
        source = real[i % len(real)]
        copies.append(AuditRun(kind=source.kind, target=source.target, model_version=source.model_version,
                               target_repr=source.target_repr, window_start=source.window_start,
                               window_end=source.window_end, trigger=source.trigger, status=source.status,
                               params=source.params, results=source.results, report=source.report,
                               passed=source.passed, artifact_sha256=source.artifact_sha256,
                               requested_label="bench", finished_at=source.finished_at))
    AuditRun.objects.bulk_create(copies, batch_size=200)
    findings = []
    for copy in AuditRun.objects.exclude(pk__in=[r.pk for r in real]):
        for f in AuditFinding.objects.filter(run=real[0] if copy.kind == "fairness" else real[1]):
            findings.append(AuditFinding(run=copy, kind=f.kind, check_name=f.check_name, severity=f.severity,
                                         title=f.title, evidence=f.evidence, model_version=f.model_version,
                                         fingerprint=f"{f.fingerprint}:{copy.pk}", first_seen_at=f.first_seen_at,
                                         last_seen_at=f.last_seen_at, status=f.status))
    AuditFinding.objects.bulk_create(findings, batch_size=500)

    from portal.roles import sync_role_permissions
    from portal.services import user_create

    sync_role_permissions()
    admin, _ = user_create(username="bench-admin", role="admin", system="bench")
    client = Client()
    client.force_login(admin)

    def timed(url: str) -> tuple[float, int]:
        client.get(url)  # warm
        times = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t0)
            assert response.status_code == 200, (response.status_code, response.get("Location"))
        return statistics.median(times), len(queries)

    print(f"machine: {machine()}; database: SQLite (temporary)")
    print(f"world: {args.viewers} viewers, {args.movies} movies, {len(ratings)} ratings; "
          f"{AuditRun.objects.count()} audit runs ({', '.join(f'{b / 1024:.0f} KiB' for b in result_bytes)} "
          f"of stored results a run, fairness and security), {AuditFinding.objects.count()} findings")
    for url in ("/portal/audits/", "/portal/audits/findings/"):
        seconds, count = timed(url)
        print(f"GET {url}: median {seconds * 1000:.0f} ms over 5 requests, {count} SQL queries")


if __name__ == "__main__":
    main()
