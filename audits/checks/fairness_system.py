"""System-level fairness from telemetry over a window: how each group of viewers is served, and
which movies get exposure.

Per protected attribute and group (from the prediction log joined with the viewers): requests,
personalization rate (answers not from the fallback), fallback rate, error rate, latency p50/p95,
and online quality (the share of served lists followed by a watch of one of their movies, as the
monitoring app defines it). Personalization rate and online quality are judged like the model-level
disparities (ratio to the reference group outside the band and a significant two-proportion test);
a group's p95 latency fails when it exceeds the reference's by more than ``SYSTEM_LATENCY_BAND_MS``
and by the band's upper ratio.

Exposure: the share of recommended slots by genre, release decade and popularity tier, against the
share of watches in the same window. A category holding at least ``EXPOSURE_MIN_SHARE`` of either
whose ratio lies outside ``EXPOSURE_BAND`` is a (low severity) finding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from audits.checks.base import CheckOutcome, FindingDraft, rounded
from audits.checks.fairness_model import UNKNOWN, two_proportion_p_value

JUDGED_RATES = {
    "personalization_rate": ("personalized", "requests"),
    "online_quality": ("succeeded", "served"),
}


def _group_table(frame: pd.DataFrame, attribute: str, quality: pd.DataFrame | None,
                 viewer_groups: pd.Series) -> pd.DataFrame:
    grouped = frame.groupby(attribute)
    table = pd.DataFrame({
        "requests": grouped.size(),
        "viewers": grouped["viewer"].nunique(),
        "personalized": grouped["personalized"].sum(),
        "fallback": grouped["fallback"].sum(),
        "errors": grouped["error"].sum(),
        "latency_p50": grouped["latency_ms"].quantile(0.5),
        "latency_p95": grouped["latency_ms"].quantile(0.95),
    })
    if quality is not None:
        per_viewer = quality.join(viewer_groups.rename("group"), how="inner")
        sums = per_viewer.groupby("group")[["trials", "successes"]].sum()
        table["served"] = sums["trials"].reindex(table.index).fillna(0)
        table["succeeded"] = sums["successes"].reindex(table.index).fillna(0)
    table["personalization_rate"] = table["personalized"] / table["requests"]
    table["fallback_rate"] = table["fallback"] / table["requests"]
    table["error_rate"] = table["errors"] / table["requests"]
    if "served" in table.columns:
        table["online_quality"] = table["succeeded"] / table["served"].where(table["served"] > 0)
    return table


def group_service(
    *,
    requests: pd.DataFrame,
    attributes: pd.DataFrame,
    quality: pd.DataFrame | None,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    quality_note: str,
) -> tuple[dict[str, Any], list[FindingDraft]]:
    """Per-group service figures and their findings.

    ``requests``: viewer, latency_ms, status, fallback (bool) — one row per answer.
    ``quality``: index viewer; trials (served lists) and successes (followed by a watch), or None.
    """
    low, high = (float(x) for x in config["SYSTEM_BAND"])
    alpha = config.get("FAIRNESS_ALPHA")
    min_requests = int(config["SYSTEM_MIN_GROUP_REQUESTS"])
    latency_margin = float(config["SYSTEM_LATENCY_BAND_MS"])
    severity = str(config["SYSTEM_FINDING_SEVERITY"])
    frame = requests.copy()
    frame["fallback"] = frame["fallback"].astype(bool)
    frame["error"] = frame["status"] != 200
    frame["personalized"] = ~frame["fallback"] & ~frame["error"]
    attrs = attributes.reindex(frame["viewer"].unique())
    out: dict[str, Any] = {"requests": int(len(frame)), "viewers": int(frame["viewer"].nunique()),
                           "band": [low, high], "latency_margin_ms": latency_margin,
                           "online_quality": quality_note, "attributes": {}}
    findings: list[FindingDraft] = []
    for name in config["FAIRNESS_ATTRIBUTES"]:
        values = attrs[name] if name in attrs.columns else pd.Series(UNKNOWN, index=attrs.index)
        values = values.fillna(UNKNOWN).astype(str)
        frame[name] = frame["viewer"].map(values).fillna(UNKNOWN)
        table = _group_table(frame, name, quality, values)
        known = table.drop(index=UNKNOWN, errors="ignore")
        reference = str(known["requests"].idxmax()) if not known.empty else None
        ref = table.loc[reference] if reference is not None else None
        groups = []
        for group, row in table.sort_values("requests", ascending=False).iterrows():
            entry: dict[str, Any] = {
                "group": str(group), "requests": int(row["requests"]), "viewers": int(row["viewers"]),
                "personalization_rate": rounded(row["personalization_rate"]),
                "fallback_rate": rounded(row["fallback_rate"]), "error_rate": rounded(row["error_rate"]),
                "latency_p50_ms": rounded(row["latency_p50"], 1), "latency_p95_ms": rounded(row["latency_p95"], 1),
                "online_quality": rounded(row.get("online_quality")) if "online_quality" in row else None,
                "disparities": {},
            }
            if group == UNKNOWN:
                entry["verdict"] = "excluded"
            elif row["requests"] < min_requests:
                entry["verdict"] = "insufficient_data"
                entry["reason"] = f"{int(row['requests'])} requests; at least {min_requests} are needed"
            elif ref is None or ref["requests"] < min_requests:
                entry["verdict"] = "insufficient_data"
                entry["reason"] = "the reference group has too few requests"
            elif group == reference:
                entry["verdict"] = "reference"
            else:
                failing = []
                for metric, (num, den) in JUDGED_RATES.items():
                    if metric not in table.columns or pd.isna(row.get(metric)) or pd.isna(ref.get(metric)):
                        continue
                    ratio = row[metric] / ref[metric] if ref[metric] else None
                    p_value = two_proportion_p_value(float(row[num]), float(row[den]), float(ref[num]), float(ref[den]))
                    verdict = "pass"
                    if ratio is None:
                        verdict = "undefined"
                    elif not low <= ratio <= high:
                        verdict = "fail" if alpha is None or (p_value is not None and p_value < float(alpha)) \
                            else "not_significant"
                    entry["disparities"][metric] = {"ratio": rounded(ratio), "p_value": rounded(p_value, 6),
                                                    "reference_value": rounded(ref[metric]), "verdict": verdict}
                    if verdict == "fail":
                        failing.append(metric)
                delta = float(row["latency_p95"] - ref["latency_p95"])
                ratio = float(row["latency_p95"] / ref["latency_p95"]) if ref["latency_p95"] else None
                latency_fail = delta > latency_margin and (ratio is None or ratio > high)
                entry["disparities"]["latency_p95_ms"] = {
                    "difference_ms": rounded(delta, 1), "ratio": rounded(ratio),
                    "reference_value": rounded(ref["latency_p95"], 1), "verdict": "fail" if latency_fail else "pass"}
                if latency_fail:
                    failing.append("latency_p95_ms")
                entry["verdict"] = "fail" if failing else "pass"
                if failing:
                    parts = []
                    for metric in failing:
                        d = entry["disparities"][metric]
                        if metric == "latency_p95_ms":
                            parts.append(f"p95 latency {entry['latency_p95_ms']} ms vs {d['reference_value']} ms")
                        else:
                            parts.append(f"{metric.replace('_', ' ')} {entry[metric]} vs {d['reference_value']} "
                                         f"(ratio {d['ratio']})")
                    findings.append(FindingDraft(
                        check="fairness.service", subject=f"live:{name}={group}", severity=severity,
                        title=f"Live service: {name}={group} served worse than {name}={reference} — " + "; ".join(parts),
                        evidence={"attribute": name, "group": str(group), "reference_group": reference,
                                  "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
                                  "group_figures": entry, "band": [low, high], "alpha": alpha,
                                  "reference_requests": int(ref["requests"]), "failing": failing},
                    ))
            groups.append(entry)
        out["attributes"][name] = {"reference_group": reference, "groups": groups}
    return out, findings


def popularity_cuts(catalog_popularity: pd.Series, quantiles: tuple[float, float]) -> tuple[float, float] | None:
    """The popularity values at the tier quantiles over the whole catalog (None without data)."""
    known = catalog_popularity.dropna().astype(float)
    if known.empty:
        return None
    q_mid, q_head = np.quantile(known, quantiles)
    return float(q_mid), float(q_head)


def _tiers(popularity: pd.Series, cuts: tuple[float, float] | None) -> pd.Series:
    if cuts is None:
        return pd.Series(UNKNOWN, index=popularity.index)
    q_mid, q_head = cuts
    tiers = pd.Series("long tail", index=popularity.index)
    tiers[popularity >= q_mid] = "mid"
    tiers[popularity >= q_head] = "head"
    tiers[popularity.isna()] = UNKNOWN
    return tiers


def exposure(
    *,
    recommended: pd.Series,
    watched: pd.Series,
    movies: pd.DataFrame,
    cuts: tuple[float, float] | None,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
) -> tuple[dict[str, Any], list[FindingDraft]]:
    """Share of recommended slots vs share of watches by genre, release decade and popularity tier.

    ``recommended``/``watched``: movie ids, one per recommended slot / per watch session.
    ``movies``: index movie id; genres (list), year, popularity. ``cuts``: the catalog's popularity at
    the tier quantiles (long tail below the first, head from the second).
    """
    low, high = (float(x) for x in config["EXPOSURE_BAND"])
    min_share = float(config["EXPOSURE_MIN_SHARE"])
    severity = str(config["EXPOSURE_FINDING_SEVERITY"])
    catalog = movies.copy()
    catalog["decade"] = catalog["year"].map(lambda y: f"{int(y) // 10 * 10}s" if pd.notna(y) and y else UNKNOWN)
    catalog["popularity_tier"] = _tiers(catalog["popularity"].astype(float), cuts)
    out: dict[str, Any] = {"recommended_slots": int(len(recommended)), "watches": int(len(watched)),
                           "popularity_cuts": list(cuts) if cuts else None,
                           "popularity_quantiles": list(config["POPULARITY_TIERS"]),
                           "band": [low, high], "min_share": min_share, "dimensions": {}}
    findings: list[FindingDraft] = []

    def shares(ids: pd.Series, dimension: str) -> pd.Series:
        if ids.empty:
            return pd.Series(dtype=float)
        if dimension == "genre":
            genres = catalog["genres"].reindex(ids.to_numpy())
            weights: dict[str, float] = {}
            for value in genres:
                names = list(value) if isinstance(value, list) and value else [UNKNOWN]
                for g in names:
                    weights[g] = weights.get(g, 0.0) + 1.0 / len(names)
            series = pd.Series(weights)
        else:
            series = catalog[dimension].reindex(ids.to_numpy()).fillna(UNKNOWN).value_counts().astype(float)
        return series / series.sum()

    for dimension in ("genre", "decade", "popularity_tier"):
        rec, wat = shares(recommended, dimension), shares(watched, dimension)
        rows = []
        for category in sorted(set(rec.index) | set(wat.index)):
            r, w = float(rec.get(category, 0.0)), float(wat.get(category, 0.0))
            ratio = r / w if w else None
            judged = category != UNKNOWN and max(r, w) >= min_share and not rec.empty and not wat.empty
            outside = judged and (ratio is None or not low <= ratio <= high)
            rows.append({"category": category, "recommended_share": rounded(r), "watched_share": rounded(w),
                         "ratio": rounded(ratio), "verdict": "outside" if outside else ("ok" if judged else "not judged")})
            if outside:
                direction = "over-exposed" if ratio is None or ratio > high else "under-exposed"
                findings.append(FindingDraft(
                    check="fairness.exposure", subject=f"live:{dimension}={category}", severity=severity,
                    title=(f"Exposure: {dimension.replace('_', ' ')} '{category}' is {direction} — {r:.1%} of "
                           f"recommendations vs {w:.1%} of watches"),
                    evidence={"dimension": dimension, "category": category, "recommended_share": rounded(r),
                              "watched_share": rounded(w), "ratio": rounded(ratio), "band": [low, high],
                              "recommended_slots": int(len(recommended)), "watches": int(len(watched)),
                              "window": {"start": window[0].isoformat(), "end": window[1].isoformat()}},
                ))
        out["dimensions"][dimension] = sorted(rows, key=lambda x: -(x["recommended_share"] or 0))
    return out, findings


def system_fairness_outcome(
    *, service: dict[str, Any] | None, service_findings: list[FindingDraft], exposure_results: dict[str, Any] | None,
    exposure_findings: list[FindingDraft], note: str = "",
) -> CheckOutcome:
    outcome = CheckOutcome(name="fairness.system")
    outcome.results = {"service": service, "exposure": exposure_results, "note": note}
    outcome.findings = service_findings + exposure_findings
    if service is None:
        outcome.status = "unavailable"
        outcome.summary = note or "no telemetry"
    else:
        outcome.summary = (f"{service['requests']} requests from {service['viewers']} viewers; "
                           f"{len(service_findings)} group finding(s), {len(exposure_findings)} exposure finding(s)")
    return outcome
