"""Calibration benchmark: every audit check and monitor against the world simulator's truth.

    python benchmarks/calibration.py [--seeds 20] [--scenario-seeds 10] [--demo-seeds 2] [--quick]
                                     [--viewers 300] [--movies 300] [--days 7] [--worlds clean,shilling,...]

The simulator knows when a world is clean and when a scenario is on. For each seed this simulates
a world of the platform straight into Usher's ingestion (``simulator_backfill``: the catalog first,
0.2 % malformed and 0.2 % repeated lines, as ``manage.py bootstrap`` does), then runs the product's
own code paths — nothing here re-implements a check:

- the security audit (``audits.services.audit_run_execute``: rating poisoning, rating velocity);
  rating velocity is also run on its own (``audits.checks.abuse.rating_velocity`` on the audit's
  sources, with nothing suppressed by poisoning) to show what it catches alone;
- the model-level fairness audit of an SVD trained through the training app on the world's snapshot
  (aequitas), and the system-level (live) fairness audit of the last 24 hours;
- the monitoring beat tasks as beat runs them (``monitoring_backfill``, rollups, data quality, drift
  against the production version's training window, feedback snapshots, ``evaluate_alerts``) with the
  seeded default alert rules; an opened incident is the monitor "raising".

Worlds (clean: ``--seeds`` times; every other: ``--scenario-seeds`` times; seeds 1..N):

| world | scenario | judged checks |
|---|---|---|
| clean | none (the simulator's default world, as ``make run`` builds it) | every audit: false positives |
| clean_large | none, a catalog of 1,000 movies (viewers do not run out of favourites within the week) | monitors: false positives |
| bias_ratings | ``bias:group=gender:F,kind=ratings,strength=3`` from the start | fairness, model level |
| bias_timeouts | ``bias:group=gender:F,kind=timeouts,strength=0.3`` from the start | fairness, live; availability SLO |
| drift_taste | ``drift:kind=taste,genre=Horror,strength=1.5`` on the last day | drift monitor |
| drift_audience | ``drift:kind=audience,group=age:<25,strength=4`` on the last day | drift monitor |
| shilling | ``shilling:accounts=50`` (defaults: rating 5, 2 filler, 30 min) 12 h before the end | poisoning; velocity alone |
| scraping | a week, an SVD in production, then the last hour served by Usher in-process: the platform's client asks for its visitors, ``scraping:requests=300`` walks the viewer ids from another address | scraping (the platform's client: false positives) |
| demo | the ``make run`` path: a bootstrap week (seed 42.., 500 viewers, 300 movies), then 2 h of the live simulator's traffic (2 visits/s, a fresh simulator, at most 500 sessions) | security (must stay clean) |

The monitors run on the 1,000-movie clean world: in a 300-movie world viewers use their favourites
up within the week and the ratings really drift down (docs/simulator.md), which the drift monitor
rightly reports; and those worlds give viewers a month of history before the first day
(``history_days``), so a clean week is about stationary. Scraping needs Usher's own request log (a
served ``/recommend``): its worlds serve their last hour through Usher in-process, as
``audits/tests/test_simulator_scenarios.py`` does.

A finding *blocks the gate* when its severity is at or above ``audits.conf.review_severity()``
(``PASS_BELOW_SEVERITY``), as ``audits.selectors.audit_release_gate`` judges. Prints, per check, the
share of clean seeds raising a blocking finding and any finding, and per targeted scenario the share
of seeds where the check raised a blocking finding about the planted problem (the right group, movie
or feature). ``--quick``: 5 seeds, a smaller world, no demo world — a smoke run. ``--scenario-seeds N``: fewer
worlds per scenario than clean ones. ``--worlds a,b``: only those.

Builds a throw-away SQLite database (migrations applied once, copied per world).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder

WORLDS = ("clean", "shilling", "demo", "bias_ratings", "bias_timeouts", "drift_taste", "drift_audience", "clean_large",
          "scraping")
PLATFORM_CLIENT, SCRAPER_CLIENT = "10.0.0.5", "203.0.113.66"
# check -> the worlds it is meant to catch
TARGETS = {
    "security.rating_poisoning": ["shilling"],
    "security.rating_velocity": [],
    "security.rating_velocity (alone)": ["shilling"],
    "security.scraping": ["scraping"],
    "fairness.model": ["bias_ratings"],
    "fairness.live": ["bias_timeouts"],
    "monitor: availability SLO": ["bias_timeouts"],  # 30 % of women's calls time out: ~9 % of all calls
    "monitor: latency SLO": [],
    "monitor: data quality": [],
    "monitor: drift": ["drift_taste", "drift_audience"],
    "monitor: freshness": [],
    "monitor: feedback loop": [],
}


def setup(folder: Path) -> Path:
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'calibration.sqlite3'}"
    os.environ["USHER_VAR_DIR"] = str(folder)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connections

    connections.close_all()
    template = folder / "template.sqlite3"
    shutil.copy(folder / "calibration.sqlite3", template)
    return template


def fresh_database(folder: Path, template: Path) -> None:
    from django.db import connections

    connections.close_all()
    for suffix in ("", "-wal", "-shm"):
        path = folder / f"calibration.sqlite3{suffix}"
        if path.exists():
            path.unlink()
    shutil.copy(template, folder / "calibration.sqlite3")


# --- the product's code paths ----------------------------------------------------------------------

# The monitors' worlds give every viewer a month of viewing before the first simulated day
# (SimulationConfig.history_days): without it viewers work down from their favourites and a clean
# week's ratings fall, which the drift monitor rightly reports (docs/simulator.md).
MONITOR_HISTORY_DAYS = 30


def simulate(world, *, days: float, end: datetime, scenarios=(), seed: int, history_days: float = 0.0) -> None:
    from recommender.simulator.engine import SimulationConfig
    from recommender.simulator.services import simulator_backfill

    simulator_backfill(world=world, days=days, end=end, config=SimulationConfig(
        seed=seed + 1, malformed_rate=0.002, duplicate_rate=0.002, scenarios=list(scenarios),
        history_days=history_days))


def simulate_live(world, *, hours: float, end: datetime, seed: int, rate: float = 2.0) -> None:
    """The Procfile's live simulator, in simulated time: ``rate`` visits a second from a fresh simulator
    (its own seen-sets, as a new process has), at most 500 watch sessions, 0.2 % malformed lines."""
    from dataclasses import replace

    from recommender.simulator.engine import SimulationConfig, Simulator
    from recommender.simulator.sinks import UsherSink

    live_world = replace(world)
    live_world.config = replace(world.config, visits_per_viewer_per_day=rate * 86400 / float(world.activity.sum()))
    sink = UsherSink(source="simulator")
    sim = Simulator(live_world, SimulationConfig(seed=seed + 2, malformed_rate=0.002, max_active_sessions=500,
                                                 batch_lines=2000), sink)
    sim.run_backfill(start=end - timedelta(hours=hours), until=end)
    sink.close()


def train():
    from recommender.training.runs import training_run_create, training_run_execute_inline
    from recommender.training.snapshots import snapshot_create

    snapshot = snapshot_create(actor=None, system="calibration")
    run = training_run_create(actor=None, system="calibration", snapshot=snapshot, algorithm="svd",
                              split={"kind": "random", "test_fraction": 0.2, "seed": 0}, enqueue=False)
    run = training_run_execute_inline(run=run)
    if run.status != "succeeded":
        raise RuntimeError(run.error)
    return run.model_version


def audit(kind: str, **kwargs):
    from audits import services

    run = services.audit_run_create(kind=kind, actor=None, enqueue=False, **kwargs)
    run = services.audit_run_execute(run_id=run.pk)
    if run.status != "succeeded":
        raise RuntimeError(f"{kind} audit failed: {run.error}")
    return run


def findings_of(run) -> list[dict]:
    from audits.conf import review_severity
    from audits.models import severity_rank

    level = severity_rank(review_severity())
    return [{"check": f.check_name, "fingerprint": f.fingerprint, "title": f.title, "evidence": f.evidence,
             "blocking": severity_rank(f.severity) >= level} for f in run.findings.all()]


def velocity_alone(end: datetime) -> list[dict]:
    """``rating_velocity`` on the security audit's own sources, with nothing left to poisoning."""
    from audits import sources
    from audits.checks import abuse
    from audits.conf import configured_settings, review_severity
    from audits.models import severity_rank

    window = (end - timedelta(hours=24), end)
    events = sources.rating_events(start=window[0], end=window[1])
    outcome = abuse.rating_velocity(events=events, config=configured_settings(), window=window)
    level = severity_rank(review_severity())
    return [{"check": d.check, "fingerprint": d.fingerprint, "title": d.title, "evidence": d.evidence,
             "blocking": severity_rank(d.severity) >= level} for d in outcome.findings]


