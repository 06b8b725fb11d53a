"""The release gate's checks: each returns an outcome, a one-line summary and its evidence.

The checks read other apps through ``recommender.releases.integrations`` (training's metrics,
the audits app's fairness and security runs, the registry's artifact verification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def _judge_audit(*, name: str, what: str, audit: dict | None) -> CheckResult:
    if audit is None:
        return CheckResult(name, Outcome.ERROR, f"no {what} could be run", {})
    fail_levels = set(release_setting("GATE_FAIL_SEVERITIES"))
    if audit.get("status") != "succeeded":
        return CheckResult(name, Outcome.ERROR, f"{what} #{audit.get('id')} {audit.get('status')}: {audit.get('error', '')}"[:500], audit)
    blocking = [f for f in audit.get("findings", []) if f["severity"] in fail_levels]
    open_ = [f for f in blocking if f["status"] in ("open", "acknowledged")]
    waived = [f for f in blocking if f["status"] == "waived"]
    if open_:
        titles = ", ".join(f"#{f['id']} {f['title']}" for f in open_[:3])
        return CheckResult(name, Outcome.FAILED, f"{what} #{audit['id']}: {len(open_)} blocking finding(s): {titles}"[:500], audit)
    if waived:
        return CheckResult(name, Outcome.WAIVED, f"{what} #{audit['id']}: {len(waived)} failing finding(s), all waived", audit)
    if audit.get("passed") is False:
        return CheckResult(name, Outcome.FAILED, f"{what} #{audit['id']} did not pass", audit)
    return CheckResult(name, Outcome.PASSED, f"{what} #{audit['id']} passed", audit)


def check_fairness(*, version: ModelVersion, system: str) -> CheckResult:
    """The latest fairness audit of this version (one is run now when there is none)."""
    audit = integrations.fairness_audit_latest(version=version)
    if audit is None or audit.get("status") in ("failed",):
        audit = integrations.fairness_audit_run(version=version, system=system)
    return _judge_audit(name=ReleaseGateCheck.Name.FAIRNESS, what="fairness audit", audit=audit)


def check_security(*, system: str) -> CheckResult:
    """The latest security audit, if recent enough (else one is run now)."""
    max_age = release_setting("GATE_SECURITY_MAX_AGE_HOURS")
    audit = integrations.security_audit_latest(max_age_hours=max_age)
    if audit is None:
        audit = integrations.security_audit_run(system=system)
    return _judge_audit(name=ReleaseGateCheck.Name.SECURITY, what="security audit", audit=audit)


def check_artifact(*, version: ModelVersion) -> CheckResult:
    """Re-hash the stored artifact and compare with the sha256 recorded at registration."""
    ok, evidence = integrations.artifact_verify(version=version)
    name = ReleaseGateCheck.Name.ARTIFACT
    if ok:
        return CheckResult(name, Outcome.PASSED, f"sha256 {version.artifact_sha256[:12]}… verified", evidence)
    return CheckResult(name, Outcome.FAILED, f"artifact integrity: {evidence.get('error', 'mismatch')}"[:500], evidence)
