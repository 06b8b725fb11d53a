"""The release gate (releases.integrations) drives the audits through their services."""

from __future__ import annotations

import pytest

from audits.models import AuditRun
from recommender.tests.factories_training import VersionFactory

pytestmark = pytest.mark.django_db


def test_the_gate_runs_and_reads_security_and_fairness_audits():
    from releases import integrations

    version = VersionFactory()  # no artifact on disk
    assert integrations.audit_verdicts(version=version)["fairness"]["run"] is None

    security = integrations.audit_run_now(kind="security", version=version, system="releases.gate")
    assert security["status"] == "succeeded"
    verdicts = integrations.audit_verdicts(version=version)
    # the version's artifact is missing: the security audit of this version has a blocking finding
    assert verdicts["security"]["run"] == security["id"] and verdicts["security"]["ok"] is False
    assert any("Artifact integrity" in f["title"] for f in verdicts["security"]["blocking_findings"])

    fairness = integrations.audit_run_now(kind="fairness", version=version, system="releases.gate")
    assert fairness["status"] == "failed" and fairness["error"]
    run = AuditRun.objects.get(pk=fairness["id"])
    assert run.model_version == version and run.trigger == "release_gate"
    assert integrations.audit_verdicts(version=version)["fairness"]["run"] is None  # only succeeded runs count
