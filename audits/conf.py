"""The audits app's knobs: defaults here, overridden by ``settings.AUDITS``; read through ``audit_setting``."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # --- fairness, model level (aequitas on the snapshot's test part) ---
    "FAIRNESS_ATTRIBUTES": ["gender", "age_band", "occupation"],
    "FAIRNESS_TOP_K": 20,  # "the movie is in the viewer's top K" is the prediction
    "FAIRNESS_LIKE_THRESHOLD": 4,  # "the viewer rated it >= 4" is the label
    "FAIRNESS_BAND": (0.8, 1.25),  # a disparity inside the band passes
    # Metrics whose disparity is judged (aequitas's, and "rmse"); every other metric is reported.
    # pprev is reported only: its disparity mostly follows how many test ratings a group's viewers have.
    "FAIRNESS_METRICS": ["tpr", "precision", "rmse"],
    # attribute -> reference group; an attribute not named uses its largest group (by viewers).
    "FAIRNESS_REFERENCE_GROUPS": {},
    # A group with fewer viewers or test rows than this is "insufficient data", neither pass nor fail.
    "FAIRNESS_MIN_GROUP_VIEWERS": 20,
    "FAIRNESS_MIN_GROUP_ROWS": 100,
    # A disparity outside the band fails only when the difference is also significant at this level
    # (two-proportion z-test against the reference group); None judges on the band alone.
    "FAIRNESS_ALPHA": 0.01,
    # "bonferroni": FAIRNESS_ALPHA is shared by every (group, metric) comparison of a run, so a fair model's
    # audit fails on noise in at most FAIRNESS_ALPHA of runs; "none": each comparison at FAIRNESS_ALPHA.
    "FAIRNESS_CORRECTION": "bonferroni",
    "FAIRNESS_FINDING_SEVERITY": "high",
    # Viewers sampled from the test part at most (a seeded sample keeps large snapshots affordable).
    "FAIRNESS_MAX_VIEWERS": 20_000,
    # --- fairness, system level (telemetry over a window) ---
    "SYSTEM_WINDOW_HOURS": 24,
    "SYSTEM_BAND": (0.8, 1.25),
    "SYSTEM_MIN_GROUP_REQUESTS": 50,
    "SYSTEM_LATENCY_BAND_MS": 50,  # a group's p95 this much above the reference's also fails
    "SYSTEM_FINDING_SEVERITY": "medium",
    "EXPOSURE_BAND": (0.5, 2.0),  # share of recommendations / share of watches
    "EXPOSURE_MIN_SHARE": 0.05,  # categories smaller than this (in both shares) are not judged
    "EXPOSURE_FINDINGS": False,  # exposure is reported; True also raises findings outside the band
    "EXPOSURE_FINDING_SEVERITY": "low",
    "POPULARITY_TIERS": (0.5, 0.9),  # quantiles of movie popularity: long tail / mid / head
    # --- security ---
    "SECURITY_WINDOW_HOURS": 24,
    "SECURITY_CHECKS": ["deploy_config", "api_surface", "rating_poisoning", "rating_velocity", "scraping",
                        "artifact_integrity", "login_abuse", "deployment_review"],
    # Endpoints that may answer without authentication (URL names, or regular expressions on the path).
    "PUBLIC_URL_NAMES": [
        "recommend",
        "healthz",
        "readyz",
        "prometheus-django-metrics",
        "admin:login",
        "admin:logout",
        "api-token",  # POST /api/v1/auth/token: a username and password for a token (the login lockout applies)
    ],
    "PUBLIC_PATH_PATTERNS": [r"^recommend/", r"^healthz$", r"^readyz$", r"^metrics$", r"^static/"],
    # rating poisoning
    "POISON_EXTREME_VALUES": [1, 5],
    "POISON_LOW_HISTORY_MAX": 3,  # accounts with at most this many ratings ever are low-history
    "POISON_NEW_ACCOUNT_DAYS": 3,  # accounts whose first event is this recent are new
    "POISON_BURST_HOURS": 24,
    "POISON_MIN_ACCOUNTS": 10,
    "POISON_MIN_SHARE": 0.5,  # the suspicious accounts' share of the movie's ratings in the burst
    "VELOCITY_BUCKET_MINUTES": 60,
    "VELOCITY_MIN_COUNT": 20,  # a movie's bucket needs at least this many ratings to be judged
    "VELOCITY_FACTOR": 5.0,  # and this many times its expected count (its usual share × the bucket's ratings)
    # and a binomial tail below VELOCITY_ALPHA / (movies × buckets): the chance a clean window raises any
    # movie finding stays under VELOCITY_ALPHA (Bonferroni); calibrated in benchmarks/calibration.py
    "VELOCITY_ALPHA": 0.001,
    # a spike this one-sided (share of one extreme value) moves the movie's average: medium, blocks the gate;
    # a surge of mixed ratings is reported at VELOCITY_SURGE_SEVERITY (below the gate's level: it does not block)
    "VELOCITY_ONE_SIDED_SHARE": 0.8,
    "VELOCITY_SURGE_SEVERITY": "low",
    "ACCOUNT_MAX_RATINGS_PER_MINUTE": 30,
    # scraping / model stealing
    "SCRAPE_MIN_DISTINCT_VIEWERS": 200,
    "SCRAPE_SEQUENTIAL_SHARE": 0.5,  # share of requested ids that follow the previous id + 1
    "SCRAPE_INACTIVE_SHARE": 0.8,  # share of requested viewers with no event around the request
    "SCRAPE_MAX_REQUESTS_PER_MINUTE": 600,
    "SCRAPE_PLATFORM_SHARE": 0.8,  # a client whose viewers are this active is the platform's own traffic
    "SCRAPE_ACTIVITY_MARGIN_HOURS": 24,  # activity this long before the window also counts
    "TRUSTED_CLIENTS": [],
    # login abuse (django-axes)
    "LOGIN_BURST_MINUTES": 15,
    "LOGIN_MAX_FAILURES_PER_IP": 20,
    "LOGIN_MAX_IPS_PER_USERNAME": 10,
    "LOGIN_MAX_USERNAMES_PER_IP": 10,
    # --- findings, sign-off, housekeeping ---
    "PASS_BELOW_SEVERITY": "medium",  # a run passes when no unwaived finding is at or above this
    "AUTO_SIGNOFF_SEVERITY": "medium",  # a run raising a new finding this severe asks a reviewer to sign off
    "WAIVER_MAX_DAYS": 180,
    "STUCK_RUN_MINUTES": 120,
}


def audit_setting(name: str) -> Any:
    """One knob: ``settings.AUDITS[name]`` when set, else the default above."""
    overrides = getattr(settings, "AUDITS", {}) or {}
    if name in overrides:
        return overrides[name]
    if name not in DEFAULTS:
        raise KeyError(f"unknown AUDITS setting '{name}'")
    return DEFAULTS[name]


# Knobs that say nothing about what a run judged (housekeeping, the live window's default length):
# a run made while these differed is still a run "with the configured settings".
NOT_JUDGING = {"AUTO_SIGNOFF_SEVERITY", "WAIVER_MAX_DAYS", "STUCK_RUN_MINUTES", "SYSTEM_WINDOW_HOURS",
               "SECURITY_WINDOW_HOURS"}


def configured_settings() -> dict[str, Any]:
    """Every knob's configured value (defaults, then ``settings.AUDITS``), as stored JSON would hold it."""
    from audits.checks.base import jsonable

    return jsonable({name: audit_setting(name) for name in DEFAULTS})


def settings_differences(config: dict[str, Any]) -> list[str]:
    """The judging knobs whose value in ``config`` (a run's recorded settings) differs from the
    configured one; the security check list is compared as a set. Empty: the configured settings."""
    from audits.checks.base import jsonable

    configured = configured_settings()
    recorded = jsonable(config or {})
    differs = []
    for name, value in configured.items():
        if name in NOT_JUDGING:
            continue
        if name not in recorded:
            differs.append(name)
            continue
        theirs = recorded[name]
        if name == "SECURITY_CHECKS" and isinstance(theirs, list) and isinstance(value, list):
            if set(theirs) != set(value):
                differs.append(name)
        elif theirs != value:
            differs.append(name)
    return differs


def review_severity() -> str:
    """The lowest severity that blocks the release gate, and whose resolution needs a second person:
    ``PASS_BELOW_SEVERITY`` (medium by default), never above high."""
    from audits.models import severity_rank

    configured = str(audit_setting("PASS_BELOW_SEVERITY"))
    return configured if severity_rank(configured) <= severity_rank("high") else "high"
