"""The release gate's checks: each returns an outcome, a one-line summary and its evidence.

The checks read other apps through ``recommender.releases.integrations`` (training's metrics,
the audits app's fairness and security runs, the registry's artifact verification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

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


def check_offline_metrics(*, version: ModelVersion, baseline: ModelVersion | None) -> CheckResult:
    """Each configured metric of the candidate against production's, within its tolerance."""
    rules: dict = release_setting("GATE_METRICS")
    name = ReleaseGateCheck.Name.OFFLINE_METRICS
    if baseline is None:
        return CheckResult(name, Outcome.PASSED, "no version in production: nothing to compare against",
                           {"candidate": {m: metric_value(version.metrics, m) for m in rules}, "production": None})
    rows, failures, compared = [], [], 0
    for metric, rule in rules.items():
        cand = metric_value(version.metrics or {}, metric)
        prod = metric_value(baseline.metrics or {}, metric)
        tolerance = float(rule.get("tolerance", 0.0))
        better = rule.get("better", "higher")
        row = {"metric": metric, "candidate": cand, "production": prod, "better": better, "tolerance": tolerance}
        if cand is None or prod is None:
            row["result"] = "missing"
            if rule.get("required"):
                failures.append(f"{metric} missing")
                row["result"] = "failed"
        else:
            compared += 1
            delta = cand - prod
            row["delta"] = delta
            worse_by = -delta if better == "higher" else delta
            row["result"] = "failed" if worse_by > tolerance else "passed"
            if row["result"] == "failed":
                failures.append(f"{metric} {cand:.4f} vs {prod:.4f} (worse by {worse_by:.4f} > {tolerance})")
        rows.append(row)
    evidence = {"production_version": baseline.pk, "metrics": rows}
    if failures:
        return CheckResult(name, Outcome.FAILED, "; ".join(failures)[:500], evidence)
    if compared == 0:
        return CheckResult(name, Outcome.FAILED, "no configured metric is present on both versions", evidence)
    return CheckResult(name, Outcome.PASSED, f"{compared} metrics within tolerance of production", evidence)


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
