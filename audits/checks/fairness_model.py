"""Model-level fairness with aequitas: top-K membership as the prediction, "rated ≥ 4" as the label.

For every rating in the snapshot's test part, the score is 1 when the movie is among the viewer's
top-K recommendations (the movies the viewer saw in the training part excluded) and the label is 1
when the viewer rated it at or above the like threshold. aequitas's ``Group`` computes the confusion
matrix metrics per group of each protected attribute, and ``Bias`` the disparity of each metric
against a reference group (the largest group by viewers unless one is configured).

A judged metric fails when its disparity lies outside the band *and* the difference from the
reference group is statistically significant (the two-proportion z-test of ``portal.stats`` at
``alpha``; alpha None turns the significance requirement off). Groups with too few viewers or test rows are reported as
"insufficient data" with their size; viewers whose attribute is unknown are reported, not judged.
RMSE (when the model predicts ratings) and NDCG@K are added per group; RMSE may be judged too (its
disparity is the group's RMSE over the reference's, its significance a Welch t-test on squared errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from aequitas.bias import Bias
from aequitas.group import Group
from scipy import stats

from audits.checks.base import CheckOutcome, FindingDraft, rounded
from audits.errors import AuditCheckError
from portal.stats import two_proportion_p_value

UNKNOWN = "unknown"
# metric -> (numerator, denominator) in aequitas's crosstab columns, for the significance test.
PROPORTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tpr": ("tp", ("tp", "fn")),
    "fnr": ("fn", ("tp", "fn")),
    "tnr": ("tn", ("tn", "fp")),
    "fpr": ("fp", ("tn", "fp")),
    "precision": ("tp", ("tp", "fp")),
    "fdr": ("fp", ("tp", "fp")),
    "npv": ("tn", ("tn", "fn")),
    "for": ("fn", ("tn", "fn")),
    "pprev": ("pp", ("group_size",)),
}
REPORTED_METRICS = ("tpr", "precision", "pprev", "fpr", "fnr", "fdr", "for", "npv", "tnr", "ppr")
# Metrics that may be judged: aequitas's, and RMSE of the predicted ratings (needs a model that predicts).
JUDGEABLE_METRICS = (*REPORTED_METRICS, "rmse")
LOWER_IS_BETTER = {"fpr", "fnr", "fdr", "for", "rmse"}
METRIC_LABELS = {
    "tpr": "recall of liked movies (TPR)",
    "precision": "precision of recommended test movies",
    "pprev": "share of test movies recommended (predicted prevalence)",
    "ppr": "share of all recommended test movies (PPR)",
    "fpr": "FPR", "fnr": "FNR", "fdr": "FDR", "for": "FOR", "npv": "NPV", "tnr": "TNR",
    "rmse": "RMSE of predicted ratings",
}


def squared_error_p_value(own: np.ndarray | None, reference: np.ndarray | None) -> float | None:
    """Two-sided Welch t-test of equal mean squared error (None when either group has < 2 predictions;
    with no spread in either group, 0 when the means differ and 1 when they do not)."""
    if own is None or reference is None or own.size < 2 or reference.size < 2:
        return None
    if np.ptp(own) == 0 and np.ptp(reference) == 0:
        return 1.0 if own[0] == reference[0] else 0.0
    result = stats.ttest_ind(own, reference, equal_var=False)
    return None if np.isnan(result.pvalue) else float(result.pvalue)


def _judge(m: dict, metric: str, low: float, high: float, alpha: Any, p_value: float | None,
           has_predictions: bool) -> tuple[str, str]:
    """One metric of one group against the band: (verdict, reason). A reference value of 0 against a
    non-zero one is an infinite disparity — outside the band, never "undefined"."""
    value, reference = m.get("value"), m.get("reference_value")
    if metric == "rmse" and not has_predictions:
        return "unavailable", "the model does not predict ratings, so RMSE cannot be judged"
    if value is None or reference is None:
        return "undefined", "the metric is undefined for this group or the reference (no rows it counts)"
    if m.get("disparity") is None:
        if reference != 0:
            m["disparity"] = rounded(value / reference)
        elif value == 0:
            m["disparity"] = 1.0
        elif reference == 0:
            m["disparity_infinite"] = True
    d = m.get("disparity")
    if not m.get("disparity_infinite") and low <= d <= high:
        return "pass", ""
    if alpha is not None and (p_value is None or p_value >= float(alpha)):
        return "not_significant", (f"disparity {_disparity_text(m)} outside {low}–{high} but not significant "
                                   f"(p={rounded(p_value, 6)} ≥ {float(alpha):.3g}): not enough data to tell")
    return "fail", ""


def _disparity_text(m: dict) -> str:
    return "∞" if m.get("disparity_infinite") else str(m.get("disparity"))


def _served_worse(m: dict, metric: str) -> bool:
    below = not m.get("disparity_infinite") and m["disparity"] < 1
    return below != (metric in LOWER_IS_BETTER)


def ndcg_at_k(recommended: Sequence[str], liked: set[str], k: int) -> float | None:
    """Binary-gain NDCG@k; None when the viewer liked nothing in the test part (undefined)."""
    if not liked:
        return None
    dcg = sum(1.0 / math.log2(i + 2) for i, movie in enumerate(recommended[:k]) if movie in liked)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(liked))))
    return dcg / ideal


def build_frame(
    *,
    test: pd.DataFrame,
    attributes: pd.DataFrame,
    recommend: Callable[[int], Sequence[str]],
    attribute_names: Sequence[str],
    like_threshold: float,
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """One row per test rating: viewer, movie, rating, score (in top-K), label_value (liked), attributes."""
    missing = {"viewer", "movie", "rating"} - set(test.columns)
    if missing:
        raise AuditCheckError(f"the test part lacks the columns {sorted(missing)}")
    if test.empty:
        raise AuditCheckError("the snapshot's test part is empty: nothing to audit")
    tops: dict[int, list[str]] = {}
    for viewer in test["viewer"].unique():
        tops[int(viewer)] = [str(m) for m in recommend(int(viewer))]
    frame = test[["viewer", "movie", "rating"]].copy()
    frame["movie"] = frame["movie"].astype(str)
    in_top = [movie in tops[int(viewer)] for viewer, movie in zip(frame["viewer"], frame["movie"], strict=True)]
    frame["score"] = np.asarray(in_top, dtype=int)
    frame["label_value"] = (frame["rating"] >= like_threshold).astype(int)
    attrs = attributes.reindex(frame["viewer"].unique())
    for name in attribute_names:
        values = attrs[name] if name in attrs.columns else pd.Series(UNKNOWN, index=attrs.index)
        values = values.fillna(UNKNOWN).astype(str).replace({"": UNKNOWN})
        frame[name] = frame["viewer"].map(values).fillna(UNKNOWN).astype(object)
    return frame, tops


def _group_quality(frame: pd.DataFrame, tops: dict[int, list[str]], attribute: str, k: int,
                   predictions: np.ndarray | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    liked = frame[frame["label_value"] == 1].groupby("viewer")["movie"].agg(set)
    for group, rows in frame.groupby(attribute, sort=True):
        viewers = rows["viewer"].unique()
        ndcgs = [ndcg_at_k(tops[int(v)], liked.get(v, set()), k) for v in viewers]
        ndcgs = [x for x in ndcgs if x is not None]
        entry: dict[str, Any] = {
            "viewers": int(len(viewers)),
            "rows": int(len(rows)),
            "liked": int(rows["label_value"].sum()),
            "ndcg": rounded(np.mean(ndcgs)) if ndcgs else None,
            "ndcg_viewers": len(ndcgs),
            "rmse": None,
        }
        if predictions is not None:
            err = predictions[rows.index.to_numpy()] - rows["rating"].to_numpy(dtype=float)
            err = err[~np.isnan(err)]  # ratings the model cannot predict (unknown movie) are left out
            entry["rmse"] = rounded(math.sqrt(float(np.mean(err ** 2)))) if err.size else None
            entry["rmse_rows"] = int(err.size)
            entry["squared_errors"] = err ** 2  # for the significance test; not stored
        out[str(group)] = entry
    return out


def model_fairness(
    *,
    test: pd.DataFrame,
    attributes: pd.DataFrame,
    recommend: Callable[[int], Sequence[str]],
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    config: dict[str, Any],
    subject: str,
    target_label: str,
) -> CheckOutcome:
    """Run the model-level fairness audit; see the module docstring for the rules."""
    attribute_names = list(config["FAIRNESS_ATTRIBUTES"])
    k = int(config["FAIRNESS_TOP_K"])
    low, high = (float(x) for x in config["FAIRNESS_BAND"])
    judged = list(config["FAIRNESS_METRICS"])
    unknown_metrics = sorted(set(judged) - set(JUDGEABLE_METRICS))
    if unknown_metrics:
        raise AuditCheckError(f"unknown fairness metric(s) {unknown_metrics}; known: {list(JUDGEABLE_METRICS)}")
    alpha = config.get("FAIRNESS_ALPHA")
    min_viewers = int(config["FAIRNESS_MIN_GROUP_VIEWERS"])
    min_rows = int(config["FAIRNESS_MIN_GROUP_ROWS"])
    reference_config = dict(config.get("FAIRNESS_REFERENCE_GROUPS") or {})
    bad_refs = sorted(set(reference_config) - set(attribute_names))
    if bad_refs:
        raise AuditCheckError(f"reference groups name unknown attribute(s) {bad_refs}; audited: {attribute_names}")

    frame, tops = build_frame(test=test, attributes=attributes, recommend=recommend,
                              attribute_names=attribute_names,
                              like_threshold=float(config["FAIRNESS_LIKE_THRESHOLD"]))
    frame = frame.reset_index(drop=True)
    predictions = None
    if predict is not None:
        predictions = np.asarray(predict(frame["viewer"].to_numpy(), frame["movie"].to_numpy()), dtype=float)
        if predictions.shape != (len(frame),):
            raise AuditCheckError(f"the model returned {predictions.shape} predictions for {len(frame)} test rows")

    # Reference group per attribute: configured, else the largest known group by viewers.
    references: dict[str, str] = {}
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for name in attribute_names:
        per_group = frame.groupby(name).agg(viewers=("viewer", "nunique"), rows=("viewer", "size"))
        sizes[name] = {str(g): (int(r.viewers), int(r.rows)) for g, r in per_group.iterrows()}
        known = {g: s for g, s in sizes[name].items() if g != UNKNOWN}
        if name in reference_config:
            ref = str(reference_config[name])
            if ref not in sizes[name]:
                raise AuditCheckError(
                    f"the reference group {name}={ref!r} does not occur in the test part; "
                    f"groups are {sorted(sizes[name])}"
                )
        elif known:
            ref = max(sorted(known), key=lambda g: known[g][0])
        else:
            ref = None
        if ref is not None:
            references[name] = ref

    judged_attributes = [n for n in attribute_names if n in references]
    xtab = pd.DataFrame()
    if judged_attributes:
        aeq_frame = frame[["score", "label_value", *judged_attributes]].copy()
        xtab, _ = Group().get_crosstabs(aeq_frame, attr_cols=judged_attributes)
        xtab = Bias().get_disparity_predefined_groups(
            xtab, original_df=aeq_frame, ref_groups_dict={n: references[n] for n in judged_attributes},
            check_significance=False,
        )

    # Multiple testing: every (group, judged metric) compared with its reference is one test. With
    # FAIRNESS_CORRECTION "bonferroni" each is judged at FAIRNESS_ALPHA / tests, so FAIRNESS_ALPHA bounds
    # the chance that an audit of a fair model fails on noise at all (calibrated in benchmarks/calibration.py).
    comparisons = 0
    for name in attribute_names:
        ref = references.get(name)
        ref_viewers, ref_rows = sizes[name].get(ref, (0, 0)) if ref else (0, 0)
        if ref is None or ref_viewers < min_viewers or ref_rows < min_rows:
            continue
        comparisons += sum(1 for g, (v, r) in sizes[name].items()
                           if g not in (UNKNOWN, ref) and v >= min_viewers and r >= min_rows)
    tests = comparisons * len(judged)
    correction = str(config.get("FAIRNESS_CORRECTION") or "none")
    if correction not in ("bonferroni", "none"):
        raise AuditCheckError(f"FAIRNESS_CORRECTION must be 'bonferroni' or 'none', not {correction!r}")
    alpha_each = (float(f"{float(alpha) / tests:.3g}") if alpha is not None and correction == "bonferroni" and tests
                  else alpha)

    attributes_out: dict[str, Any] = {}
    findings: list[FindingDraft] = []
    for name in attribute_names:
        quality = _group_quality(frame, tops, name, k, predictions)
        ref = references.get(name)
        ref_viewers, ref_rows = sizes[name].get(ref, (0, 0)) if ref else (0, 0)
        ref_ok = ref is not None and ref_viewers >= min_viewers and ref_rows >= min_rows
        rows_of = {str(r["attribute_value"]): r for _, r in xtab[xtab["attribute_name"] == name].iterrows()} \
            if not xtab.empty else {}
        groups_out = []
        for group in sorted(sizes[name], key=lambda g: (-sizes[name][g][0], g)):
            n_viewers, n_rows = sizes[name][group]
            row = rows_of.get(group)
            metrics: dict[str, Any] = {}
            for metric in REPORTED_METRICS:
                value = row[metric] if row is not None and metric in row else None
                disparity = row.get(f"{metric}_disparity") if row is not None else None
                metrics[metric] = {"value": rounded(value), "disparity": rounded(disparity)}
            own_rmse = quality[group]["rmse"]
            ref_rmse = quality[ref]["rmse"] if ref in quality else None
            metrics["rmse"] = {"value": own_rmse, "disparity": rounded(own_rmse / ref_rmse)
                               if own_rmse is not None and ref_rmse else None}
            if group == UNKNOWN:
                verdict, reason = "excluded", f"{name} is unknown for these viewers"
            elif n_viewers < min_viewers or n_rows < min_rows:
                verdict = "insufficient_data"
                reason = (f"{n_viewers} viewers and {n_rows} test ratings; at least {min_viewers} viewers and "
                          f"{min_rows} ratings are needed")
            elif not ref_ok:
                verdict = "insufficient_data"
                reason = (f"the reference group {name}={ref} has {ref_viewers} viewers and {ref_rows} test "
                          "ratings, too few to compare against")
            elif group == ref:
                verdict, reason = "reference", "reference group"
            else:
                # Every judged metric is judged on its own, and each one outside the band (and
                # significant) is its own finding: a waiver of one metric's disparity never covers another's.
                ref_row = rows_of.get(ref)
                for metric in judged:
                    m = metrics[metric]
                    p_value = None
                    if metric == "rmse":
                        p_value = squared_error_p_value(quality[group].get("squared_errors"),
                                                        quality[ref].get("squared_errors"))
                        m["reference_value"] = quality[ref]["rmse"]
                    else:
                        if metric in PROPORTIONS and row is not None and ref_row is not None:
                            num, den = PROPORTIONS[metric]
                            p_value = two_proportion_p_value(
                                successes_a=float(row[num]), trials_a=float(sum(row[c] for c in den)),
                                successes_b=float(ref_row[num]), trials_b=float(sum(ref_row[c] for c in den)),
                            )
                        m["reference_value"] = rounded(ref_row[metric]) if ref_row is not None else None
                    m["p_value"] = rounded(p_value, 6)
                    m["verdict"], m["reason"] = _judge(m, metric, low, high, alpha_each, p_value,
                                                       predictions is not None)
                verdicts = {metrics[x]["verdict"] for x in judged}
                failing = [x for x in judged if metrics[x]["verdict"] == "fail"]
                unclear = [x for x in judged if metrics[x]["verdict"] in ("not_significant", "undefined",
                                                                          "unavailable")]
                if failing:
                    verdict = "fail"
                elif "not_significant" in verdicts:
                    verdict = "inconclusive"
                else:
                    verdict = "pass"
                reason = "; ".join(
                    [f"{METRIC_LABELS[x]} {metrics[x]['value']} vs {metrics[x]['reference_value']} "
                     f"(disparity {_disparity_text(metrics[x])}, p={metrics[x]['p_value']})" for x in failing]
                    + [f"{x}: {metrics[x]['reason']}" for x in unclear])
                for metric in failing:
                    m = metrics[metric]
                    worse = _served_worse(m, metric)
                    findings.append(FindingDraft(
                        check="fairness.disparity",
                        subject=f"{subject}:{name}={group}:{metric}",
                        severity=str(config["FAIRNESS_FINDING_SEVERITY"]),
                        title=(f"{target_label}: {name}={group} served {'worse' if worse else 'better'} than "
                               f"{name}={ref} — {metric} {m['value']} vs {m['reference_value']}, disparity "
                               f"{_disparity_text(m)} outside {low}–{high}"),
                        evidence={
                            "attribute": name, "group": group, "reference_group": ref, "metric": metric,
                            "metric_label": METRIC_LABELS[metric], "band": [low, high], "alpha": alpha,
                            "alpha_per_test": alpha_each, "correction": correction, "tests": tests, "top_k": k,
                            "viewers": n_viewers, "test_ratings": n_rows,
                            "reference_viewers": ref_viewers, "reference_test_ratings": ref_rows,
                            "failing_metrics": {metric: m},
                            "metrics": {x: metrics[x] for x in judged},
                            "other_failing_metrics": [x for x in failing if x != metric],
                            "rmse": quality[group]["rmse"], "reference_rmse": quality[ref]["rmse"],
                            "ndcg": quality[group]["ndcg"], "reference_ndcg": quality[ref]["ndcg"],
                        },
                    ))
            groups_out.append({
                "group": group, "viewers": n_viewers, "rows": n_rows, "verdict": verdict, "reason": reason,
                "metrics": metrics,
                **{key: quality[group].get(key) for key in ("liked", "rmse", "rmse_rows", "ndcg", "ndcg_viewers")},
            })
        statuses = {g["verdict"] for g in groups_out}
        attributes_out[name] = {
            "reference_group": ref,
            "reference_source": "configured" if name in reference_config else "largest group by viewers",
            "verdict": next((v for v in ("fail", "inconclusive", "pass") if v in statuses), "insufficient_data"),
            "insufficient_groups": [g["group"] for g in groups_out if g["verdict"] == "insufficient_data"],
            "groups": groups_out,
        }

    overall_viewers = int(frame["viewer"].nunique())
    liked_total = int(frame["label_value"].sum())
    results = {
        "target": target_label,
        "viewers": overall_viewers,
        "test_ratings": int(len(frame)),
        "liked": liked_total,
        "recommended_test_ratings": int(frame["score"].sum()),
        "top_k": k,
        "band": [low, high],
        "alpha": alpha,
        "correction": correction,
        "tests": tests,
        "alpha_per_test": alpha_each,
        "judged_metrics": judged,
        "min_group_viewers": min_viewers,
        "min_group_rows": min_rows,
        "rmse_available": predictions is not None,
        "attributes": attributes_out,
    }
    failing = [f"{f.evidence['attribute']}={f.evidence['group']} {f.evidence['metric']}" for f in findings]
    insufficient = [f"{a}={g}" for a, d in attributes_out.items() for g in d["insufficient_groups"]]
    summary = (f"{overall_viewers} viewers, {len(frame)} test ratings; {len(judged)} metric(s) judged "
               f"({', '.join(judged)}); "
               + (f"disparity outside {low}–{high} for {', '.join(failing)}" if failing
                  else f"no significant disparity outside {low}–{high}")
               + (f"; not enough data for {', '.join(insufficient)}" if insufficient else ""))
    return CheckOutcome(name="fairness.model", summary=summary, results=results, findings=findings)
