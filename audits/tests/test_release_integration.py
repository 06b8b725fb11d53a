"""The release gate (recommender.releases.integrations) drives the audits through their services."""

from __future__ import annotations

import pytest

from audits.models import AuditRun
from recommender.tests.factories_training import VersionFactory

pytestmark = pytest.mark.django_db


def test_the_gate_runs_and_reads_security_and_fairness_audits():
    from recommender.releases import integrations

    security = integrations.security_audit_run(system="releases.gate")
    assert security["status"] == "succeeded" and security["trigger"] == "release_gate"
    assert integrations.security_audit_latest(max_age_hours=1)["id"] == security["id"]

    version = VersionFactory()  # no artifact on disk: the fairness audit fails, and says why
    fairness = integrations.fairness_audit_run(version=version, system="releases.gate")
    assert fairness["status"] == "failed" and fairness["error"]
    run = AuditRun.objects.get(pk=fairness["id"])
    assert run.model_version == version and run.trigger == "release_gate"
    assert integrations.fairness_audit_latest(version=version) is None  # only succeeded runs count
