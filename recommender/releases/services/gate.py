"""The release gate's checks: each returns an outcome, a one-line summary and its evidence.

The checks read other apps through ``recommender.releases.integrations`` (training's metrics,
the audits app's fairness and security runs, the registry's artifact verification).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.utils import timezone

from recommender.models import ModelVersion, ReleaseGateCheck
from recommender.releases import integrations
from recommender.releases.conf import release_setting

Outcome = ReleaseGateCheck.Outcome


@dataclass
class CheckResult:
    name: str
    outcome: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


def metric_value(metrics: dict, key: str) -> float | None:
    """A metric by dotted path (``groups.gender.ndcg_at_20``) or, failing that, by its key anywhere
    in the nested metrics dict (``ndcg_at_20``). Non-numbers count as missing."""
    node: Any = metrics
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            node = None
            break
    if node is None and "." not in key:
        stack = [metrics]
        while stack and node is None:
            current = stack.pop()
            if isinstance(current, dict):
                if key in current and not isinstance(current[key], dict):
                    node = current[key]
                else:
                    stack.extend(v for v in current.values() if isinstance(v, dict))
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


_MEASURED = re.compile(r"^(rmse|mae)$|^(precision|recall|ndcg|map|hit_rate)_at_(\d+)$")
EVALUATION_RULE = (
    "the candidate's held-out part (its training run's split of its snapshot, rebuilt), without the rows "
    "production was fitted on and without viewers either model does not know; each model ranks the items a "
    "viewer did not rate outside this set"
)


class NoCommonSet(Exception):
    """No evaluation set both versions can be scored on without leakage (the reason is the message)."""


def _pairs(frame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["user_id"].to_numpy(), frame["movie_id"].astype(str).to_numpy()])


def split_words(split: dict) -> str:
    """A recorded split in words (``random 20 % split, seed 0``)."""
    kind = split.get("kind", "random")
    if kind in ("random", "temporal"):
        text = f"{kind} {round(100 * float(split.get('test_fraction', 0.2)))} % split"
    elif kind == "leave_last_n":
        text = f"last {split.get('n', 1)} ratings of each viewer held out"
    else:
        text = f"{split.get('folds', 5)}-fold split"
    return text + (f", seed {split['seed']}" if "seed" in split else "")


def evaluation_set(*, version: ModelVersion, baseline: ModelVersion) -> dict:
    """The one evaluation set both versions are scored on, the history each model ranks around, and
    its description (snapshot, rows, excluded rows and why) for the evidence.

    Rows: the candidate's held-out part, rebuilt from its snapshot and recorded split; less the rows
    (viewer, movie) that production was fitted on (its own run's training part: an older or the same
    snapshot overlaps); less the viewers one of the models does not know (neither could rank for them);
    at most ``GATE_MAX_VIEWERS`` viewers (a seeded sample). No model was fitted on any row left.
    """
    cand = integrations.version_evaluation_data(version=version)
    prod = integrations.version_evaluation_data(version=baseline)
    test = cand["test"]
    if test.empty:
        raise NoCommonSet(f"the candidate's run #{cand['run']} used a {split_words(cand['split'])}: its artifact "
                          f"was fitted on every rating of snapshot #{cand['snapshot']}, none is held out")
    cand_model = integrations.version_model(version=version)
    prod_model = integrations.version_model(version=baseline)
    excluded = []
    leaked = _pairs(test).isin(_pairs(prod["train"]))
    if leaked.any():
        excluded.append({"rows": int(leaked.sum()), "why": f"production was fitted on them (its run #{prod['run']}, "
                                                         f"snapshot #{prod['snapshot']}, {split_words(prod['split'])})"})
    rows = test[~leaked]
    viewers = rows["user_id"].unique()
    known = [u for u in viewers.tolist() if cand_model.knows_user(int(u)) and prod_model.knows_user(int(u))]
    unknown = rows["user_id"].isin(set(viewers.tolist()) - set(known))
    if unknown.any():
        excluded.append({"rows": int(unknown.sum()), "viewers": int(rows.loc[unknown, "user_id"].nunique()),
                         "why": "viewer unknown to one of the models (not in its training data)"})
    rows = rows[~unknown]
    limit = int(release_setting("GATE_MAX_VIEWERS"))
    if len(known) > limit:
        keep = set(np.random.default_rng(int(release_setting("GATE_SEED"))).choice(
            np.array(sorted(known)), size=limit, replace=False).tolist())
        beyond = ~rows["user_id"].isin(keep)
        excluded.append({"rows": int(beyond.sum()), "viewers": len(known) - limit,
                         "why": f"beyond the seeded sample of GATE_MAX_VIEWERS = {limit} viewers"})
        rows = rows[~beyond]
    # What each viewer rated outside the set (either snapshot): neither model may recommend it, so both
    # rank the same pool, and the rows production saw are no reward for memorising them.
    evaluated = set(rows["user_id"].unique().tolist())
    outside = pd.concat([cand["ratings"][["user_id", "movie_id"]], prod["ratings"][["user_id", "movie_id"]]])
    outside = outside[outside["user_id"].isin(evaluated)]
    outside = outside[~_pairs(outside).isin(_pairs(rows))]
    history = {int(u): set(g.astype(str).tolist()) for u, g in outside.groupby("user_id")["movie_id"]}
    description = {
        "rule": EVALUATION_RULE, "snapshot": cand["snapshot"], "training_run": cand["run"], "split": cand["split"],
        "split_words": split_words(cand["split"]),
        "held_out_rows": int(len(test)), "excluded": excluded, "rows": int(len(rows)), "viewers": len(evaluated),
        "production_snapshot": prod["snapshot"], "production_training_run": prod["run"],
    }
    fallback = float(cand["train"]["rating"].mean())
    return {"rows": rows, "history": history, "description": description, "fallback": fallback,
            "models": (cand_model, prod_model)}


def _row_verdict(row: dict, rule: dict) -> None:
    """``result`` of one metric row from its interval: failed only when the whole interval of
    "worse by" lies beyond the tolerance (the candidate is worse by more than it, beyond the noise)."""
    interval = row.get("interval")
    if row.get("candidate") is None or row.get("production") is None or interval is None:
        row["result"] = "failed" if rule.get("required") else "missing"
        return
    higher = row["better"] == "higher"
    row["worse_by"] = -row["difference"] if higher else row["difference"]
    row["worse_by_interval"] = [-interval[1], -interval[0]] if higher else list(interval)
    row["result"] = "failed" if row["worse_by_interval"][0] > row["tolerance"] else "passed"


def _compare_stored(version: ModelVersion, baseline: ModelVersion, rules: dict, metrics: list[str]) -> list[dict]:
    """Rows for metrics compared on the figures stored at training (each on its own test part)."""
    rows = []
    for metric in metrics:
        rule = rules[metric]
        cand = metric_value(version.metrics or {}, metric)
        prod = metric_value(baseline.metrics or {}, metric)
        row = {"metric": metric, "method": "stored", "candidate": cand, "production": prod,
               "better": rule.get("better", "higher"), "tolerance": float(rule.get("tolerance", 0.0))}
        if cand is None or prod is None:
            row["result"] = "failed" if rule.get("required") else "missing"
        else:
            row["difference"] = row["delta"] = cand - prod
            row["worse_by"] = -row["delta"] if row["better"] == "higher" else row["delta"]
            row["result"] = "failed" if row["worse_by"] > row["tolerance"] else "passed"
        rows.append(row)
    return rows


def _compare_paired(common: dict, rules: dict, metrics: list[str]) -> tuple[list[dict], dict]:
    """Rows for metrics re-measured on the common set, with paired bootstrap intervals over viewers."""
    by_k: dict[int, list[tuple[str, str]]] = {}
    for metric in metrics:
        match = _MEASURED.match(metric)
        k = int(match.group(3)) if match.group(3) else 20
        by_k.setdefault(k, []).append((metric, match.group(1) or match.group(2)))
    cand_model, prod_model = common["models"]
    found: dict[str, dict] = {}
    scored: dict = {}
    for k, names in by_k.items():
        compared = integrations.offline_compare(
            candidate=cand_model, production=prod_model, evaluation=common["rows"], history=common["history"], k=k,
            fallback=common["fallback"], metrics=[short for _, short in names],
            resamples=int(release_setting("GATE_BOOTSTRAP_RESAMPLES")), seed=int(release_setting("GATE_SEED")),
            confidence=float(release_setting("GATE_CONFIDENCE")))
        scored = compared["scored"]
        for metric, short in names:
            found[metric] = compared["metrics"][short]
    rows = []
    for metric in metrics:
        rule = rules[metric]
        figures = found[metric]
        ranking = not _MEASURED.match(metric).group(1)
        row = {"metric": metric, "method": "paired", "candidate": figures["candidate"],
               "production": figures["production"], "difference": figures["difference"],
               "interval": figures["interval"], "better": rule.get("better", "higher"),
               "tolerance": float(rule.get("tolerance", 0.0)),
               "viewers": scored["candidate"]["ranking_viewers" if ranking else "viewers"]}
        _row_verdict(row, rule)
        rows.append(row)
    return rows, scored


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def check_offline_metrics(*, version: ModelVersion, baseline: ModelVersion | None) -> CheckResult:
    """Each configured metric of the candidate against production's, measured now on one evaluation
    set (``evaluation_set``), within its tolerance beyond the noise (a paired bootstrap over viewers).

    A metric fails when the whole ``GATE_CONFIDENCE`` interval of how much worse the candidate is lies
    beyond its tolerance. When no common set can be built (a version without a training run or
    snapshot, a k-fold candidate) the figures stored at training are compared, and the summary says so.
    """
    rules: dict = release_setting("GATE_METRICS")
    name = ReleaseGateCheck.Name.OFFLINE_METRICS
    if baseline is None:
        return CheckResult(name, Outcome.PASSED, "no version in production: nothing to compare against",
                           {"candidate": {m: metric_value(version.metrics, m) for m in rules}, "production": None})
    started = time.perf_counter()
    measured = [m for m in rules if _MEASURED.match(m)]
    stored_only = [m for m in rules if not _MEASURED.match(m)]
    evidence: dict[str, Any] = {"production_version": baseline.pk, "candidate_version": version.pk}
    common = None
    if measured:
        try:
            common = evaluation_set(version=version, baseline=baseline)
        except (NoCommonSet, LookupError, OSError, ValueError, KeyError) as exc:
            evidence["not_like_with_like"] = f"no common evaluation set: {exc}"[:500]
    if common is not None:
        minimum = int(release_setting("GATE_MIN_VIEWERS"))
        evidence["evaluation_set"] = common["description"]
        described = common["description"]
        if described["viewers"] < minimum:
            evidence["seconds"] = time.perf_counter() - started
            left_out = "; ".join(f"{x['rows']} {x['why']}" for x in described["excluded"])
            return CheckResult(
                name, Outcome.ERROR,
                f"the common evaluation set has {described['viewers']} viewers (GATE_MIN_VIEWERS = {minimum}): "
                f"too few to tell the candidate from production (of {described['held_out_rows']} held-out "
                f"ratings, left out: {left_out or 'none'})"[:500], evidence)
        paired, scored = _compare_paired(common, rules, measured)
        evidence.update({"scored": scored, "method": "paired bootstrap over viewers",
                         "resamples": int(release_setting("GATE_BOOTSTRAP_RESAMPLES")),
                         "confidence": float(release_setting("GATE_CONFIDENCE")),
                         "seed": int(release_setting("GATE_SEED"))})
        rows = paired + _compare_stored(version, baseline, rules, stored_only)
    else:
        rows = _compare_stored(version, baseline, rules, list(rules))
    for row in rows:
        row["stored"] = {"candidate": metric_value(version.metrics or {}, row["metric"]),
                         "production": metric_value(baseline.metrics or {}, row["metric"])}
    evidence["metrics"] = rows
    evidence["seconds"] = time.perf_counter() - started
    failures = []
    for row in rows:
        if row["result"] != "failed":
            continue
        if row["candidate"] is None or row["production"] is None:
            failures.append(f"{row['metric']} missing")
        elif row.get("worse_by_interval"):
            low, high = row["worse_by_interval"]
            failures.append(f"{row['metric']} {_fmt(row['candidate'])} vs {_fmt(row['production'])}: worse by "
                            f"{_fmt(row['worse_by'])} (interval {_fmt(low)} to {_fmt(high)}) > {row['tolerance']}")
        else:
            failures.append(f"{row['metric']} {_fmt(row['candidate'])} vs {_fmt(row['production'])} "
                            f"(worse by {_fmt(row['worse_by'])} > {row['tolerance']})")
    compared = sum(1 for r in rows if r["result"] in ("passed", "failed") and r["candidate"] is not None
                   and r["production"] is not None)
    where = (f"on the same {common['description']['viewers']} viewers of snapshot #{common['description']['snapshot']}"
             if common is not None else "on the figures stored at training (not like with like: "
             f"{evidence.get('not_like_with_like', 'no re-measurable metric configured')})")
    if failures:
        return CheckResult(name, Outcome.FAILED, ("; ".join(failures) + f" — {where}")[:500], evidence)
    if compared == 0:
        return CheckResult(name, Outcome.FAILED, f"no configured metric is measured for both versions — {where}"[:500],
                           evidence)
    return CheckResult(name, Outcome.PASSED, f"{compared} metrics within tolerance of production {where}"[:500],
                       evidence)


def _judge(name: str, what: str, verdict: dict, ran: dict | None) -> CheckResult:
    """The outcome from the audits' own reading of the evidence (``audits.selectors.audit_release_gate``).

    The evidence JSON names the run read, the runs skipped and why (exploratory, other settings,
    another artifact), and for each finding at or above the review level why it blocks or not.
    """
    evidence = {**verdict, **({"ran_now": ran} if ran else {})}
    run = verdict.get("run")
    if run is None:
        error = (ran or {}).get("error") or verdict.get("reason") or "no audit"
        skipped = verdict.get("skipped_runs") or []
        ignored = ", ".join("#{} {}".format(r["run"], r["reason"]) for r in skipped[:2])
        note = f" (ignored: {ignored})" if skipped else ""
        return CheckResult(name, Outcome.ERROR, f"no configured {what} of this artifact: {error}{note}"[:500],
                           evidence)
    if not verdict.get("ok"):
        titles = ", ".join(f"#{f['id']} [{f['severity']}] {f['title']} ({f.get('why', f['status'])})"
                           for f in verdict.get("blocking_findings", [])[:3])
        return CheckResult(name, Outcome.FAILED, f"{what} #{run}: {titles}"[:500], evidence)
    if verdict.get("accepted_findings"):
        return CheckResult(name, Outcome.WAIVED, f"{what} #{run}: {verdict.get('reason')}"[:500], evidence)
    return CheckResult(name, Outcome.PASSED, f"{what} #{run} passed", evidence)


def check_fairness(*, version: ModelVersion, system: str) -> CheckResult:
    """The latest configured fairness audit of this version's exact artifact, judged now (one is
    run now, with the configured settings, when there is none; exploratory runs never count)."""
    verdict = integrations.audit_verdicts(version=version)["fairness"]
    ran = None
    if verdict.get("run") is None:
        ran = integrations.audit_run_now(kind="fairness", version=version, system=system)
        verdict = integrations.audit_verdicts(version=version)["fairness"]
    return _judge(ReleaseGateCheck.Name.FAIRNESS, "fairness audit", verdict, ran)


def check_security(*, version: ModelVersion, system: str) -> CheckResult:
    """The latest configured security audit of this version (every configured check, its exact
    artifact), judged now; one is run now when there is none recent enough. A run of a subset of
    the checks, or of the live deployment, is not evidence for a version."""
    max_age = timedelta(hours=float(release_setting("GATE_SECURITY_MAX_AGE_HOURS")))
    verdict = integrations.audit_verdicts(version=version)["security"]
    finished = verdict.get("finished_at")
    ran = None
    if verdict.get("run") is None or finished is None or finished < timezone.now() - max_age:
        ran = integrations.audit_run_now(kind="security", version=version, system=system)
        verdict = integrations.audit_verdicts(version=version)["security"]
    return _judge(ReleaseGateCheck.Name.SECURITY, "security audit", verdict, ran)


def check_artifact(*, version: ModelVersion) -> CheckResult:
    """Re-hash the stored artifact and compare with the sha256 recorded at registration."""
    ok, evidence = integrations.artifact_verify(version=version)
    name = ReleaseGateCheck.Name.ARTIFACT
    if ok:
        return CheckResult(name, Outcome.PASSED, f"sha256 {version.artifact_sha256[:12]}… verified", evidence)
    return CheckResult(name, Outcome.FAILED, f"artifact integrity: {evidence.get('error', 'mismatch')}"[:500], evidence)
