"""Writes of the audits app: runs (create, execute, fail stuck) and findings (transitions, waivers, sign-off)."""

from audits.services.findings import (  # noqa: F401
    RESOLUTION_REVIEW_KIND,
    SIGNOFF_REVIEW_KIND,
    WAIVER_REVIEW_KIND,
    audit_run_signoff_on_decision,
    audit_run_signoff_request,
    finding_acknowledge,
    finding_resolution_on_decision,
    finding_resolution_propose,
    finding_resolve,
    finding_waiver_on_decision,
    finding_waiver_request,
    finding_waivers_expire,
    findings_resolve_not_found,
    resolution_needs_review,
)
from audits.services.runs import (  # noqa: F401
    audit_run_create,
    audit_run_execute,
    audit_run_start_for_release,
    audit_runs_fail_stuck,
    effective_config,
    fairness_audit_create,
    security_audit_create,
)
