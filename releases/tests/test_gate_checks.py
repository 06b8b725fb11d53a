"""Release-gate checks one by one: offline metrics against production with per-metric
tolerances, and artifact integrity on a real artifact."""

from __future__ import annotations

import pytest

from recommender.tests.factories_training import VersionFactory
from releases.models import ReleaseGateCheck
from releases.services import gate
from releases.tests.factories import artifact_folder, version_with_artifact

pytestmark = pytest.mark.django_db
Outcome = ReleaseGateCheck.Outcome


def test_metric_value_finds_flat_nested_and_dotted_keys():
    metrics = {"rmse": 0.9, "groups": {"gender": {"ndcg_at_20": 0.3}}, "bad": "x", "flag": True}
    assert gate.metric_value(metrics, "rmse") == 0.9
    assert gate.metric_value(metrics, "ndcg_at_20") == 0.3
    assert gate.metric_value(metrics, "groups.gender.ndcg_at_20") == 0.3
    assert gate.metric_value(metrics, "bad") is None and gate.metric_value(metrics, "flag") is None
    assert gate.metric_value(metrics, "missing") is None


def test_offline_metrics_pass_within_tolerance_and_fail_beyond(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"GATE_METRICS": {
        "ndcg_at_20": {"better": "higher", "tolerance": 0.01},
        "rmse": {"better": "lower", "tolerance": 0.02},
    }}}
    production = VersionFactory(metrics={"ndcg_at_20": 0.30, "rmse": 0.90})
    # Within tolerance: ndcg 0.295 (0.005 worse ≤ 0.01), rmse 0.91 (0.01 worse ≤ 0.02).
    ok = gate.check_offline_metrics(version=VersionFactory(metrics={"ndcg_at_20": 0.295, "rmse": 0.91}),
                                    baseline=production)
    assert ok.outcome == Outcome.PASSED
    rows = {r["metric"]: r for r in ok.evidence["metrics"]}
    assert rows["ndcg_at_20"]["delta"] == pytest.approx(-0.005)
    assert rows["rmse"]["production"] == 0.90
    # Beyond tolerance on one metric: the check fails and names it with the numbers.
    bad = gate.check_offline_metrics(version=VersionFactory(metrics={"ndcg_at_20": 0.25, "rmse": 0.85}),
                                     baseline=production)
    assert bad.outcome == Outcome.FAILED
    assert "ndcg_at_20 0.2500 vs 0.3000" in bad.summary and "rmse" not in bad.summary


def test_offline_metrics_missing_metric_fails_only_when_required(settings):
    rules = {"ndcg_at_20": {"better": "higher", "tolerance": 0.01}, "rmse": {"better": "lower", "tolerance": 0.02}}
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"GATE_METRICS": rules}}
    production = VersionFactory(metrics={"ndcg_at_20": 0.1})  # a popularity baseline has no RMSE
    candidate = VersionFactory(metrics={"ndcg_at_20": 0.2, "rmse": 0.9})
    assert gate.check_offline_metrics(version=candidate, baseline=production).outcome == Outcome.PASSED
    rules["rmse"]["required"] = True
    result = gate.check_offline_metrics(version=candidate, baseline=production)
    assert result.outcome == Outcome.FAILED and "rmse missing" in result.summary


def test_offline_metrics_without_production_passes_with_the_candidate_numbers():
    result = gate.check_offline_metrics(version=VersionFactory(metrics={"ndcg_at_20": 0.2}), baseline=None)
    assert result.outcome == Outcome.PASSED
    assert result.evidence["candidate"]["ndcg_at_20"] == 0.2 and result.evidence["production"] is None


def test_artifact_integrity_verified_then_refused_after_tampering():
    version = version_with_artifact()
    ok = gate.check_artifact(version=version)
    assert ok.outcome == Outcome.PASSED
    assert set(ok.evidence["files"]) == {"item_ids", "item_scores", "user_ids", "seen_indptr", "seen_indices"}
    # Swap one array file for another of the same shape: the manifest's sha256 no longer matches.
    folder = artifact_folder(version)
    (folder / "item_scores.npy").write_bytes((folder / "item_scores.npy").read_bytes()[:-4] + b"\0\0\0\0")
    bad = gate.check_artifact(version=version)
    assert bad.outcome == Outcome.FAILED
    assert "item_scores.npy" in bad.summary and bad.evidence["expected_sha256"] == version.artifact_sha256
