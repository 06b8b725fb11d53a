"""Fairness audit, model level: every configured metric judged — false findings in clean worlds and
detection of a planted bias, per metric (real aequitas, no database; about a second per world).

    python benchmarks/fairness_metrics.py [--worlds 20] [--viewers 900]

Each world: viewers with gender (65% M), age band and one of 8 occupations, 15 test ratings each
(1–5 uniformly); a recommender that finds 60% of each viewer's liked movies and 10% of the others.
In a biased world it finds only ``--biased-share`` (15%) of women's liked movies. The audit runs
with the default band (0.8–1.25), alpha 0.01 and minimum group sizes, judging every aequitas
metric it knows. Prints per metric: the share of clean worlds with a finding for it (any attribute,
any group) and the share of biased worlds with a finding for gender=F.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder

METRICS = ["tpr", "fnr", "precision", "fdr", "pprev", "fpr", "tnr", "npv", "for"]


def world(seed: int, viewers_n: int, biased: bool, biased_share: float):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    viewers = pd.DataFrame({
        "gender": rng.choice(["M", "F"], viewers_n, p=[0.65, 0.35]),
        "age_band": rng.choice(["18-24", "25-34", "35-44", "45-54"], viewers_n),
        "occupation": rng.choice([f"occ{i}" for i in range(8)], viewers_n),
    }, index=pd.Index(np.arange(1, viewers_n + 1), name="viewer"))
    rows = [(int(v), f"m{m}", int(rng.integers(1, 6))) for v in viewers.index for m in rng.choice(400, 15, replace=False)]
    test = pd.DataFrame(rows, columns=["viewer", "movie", "rating"])
    liked = test[test["rating"] >= 4].groupby("viewer")["movie"].agg(list)
    disliked = test[test["rating"] < 4].groupby("viewer")["movie"].agg(list)
    hits = np.random.default_rng(seed + 1)

    def recommend(viewer: int) -> list[str]:
        share = biased_share if biased and viewers.loc[viewer, "gender"] == "F" else 0.6
        picks = [m for m in liked.get(viewer, []) if hits.random() < share]
        picks += [m for m in disliked.get(viewer, []) if hits.random() < 0.1]
        return (picks + [f"filler{i}" for i in range(20)])[:20]

    return test, viewers, recommend


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=900)
    parser.add_argument("--biased-share", type=float, default=0.15)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from audits.checks.fairness_model import model_fairness
    from audits.conf import DEFAULTS

    config = {**DEFAULTS, "FAIRNESS_METRICS": METRICS}
    clean = {m: 0 for m in METRICS}
    found = {m: 0 for m in METRICS}
    wrong_group = 0
    started = time.perf_counter()
    for i in range(args.worlds):
        for biased in (False, True):
            test, viewers, recommend = world(1000 + i, args.viewers, biased, args.biased_share)
            outcome = model_fairness(test=test, attributes=viewers, recommend=recommend, predict=None, config=config,
                                     subject="v", target_label="v")
            metrics = {f.evidence["metric"] for f in outcome.findings}
            for m in metrics:
                (found if biased else clean)[m] += 1
            if biased:
                wrong_group += any(f.evidence["attribute"] != "gender" for f in outcome.findings)
    print(f"Machine: {machine()}. Run: `python benchmarks/fairness_metrics.py --worlds {args.worlds}` "
          f"({time.perf_counter() - started:.0f} s).")
    print()
    print(f"{args.worlds} clean and {args.worlds} biased worlds (women's liked movies found at "
          f"{args.biased_share:.0%} instead of 60%), {args.viewers} viewers each; band 0.8–1.25, alpha 0.01.")
    print()
    print("| metric | clean worlds with a finding for it | biased worlds with a finding for it (gender=F) |")
    print("|---|---|---|")
    for m in METRICS:
        print(f"| {m} | {clean[m]}/{args.worlds} | {found[m]}/{args.worlds} |")
    print()
    print(f"Biased worlds with a finding on another attribute: {wrong_group}/{args.worlds}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