def monitors(now: datetime) -> list[dict]:
    """Every monitoring beat task once, as beat would run them at ``now``; the incidents opened."""
    from monitoring import tasks
    from monitoring.models import DriftReport, Incident
    from monitoring.services.backfill import monitoring_backfill

    monitoring_backfill(until=now)
    tasks.rollup_telemetry()
    tasks.data_quality_report()
    tasks.drift_report()
    tasks.feedback_snapshots()
    tasks.evaluate_alerts()
    out = []
    report = DriftReport.objects.order_by("-created_at", "-id").first()
    drifted = set(report.results.filter(drifted=True).values_list("feature", flat=True)) if report else set()
    for incident in Incident.objects.select_related("rule"):
        out.append({"check": monitor_name(incident.rule.name), "fingerprint": incident.rule.name,
                    "title": incident.rule.name, "evidence": {"drifted": sorted(drifted)}, "blocking": True})
    return out


def monitor_name(rule: str) -> str:
    rule = rule.lower()
    if rule.startswith("availability"):
        return "monitor: availability SLO"
    if rule.startswith("latency"):
        return "monitor: latency SLO"
    if "drift" in rule:
        return "monitor: drift"
    if "quality" in rule and "online" not in rule:
        return "monitor: data quality"
    if "feedback" in rule:
        return "monitor: feedback loop"
    if "stale" in rule:
        return "monitor: freshness"
    return f"monitor: {rule}"


