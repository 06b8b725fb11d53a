"""Releases and experiments benchmark: the statistics, and the release machinery in a simulated world.

    python benchmarks/experiments.py [--quick] [--write] [--replicates 10000] [--viewers 600] [--movies 300]

1. **A/A with hourly peeking** (pure statistics, no database): repeated A/A experiments looked at
   every hour for a week; the false-positive rate of the always-valid sequential test (mSPRT)
   against the naive "peek at the z-test every hour" habit and the fixed-horizon z-test.
2. **Simulated world** (the catalog's world simulator; serving's runtime answers in-process; the
   prediction log and the ingested events carry simulated time): history → SVD and popularity
   trained → popularity in production, then
   - an A/B test of SVD against popularity, analysed hourly, until the sequential test decides;
   - A/A experiments (the same version in both arms) in the world, for the false-positive check;
   - SVD's full release path: request → gate → the requester's own approval refused → a second
     person approves → canary 5 → 25 → 50 → 100 → production;
   - a deliberately broken model (random item factors) through the same path: its canary is rolled
     back by the step check, with the decision and its numbers in the activity log;
   - shadow agreement of a candidate with production;
   - production rolled back in one action while requests keep being answered.

With DATABASE_URL=postgres://… it creates and drops its own database (usher_bench_releases);
otherwise it uses a temporary SQLite file. ``--write`` replaces the "Releases and experiments"
section of docs/benchmarks.md with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder

OUT: list[str] = []



def say(line: str = "") -> None:
    print(line, flush=True)
    OUT.append(line)


# --- 1. statistics ----------------------------------------------------------------------------------


def bench_aa(replicates: int) -> None:
    from releases import stats

    say("### A/A experiments with hourly peeking (statistics only)")
    say()
    say(f"{replicates:,} A/A experiments per row; both arms have the same success rate; the analysis is looked at "
        "after every hour for a week (168 looks); α = 0.05; mSPRT mixture τ = 0.03; no decision below 100 lists "
        "per arm.")
    say()
    say("| success rate | lists/arm/hour | sequential (mSPRT) false positives | 95% upper bound | "
        "naive z-test peeked hourly | fixed-horizon z-test (one look) | seconds |")
    say("|---|---|---|---|---|---|---|")
    for rate, per_look in [(0.05, 100), (0.2, 20), (0.2, 50), (0.2, 200), (0.4, 50)]:
        started = time.perf_counter()
        sim = stats.simulate_aa(replicates=replicates, looks=168, trials_per_look=per_look, rate=rate, alpha=0.05,
                                tau=0.03, seed=int(rate * 1000) + per_look)
        say(f"| {rate} | {per_look} | **{sim.sequential_false_positive_rate:.2%}** | {sim.sequential_ci_high:.2%} | "
            f"{sim.naive_peeking_false_positive_rate:.1%} | {sim.fixed_horizon_false_positive_rate:.1%} | "
            f"{time.perf_counter() - started:.2f} |")
    say()
    say(f"**Randomised by viewer.** Arms are assigned by viewer and a viewer gets many lists, so the lists are not "
        f"independent. {replicates // 5:,} A/A experiments per row, 300 viewers per arm, each with their own "
        "propensity to follow a list (Beta with mean 0.2; concentration a + b: smaller = viewers differ more) and their "
        "own activity; looked at hourly for a week. The same tests with lists as the units (binomial variance) "
        "and with viewers as the units (delta method, what Usher uses):")
    say()
    say("| concentration | lists/viewer/hour | lists per viewer (week) | design effect | mSPRT, lists as units | "
        "mSPRT, viewers as units | 95% upper bound | fixed z, lists | fixed z, viewers | seconds |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for concentration, per_look in [(1000.0, 0.1), (20.0, 0.1), (4.0, 0.1), (4.0, 0.02), (1.5, 0.1)]:
        started = time.perf_counter()
        sim = stats.simulate_aa_viewers(replicates=replicates // 5, looks=168, viewers=300,
                                        lists_per_viewer_per_look=per_look, rate=0.2, concentration=concentration,
                                        seed=int(concentration * 10 + per_look * 100))
        say(f"| {concentration:g} | {per_look} | {sim.lists_per_viewer:.1f} | {sim.mean_design_effect:.2f} | "
            f"{sim.list_level_sequential_false_positive_rate:.1%} | "
            f"**{sim.viewer_level_sequential_false_positive_rate:.2%}** | {sim.viewer_level_sequential_ci_high:.2%} | "
            f"{sim.list_level_fixed_horizon_false_positive_rate:.1%} | "
            f"{sim.viewer_level_fixed_horizon_false_positive_rate:.1%} | {time.perf_counter() - started:.1f} |")
    say()
    n = stats.sample_size_two_proportions(baseline=0.2, mde=0.03)
    say(f"Sample size check: baseline 0.20, effect +0.03, α 0.05, power 0.8 → {n:,} lists per arm "
        f"(textbook 10% → 12%: {stats.sample_size_two_proportions(baseline=0.1, mde=0.02):,}).")
    say()


# --- 2. the simulated world ---------------------------------------------------------------------------------


def setup_database() -> tuple[str, callable]:
    from _scratch import scratch_django

    scratch = scratch_django("releases", pg_name="usher_bench_releases", redis=True,
                             env={"CELERY_TASK_ALWAYS_EAGER": os.environ.get("CELERY_TASK_ALWAYS_EAGER", "1")})
    return scratch.kind, scratch.drop


def bench_world(args) -> None:
    from django.conf import settings

    from portal.models import ActivityLogEntry
    from releases import integrations, services
    from releases.tests.simulation import (
        BEHAVIOUR,
        SVD_PARAMS,
        WORLD,
        ReleaseSimulation,
        scenario_ab_test,
        scenario_canary,
        sim_users,
    )

    # The simulator's in-process client asks for every viewer: it is the platform, not a scraper.
    settings.AUDITS = {**(settings.AUDITS or {}), "TRUSTED_CLIENTS": ["simulation"]}
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {
        **settings.RECOMMENDER.get("RELEASES", {}), "CANARY_MIN_TRIALS": args.min_trials}}
    steps = [int(x) for x in args.canary_steps.split(",")]
    started = time.perf_counter()
    sim = ReleaseSimulation.create(viewers=args.viewers, movies=args.movies, seed=args.seed,
                                   visits_per_viewer_per_day=args.visits)
    sim.backfill(days=args.history_days)
    t_hist = time.perf_counter() - started
    started = time.perf_counter()
    popularity = sim.train("popularity")
    svd = sim.train("svd", hyperparameters=SVD_PARAMS)
    t_train = time.perf_counter() - started
    sim.bootstrap_production(popularity)
    say(f"World: {args.viewers} viewers × {args.movies} movies, seed {args.seed}, {args.visits:g} visits per viewer "
        f"per day, world knobs {WORLD}, behaviour {BEHAVIOUR} (releases/tests/simulation.py explains why); "
        f"{args.history_days:g} simulated days of history ({t_hist:.0f} s to simulate and ingest); popularity and SVD "
        f"{SVD_PARAMS} trained in {t_train:.0f} s (offline NDCG@20 {popularity.metrics.get('ndcg_at_20', 0):.3f} vs "
        f"{svd.metrics.get('ndcg_at_20', 0):.3f}). Online quality = a served list is followed by a watch of one of its "
        "movies within 30 minutes. Canary plan: "
        f"{' → '.join(f'{s}%' for s in steps)}, a check every {args.canary_interval:g} simulated hours, at least "
        f"{args.min_trials} lists per side at a step.")
    say()

    # A/B: SVD vs popularity.
    say("### A/B test: SVD against the popularity baseline (50/50)")
    say()
    started = time.perf_counter()
    # An arm serves viewers, so SVD needs an approved promotion (the one door to live traffic); its
    # gate and review are not what this benchmark measures, so the records are made as the tests do.
    from releases.tests.factories import approved_promotion

    approved_promotion(svd)
    ab = scenario_ab_test(sim, control=popularity, treatment=svd, hours=args.ab_hours, stop_when_significant=True)
    t_ab = time.perf_counter() - started
    fin = ab["final"]
    c, t = fin["arms"]["control"], fin["arms"]["treatment"]
    z, seq = fin["ztest"]["treatment"], fin["sequential"]["treatment"]
    say("| hour | control lists | control rate | SVD lists | SVD rate | always-valid p | decision |")
    say("|---|---|---|---|---|---|---|")
    for row in ab["hourly"]:
        say(f"| {row['hour']} | {row['control']['trials']} | {_f(row['control']['rate'])} | {row['treatment']['trials']} | "
            f"{_f(row['treatment']['rate'])} | {_p(row['p_sequential'])} | {row['decision']} |")
    say()
    say(f"Result after {ab['hours']} simulated hours ({t_ab:.0f} s): popularity {c['successes']}/{c['trials']} = "
        f"{_f(c['rate'])}, SVD {t['successes']}/{t['trials']} = {_f(t['rate'])}; difference {z['difference']:+.4f}, "
        f"95% CI [{z['ci_low']:+.4f}, {z['ci_high']:+.4f}], z = {z['z']:.2f}, p = {_p(z['p_value'])}; sequential "
        f"p = {_p(seq['p_value'])}, confidence sequence [{seq['cs_low']:+.4f}, {seq['cs_high']:+.4f}]; "
        f"SRM p = {fin['srm']['p_value']:.3f}; first significant at hour {ab['first_significant_hour']}; "
        f"decision **{ab['decision']}** — {ab['reason']}")
    say()

    # A/A in the world.
    say("### A/A experiments in the simulated world")
    say()
    false_pos, rows, effects = 0, [], []
    started = time.perf_counter()
    for i in range(args.aa_runs):
        aa = scenario_ab_test(sim, control=popularity, treatment=popularity, hours=args.aa_hours, name=f"aa-{i}")
        hit = aa["first_significant_hour"] is not None
        false_pos += hit
        f = aa["final"]["arms"]
        seq = aa["final"]["sequential"].get("treatment", {})
        effects.append(seq.get("design_effect") or 1.0)
        rows.append(f"{f['control']['trials']}/{f['treatment']['trials']} lists, "
                    f"p {_p(seq.get('p_value'))}{' (false positive)' if hit else ''}")
    say(f"{args.aa_runs} A/A experiments (popularity in both arms, 50/50, {args.aa_hours} simulated hours each, analysed "
        f"hourly, viewers as the units; mean design effect {sum(effects) / max(1, len(effects)):.2f}): "
        f"**{false_pos} false positive(s)** ({false_pos / max(1, args.aa_runs):.0%}; α = 0.05) "
        f"({time.perf_counter() - started:.0f} s). Final looks: " + "; ".join(rows) + ".")
    say()

    # SVD's release path.
    say("### Release path of SVD (gate → four eyes → canary)")
    say()
    started = time.perf_counter()
    good = scenario_canary(sim, candidate=svd, hours=args.canary_hours, waive_audit_findings=True, steps=steps,
                           interval_hours=args.canary_interval)
    _canary_report(good, time.perf_counter() - started)

    # A broken model.
    say("### Canary of a deliberately broken model (random item factors)")
    say()
    broken = sim.broken_copy(svd)
    started = time.perf_counter()
    bad = scenario_canary(sim, candidate=broken, hours=args.canary_hours, waive_audit_findings=True, steps=steps,
                          interval_hours=args.canary_interval)
    _canary_report(bad, time.perf_counter() - started)
    entry = ActivityLogEntry.objects.filter(action="release.rollout.rolled_back").order_by("-seq").first()
    if entry is not None:
        say(f"Activity log #{entry.seq} ({entry.actor_label}, `{entry.action}`): "
            f"`{json.dumps(entry.data['numbers'], default=str)[:600]}`")
        say()

    # Shadow.
    say("### Shadow agreement")
    say()
    users = sim_users()
    say(_shadow(sim, popularity, users))
    say()
    retrained = sim.train("svd", hyperparameters=SVD_PARAMS, seed=1)
    say(_shadow(sim, retrained, users) + " (the same algorithm retrained on newer data with another seed)")
    say()

    # Production rollback.
    say("### Production rollback in one action")
    say()
    state = integrations.deployment_state()
    before = state["production_version"]
    failed, empty, exhausted, by_version = 0, 0, 0, {}
    started = time.perf_counter()
    result = services.production_rollback(actor=users["operator"], reason="benchmark")
    rolled = time.perf_counter() - started
    for i, viewer in enumerate(sim.world.viewer_ids[:200]):
        if i == 100:
            sim.runtime.refresh_deployment(force=True)  # what each worker's poll does within seconds
        try:
            answer = sim.runtime.recommend(int(viewer), 20)
        except Exception:  # noqa: BLE001 - counted
            failed += 1
            continue
        if not answer.items:
            empty += 1
            # An empty list is a correct answer only when the viewer has seen the whole catalog.
            exhausted += len(set(answer.seen)) >= len(sim.world.movie_ids)
        label = answer.version.version_id if answer.version else "fallback"
        by_version[label] = by_version.get(label, 0) + 1
    say(f"Production version {before} → {result['to']} ({services.__name__}.production_rollback, {1000 * rolled:.0f} ms). "
        f"200 answers around the swap (the runtime picked the change up after 100): {failed} raised, {empty} empty "
        f"({exhausted} of them to viewers who have seen all {len(sim.world.movie_ids)} movies by now); answered by "
        f"version {by_version}.")
    say()


def _shadow(sim, candidate, users) -> str:
    from releases import services
    from releases.shadow_observer import recorder

    services.shadow_start(version=candidate, actor=users["operator"], reason="benchmark")
    sim.refresh()
    runner = sim.runtime.shadow
    for viewer in sim.world.viewer_ids[:300]:
        answer = sim.runtime.recommend(int(viewer), 20)
        runner.process(sim.runtime.state.shadow, int(viewer), 20, tuple(answer.items),
                       answer.version.version_id if answer.version else None, answer.seen)
    recorder.flush()
    report = services.shadow_report_create(version=candidate, actor=users["operator"])
    services.shadow_stop(actor=users["operator"], reason="benchmark done")
    if report is None:
        return "No mirrored requests were recorded."
    return (f"{candidate} ({candidate.algorithm}) in shadow of production ({report.production_version}) over "
            f"{report.requests} mirrored requests: mean overlap@20 {report.mean_overlap:.3f}, Kendall τ "
            f"{_f(report.mean_kendall_tau)}, Spearman ρ {_f(report.mean_spearman_rho)}")


def _canary_report(result: dict, seconds: float) -> None:
    for i, attempt in enumerate(result["gate_attempts"], 1):
        say(f"Gate attempt {i}: " + "; ".join(f"{name} **{v['outcome']}** ({v['summary']})" for name, v in attempt.items()))
        say()
    if result.get("waived_findings"):
        say(f"Blocking audit findings {result['waived_findings']} were waived (an operator asked with a justification, "
            "a reviewer approved in the inbox), then the gate ran again.")
        say()
    if result.get("self_approval"):
        say(f"The requester approving their own promotion: {result['self_approval']}")
        say()
    if "timeline" not in result:
        say(f"The gate stopped it ({result['gate_status']}).")
        say()
        return
    say("| after (simulated h) | outcome | share | canary | production | always-valid p | design effect | decided by |")
    say("|---|---|---|---|---|---|---|---|")
    for row in result["timeline"]:
        cn, pr = row["canary"], row["production"]
        deff = "—" if row.get("design_effect") is None else f"{row['design_effect']:.2f}"
        say(f"| {row['after_hours']} | {row['outcome']} | {row['share']} | {cn['successes']}/{cn['trials']} = "
            f"{_f(cn['rate'])} | {pr['successes']}/{pr['trials']} = {_f(pr['rate'])} | {_p(row['p_sequential'])} | "
            f"{deff} | {row['decided_by']} |")
    say()
    last = result["timeline"][-1]["reason"] if result["timeline"] else ""
    say(f"Final: rollout {result['state']} (last step decided by {result.get('final_decided_by')}), promotion "
        f"{result['promotion_status']}; {result['canary_lists']} lists were served by the canary out of "
        f"{result['requests_during_canary']} ({seconds:.0f} s). Last decision: {last}")
    say()


def _f(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def _p(value) -> str:
    if value is None:
        return "—"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def write_docs() -> None:
    from _report import docs_section_write

    docs_section_write("## Releases and experiments", "\n".join(OUT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller world and fewer replicates")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=1500)
    parser.add_argument("--movies", type=int, default=400)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--history-days", type=float, default=6)
    parser.add_argument("--visits", type=float, default=8.0, help="visits per viewer per day")
    parser.add_argument("--canary-steps", default="5,25,50,100")
    parser.add_argument("--canary-interval", type=float, default=2.0, help="simulated hours between checks")
    parser.add_argument("--ab-hours", type=int, default=24)
    parser.add_argument("--aa-runs", type=int, default=20)
    parser.add_argument("--aa-hours", type=int, default=12)
    parser.add_argument("--canary-hours", type=int, default=30)
    parser.add_argument("--min-trials", type=int, default=50)
    parser.add_argument("--skip-world", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.replicates, args.viewers, args.movies, args.history_days = 1000, 1000, 300, 6
        args.ab_hours, args.aa_runs, args.aa_hours, args.canary_hours = 24, 2, 6, 24
    say(f"Machine: {machine()}. Run: `python benchmarks/experiments.py{' --quick' if args.quick else ''}`.")
    say()
    started = time.perf_counter()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    bench_aa(args.replicates)
    if not args.skip_world:
        kind, cleanup = setup_database()
        say(f"Database: {kind}.")
        say()
        try:
            bench_world(args)
        finally:
            cleanup()
    say(f"Total time {time.perf_counter() - started:.0f} s.")
    if args.write:
        write_docs()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
