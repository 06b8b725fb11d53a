"""The model-level fairness engine with the real aequitas: disparities, the band, significance,
insufficient groups, reference groups, RMSE and NDCG per group; and the system-level figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from audits.checks.fairness_model import model_fairness, ndcg_at_k
from audits.checks.fairness_system import exposure, group_service, popularity_cuts
from audits.conf import DEFAULTS
from audits.errors import AuditCheckError
from portal.stats import two_proportion_p_value


def _world(n_viewers: int = 900, seed: int = 0, biased_gender: str | None = None, tiny_occupation: int = 0,
           biased_share: float = 0.15):
    """Test ratings of a synthetic world and a recommender that finds a share of each viewer's liked movies."""
    rng = np.random.default_rng(seed)
    occupations = [f"occ{i}" for i in range(8)]
    viewers = pd.DataFrame({
        "gender": rng.choice(["M", "F"], n_viewers, p=[0.65, 0.35]),
        "age_band": rng.choice(["18-24", "25-34", "35-44", "45-54"], n_viewers),
        "occupation": rng.choice(occupations, n_viewers),
    }, index=pd.Index(np.arange(1, n_viewers + 1), name="viewer"))
    if tiny_occupation:
        viewers.iloc[:tiny_occupation, viewers.columns.get_loc("occupation")] = "farmer"
    rows = []
    for v in viewers.index:
        for m in rng.choice(400, 15, replace=False):
            rows.append((int(v), f"m{m}", int(rng.integers(1, 6))))
    test = pd.DataFrame(rows, columns=["viewer", "movie", "rating"])
    liked = test[test["rating"] >= 4].groupby("viewer")["movie"].agg(list)
    disliked = test[test["rating"] < 4].groupby("viewer")["movie"].agg(list)
    hit_rng = np.random.default_rng(seed + 1)

    def recommend(viewer: int) -> list[str]:
        served_worse = biased_gender is not None and viewers.loc[viewer, "gender"] == biased_gender
        share = biased_share if served_worse else 0.6
        picks = [m for m in liked.get(viewer, []) if hit_rng.random() < share]
        picks += [m for m in disliked.get(viewer, []) if hit_rng.random() < 0.1]
        return (picks + [f"filler{i}" for i in range(20)])[:20]

    return test, viewers, recommend


def _run(test, viewers, recommend, **overrides):
    config = {**DEFAULTS, **overrides}
    return model_fairness(test=test, attributes=viewers, recommend=recommend, predict=None, config=config,
                          subject="version=1", target_label="model v1")


def test_a_group_served_worse_fails_with_the_numbers():
    test, viewers, recommend = _world(biased_gender="F")

    outcome = _run(test, viewers, recommend)

    # Each judged metric outside the band is its own finding: recall and precision both drop for women.
    assert [f.subject for f in outcome.findings] == ["version=1:gender=F:tpr", "version=1:gender=F:precision"]
    finding = outcome.findings[0]
    assert finding.evidence["reference_group"] == "M" and finding.evidence["metric"] == "tpr"
    assert outcome.findings[1].evidence["failing_metrics"]["precision"]["disparity"] < 0.8
    tpr = finding.evidence["failing_metrics"]["tpr"]
    assert tpr["disparity"] < 0.8 and tpr["p_value"] < 0.01
    assert tpr["value"] == pytest.approx(tpr["disparity"] * tpr["reference_value"], rel=0.01)
    assert "served worse" in finding.title
    gender = outcome.results["attributes"]["gender"]
    assert gender["verdict"] == "fail"
    assert {g["group"]: g["verdict"] for g in gender["groups"]} == {"M": "reference", "F": "fail"}
    # NDCG per group shows the same harm
    ndcg = {g["group"]: g["ndcg"] for g in gender["groups"]}
    assert ndcg["F"] < ndcg["M"]
    # the other attributes are not blamed for it
    assert outcome.results["attributes"]["occupation"]["verdict"] == "pass"
    assert outcome.results["attributes"]["age_band"]["verdict"] == "pass"


def test_an_even_world_passes_everywhere():
    test, viewers, recommend = _world()
    outcome = _run(test, viewers, recommend)
    assert outcome.findings == []
    assert {a: d["verdict"] for a, d in outcome.results["attributes"].items()} == {
        "gender": "pass", "age_band": "pass", "occupation": "pass"}