# --- worlds -----------------------------------------------------------------------------------------

def usher_client(address: str):
    """The simulator's view of Usher's ``GET /recommend/<id>``, called in-process from ``address``
    (as ``audits/tests/test_simulator_scenarios.py`` does)."""
    from recommender.simulator.client import in_process_client

    return in_process_client(address, server="usher-calibration:8082")


def scraping_world(world, *, end: datetime, seed: int, folder: Path) -> list[dict]:
    """A week backfilled, an SVD trained and put in production, then the last hour served by Usher
    in-process: the platform's client asks for its visiting viewers, a scraper walks 300 viewer ids.
    The security audit's scraping check on Usher's own request log; its findings."""
    from django.conf import settings

    from recommender.serving.runtime import get_runtime, runtime_reset
    from recommender.serving.services import deployment_update
    from recommender.simulator.engine import SimulationConfig, Simulator
    from recommender.simulator.scenarios import Scraping
    from recommender.simulator.sinks import UsherSink
    from releases.tests.factories import approved_promotion

    settings.RECOMMENDER = {**settings.RECOMMENDER, "SERVING": {
        **settings.RECOMMENDER.get("SERVING", {}), "STATE_DIR": str(folder / f"serving-{seed}"), "AUTOSTART": False,
        "RATE_LIMIT_BACKEND": "local"}}
    runtime_reset()
    try:
        simulate(world, days=7, end=end - timedelta(hours=1), seed=seed)
        version = train()
        approved_promotion(version)  # the door to live traffic asks for an approved promotion
        deployment_update(actor=None, system="calibration", reason="calibration: production", production=version)
        live = Simulator(world, SimulationConfig(seed=seed + 2, scenarios=[Scraping(at=timedelta(0), requests=300)]),
                         sink=UsherSink(source="simulator"), recommend=usher_client(PLATFORM_CLIENT),
                         scraper=usher_client(SCRAPER_CLIENT))
        live.run_backfill(start=end - timedelta(hours=1), until=end)
        live.sink.close()
        get_runtime().predlog.flush()
        run = audit("security", overrides={"SECURITY_CHECKS": ["scraping"]})
    finally:
        runtime_reset()
    return findings_of(run)


