"""The release gate's checks: each returns an outcome, a one-line summary and its evidence.

The checks read other apps through ``releases.integrations`` (training's metrics,
the audits app's fairness and security runs, the registry's artifact verification).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from recommender.models import ModelVersion
from recommender.training.comparison import measured_metric
from releases import integrations
from releases.conf import release_setting
from releases.models import ReleaseGateCheck

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


def _measured(metric: str) -> tuple[str, int] | None:
    """(short name, k) of a metric re-measured on the common set, else None (training's parser)."""
    return measured_metric(metric)


def evaluation_set(*, version: ModelVersion, baseline: ModelVersion) -> dict:
    """The one evaluation set both versions are scored on (training's ``comparison.evaluation_set``,
    shared with scheduled retraining), at most ``GATE_MAX_VIEWERS`` viewers sampled with ``GATE_SEED``.
    Its ``description`` (snapshot, rows, excluded rows and why) goes into the evidence."""
    return integrations.offline_evaluation_set(version=version, baseline=baseline,
                                               max_viewers=int(release_setting("GATE_MAX_VIEWERS")),
                                               seed=int(release_setting("GATE_SEED")))


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
    compared = integrations.offline_compare(
        common=common, metrics=metrics, resamples=int(release_setting("GATE_BOOTSTRAP_RESAMPLES")),
        seed=int(release_setting("GATE_SEED")), confidence=float(release_setting("GATE_CONFIDENCE")))
    rows = []
    for metric in metrics:
        rule = rules[metric]
        figures = compared["metrics"][metric]
        row = {"metric": metric, "method": "paired", "candidate": figures["candidate"],
               "production": figures["production"], "difference": figures["difference"],
               "interval": figures["interval"], "better": rule.get("better", "higher"),
               "tolerance": float(rule.get("tolerance", 0.0)), "viewers": figures["viewers"]}
        _row_verdict(row, rule)
        rows.append(row)
    return rows, compared["scored"]


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
    measured = [m for m in rules if _measured(m)]
    stored_only = [m for m in rules if not _measured(m)]
    evidence: dict[str, Any] = {"production_version": baseline.pk, "candidate_version": version.pk}
    common = None
    if measured:
        try:
            common = evaluation_set(version=version, baseline=baseline)
        except (LookupError, OSError, ValueError, KeyError) as exc:  # NoCommonSet is a LookupError
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