def test_a_tiny_group_is_insufficient_data_with_its_size():
    test, viewers, recommend = _world(tiny_occupation=7)
    outcome = _run(test, viewers, recommend)
    farmer = next(g for g in outcome.results["attributes"]["occupation"]["groups"] if g["group"] == "farmer")
    assert farmer["verdict"] == "insufficient_data"
    assert farmer["viewers"] == 7 and farmer["rows"] == 7 * 15
    assert "7 viewers and 105 test ratings" in farmer["reason"]
    # reported as not enough data, not passed silently
    assert "farmer" in outcome.results["attributes"]["occupation"]["insufficient_groups"]
    assert "not enough data for occupation=farmer" in outcome.summary
    assert "verdict" not in farmer["metrics"]["tpr"]  # not judged, so no pass either


EVERY_METRIC = ["tpr", "fnr", "precision", "fdr", "pprev", "rmse"]


def test_every_configured_metric_is_judged_and_each_one_outside_the_band_is_a_finding():
    test, viewers, recommend = _world(biased_gender="F")
    outcome = _run(test, viewers, recommend, FAIRNESS_METRICS=EVERY_METRIC)
    assert outcome.results["judged_metrics"] == EVERY_METRIC
    for attribute, data in outcome.results["attributes"].items():
        for group in data["groups"]:
            if group["verdict"] in ("reference", "excluded", "insufficient_data"):
                continue
            # all of them, not just the first: every judged metric of every judged group has a verdict
            assert all(group["metrics"][m].get("verdict") for m in EVERY_METRIC), (attribute, group)
            assert group["metrics"]["rmse"]["verdict"] == "unavailable"  # this model predicts no ratings
    female = next(g for g in outcome.results["attributes"]["gender"]["groups"] if g["group"] == "F")
    failing = {m for m in EVERY_METRIC if female["metrics"][m]["verdict"] == "fail"}
    # The planted bias (fewer liked movies found for women) moves recall, its complement and precision.
    assert {"tpr", "fnr", "precision"} <= failing
    assert {f.evidence["metric"] for f in outcome.findings} == failing
    assert all(f.subject == f"version=1:gender=F:{f.evidence['metric']}" for f in outcome.findings)
    fnr = next(f for f in outcome.findings if f.evidence["metric"] == "fnr")
    assert fnr.evidence["failing_metrics"]["fnr"]["disparity"] > 1.25 and "served worse" in fnr.title


def test_a_clean_world_has_no_finding_for_any_configured_metric():
    test, viewers, recommend = _world()
    outcome = _run(test, viewers, recommend, FAIRNESS_METRICS=EVERY_METRIC)
    assert outcome.findings == []
    verdicts = [g["metrics"][m]["verdict"] for d in outcome.results["attributes"].values() for g in d["groups"]
                if g["verdict"] not in ("reference", "excluded", "insufficient_data")
                for m in EVERY_METRIC if m != "rmse"]
    assert len(verdicts) == 5 * (1 + 3 + 7) and "fail" not in verdicts  # 5 metrics × the non-reference groups


def test_the_reference_group_can_be_configured():
    test, viewers, recommend = _world(biased_gender="F")
    outcome = _run(test, viewers, recommend, FAIRNESS_REFERENCE_GROUPS={"gender": "F"})
    assert [f.subject for f in outcome.findings] == ["version=1:gender=M:tpr", "version=1:gender=M:precision"]
    assert "served better" in outcome.findings[0].title
    assert outcome.results["attributes"]["gender"]["reference_source"] == "configured"


def test_an_unknown_reference_group_is_a_clear_error():
    test, viewers, recommend = _world(n_viewers=100)
    with pytest.raises(AuditCheckError, match="gender='X' does not occur"):
        _run(test, viewers, recommend, FAIRNESS_REFERENCE_GROUPS={"gender": "X"})


