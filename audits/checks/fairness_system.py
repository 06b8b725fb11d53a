"""System-level fairness from telemetry over a window: how each group of viewers is served, and
which movies get exposure.

Per protected attribute and group: from the serving prediction log, requests, personalization rate
(answers not from the fallback), fallback rate, error rate and latency p50/p95; from the platform's
own recommendation lines, availability (status 200 within 600 ms, as the platform sees it) and the
client-side p95 latency; and online quality (the share of served lists followed by a watch of one of
their movies, the monitoring app's definition). Personalization rate, availability and online
quality are judged like the model-level disparities (ratio to the reference group — the group with
the most requests — outside the band, and a significant two-proportion test); a p95 latency fails
when it exceeds the reference's by more than ``SYSTEM_LATENCY_BAND_MS`` and by the band's upper ratio.

Exposure: the share of recommended slots by genre, release decade and popularity tier, against the
share of watches in the same window. A category holding at least ``EXPOSURE_MIN_SHARE`` of either
whose ratio lies outside ``EXPOSURE_BAND`` is marked "outside"; with ``EXPOSURE_FINDINGS`` on it is
also a (low severity) finding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from audits.checks.base import CheckOutcome, FindingDraft, rounded
from audits.checks.fairness_model import UNKNOWN
from portal.stats import two_proportion_p_value

# metric -> (successes, trials) columns of the group table, judged by ratio and a two-proportion test
JUDGED_RATES = {
    "personalization_rate": ("personalized", "requests"),
    "availability": ("client_ok", "client_requests"),
    "online_quality": ("succeeded", "served"),
}
# latency column -> its label; judged by the margin in ms and the band's upper ratio
JUDGED_LATENCIES = {"latency_p95_ms": "server p95 latency", "client_latency_p95_ms": "client-side p95 latency"}
PLATFORM_TIMEOUT_MS = 600


def _judge_rate(table: pd.DataFrame, row: pd.Series, ref: pd.Series, metric: str, num: str, den: str, low: float,
                high: float, alpha: Any, min_requests: int) -> dict[str, Any]:
    """One rate of one group against the reference's: pass, fail, not_significant (outside the band,
    not significant), insufficient_data (too few trials of this rate on either side) or unavailable
    (its source is not installed or has no rows) — never skipped. A reference rate of 0 against a
    non-zero one is an infinite ratio, outside the band."""
    if metric not in table.columns or den not in table.columns:
        return {"verdict": "unavailable", "reason": "its source has no data in the window"}
    trials, ref_trials = float(row.get(den) or 0), float(ref.get(den) or 0)
    if trials < min_requests or ref_trials < min_requests:
        return {"verdict": "insufficient_data", "trials": int(trials), "reference_trials": int(ref_trials),
                "reason": f"{int(trials)} vs {int(ref_trials)} (reference) {den.replace('_', ' ')}; "
                          f"at least {min_requests} each are needed"}
    value, ref_value = float(row[metric]), float(ref[metric])
    p_value = two_proportion_p_value(successes_a=float(row[num]), trials_a=trials, successes_b=float(ref[num]),
                                     trials_b=ref_trials)
    out: dict[str, Any] = {"p_value": rounded(p_value, 6), "reference_value": rounded(ref_value)}
    if ref_value == 0:
        out["ratio"] = 1.0 if value == 0 else None
        out["ratio_infinite"] = value != 0
    else:
        out["ratio"] = rounded(value / ref_value)
    outside = out.get("ratio_infinite") or not low <= out["ratio"] <= high
    if not outside:
        out["verdict"] = "pass"
    elif alpha is None or (p_value is not None and p_value < float(alpha)):
        out["verdict"] = "fail"
    else:
        out["verdict"] = "not_significant"
        out["reason"] = f"ratio outside {low}–{high} but not significant (p={rounded(p_value, 6)}): not enough data to tell"
    return out


def _group_table(attribute: str, values: pd.Series, server: pd.DataFrame | None, client: pd.DataFrame | None,
                 quality: pd.DataFrame | None) -> pd.DataFrame:
    """One row per group of ``attribute`` with every figure the sources allow."""
    parts = []
    if server is not None and not server.empty:
        frame = server.assign(group=server["viewer"].map(values).fillna(UNKNOWN))
        grouped = frame.groupby("group")
        parts.append(pd.DataFrame({
            "requests": grouped.size(), "viewers": grouped["viewer"].nunique(),
            "personalized": grouped["personalized"].sum(), "fallback": grouped["fallback"].sum(),
            "errors": grouped["error"].sum(),
            "latency_p50_ms": grouped["latency_ms"].quantile(0.5), "latency_p95_ms": grouped["latency_ms"].quantile(0.95),
        }))
    if client is not None and not client.empty:
        frame = client.assign(group=client["viewer"].map(values).fillna(UNKNOWN))
        grouped = frame.groupby("group")
        parts.append(pd.DataFrame({
            "client_requests": grouped.size(), "client_viewers": grouped["viewer"].nunique(),
            "client_ok": grouped["ok"].sum(), "client_latency_p95_ms": grouped["response_ms"].quantile(0.95),
        }))
    if quality is not None and not quality.empty:
        frame = quality.join(values.rename("group"), how="inner")
        parts.append(frame.groupby("group")[["trials", "successes"]].sum()
                     .rename(columns={"trials": "served", "successes": "succeeded"}))
    table = pd.concat(parts, axis=1) if parts else pd.DataFrame()
    for column in ("requests", "client_requests", "served", "succeeded", "personalized", "client_ok"):
        if column in table.columns:
            table[column] = table[column].fillna(0)
    if "requests" in table.columns:
        table["personalization_rate"] = table["personalized"] / table["requests"].where(table["requests"] > 0)
        table["fallback_rate"] = table["fallback"] / table["requests"].where(table["requests"] > 0)
        table["error_rate"] = table["errors"] / table["requests"].where(table["requests"] > 0)
    if "client_requests" in table.columns:
        table["availability"] = table["client_ok"] / table["client_requests"].where(table["client_requests"] > 0)
    if "served" in table.columns:
        table["online_quality"] = table["succeeded"] / table["served"].where(table["served"] > 0)
    size = table[[c for c in ("requests", "client_requests") if c in table.columns]].max(axis=1) \
        if not table.empty else pd.Series(dtype=float)
    table["size"] = size
    return table


def group_service(
    *,
    server: pd.DataFrame | None,
    client: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    attributes: pd.DataFrame,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    notes: dict[str, str],
) -> tuple[dict[str, Any], list[FindingDraft]]:
    """Per-group service figures and their findings.

    ``server``: the prediction log — viewer, latency_ms, status, fallback (bool), one row per answer.
    ``client``: the platform's recommendation lines — viewer, status, response_ms.
    ``quality``: index viewer; trials (served lists) and successes (followed by a watch).
    Any of them may be None (not installed) or empty.
    """
    low, high = (float(x) for x in config["SYSTEM_BAND"])
    alpha = config.get("FAIRNESS_ALPHA")
    min_requests = int(config["SYSTEM_MIN_GROUP_REQUESTS"])
    latency_margin = float(config["SYSTEM_LATENCY_BAND_MS"])
    severity = str(config["SYSTEM_FINDING_SEVERITY"])
    if server is not None and not server.empty:
        server = server.copy()
        server["fallback"] = server["fallback"].astype(bool)
        server["error"] = server["status"] != 200
        server["personalized"] = ~server["fallback"] & ~server["error"]
    if client is not None and not client.empty:
        client = client.copy()
        client["ok"] = (client["status"] == 200) & (client["response_ms"] <= PLATFORM_TIMEOUT_MS)
    viewer_ids = set()
    for frame in (server, client):
        if frame is not None and not frame.empty:
            viewer_ids |= set(frame["viewer"].unique().tolist())
    attrs = attributes.reindex(sorted(viewer_ids))
    out: dict[str, Any] = {
        "requests": int(len(server)) if server is not None else None,
        "client_requests": int(len(client)) if client is not None else None,
        "viewers": len(viewer_ids), "band": [low, high], "latency_margin_ms": latency_margin, "alpha": alpha,
        "min_group_requests": min_requests, "sources": notes, "attributes": {},
    }
    findings: list[FindingDraft] = []
    for name in config["FAIRNESS_ATTRIBUTES"]:
        values = attrs[name] if name in attrs.columns else pd.Series(UNKNOWN, index=attrs.index)
        values = values.fillna(UNKNOWN).astype(str).replace({"": UNKNOWN})
        table = _group_table(name, values, server, client, quality)
        if table.empty:
            out["attributes"][name] = {"reference_group": None, "groups": []}
            continue
        known = table.drop(index=UNKNOWN, errors="ignore")
        reference = str(known["size"].idxmax()) if not known.empty else None
        ref = table.loc[reference] if reference is not None else None
        groups = []
        for group, row in table.sort_values("size", ascending=False).iterrows():
            entry: dict[str, Any] = {"group": str(group), "disparities": {}}
            for column in ("requests", "viewers", "client_requests"):
                if column in row and not pd.isna(row[column]):
                    entry[column] = int(row[column])
            for column in ("personalization_rate", "fallback_rate", "error_rate", "availability", "online_quality"):
                entry[column] = rounded(row[column]) if column in row else None
            for column in ("latency_p50_ms", "latency_p95_ms", "client_latency_p95_ms"):
                entry[column] = rounded(row[column], 1) if column in row else None
            if group == UNKNOWN:
                entry["verdict"] = "excluded"
            elif row["size"] < min_requests:
                entry["verdict"] = "insufficient_data"
                entry["reason"] = f"{int(row['size'])} requests; at least {min_requests} are needed"
            elif ref is None or ref["size"] < min_requests:
                entry["verdict"] = "insufficient_data"
                entry["reason"] = "the reference group has too few requests"
            elif group == reference:
                entry["verdict"] = "reference"
            else:
                # Every judged figure is judged (or says why it is not); each one outside the band is its
                # own finding, so a waiver of one never covers another.
                failing = []
                for metric, (num, den) in JUDGED_RATES.items():
                    entry["disparities"][metric] = d = _judge_rate(table, row, ref, metric, num, den, low, high,
                                                                   alpha, min_requests)
                    if d["verdict"] == "fail":
                        failing.append(metric)
                for metric in JUDGED_LATENCIES:
                    if metric not in table.columns or pd.isna(row.get(metric)) or pd.isna(ref.get(metric)):
                        entry["disparities"][metric] = {"verdict": "unavailable",
                                                        "reason": "no latency figures for this group or the reference"}
                        continue
                    delta = float(row[metric] - ref[metric])
                    ratio = float(row[metric] / ref[metric]) if ref[metric] else None
                    outside = delta > latency_margin and (ratio is None or ratio > high)
                    # A p95 of a few dozen requests moves with one or two slow answers: the difference must
                    # also be significant — the group's share of requests slower than the reference's p95
                    # against the reference's own share (two-proportion test at alpha).
                    frame, column = (server, "latency_ms") if metric == "latency_p95_ms" else (client, "response_ms")
                    groups_of = frame["viewer"].map(values).fillna(UNKNOWN)
                    own, theirs = frame.loc[groups_of == group, column], frame.loc[groups_of == reference, column]
                    cut = float(ref[metric])
                    p_value = two_proportion_p_value(
                        successes_a=float((own > cut).sum()), trials_a=float(len(own)),
                        successes_b=float((theirs > cut).sum()), trials_b=float(len(theirs)))
                    significant = alpha is None or (p_value is not None and p_value < float(alpha))
                    verdict = "pass" if not outside else "fail" if significant else "not_significant"
                    entry["disparities"][metric] = {
                        "difference_ms": rounded(delta, 1), "ratio": rounded(ratio),
                        "reference_value": rounded(ref[metric], 1), "p_value": rounded(p_value, 6),
                        "slower_share": rounded((own > cut).mean()) if len(own) else None,
                        "reference_slower_share": rounded((theirs > cut).mean()) if len(theirs) else None,
                        "verdict": verdict}
                    if verdict == "not_significant":
                        entry["disparities"][metric]["reason"] = (
                            f"{delta:.0f} ms slower at p95, but the share of requests slower than the reference's "
                            f"p95 does not differ significantly (p={rounded(p_value, 6)}): not enough data to tell")
                    if verdict == "fail":
                        failing.append(metric)
                verdicts = {d["verdict"] for d in entry["disparities"].values()}
                entry["verdict"] = "fail" if failing else ("inconclusive" if "not_significant" in verdicts else "pass")
                unclear = [f"{m}: {d['reason']}" for m, d in entry["disparities"].items()
                           if d["verdict"] in ("not_significant", "insufficient_data", "unavailable", "undefined")]
                if unclear:
                    entry["reason"] = "; ".join(unclear)
                for metric in failing:
                    d = entry["disparities"][metric]
                    if metric in JUDGED_LATENCIES:
                        worse = True
                        figures = f"{JUDGED_LATENCIES[metric]} {entry[metric]} ms vs {d['reference_value']} ms"
                    else:
                        worse = d.get("ratio_infinite") is not True and d["ratio"] < low
                        ratio = "∞" if d.get("ratio_infinite") else d["ratio"]
                        figures = (f"{metric.replace('_', ' ')} {entry[metric]} vs {d['reference_value']} "
                                   f"(ratio {ratio} outside {low}–{high})")
                    findings.append(FindingDraft(
                        check="fairness.service", subject=f"live:{name}={group}:{metric}", severity=severity,
                        title=(f"Live service: {name}={group} served {'worse' if worse else 'better'} than "
                               f"{name}={reference} — {figures}"),
                        evidence={"attribute": name, "group": str(group), "reference_group": reference,
                                  "metric": metric,
                                  "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
                                  "group_figures": entry, "band": [low, high], "alpha": alpha,
                                  "reference_size": int(ref["size"]), "failing": failing},
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
            if outside and config.get("EXPOSURE_FINDINGS"):
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
        outcome.summary = (f"{service['requests'] or 0} served and {service['client_requests'] or 0} client-side "
                           f"requests from {service['viewers']} viewers; {len(service_findings)} group finding(s), "
                           f"{len(exposure_findings)} exposure finding(s)")
    return outcome
