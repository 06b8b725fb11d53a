"""Gate evidence that cannot be chosen: the attacks of issue #14, tried against the real audit runner.

- A data scientist's fairness audit with a loosened band (overrides) is exploratory: the gate ignores
  it and reads (or runs) an audit with the configured settings, whose findings still fail it.
- A security audit of a subset of the checks is exploratory too.
- A run of another artifact (its recorded sha256 differs from the version's) is not evidence.
- Resolving a blocking finding by oneself only proposes it; the gate blocks until a reviewer who is
  not the proposer approves, and the proposer approving is refused.
- An expired waiver (status still active: beat has not run) blocks the gate.
- A configured re-run that no longer finds a problem resolves it; an exploratory one does not.

The fairness worlds are the simulator's (planted bias against one gender, a real Surprise SVD, the
real aequitas); the security ones use a real artifact written by the registry. Nothing is mocked.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from audits import services
from audits.errors import PermissionDenied
from audits.models import AuditFinding, AuditRun, FindingResolution
from audits.selectors import audit_release_gate
from conftest import make_user
from portal.models import ActivityLogEntry, ReviewRequest
from portal.selectors import review_request_inbox
from portal.services import review_request_decide
from recommender.models import ModelVersion
from releases.models import ReleaseGateCheck
from releases.services import gate
from releases.tests.factories import artifact_folder, version_with_artifact

Outcome = ReleaseGateCheck.Outcome
LOOSE_BAND = {"FAIRNESS_BAND": [0.01, 100], "FAIRNESS_ALPHA": None}
JUSTIFICATION = "The retrained model ships next week; the disparity is tracked in the fairness board."


def _run(kind: str, *, actor=None, **kwargs) -> AuditRun:
    run = services.audit_run_create(kind=kind, actor=actor, enqueue=False, system=None if actor else "test",
                                    **kwargs)
    run = services.audit_run_execute(run_id=run.pk, system="test")
    assert run.status == "succeeded", run.error
    return run


def _tamper(version: ModelVersion) -> tuple:
    path = artifact_folder(version) / "item_scores.npy"
    original = path.read_bytes()
    path.write_bytes(original[:-4] + b"\0\0\0\0")
    return path, original


# --- security: subsets, artifact hashes, re-runs (a real artifact, the real runner) ---------------------


@pytest.mark.django_db
def test_a_subset_of_security_checks_is_exploratory_and_the_gate_runs_the_full_set(users):
    version = version_with_artifact()
    _tamper(version)
    ds = users["data_scientist"]

    # Given a data scientist's security audit that leaves out the artifact check: it passes
    subset = _run("security", actor=ds, model_version=version, overrides={"SECURITY_CHECKS": [
        "deploy_config", "api_surface", "rating_poisoning", "rating_velocity", "scraping", "login_abuse"]})
    assert subset.exploratory is True and subset.passed is True
    assert "Exploratory run" in subset.report

    # When the gate checks security, it ignores that run, runs every configured check, and fails
    before = audit_release_gate(model_version=version)["security"]
    assert before["run"] is None and before["reason"].startswith("no configured security audit")
    assert before["skipped_runs"][0]["run"] == subset.pk and "exploratory" in before["skipped_runs"][0]["reason"]
    result = gate.check_security(version=version, system="releases.gate")

    assert result.outcome == Outcome.FAILED
    assert result.evidence["run"] != subset.pk and result.evidence["ran_now"]["id"] == result.evidence["run"]
    assert AuditRun.objects.get(pk=result.evidence["run"]).exploratory is False
    assert [s["run"] for s in result.evidence["skipped_runs"]] == [subset.pk]
    blocking = result.evidence["blocking_findings"]
    assert [f["severity"] for f in blocking] == ["critical"] and "Artifact integrity" in blocking[0]["title"]


@pytest.mark.django_db
def test_every_configured_check_in_another_order_is_not_exploratory(users):
    version = version_with_artifact()
    from audits.conf import audit_setting

    checks = list(reversed(audit_setting("SECURITY_CHECKS")))  # every configured check, in another order
    run = services.audit_run_create(kind="security", actor=users["reviewer"], model_version=version,
                                    overrides={"SECURITY_CHECKS": checks}, enqueue=False)
    assert run.exploratory is False and run.artifact_sha256 == version.artifact_sha256


@pytest.mark.django_db
def test_a_security_run_over_another_window_is_exploratory(users):
    version = version_with_artifact()
    with pytest.raises(PermissionDenied):
        services.audit_run_create(kind="security", actor=users["reviewer"], model_version=version,
                                  window_hours=0.01, enqueue=False)
    run = services.audit_run_create(kind="security", actor=users["operator"], model_version=version,
                                    window_hours=0.01, enqueue=False)
    assert run.exploratory is True and run.params["differs_from_configured"] == ["window_hours"]
    # a model-level fairness audit of a version has no window to choose
    run = services.audit_run_create(kind="fairness", actor=users["reviewer"], model_version=version,
                                    window_hours=1, enqueue=False)
    assert run.exploratory is False


@pytest.mark.django_db
def test_a_run_of_another_artifact_is_not_evidence(users):
    version = version_with_artifact()
    run = _run("security", actor=users["operator"], model_version=version)
    assert run.artifact_sha256 == version.artifact_sha256
    assert audit_release_gate(model_version=version)["security"]["run"] == run.pk

    # The version now records another artifact (re-registered): the run audited the old one
    ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256="f" * 64)
    version.refresh_from_db()

    verdict = audit_release_gate(model_version=version)["security"]
    assert verdict["run"] is None and verdict["ok"] is False
    assert verdict["skipped_runs"] == [{"run": run.pk, "trigger": "manual", "requested_by": "operator_user",
                                        "reason": f"audited artifact sha256 {run.artifact_sha256[:12]}…, "
                                                  f"the version's is {'f' * 12}…"}]


@pytest.mark.django_db
def test_a_configured_rerun_that_no_longer_finds_a_problem_resolves_it_and_an_exploratory_one_does_not(users):
    version = version_with_artifact()
    path, original = _tamper(version)
    first = _run("security", actor=users["operator"], model_version=version)
    finding = first.findings.get()
    assert finding.severity == "critical" and finding.model_version_id == version.pk

    # The artifact is restored from backup
    path.write_bytes(original)
    exploratory = _run("security", actor=users["data_scientist"], model_version=version,
                       overrides={"SECURITY_CHECKS": ["artifact_integrity"]})
    finding.refresh_from_db()
    assert exploratory.exploratory and finding.status == "open"  # an exploratory run closes nothing

    rerun = _run("security", model_version=version)

    finding.refresh_from_db()
    assert finding.status == "resolved" and finding.resolved_via == "rerun"
    assert finding.status_changed_by is None and f"audit #{rerun.pk} no longer finds it" in finding.status_comment
    assert rerun.results["findings"]["no_longer_found"] == [finding.pk]
    entry = ActivityLogEntry.objects.get(action="audit_finding.resolved", target_id=str(finding.pk))
    assert entry.actor_label == "system:test" and entry.data["via"] == "rerun" and entry.data["run"] == rerun.pk
    assert gate.check_security(version=version, system="releases.gate").outcome == Outcome.PASSED


@pytest.mark.django_db
def test_a_reviewer_may_run_configured_audits_but_not_exploratory_ones(users, client_for):
    version = version_with_artifact()
    with pytest.raises(PermissionDenied, match="data_scientist or operator or admin"):
        services.audit_run_create(kind="fairness", actor=users["reviewer"], model_version=version,
                                  overrides=LOOSE_BAND, enqueue=False)
    assert not AuditRun.objects.exists()
    refused = ActivityLogEntry.objects.get(action="permission.refused")
    assert refused.actor_label == "reviewer_user" and refused.data["work"] == "audit.explore"

    api = client_for("reviewer")
    payload = {"kind": "fairness", "model_version": version.pk, "overrides": LOOSE_BAND}
    assert api.post("/api/v1/audits/runs", payload, format="json").status_code == 403
    response = api.post("/api/v1/audits/runs", {"kind": "fairness", "model_version": version.pk}, format="json")
    assert response.status_code == 202 and response.json()["exploratory"] is False
    response = client_for("data_scientist").post("/api/v1/audits/runs", payload, format="json")
    assert response.status_code == 202 and response.json()["exploratory"] is True
    assert client_for("viewer").post("/api/v1/audits/runs", {"kind": "fairness"}, format="json").status_code == 403


# --- resolution and waivers, judged by the gate (the audits' own records) --------------------------------


def _blocking_fairness_finding(version, severity: str = "high") -> AuditFinding:
    from audits.tests.factories import AuditFindingFactory, AuditRunFactory

    run = AuditRunFactory(kind="fairness", target="model_version", model_version=version, passed=False,
                          artifact_sha256=version.artifact_sha256)
    return AuditFindingFactory(run=run, kind="fairness", check_name="fairness.disparity", severity=severity,
                               model_version=version, fingerprint=f"fairness.disparity:version={version.pk}:gender=F")


@pytest.mark.django_db
def test_resolving_a_high_finding_over_the_api_only_proposes_and_a_low_one_resolves(users, client_for):
    version = version_with_artifact()
    high = _blocking_fairness_finding(version)
    low = _blocking_fairness_finding(version, severity="low")
    ds = client_for("data_scientist")

    response = ds.post(f"/api/v1/audits/findings/{high.pk}/resolve", {"comment": "retrained"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "open" and body["resolutions"][0]["status"] == "pending"
    assert ReviewRequest.objects.get(pk=body["resolutions"][0]["review"]).kind == "audits.finding_resolution"
    again = ds.post(f"/api/v1/audits/findings/{high.pk}/resolve", {"comment": "really"}, format="json")
    assert again.status_code == 409 and "waiting for review" in again.json()["error"]

    response = ds.post(f"/api/v1/audits/findings/{low.pk}/resolve", {"comment": "typo fixed"}, format="json")
    assert response.status_code == 200 and response.json()["resolved_via"] == "single"
    assert client_for("reviewer").post(f"/api/v1/audits/findings/{high.pk}/resolve", {"comment": "x"},
                                       format="json").status_code == 403


@pytest.mark.django_db
def test_a_finding_resolved_by_one_person_before_this_change_still_blocks(users):
    version = version_with_artifact()
    finding = _blocking_fairness_finding(version)
    AuditFinding.objects.filter(pk=finding.pk).update(status="resolved", resolved_via="single")
    verdict = audit_release_gate(model_version=version)["fairness"]
    assert verdict["ok"] is False
    assert verdict["blocking_findings"][0]["why"] == "resolved by one person without a second person's review"


# --- the fairness attacks on a simulated world (real SVD, real aequitas) ----------------------------------

def _biased_version() -> ModelVersion:
    from audits.tests.test_simulator_scenarios import _backfill, _end, _neutral_world
    from recommender.simulator.scenarios import PlantedBias
    from recommender.tests.factories_training import trained_svd_version

    _backfill(_neutral_world(), [PlantedBias(at=dt.timedelta(0), group="gender:F", kind="ratings", strength=3.0)],
              _end())
    return trained_svd_version()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_loosened_fairness_band_is_exploratory_and_the_gate_still_fails_then_an_expired_waiver_blocks(users):
    version = _biased_version()
    ds = make_user("data_scientist", "ds_owner")
    reviewer = users["reviewer"]

    # Given the data scientist's own audit with a loosened band: it passes, and it is exploratory
    loose = _run("fairness", actor=ds, model_version=version, overrides=LOOSE_BAND)
    assert loose.exploratory is True and loose.passed is True and not loose.findings.exists()

    # The gate says there is no configured run, and why the data scientist's does not count
    verdict = audit_release_gate(model_version=version)["fairness"]
    assert verdict["run"] is None
    assert verdict["reason"] == "no configured fairness audit of this artifact has succeeded (1 run(s) skipped)"
    assert verdict["skipped_runs"][0]["run"] == loose.pk
    assert "exploratory" in verdict["skipped_runs"][0]["reason"] and "FAIRNESS_BAND" in verdict["skipped_runs"][0]["reason"]

    # When the gate checks fairness, it runs the configured audit itself, and fails on its finding
    result = gate.check_fairness(version=version, system="releases.gate")
    assert result.outcome == Outcome.FAILED
    gate_run = AuditRun.objects.get(pk=result.evidence["run"])
    assert gate_run.trigger == "release_gate" and gate_run.exploratory is False
    assert gate_run.artifact_sha256 == version.artifact_sha256
    # one finding per metric outside the band for the disadvantaged group (tpr, precision, …)
    findings = list(AuditFinding.objects.filter(
        fingerprint__startswith=f"fairness.disparity:version={version.pk}:gender=F").order_by("pk"))
    assert findings and {f["id"] for f in result.evidence["blocking_findings"]} == {f.pk for f in findings}
    assert all(f.severity == "high" and f"#{f.pk} [high]" in result.summary for f in findings)
    assert [s["run"] for s in result.evidence["skipped_runs"]] == [loose.pk]

    # A configured run by the data scientist counts (anyone may start one) and still fails
    own = _run("fairness", actor=ds, model_version=version)
    assert own.exploratory is False and own.findings.filter(pk=findings[0].pk).exists()
    result = gate.check_fairness(version=version, system="releases.gate")
    assert result.outcome == Outcome.FAILED and result.evidence["run"] == own.pk

    # Waivers approved by a reviewer (one per finding: a waiver of one metric never covers another)
    # let it pass as waived...
    waivers = []
    for finding in findings:
        waiver = services.finding_waiver_request(finding=finding, actor=ds, justification=JUSTIFICATION,
                                                 expires_at=timezone.now() + dt.timedelta(days=2))
        review_request_decide(review=waiver.review, actor=reviewer, decision="approve", comment="ok for two days")
        waivers.append(waiver)
    assert gate.check_fairness(version=version, system="releases.gate").outcome == Outcome.WAIVED

    # ...until one expires: beat has not run, the waiver still says active and the finding waived
    finding, waiver = findings[0], waivers[0]
    type(waiver).objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    finding.refresh_from_db()
    waiver.refresh_from_db()
    assert finding.status == "waived" and waiver.status == "active"
    result = gate.check_fairness(version=version, system="releases.gate")
    assert result.outcome == Outcome.FAILED
    assert result.evidence["blocking_findings"][0]["why"].startswith(f"waiver #{waiver.pk} expired at")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_data_scientist_resolving_their_own_finding_only_proposes_until_another_reviewer_approves(users):
    version = _biased_version()
    # the proposer also holds the reviewer role: four eyes must still refuse their own approval
    proposer = make_user("data_scientist", "ds_and_reviewer")
    proposer.groups.add(Group.objects.get(name="reviewer"))
    proposer = type(proposer).objects.get(pk=proposer.pk)
    other_reviewer = users["reviewer"]
    run = _run("fairness", actor=proposer, model_version=version)
    finding = run.findings.get()
    assert finding.severity == "high"

    # When the data scientist resolves it, only a proposal is made
    after = services.finding_resolve(finding=finding, actor=proposer, comment="the retrained model fixes it")
    assert after.status == "open" and after.resolved_via == ""
    resolution = FindingResolution.objects.get(finding=finding)
    assert resolution.status == "pending" and resolution.proposed_by == proposer
    assert resolution.review in review_request_inbox(user=other_reviewer)
    result = gate.check_fairness(version=version, system="releases.gate")
    assert result.outcome == Outcome.FAILED
    assert f"waiting for review #{resolution.review_id}" in result.evidence["blocking_findings"][0]["why"]

    # The proposer approving their own proposal is refused, and nothing changes
    with pytest.raises(Exception, match="Four eyes"):
        review_request_decide(review=resolution.review, actor=proposer, decision="approve")
    finding.refresh_from_db()
    resolution.refresh_from_db()
    assert finding.status == "open" and resolution.status == "pending"
    assert ActivityLogEntry.objects.filter(action="review.refused", target_id=str(resolution.review_id)).exists()

    # A different reviewer approves: resolved through review, and the gate accepts it
    review_request_decide(review=resolution.review, actor=other_reviewer, decision="approve", comment="verified")
    finding.refresh_from_db()
    assert finding.status == "resolved" and finding.resolved_via == "review"
    assert finding.status_changed_by == other_reviewer
    result = gate.check_fairness(version=version, system="releases.gate")
    assert result.outcome == Outcome.WAIVED
    assert result.evidence["accepted_findings"][0]["id"] == finding.pk
    assert "approved by reviewer_user" in result.evidence["accepted_findings"][0]["why"]