def test_a_disparity_outside_the_band_but_not_significant_does_not_fail():
    # 10 men and 6 women, 5 liked test movies each; the model finds 3 of 5 for men, 2 of 5 for women.
    genders = ["M"] * 10 + ["F"] * 6
    viewers = pd.DataFrame({"gender": genders, "age_band": "25-34", "occupation": "writer"},
                           index=pd.Index(range(1, 17), name="viewer"))
    test = pd.DataFrame([(v, f"m{v}-{i}", 5) for v in viewers.index for i in range(5)],
                        columns=["viewer", "movie", "rating"])

    def recommend(viewer: int) -> list[str]:
        hits = 3 if genders[viewer - 1] == "M" else 2
        return [f"m{viewer}-{i}" for i in range(hits)]

    small = {"FAIRNESS_MIN_GROUP_VIEWERS": 5, "FAIRNESS_MIN_GROUP_ROWS": 10}
    outcome = _run(test, viewers, recommend, **small)
    female = next(g for g in outcome.results["attributes"]["gender"]["groups"] if g["group"] == "F")
    tpr = female["metrics"]["tpr"]
    assert tpr["value"] == 0.4 and tpr["reference_value"] == 0.6 and tpr["disparity"] == pytest.approx(0.6667, abs=1e-4)
    # 12 of 30 against 30 of 50: pooled 42/80, z = -0.2 / sqrt(0.525 · 0.475 · (1/30 + 1/50)) = -1.7342
    assert tpr["p_value"] == pytest.approx(0.082879, abs=1e-6)
    assert tpr["p_value"] == pytest.approx(
        two_proportion_p_value(successes_a=12, trials_a=30, successes_b=30, trials_b=50), abs=1e-6)
    assert tpr["p_value"] > 0.05 and tpr["verdict"] == "not_significant"
    assert outcome.findings == []
    # not a silent pass: the group and the attribute say the data cannot tell
    assert female["verdict"] == "inconclusive" and "not enough data to tell" in female["reason"]
    assert outcome.results["attributes"]["gender"]["verdict"] == "inconclusive"
    # judged on the band alone (alpha None), the same numbers fail
    strict = _run(test, viewers, recommend, FAIRNESS_ALPHA=None, **small)
    assert [f.subject for f in strict.findings] == ["version=1:gender=F:tpr"]


def test_rmse_per_group_uses_the_models_predictions():
    test, viewers, recommend = _world(n_viewers=200)

    def predict(viewer_ids, movie_ids):
        # exact for men, one star off for women
        ratings = test.set_index(["viewer", "movie"])["rating"]
        values = [ratings[(v, m)] + (1.0 if viewers.loc[v, "gender"] == "F" else 0.0)
                  for v, m in zip(viewer_ids, movie_ids, strict=True)]
        return np.array(values, dtype=float)

    outcome = model_fairness(test=test, attributes=viewers, recommend=recommend, predict=predict,
                             config=DEFAULTS, subject="v", target_label="v")
    groups = {g["group"]: g for g in outcome.results["attributes"]["gender"]["groups"]}
    assert {k: g["rmse"] for k, g in groups.items()} == {"M": 0.0, "F": 1.0}
    # RMSE is judged: women's predictions are worse; the reference's RMSE is 0, so the disparity is
    # infinite — outside the band, a finding of its own (it used to be "undefined" and pass silently)
    rmse = groups["F"]["metrics"]["rmse"]
    assert rmse["verdict"] == "fail" and rmse["disparity_infinite"] and rmse["p_value"] == 0.0
    assert "v:gender=F:rmse" in [f.subject for f in outcome.findings]
    assert "disparity ∞" in next(f.title for f in outcome.findings if f.subject == "v:gender=F:rmse")


def test_a_worse_rmse_for_one_group_fails():
    test, viewers, recommend = _world(n_viewers=300)
    noise = np.random.default_rng(9)

    def predict(viewer_ids, movie_ids):
        ratings = test.set_index(["viewer", "movie"])["rating"]
        values = []
        for v, m in zip(viewer_ids, movie_ids, strict=True):
            spread = 1.5 if viewers.loc[v, "gender"] == "F" else 0.7
            values.append(ratings[(v, m)] + noise.normal(0, spread))
        return np.array(values, dtype=float)

    outcome = model_fairness(test=test, attributes=viewers, recommend=recommend, predict=predict,
                             config=DEFAULTS, subject="v", target_label="v")
    assert [f.subject for f in outcome.findings] == ["v:gender=F:rmse"]
    rmse = outcome.findings[0].evidence["failing_metrics"]["rmse"]
    assert rmse["disparity"] > 1.25 and rmse["p_value"] < 0.01
    assert "served worse" in outcome.findings[0].title


def test_ndcg_and_the_proportion_test_by_hand():
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 3) == pytest.approx((1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))
    assert ndcg_at_k(["x"], set(), 3) is None
    assert two_proportion_p_value(successes_a=50, trials_a=100, successes_b=50, trials_b=100) == pytest.approx(1.0)
    assert two_proportion_p_value(successes_a=10, trials_a=100, successes_b=50, trials_b=100) < 1e-8


