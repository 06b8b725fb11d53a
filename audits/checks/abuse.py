"""Abuse checks over event data: rating poisoning, rating velocity, scraping, login abuse.

Each function takes plain data frames (read by ``audits.sources``) and the knobs, and returns a
``CheckOutcome`` whose findings name the accounts, movies or clients with the counts and the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from audits.checks.base import CheckOutcome, FindingDraft, jsonable, rounded

MAX_LISTED = 200  # at most this many account ids are listed in one finding's evidence


def _window_dict(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def _densest_window(times: np.ndarray, width: np.timedelta64) -> tuple[int, int]:
    """Indices [i, j) of the largest run of sorted ``times`` that fits in ``width``."""
    best, best_i, best_j, j = 0, 0, 0, 0
    for i in range(len(times)):
        if j < i:
            j = i
        while j < len(times) and times[j] - times[i] <= width:
            j += 1
        if j - i > best:
            best, best_i, best_j = j - i, i, j
    return best_i, best_j


def rating_poisoning(
    *,
    events: pd.DataFrame,
    history: pd.DataFrame,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    movie_titles: dict[str, str] | None = None,
) -> CheckOutcome:
    """Bursts of extreme ratings on one movie from new or low-history accounts (a shilling attack).

    ``events``: viewer, movie, rating, time — the rating events in the window.
    ``history``: index viewer; ``total_ratings`` (all time, up to the window's end) and ``first_seen``
    (the account's first event). An account is *suspicious* when it has at most
    ``POISON_LOW_HISTORY_MAX`` ratings ever or its first event is less than ``POISON_NEW_ACCOUNT_DAYS``
    before the rating. A burst is at least ``POISON_MIN_ACCOUNTS`` suspicious accounts giving one movie
    the same extreme rating within ``POISON_BURST_HOURS``, making up at least ``POISON_MIN_SHARE`` of
    that movie's ratings in the burst.
    """
    outcome = CheckOutcome(name="security.rating_poisoning")
    movie_titles = movie_titles or {}
    low_history = int(config["POISON_LOW_HISTORY_MAX"])
    new_days = float(config["POISON_NEW_ACCOUNT_DAYS"])
    width = np.timedelta64(int(float(config["POISON_BURST_HOURS"]) * 3600), "s")
    min_accounts = int(config["POISON_MIN_ACCOUNTS"])
    min_share = float(config["POISON_MIN_SHARE"])
    outcome.results = {"window": _window_dict(*window), "rating_events": int(len(events)),
                       "rules": {"low_history_max": low_history, "new_account_days": new_days,
                                 "burst_hours": float(config["POISON_BURST_HOURS"]),
                                 "min_accounts": min_accounts, "min_share": min_share},
                       "bursts": []}
    if events.empty:
        outcome.summary = "no rating events in the window"
        return outcome
    ev = events.copy()
    ev["time"] = pd.to_datetime(ev["time"], utc=True)
    hist = history.reindex(ev["viewer"].unique())
    total = ev["viewer"].map(hist["total_ratings"]).fillna(0)
    first_seen = pd.to_datetime(ev["viewer"].map(hist["first_seen"]), utc=True)
    age_days = (ev["time"] - first_seen.fillna(ev["time"])).dt.total_seconds() / 86400
    ev["low_history"] = total <= low_history
    ev["new_account"] = age_days < new_days
    ev["suspicious"] = ev["low_history"] | ev["new_account"]
    outcome.results["suspicious_rating_events"] = int(ev["suspicious"].sum())
    for value in config["POISON_EXTREME_VALUES"]:
        candidates = ev[ev["suspicious"] & (ev["rating"] == value)]
        counts = candidates.groupby("movie")["viewer"].nunique()
        for movie in counts[counts >= min_accounts].index:
            rows = candidates[candidates["movie"] == movie].sort_values("time")
            # one rating per account: its first extreme rating of this movie
            rows = rows.drop_duplicates("viewer", keep="first")
            times = rows["time"].to_numpy(dtype="datetime64[ns]")
            i, j = _densest_window(times, width)
            burst = rows.iloc[i:j]
            if len(burst) < min_accounts:
                continue
            start, end = burst["time"].iloc[0], burst["time"].iloc[-1]
            all_in_burst = ev[(ev["movie"] == movie) & (ev["time"] >= start) & (ev["time"] <= end)]
            share = len(burst) / max(len(all_in_burst), 1)
            others = ev[(ev["movie"] == movie) & ~ev.index.isin(burst.index)]
            entry = {
                "movie": movie, "title": movie_titles.get(movie, ""), "rating": int(value),
                "accounts": int(len(burst)), "start": start.isoformat(), "end": end.isoformat(),
                "ratings_of_movie_in_burst": int(len(all_in_burst)), "share": rounded(share),
                "new_accounts": int(burst["new_account"].sum()), "low_history_accounts": int(burst["low_history"].sum()),
                "mean_rating_without_burst": rounded(others["rating"].mean()) if len(others) else None,
                "flagged": share >= min_share,
            }
            outcome.results["bursts"].append(entry)
            if share < min_share:
                continue
            accounts = sorted(int(v) for v in burst["viewer"])
            label = movie_titles.get(movie) or movie
            outcome.findings.append(FindingDraft(
                check="security.rating_poisoning", subject=f"movie={movie}:rating={int(value)}", severity="high",
                title=(f"Rating poisoning: {len(burst)} new/low-history accounts rated '{label}' {int(value)} "
                       f"between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"),
                evidence={**entry, "account_ids": accounts[:MAX_LISTED], "accounts_listed": min(len(accounts), MAX_LISTED),
                          "account_history": {
                              "median_total_ratings": rounded(total[burst.index].median()),
                              "max_total_ratings": int(total[burst.index].max()),
                          },
                          "window": _window_dict(*window)},
            ))
    outcome.summary = (f"{len(outcome.findings)} burst(s) of extreme ratings from new or low-history accounts"
                       if outcome.findings else
                       f"{len(ev)} rating events, {int(ev['suspicious'].sum())} from new or low-history accounts; "
                       "no burst")
    return outcome


def rating_velocity(
    *,
    events: pd.DataFrame,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    skip_movies: set[str] | None = None,
    skip_accounts: set[int] | None = None,
    movie_titles: dict[str, str] | None = None,
) -> CheckOutcome:
    """Rating-velocity anomalies: a movie rated far more than its usual share, or an account rating like a bot.

    Movies: ratings are counted per ``VELOCITY_BUCKET_MINUTES`` bucket over the window. A movie's
    count in a bucket is judged against its share of the ratings in the rest of the window
    (add-one smoothed over the movies rated in the window), applied to the bucket's own total: the
    test is conditional on how busy the bucket was, so a rise in overall traffic (the platform
    getting busier, a live simulator after a backfill) raises nothing. A bucket is anomalous when
    it holds at least ``VELOCITY_MIN_COUNT`` ratings of the movie, at least ``VELOCITY_FACTOR`` times
    the expected count, and the binomial tail P(X ≥ count) is below ``VELOCITY_ALPHA`` divided by
    the number of (movie, bucket) cells judged — a Bonferroni correction over movies × buckets, so
    ``VELOCITY_ALPHA`` bounds the chance that a clean window raises any movie finding. A spike is
    *one-sided* when at least ``VELOCITY_ONE_SIDED_SHARE`` of its ratings are the same extreme value
    (``POISON_EXTREME_VALUES``): that moves the movie's average and is a ``medium`` finding (it blocks
    the gate). A surge of ordinary, mixed ratings — a movie catching on, or being recommended to many
    viewers at once — is a ``VELOCITY_SURGE_SEVERITY`` (``low``) finding: reported, not blocking.
    Accounts: more than ``ACCOUNT_MAX_RATINGS_PER_MINUTE`` ratings within one minute (``medium``).

    Spikes already explained by a rating-poisoning finding (its movie, or mostly its accounts in
    ``skip_accounts``) are reported in the results but raise no second finding.
    """
    outcome = CheckOutcome(name="security.rating_velocity")
    skip_movies = skip_movies or set()
    skip_accounts = skip_accounts or set()
    movie_titles = movie_titles or {}
    bucket_minutes = int(config["VELOCITY_BUCKET_MINUTES"])
    min_count = int(config["VELOCITY_MIN_COUNT"])
    factor = float(config["VELOCITY_FACTOR"])
    alpha = float(config["VELOCITY_ALPHA"])
    one_sided_share = float(config["VELOCITY_ONE_SIDED_SHARE"])
    surge_severity = str(config["VELOCITY_SURGE_SEVERITY"])
    extremes = [int(v) for v in config["POISON_EXTREME_VALUES"]]
    per_minute_max = int(config["ACCOUNT_MAX_RATINGS_PER_MINUTE"])
    start, end = window
    n_buckets = max(1, int(np.ceil((end - start).total_seconds() / (bucket_minutes * 60))))
    outcome.results = {"window": _window_dict(start, end), "bucket_minutes": bucket_minutes, "buckets": n_buckets,
                       "rules": {"min_count": min_count, "factor": factor, "alpha": alpha,
                                 "correction": "Bonferroni over movies × buckets",
                                 "one_sided_share": one_sided_share, "surge_severity": surge_severity},
                       "movies": [], "accounts": [], "covered_by_poisoning": sorted(skip_movies)}
    if events.empty:
        outcome.summary = "no rating events in the window"
        return outcome
    ev = events.copy()
    ev["time"] = pd.to_datetime(ev["time"], utc=True)
    ev["bucket"] = ((ev["time"] - pd.Timestamp(start)).dt.total_seconds() // (bucket_minutes * 60)).astype(int)
    per_bucket = ev.groupby(["movie", "bucket"]).size().rename("count").reset_index()
    totals = ev.groupby("movie").size()
    bucket_totals = ev.groupby("bucket").size()
    n_movies, n_ratings = int(len(totals)), int(len(ev))
    tests = n_movies * n_buckets
    p_limit = alpha / max(tests, 1)
    outcome.results.update({"movies_rated": n_movies, "tests": tests, "p_limit": float(f"{p_limit:.3g}")})
    hot = per_bucket[per_bucket["count"] >= min_count]
    for _, row in hot.iterrows():
        movie, count = row["movie"], int(row["count"])
        in_bucket = int(bucket_totals[row["bucket"]])
        rest, rest_all = int(totals[movie]) - count, n_ratings - in_bucket
        share = (rest + 1) / (rest_all + n_movies)  # the movie's share elsewhere, add-one smoothed
        expected = in_bucket * share
        p_value = float(stats.binom.sf(count - 1, in_bucket, min(share, 1.0)))
        anomalous = bool(count >= factor * expected and p_value < p_limit)
        bucket_start = pd.Timestamp(start) + timedelta(minutes=bucket_minutes * int(row["bucket"]))
        spike = ev[(ev["movie"] == movie) & (ev["bucket"] == row["bucket"])]
        raters = spike["viewer"]
        stars = spike["rating"].astype(int)
        extreme, extreme_share = max(((v, float((stars == v).mean())) for v in extremes),
                                     key=lambda pair: pair[1], default=(None, 0.0))
        one_sided = extreme is not None and extreme_share >= one_sided_share
        covered = movie in skip_movies or (
            bool(skip_accounts) and raters.isin(skip_accounts).mean() >= 0.5)
        entry = {"movie": movie, "title": movie_titles.get(movie, ""), "bucket_start": bucket_start.isoformat(),
                 "count": count, "bucket_ratings": in_bucket, "usual_share": rounded(share, 6),
                 "expected_per_bucket": rounded(expected, 2), "times_expected": rounded(count / expected, 1),
                 "p_value": float(f"{p_value:.3g}"), "anomalous": anomalous, "covered_by_poisoning": covered,
                 "mean_rating": rounded(stars.mean(), 2), "extreme_value": extreme,
                 "extreme_share": rounded(extreme_share, 2), "one_sided": one_sided}
        outcome.results["movies"].append(entry)
        if anomalous and not covered:
            kind = (f"{extreme_share:.0%} of them {extreme} stars" if one_sided
                    else f"mixed ratings (mean {stars.mean():.1f}): a surge, not one-sided")
            outcome.findings.append(FindingDraft(
                check="security.rating_velocity", subject=f"movie={movie}",
                severity="medium" if one_sided else surge_severity,
                title=(f"Rating velocity: '{movie_titles.get(movie) or movie}' got {count} of the {in_bucket} "
                       f"ratings in {bucket_minutes} min from {bucket_start:%Y-%m-%d %H:%M}, "
                       f"{count / expected:.0f}× its usual share ({expected:.1f} expected); {kind}"),
                evidence={**entry, "bucket_minutes": bucket_minutes, "p_limit": float(f"{p_limit:.3g}"),
                          "account_ids": sorted(int(v) for v in raters.unique())[:MAX_LISTED],
                          "accounts": int(raters.nunique()), "window": _window_dict(start, end)},
            ))
    counts = ev.groupby("viewer").size()
    minute = np.timedelta64(60, "s")
    for viewer in counts[counts > per_minute_max].index:
        times = np.sort(ev.loc[ev["viewer"] == viewer, "time"].to_numpy(dtype="datetime64[ns]"))
        i, j = _densest_window(times, minute)
        peak = j - i
        if peak <= per_minute_max:
            continue
        first = pd.Timestamp(times[i], tz="UTC")
        entry = {"account": int(viewer), "peak_per_minute": int(peak), "peak_start": first.isoformat(),
                 "ratings_in_window": int(counts[viewer])}
        outcome.results["accounts"].append(entry)
        outcome.findings.append(FindingDraft(
            check="security.rating_velocity", subject=f"account={int(viewer)}", severity="medium",
            title=f"Rating velocity: account {int(viewer)} rated {peak} movies within one minute from {first:%Y-%m-%d %H:%M}",
            evidence={**entry, "limit_per_minute": per_minute_max, "window": _window_dict(start, end)},
        ))
    outcome.summary = (f"{len(outcome.findings)} velocity anomaly(ies)" if outcome.findings
                       else f"{len(ev)} rating events; no velocity anomaly")
    return outcome


def scraping(
    *,
    requests: pd.DataFrame,
    active_viewers: set[int],
    known_viewers: set[int] | None,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    source: str,
) -> CheckOutcome:
    """Clients enumerating viewer ids or calling at abnormal rates (model stealing, scraping).

    ``requests``: client, viewer, time — one row per answered recommendation request in the window.
    ``active_viewers`` are the viewers the platform's event stream shows active around the window
    (their client asked for recommendations, or they rated or watched): the platform only asks for
    them, a scraper's calls leave no such trace.

    A client (not in ``TRUSTED_CLIENTS``) is flagged when it asked for at least
    ``SCRAPE_MIN_DISTINCT_VIEWERS`` distinct viewers *and* either walks ids in sequence (at least
    ``SCRAPE_SEQUENTIAL_SHARE`` of its consecutive requests ask for the previous id + 1) or asks
    mostly for viewers who are not active (``SCRAPE_INACTIVE_SHARE``); or when its peak rate exceeds
    ``SCRAPE_MAX_REQUESTS_PER_MINUTE`` while less than ``SCRAPE_PLATFORM_SHARE`` of its viewers are
    active (a client whose viewers are the platform's active viewers is the platform's own traffic).
    """
    outcome = CheckOutcome(name="security.scraping")
    trusted = set(config["TRUSTED_CLIENTS"])
    min_distinct = int(config["SCRAPE_MIN_DISTINCT_VIEWERS"])
    seq_share_min = float(config["SCRAPE_SEQUENTIAL_SHARE"])
    inactive_min = float(config["SCRAPE_INACTIVE_SHARE"])
    rate_max = int(config["SCRAPE_MAX_REQUESTS_PER_MINUTE"])
    platform_share = float(config["SCRAPE_PLATFORM_SHARE"])
    outcome.results = {"window": _window_dict(*window), "source": source, "requests": int(len(requests)),
                       "clients": []}
    if requests.empty:
        outcome.summary = f"no recommendation requests in the window ({source})"
        return outcome
    req = requests.copy()
    req["time"] = pd.to_datetime(req["time"], utc=True)
    req["client"] = req["client"].fillna("").astype(str).replace({"": "(unknown)"})
    for client, rows in req.sort_values("time").groupby("client", sort=True):
        viewers = rows["viewer"].astype("int64").to_numpy()
        distinct = np.unique(viewers)
        sequential = float(np.mean(np.diff(viewers) == 1)) if len(viewers) > 1 else 0.0
        inactive = [int(v) for v in distinct if v not in active_viewers]
        unknown = [int(v) for v in distinct if known_viewers is not None and v not in known_viewers]
        inactive_share = len(inactive) / len(distinct)
        per_minute = rows.groupby(rows["time"].dt.floor("min")).size()
        peak = int(per_minute.max())
        entry = {"client": client, "requests": int(len(rows)), "distinct_viewers": int(len(distinct)),
                 "sequential_share": rounded(sequential), "inactive_share": rounded(inactive_share),
                 "unknown_viewers": len(unknown), "peak_per_minute": peak,
                 "peak_minute": per_minute.idxmax().isoformat(),
                 "first": rows["time"].iloc[0].isoformat(), "last": rows["time"].iloc[-1].isoformat(),
                 "trusted": client in trusted}
        reasons = []
        if client not in trusted:
            if len(distinct) >= min_distinct and sequential >= seq_share_min:
                reasons.append(f"walks viewer ids in sequence ({sequential:.0%} of consecutive requests ask for id + 1)")
            if len(distinct) >= min_distinct and inactive_share >= inactive_min:
                reasons.append(f"{inactive_share:.0%} of the {len(distinct)} viewers it asked for were not active")
            if peak > rate_max and (1 - inactive_share) < platform_share:
                reasons.append(f"peaked at {peak} requests per minute (limit {rate_max}) and only "
                               f"{1 - inactive_share:.0%} of its viewers were active")
        entry["flagged"] = bool(reasons)
        entry["reasons"] = reasons
        outcome.results["clients"].append(entry)
        if reasons:
            outcome.findings.append(FindingDraft(
                check="security.scraping", subject=f"client={client}", severity="high",
                title=f"Scraping: client {client} requested {len(distinct)} distinct viewers in {len(rows)} requests — "
                      + "; ".join(reasons),
                evidence={**entry, "viewer_id_range": [int(distinct.min()), int(distinct.max())],
                          "sample_viewer_ids": [int(v) for v in viewers[:50]],
                          "window": _window_dict(*window), "source": source},
            ))
    outcome.results["clients"].sort(key=lambda c: -c["distinct_viewers"])
    outcome.results["clients"] = outcome.results["clients"][:100]
    outcome.summary = (f"{len(outcome.findings)} client(s) flagged" if outcome.findings
                       else f"{req['client'].nunique()} client(s), none enumerating viewers or over the rate")
    return outcome


def login_abuse(
    *,
    failures: pd.DataFrame,
    config: dict[str, Any],
    window: tuple[datetime, datetime],
    source: str,
) -> CheckOutcome:
    """Bursts of failed logins (django-axes): per IP, password spraying across usernames, one username
    attacked from many IPs.

    ``failures``: time, ip, username, count — one row per failed attempt (``AccessFailureLog``), or per
    axes ``AccessAttempt`` record with its failure count when the failure log is off.
    """
    outcome = CheckOutcome(name="security.login_abuse")
    burst = np.timedelta64(int(config["LOGIN_BURST_MINUTES"]) * 60, "s")
    max_per_ip = int(config["LOGIN_MAX_FAILURES_PER_IP"])
    max_users = int(config["LOGIN_MAX_USERNAMES_PER_IP"])
    max_ips = int(config["LOGIN_MAX_IPS_PER_USERNAME"])
    outcome.results = {"window": _window_dict(*window), "source": source, "failures": 0, "ips": [], "usernames": []}
    if failures.empty:
        outcome.summary = f"no failed logins in the window ({source})"
        return outcome
    f = failures.copy()
    f["time"] = pd.to_datetime(f["time"], utc=True)
    f["ip"] = f["ip"].fillna("(unknown)").astype(str)
    f["username"] = f["username"].fillna("").astype(str)
    f["count"] = f.get("count", pd.Series(1, index=f.index)).fillna(1).astype(int)
    outcome.results["failures"] = int(f["count"].sum())
    for ip, rows in f.sort_values("time").groupby("ip"):
        expanded = np.repeat(rows["time"].to_numpy(dtype="datetime64[ns]"), rows["count"].to_numpy())
        i, j = _densest_window(expanded, burst)
        peak = j - i
        usernames = sorted(set(rows["username"]) - {""})
        entry = {"ip": ip, "failures": int(rows["count"].sum()), "peak_in_burst": int(peak),
                 "usernames": len(usernames), "first": rows["time"].iloc[0].isoformat(),
                 "last": rows["time"].iloc[-1].isoformat()}
        outcome.results["ips"].append(entry)
        reasons = []
        if peak >= max_per_ip:
            reasons.append(f"{peak} failed logins within {int(config['LOGIN_BURST_MINUTES'])} min")
        if len(usernames) >= max_users:
            reasons.append(f"tried {len(usernames)} different usernames")
        if reasons:
            outcome.findings.append(FindingDraft(
                check="security.login_abuse", subject=f"ip={ip}", severity="high",
                title=f"Login abuse from {ip}: " + "; ".join(reasons),
                evidence={**entry, "usernames_tried": usernames[:MAX_LISTED], "reasons": reasons,
                          "burst_start": pd.Timestamp(expanded[i]).isoformat() if peak else None,
                          "burst_end": pd.Timestamp(expanded[j - 1]).isoformat() if peak else None,
                          "window": _window_dict(*window), "source": source},
            ))
    for username, rows in f[f["username"] != ""].groupby("username"):
        ips = sorted(set(rows["ip"]))
        entry = {"username": username, "failures": int(rows["count"].sum()), "ips": len(ips)}
        outcome.results["usernames"].append(entry)
        if len(ips) >= max_ips:
            outcome.findings.append(FindingDraft(
                check="security.login_abuse", subject=f"username={username}", severity="high",
                title=f"Login abuse: {entry['failures']} failed logins for '{username}' from {len(ips)} addresses",
                evidence={**entry, "ip_addresses": ips[:MAX_LISTED], "window": _window_dict(*window),
                          "source": source},
            ))
    outcome.results["ips"] = sorted(outcome.results["ips"], key=lambda e: -e["failures"])[:100]
    outcome.results["usernames"] = sorted(outcome.results["usernames"], key=lambda e: -e["failures"])[:100]
    outcome.results = jsonable(outcome.results)
    outcome.summary = (f"{len(outcome.findings)} login-abuse pattern(s)" if outcome.findings
                       else f"{outcome.results['failures']} failed login(s), no burst")
    return outcome
