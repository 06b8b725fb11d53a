"""Experiment power with the viewer as the unit: is "no difference at the planned sample size" said with
the planned power? (statistics only, no database; a few seconds per row)

    python benchmarks/experiment_power.py [--replicates 2000] [--write]

For each world (viewers' heterogeneity = Beta concentration, mean lists per viewer), a pilot A/A
experiment measures the design effect and lists per viewer the way the experiment analysis does;
``stats.sample_size_viewers`` plans the viewers per arm from them; then ``--replicates``
viewer-randomised experiments with a true effect equal to the MDE run at that many viewers per arm
and are analysed once with the viewer-level z-test (the power the plan promises), and with the
mSPRT at the same single look. The old plan (independent-trials lists ÷ lists per viewer) is run
through the same honest test for comparison. ``--write`` replaces the section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder

HEADING = "## Experiment power: the sample size in viewers"
OUT: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    OUT.append(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--pilot-viewers", type=int, default=2000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from releases import stats

    say(f"Machine: {machine()}. Run: `python benchmarks/experiment_power.py --replicates {args.replicates}`.")
    say()
    say(f"Baseline 0.20, MDE +0.03 (the true effect planted), α 0.05, nominal power 0.80. Per row: a pilot A/A "
        f"experiment of {args.pilot_viewers:,} viewers per arm measures the design effect (deff) and lists per "
        f"viewer; the plan is ⌈n_independent × deff ÷ lists per viewer⌉ viewers per arm; {args.replicates:,} "
        "experiments then run at the planned viewers (viewers with their own propensity, Beta with mean 0.20 and "
        "the given concentration; lists per viewer 1 + Poisson(Exponential), heavy-tailed as real activity is).")
    say()
    say("| concentration | lists/viewer | pilot deff | planned viewers/arm | predicted power | **empirical power "
        "(z, viewers)** | 95% interval | mSPRT at the same look | old plan (lists) viewers/arm | its power | seconds |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (concentration, per_viewer) in enumerate([(1000.0, 10.0), (20.0, 10.0), (4.0, 10.0), (4.0, 3.0),
                                                     (1.5, 10.0)]):
        started = time.perf_counter()
        sim = stats.simulate_power_viewers(replicates=args.replicates, rate=0.2, effect=0.03,
                                           concentration=concentration, lists_per_viewer=per_viewer,
                                           pilot_viewers=args.pilot_viewers, seed=100 + i)
        low, high = sim.viewer_plan_power_ci
        say(f"| {concentration:g} | {sim.pilot_lists_per_viewer:.1f} | {sim.pilot_design_effect:.2f} | "
            f"{sim.plan['viewers']:,} | {sim.predicted_power:.3f} | **{sim.viewer_plan_power:.1%}** | "
            f"{low:.1%}–{high:.1%} | {sim.viewer_plan_msprt_power:.1%} | {sim.list_plan_viewers:,} | "
            f"{sim.list_plan_power:.1%} | {time.perf_counter() - started:.1f} |")
    say()
    if args.write:
        from _report import docs_section_write

        docs_section_write(HEADING, "\n".join(OUT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