def test_system_level_groups_and_exposure():
    rng = np.random.default_rng(3)
    viewers = pd.DataFrame({"gender": ["M"] * 300 + ["F"] * 200, "age_band": "25-34", "occupation": "writer"},
                           index=pd.Index(range(1, 501), name="viewer"))
    client = pd.DataFrame({"viewer": rng.integers(1, 501, 4000)})
    is_f = client["viewer"] > 300
    client["status"] = np.where(is_f & (rng.random(4000) < 0.4), 0, 200)  # women's calls time out 40% of the time
    client["response_ms"] = np.where(client["status"] == 0, 600, 40)
    client["items"] = [["a", "b"]] * 4000
    window = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    service, findings = group_service(server=None, client=client, quality=None, attributes=viewers,
                                      config=DEFAULTS, window=window, notes={})
    # one finding per judged figure outside the band: availability, and the timeouts' p95 latency
    assert [f.subject for f in findings] == ["live:gender=F:availability", "live:gender=F:client_latency_p95_ms"]
    figures = findings[0].evidence["group_figures"]
    assert figures["availability"] == pytest.approx(0.6, abs=0.05)
    assert findings[0].evidence["metric"] == "availability" and "served worse" in findings[0].title
    # figures whose source is absent are reported as such, not skipped
    assert figures["disparities"]["personalization_rate"]["verdict"] == "unavailable"
    assert figures["disparities"]["online_quality"]["verdict"] == "unavailable"

    movies = pd.DataFrame({"genres": [["Drama"], ["Comedy"], ["Drama", "Comedy"]], "year": [1994, 2005, 2012],
                           "popularity": [1.0, 5.0, 50.0]}, index=["a", "b", "c"])
    results, exposure_findings = exposure(
        recommended=pd.Series(["a"] * 90 + ["b"] * 10), watched=pd.Series(["a"] * 30 + ["b"] * 70), movies=movies,
        cuts=popularity_cuts(movies["popularity"], (0.5, 0.9)), config=DEFAULTS, window=window)
    decades = {r["category"]: r for r in results["dimensions"]["decade"]}
    assert decades["1990s"]["ratio"] == pytest.approx(3.0) and decades["1990s"]["verdict"] == "outside"
    assert exposure_findings == []  # reported, not raised, by default
    _, exposure_findings = exposure(
        recommended=pd.Series(["a"] * 90 + ["b"] * 10), watched=pd.Series(["a"] * 30 + ["b"] * 70), movies=movies,
        cuts=popularity_cuts(movies["popularity"], (0.5, 0.9)), config={**DEFAULTS, "EXPOSURE_FINDINGS": True},
        window=window)
    assert {f.subject for f in exposure_findings} >= {"live:decade=1990s", "live:decade=2000s", "live:genre=Drama"}


def test_system_level_judges_every_figure_and_says_when_a_rate_has_too_few_trials():
    rng = np.random.default_rng(5)
    viewers = pd.DataFrame({"gender": ["M"] * 300 + ["F"] * 200, "age_band": "25-34", "occupation": "writer"},
                           index=pd.Index(range(1, 501), name="viewer"))
    server = pd.DataFrame({"viewer": rng.integers(1, 501, 3000), "latency_ms": 20.0, "status": 200})
    server["fallback"] = rng.random(3000) < 0.1  # the same for everyone
    # online quality: plenty of lists for men, 12 for women (far below the 50 needed), all failing
    quality = pd.DataFrame({"trials": [10] * 300 + [0] * 188 + [1] * 12, "successes": [3] * 300 + [0] * 200},
                           index=pd.Index(range(1, 501), name="viewer"))
    window = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    service, findings = group_service(server=server, client=None, quality=quality, attributes=viewers,
                                      config=DEFAULTS, window=window, notes={})
    female = next(g for g in service["attributes"]["gender"]["groups"] if g["group"] == "F")
    assert female["disparities"]["personalization_rate"]["verdict"] == "pass"
    assert female["disparities"]["latency_p95_ms"]["verdict"] == "pass"
    # a quality of 0 on 12 lists is not a finding, and not a silent pass either
    oq = female["disparities"]["online_quality"]
    assert oq["verdict"] == "insufficient_data" and "12 vs 3000" in oq["reason"]
    assert female["disparities"]["availability"]["verdict"] == "unavailable"
    assert findings == [] and "online_quality" in female["reason"]
