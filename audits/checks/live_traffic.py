"""Live traffic: every version that serves viewers came through an approved promotion.

A deployment that already served an unreviewed version when the one door to live traffic arrived
(or had one put there behind the services' back) keeps serving; this check makes it a finding until
the version goes through a promotion request or production is rolled back to a reviewed version.
Only a run of the live system judges it: a release gate's audit of a candidate does not, so the
promotion that repairs the deployment is never blocked by it.
"""

from __future__ import annotations

from typing import Any

from audits.checks.base import CheckOutcome, FindingDraft


def deployment_review(*, unreviewed: list[dict[str, Any]], live: bool) -> CheckOutcome:
    """``unreviewed``: serving's ``deployment_unreviewed()`` rows (role, version, label, missing)."""
    outcome = CheckOutcome(name="security.deployment_review")
    outcome.results["unreviewed"] = unreviewed
    outcome.results["judged"] = live
    if not live:
        outcome.summary = "not judged: an audit of a candidate version, not of the live system"
        return outcome
    for row in unreviewed:
        outcome.findings.append(FindingDraft(
            check="security.deployment_review", subject=f"{row['role']}:{row['version']}", severity="high",
            title=f"Unreviewed version serving viewers: {row['role']} is {row['label']} ({row['missing']})",
            evidence={**row, "rule": "a version serves viewers only through an approved promotion "
                                     "(release gate passed, approved by a reviewer who is not the requester)"},
            model_version_id=row["version"],
        ))
    outcome.summary = (f"{len(unreviewed)} unreviewed version(s) serving viewers" if unreviewed
                       else "every version serving viewers has an approved promotion (or is the bootstrap model)")
    return outcome