def run_world(kind: str, seed: int, args) -> dict[str, list[dict]]:
    """Simulate one world and run the checks that matter for it; check name -> findings raised."""
    from monitoring.tests.factories import make_production_version
    from recommender.simulator.scenarios import Drift, PlantedBias, Shilling
    from recommender.simulator.world import World, WorldConfig

    end = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    days = args.days
    out: dict[str, list[dict]] = defaultdict(list)

    def record(check: str, rows: list[dict]) -> None:
        out[check] += rows

    if kind == "demo":
        world = World.build(WorldConfig(seed=41 + seed, viewers=500, movies=300))
        simulate(world, days=7, end=end - timedelta(hours=2), seed=world.config.seed)
        simulate_live(world, hours=2, end=end, seed=world.config.seed)
        run = audit("security", overrides={"SECURITY_CHECKS": ["rating_poisoning", "rating_velocity"]})
        found = findings_of(run)
        record("security.rating_poisoning", [f for f in found if f["check"] == "security.rating_poisoning"])
        record("security.rating_velocity", [f for f in found if f["check"] == "security.rating_velocity"])
        record("security.rating_velocity (alone)", velocity_alone(end))
        record("fairness.model", findings_of(audit("fairness", model_version=train())))
        return out

    world = World.build(WorldConfig(seed=seed, viewers=args.viewers,
                                    movies=1000 if kind == "clean_large" else args.movies))
    if kind == "scraping":
        record("security.scraping", scraping_world(world, end=end, seed=seed, folder=args.folder))
        return out
    last_day = timedelta(days=days - 1)
    scenarios = {
        "clean": [],
        "clean_large": [],
        "bias_ratings": [PlantedBias(at=timedelta(0), group="gender:F", kind="ratings", strength=args.bias_strength)],
        "bias_timeouts": [PlantedBias(at=timedelta(0), group="gender:F", kind="timeouts", strength=0.3)],
        "drift_taste": [Drift(at=last_day, kind="taste", genre="Horror", strength=1.5)],
        "drift_audience": [Drift(at=last_day, kind="audience", group="age:<25", strength=4)],
        "shilling": [Shilling(at=timedelta(days=days - 0.5), accounts=50)],
    }[kind]
    monitored = kind in ("clean_large", "bias_timeouts", "drift_taste", "drift_audience")
    simulate(world, days=days, end=end, scenarios=scenarios, seed=seed,
             history_days=MONITOR_HISTORY_DAYS if monitored else 0.0)

    if kind in ("clean", "shilling"):
        run = audit("security", overrides={"SECURITY_CHECKS": ["rating_poisoning", "rating_velocity"]})
        found = findings_of(run)
        record("security.rating_poisoning", [f for f in found if f["check"] == "security.rating_poisoning"])
        record("security.rating_velocity", [f for f in found if f["check"] == "security.rating_velocity"])
        record("security.rating_velocity (alone)", velocity_alone(end))
    if kind in ("clean", "bias_ratings"):
        version = train()
        record("fairness.model", findings_of(audit("fairness", model_version=version)))
    if kind in ("clean", "bias_timeouts"):  # before a production version exists: the live level alone
        record("fairness.live", findings_of(audit("fairness", window_hours=24)))
    if monitored:
        # production: trained on every day but the last (the drift reference window)
        make_production_version(window_start=end - timedelta(days=days), window_end=end - timedelta(days=1))
        for row in monitors(end):
            record(row["check"], [row])
    return out


