"""The drift score reads one way for every test (higher = more drift, above 1 = drifted), in the
report's table, its chart, the dashboard's trend and the API, and the charts show every feature."""

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring import selectors
from monitoring.models import DriftFeature, DriftReport, DriftResult
from monitoring.services.drift import Sample, drift_compare

pytestmark = pytest.mark.django_db


def _feature(kind: str, metric: str, **kw) -> DriftFeature:
    return DriftFeature(name="viewer_age" if kind == "numeric" else "viewer_gender", label="x", kind=kind,
                        large_metric=metric, large_threshold=kw.get("threshold", 0.1), alpha=kw.get("alpha", 0.01),
                        large_sample_min=kw.get("large_sample_min", 1000))


def _score(result: dict) -> float:
    return selectors.drift_score(test=result["test"], score=result["score"], threshold=result["threshold"],
                                 p_value=result["p_value"])


@pytest.mark.parametrize("case", ["ks", "wasserstein", "chi2", "jensen_shannon", "psi"])
def test_a_drifted_feature_scores_above_1_and_a_clean_one_below(case):
    # Given a clean and a shifted current sample for each test the drift service picks
    rng = np.random.default_rng(0)
    if case in ("ks", "wasserstein"):
        feature = _feature("numeric", "wasserstein", threshold=0.15, large_sample_min=1000 if case == "ks" else 100)
        n = 300 if case == "ks" else 20_000
        ref = Sample(rng.normal(35, 10, n).round(), np.ones(n))
        clean = Sample(rng.normal(35, 10, n).round(), np.ones(n))
        shifted = Sample(rng.normal(45, 10, n).round(), np.ones(n))
    else:
        feature = _feature("categorical", "psi" if case == "psi" else "jensen_shannon",
                           large_sample_min=100_000 if case == "chi2" else 1000)
        ref = Sample(np.array(["M", "F"]), np.array([600.0, 400.0]))
        clean = Sample(np.array(["M", "F"]), np.array([598.0, 402.0]))
        shifted = Sample(np.array(["M", "F"]), np.array([300.0, 700.0]))
    # When both are compared with the reference
    quiet, drifted = drift_compare(feature, ref, clean), drift_compare(feature, ref, shifted)
    # Then the test is the expected one, and the score agrees with the verdict: above 1 = drifted
    assert quiet["test"] == drifted["test"] == case
    assert quiet["drifted"] is False and _score(quiet) < 1
    assert drifted["drifted"] is True and _score(drifted) > 1


def test_p_value_scores_are_minus_log10_p_over_minus_log10_alpha():
    assert selectors.drift_score(test="chi2", score=0.01, p_value=0.01, threshold=0.01) == pytest.approx(1.0)
    assert selectors.drift_score(test="ks", score=1e-4, p_value=1e-4, threshold=0.01) == pytest.approx(2.0)
    assert selectors.drift_score(test="ks", score=1.0, p_value=1.0, threshold=0.01) == 0.0
    # p = 0 (underflow) is a finite, very large score, not an error
    assert 100 < selectors.drift_score(test="chi2", score=0.0, p_value=0.0, threshold=0.05) < 1000
    assert selectors.drift_score(test="psi", score=0.3, threshold=0.1) == pytest.approx(3.0)
    assert selectors.drift_score(test="ks", score=None, threshold=0.01) is None


def _report(results: list[dict], *, minutes_ago: int = 0) -> DriftReport:
    now = timezone.now() - timedelta(minutes=minutes_ago)
    report = DriftReport.objects.create(status="drift", reference={"kind": "test"}, current_since=now - timedelta(hours=1),
                                        current_until=now, drifted_features=1, tested_features=len(results))
    for r in results:
        DriftResult.objects.create(report=report, kind="categorical", n_reference=500, n_current=500,
                                   histogram={"labels": ["a", "b"], "reference": [0.5, 0.5], "current": [0.2, 0.8]},
                                   **r)
    return report


FAR = {"feature": "rating", "test": "chi2", "statistic": 2000.0, "p_value": 1e-300, "score": 1e-300,
       "threshold": 0.01, "drifted": True}
CALM = {"feature": "viewer_gender", "test": "chi2", "statistic": 1.0, "p_value": 0.3, "score": 0.3,
        "threshold": 0.01, "drifted": False}
NEAR = {"feature": "watch_genre", "test": "jensen_shannon", "statistic": 0.05, "score": 0.05, "threshold": 0.1,
        "drifted": False}


def test_the_report_page_shows_the_score_in_table_chart_and_legend_with_every_feature_visible(web_client_for):
    # Given a report with one feature far drifted (p = 1e-300) and two stable ones
    report = _report([FAR, CALM, NEAR])
    # When the report page is opened
    response = web_client_for("viewer").get(reverse("monitoring:drift_report", args=[report.pk]))
    html = response.content.decode()
    # Then the table's score column reads the same way as the chart: the drifted one above 1, most drifted first
    rows = response.context["results"]
    assert [r["feature"] for r in rows] == ["rating", "watch_genre", "viewer_gender"]
    assert rows[0]["drift_score"] == pytest.approx(150.0) and rows[0]["drifted"]
    assert rows[1]["drift_score"] == pytest.approx(0.5) and rows[2]["drift_score"] < 1
    assert "Drift score (above 1 = drifted)" in html and "above 1 = drifted" in html
    # and the chart caps the far one so the others are not flattened, keeping the true value for the tooltip
    chart = response.context["score_chart"]
    scores = chart["datasets"][0]
    assert chart["y"]["cap"] == selectors.DRIFT_CHART_CAP and max(scores["data"]) == selectors.DRIFT_CHART_CAP
    assert scores["raw"][0] == pytest.approx(150.0) and scores["data"][1] == pytest.approx(0.5)
    assert chart["datasets"][1]["guide"] and chart["datasets"][1]["data"] == [1.0, 1.0, 1.0]
    assert chart["y"]["title"].startswith("drift score") and chart["x"]["title"] == "feature"
    assert 'data-chart="drift-scores"' in html and 'data-usher-chart="drift-scores-spec"' in html


def test_the_trend_api_gives_the_same_score_for_the_dashboard(client_for):
    _report([FAR, CALM], minutes_ago=60)
    _report([{**FAR, "p_value": 0.001, "score": 0.001}, CALM])
    data = client_for("viewer").get(reverse("api-monitoring-drift-trend")).json()
    rating = [p["drift_score"] for p in data["features"]["rating"]]
    assert rating == [pytest.approx(150.0), pytest.approx(1.5)]
    assert all(p["drift_score"] < 1 for p in data["features"]["viewer_gender"])
    report = client_for("viewer").get(reverse("api-monitoring-drift-detail", args=[data["reports"][0]["id"]])).json()
    assert {r["feature"]: r["drift_score"] > 1 for r in report["results"]} == {"rating": True, "viewer_gender": False}


def test_prometheus_exports_the_same_drift_score():
    from monitoring.prometheus import _families

    _report([FAR, CALM, NEAR])
    family = next(f for f in _families() if f.name == "usher_drift_score")
    scores = {s.labels["feature"]: s.value for s in family.samples}
    assert scores["rating"] == pytest.approx(150.0) and scores["rating"] > 1
    assert scores["viewer_gender"] < 1 and scores["watch_genre"] == pytest.approx(0.5)