def caught(check: str, kind: str, rows: list[dict]) -> bool:
    """Did ``check`` raise a gate-blocking finding about what the scenario planted?"""
    blocking = [r for r in rows if r["blocking"]]
    if kind == "shilling":
        return any("movie=" in r["fingerprint"] for r in blocking)
    if kind == "scraping":
        return any(f"client={SCRAPER_CLIENT}" in r["fingerprint"] for r in blocking)
    if kind in ("bias_ratings", "bias_timeouts") and check.startswith("fairness"):
        return any(":gender=F:" in r["fingerprint"] for r in blocking)
    if kind == "drift_taste":
        return any("watch_genre" in r["evidence"].get("drifted", []) or "rating" in r["evidence"].get("drifted", [])
                   for r in blocking)
    return bool(blocking)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="clean worlds (and every other world unless --scenario-seeds)")
    parser.add_argument("--scenario-seeds", type=int, default=10, help="worlds per scenario and clean_large (0: --seeds)")
    parser.add_argument("--quick", action="store_true", help="5 seeds, 200 viewers, no demo world")
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--movies", type=int, default=300)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--bias-strength", type=float, default=3.0, help="stars taken off (bias_ratings)")
    parser.add_argument("--demo-seeds", type=int, default=2, help="make-run worlds (500 viewers, 7 days + 2 h live)")
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--verbose", action="store_true", help="print every finding raised")
    args = parser.parse_args()
    worlds = [w for w in args.worlds.split(",") if w]
    unknown = sorted(set(worlds) - set(WORLDS))
    if unknown:
        parser.error(f"--worlds: unknown {unknown}; known: {', '.join(WORLDS)}")
    if args.quick:
        args.seeds, args.scenario_seeds, args.viewers = min(args.seeds, 5), min(args.scenario_seeds or 5, 5), 200
        worlds = [w for w in worlds if w != "demo"]

    folder = Path(tempfile.mkdtemp(prefix="usher-calibration-"))
    started = time.perf_counter()
    template = setup(folder)
    args.folder = folder
    print(f"calibration: {args.seeds} clean seeds, {args.scenario_seeds or args.seeds} per other world; "
          f"{args.viewers} viewers, {args.movies} movies, "
          f"{args.days:g} days (demo: {args.demo_seeds} seeds, 500 viewers, 300 movies, 7 days + 2 h live)")
    results: dict[str, list[dict[str, list[dict]]]] = defaultdict(list)
    timings: dict[str, float] = {}
    for kind in worlds:
        t0 = time.perf_counter()
        n = args.demo_seeds if kind == "demo" else args.seeds if kind == "clean" else args.scenario_seeds or args.seeds
        for seed in range(1, n + 1):
            fresh_database(folder, template)
            outcome = run_world(kind, seed, args)
            results[kind].append(outcome)
            if args.verbose:
                for check, rows in outcome.items():
                    for r in rows:
                        print(f"  {kind} seed {seed}: {check}: {'BLOCKS' if r['blocking'] else 'info'} {r['title']}")
        timings[kind] = time.perf_counter() - t0
        print(f"  {kind}: {len(results[kind])} worlds in {timings[kind]:.0f} s", flush=True)
        if args.verbose:
            print_table(results)

    print_table(results)
    print(f"total {time.perf_counter() - started:.0f} s; {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    shutil.rmtree(folder, ignore_errors=True)


def print_table(results) -> None:
    print()
    clean_kinds = [k for k in ("clean", "clean_large", "demo") if k in results]
    header = "| check | " + " | ".join(f"{k}: blocking / any" for k in clean_kinds) + " | detection (blocking, on target) |"
    print(header)
    print("|" + "---|" * (2 + len(clean_kinds)))
    for check, targets in TARGETS.items():
        cells = []
        for k in clean_kinds:
            seeds = results[k]
            ran = [s for s in seeds if check in s or _ran(check, k)]
            if not ran:
                cells.append("—")
                continue
            blocking = sum(any(r["blocking"] for r in s.get(check, [])) for s in ran)
            anyf = sum(bool(s.get(check)) for s in ran)
            cells.append(f"{blocking / len(ran):.0%} / {anyf / len(ran):.0%} (n={len(ran)})")
        detections = []
        for target in targets:
            if target not in results:
                continue
            seeds = results[target]
            hits = sum(caught(check, target, s.get(check, [])) for s in seeds)
            detections.append(f"{target} {hits / len(seeds):.0%} ({hits}/{len(seeds)})")
            if target == "scraping":  # the platform's own client in the same worlds: its false positives
                platform = sum(any(f"client={PLATFORM_CLIENT}" in r["fingerprint"] for r in s.get(check, []))
                               for s in seeds)
                detections.append(f"the platform's client flagged {platform}/{len(seeds)}")
        print(f"| {check} | " + " | ".join(cells) + f" | {'; '.join(detections) or '—'} |")
    print()


def _ran(check: str, kind: str) -> bool:
    """Whether ``kind`` worlds run ``check`` (so a world with no finding counts as a clean seed)."""
    if check == "security.scraping":  # judged in its own worlds (the platform's client is their clean side)
        return False
    if kind == "demo":
        return check.startswith("security.rating") or check == "fairness.model"
    if kind == "clean_large":
        return check.startswith("monitor:")
    return not check.startswith("monitor:")  # clean: the audits (its monitors ran on 300 movies: see the docs)


if __name__ == "__main__":
    main()
