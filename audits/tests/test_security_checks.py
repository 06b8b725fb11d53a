"""Security checks against real data and settings: poisoning, velocity, scraping, login abuse,
deploy configuration, API surface, artifact integrity."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.utils import timezone

from audits import services
from audits.checks import abuse
from audits.checks.security_config import deploy_configuration, secret_strength
from audits.conf import DEFAULTS
from audits.tests.factories import rating_events
from recommender.registry.artifacts import artifact_root, seen_csr, write_artifact
from recommender.tests.factories_training import VersionFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def _security_run(checks: list[str], hours: float = 24):
    # The rating checks' window ends at the data's NOW (set when this module is imported), not when the
    # test runs: in the whole suite that is many minutes later, and the velocity check's hour buckets
    # would cut the planted bursts at other places than the tests mean. (Login attempts are made now.)
    end = NOW if {"rating_poisoning", "rating_velocity"} & set(checks) else None
    run = services.audit_run_create(kind="security", actor=None, enqueue=False, window_hours=hours,
                                    window_end=end, overrides={"SECURITY_CHECKS": checks})
    return services.audit_run_execute(run_id=run.pk)


def _ordinary_ratings(n_viewers: int = 120, per_viewer: int = 12, seed: int = 0) -> list[tuple]:
    """Established viewers (history from a month ago) rating a catalog of 60 movies, some in the last day."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(1, n_viewers + 1):
        for m in rng.choice(60, size=per_viewer, replace=False):
            age = dt.timedelta(minutes=int(rng.integers(0, 60 * 24 * 30)))
            rows.append((v, f"film+{int(m)}+1999", int(rng.integers(1, 6)), NOW - age))
    return rows


def _shilling(accounts: int, movie: str = "film+7+1999") -> list[tuple]:
    rows = []
    for a in range(accounts):
        viewer = 900_000 + a
        start = NOW - dt.timedelta(hours=3) + dt.timedelta(minutes=2 * a)
        rows.append((viewer, "film+1+1999", 4, start))  # filler to look ordinary
        rows.append((viewer, movie, 5, start + dt.timedelta(minutes=1)))
    return rows


def test_a_shilling_burst_names_the_accounts_and_the_movie():
    rating_events(_ordinary_ratings() + _shilling(30))

    run = _security_run(["rating_poisoning", "rating_velocity"])

    finding = run.findings.get(check_name="security.rating_poisoning")
    assert finding.evidence["movie"] == "film+7+1999" and finding.evidence["rating"] == 5
    assert finding.evidence["account_ids"] == list(range(900_000, 900_030))
    assert finding.evidence["accounts"] == 30 and finding.evidence["share"] >= 0.5
    assert finding.evidence["low_history_accounts"] == 30
    assert "film+7+1999" in finding.fingerprint
    # the same burst is not reported a second time as a velocity anomaly
    assert not run.findings.filter(check_name="security.rating_velocity").exists()
    velocity = next(c for c in run.results["checks"] if c["name"] == "security.rating_velocity")
    spikes = {m["movie"]: m for m in velocity["results"]["movies"] if m["anomalous"]}
    assert set(spikes) == {"film+7+1999", "film+1+1999"}  # the target and the accounts' filler movie
    assert all(m["covered_by_poisoning"] for m in spikes.values())


def test_ordinary_rating_traffic_raises_nothing():
    rating_events(_ordinary_ratings())
    run = _security_run(["rating_poisoning", "rating_velocity"])
    assert run.status == "succeeded" and run.passed is True
    assert not run.findings.exists()


def test_a_few_new_accounts_are_below_the_burst_threshold():
    rating_events(_ordinary_ratings() + _shilling(DEFAULTS["POISON_MIN_ACCOUNTS"] - 1))
    run = _security_run(["rating_poisoning"])
    assert not run.findings.exists()


def test_a_bot_rating_many_movies_in_a_minute_is_a_velocity_finding():
    bot = [(777, f"film+{m}+1999", 5, NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=m)) for m in range(45)]
    rating_events(_ordinary_ratings() + bot)
    run = _security_run(["rating_velocity"])
    finding = run.findings.get()
    assert finding.fingerprint == "security.rating_velocity:account=777"
    assert finding.evidence["peak_per_minute"] == 45


def test_scraping_rule_flags_the_enumerator_not_the_platform():
    rng = np.random.default_rng(1)
    active = set(range(100_001, 101_001))
    start = pd.Timestamp(NOW - dt.timedelta(hours=2))
    platform = pd.DataFrame({  # the platform: many requests, fast, but only for its active viewers
        "client": "10.0.0.5", "viewer": rng.choice(sorted(active), size=3000),
        "time": [start + pd.Timedelta(seconds=i * 0.05) for i in range(3000)]})
    scraper = pd.DataFrame({"client": "203.0.113.66", "viewer": np.arange(100_001, 100_501),
                            "time": [start + pd.Timedelta(seconds=i * 0.5) for i in range(500)]})
    window = (NOW - dt.timedelta(hours=24), NOW)
    inactive_scraper = pd.DataFrame({"client": "198.51.100.2", "viewer": rng.integers(5_000_000, 6_000_000, 400),
                                     "time": [start + pd.Timedelta(seconds=i * 3) for i in range(400)]})

    outcome = abuse.scraping(requests=pd.concat([platform, scraper, inactive_scraper]), active_viewers=active,
                             known_viewers=active, config=DEFAULTS, window=window, source="test")

    flagged = {f.evidence["client"]: f for f in outcome.findings}
    assert set(flagged) == {"203.0.113.66", "198.51.100.2"}
    assert flagged["203.0.113.66"].evidence["sequential_share"] == 1.0
    assert flagged["203.0.113.66"].evidence["viewer_id_range"] == [100_001, 100_500]
    assert flagged["198.51.100.2"].evidence["inactive_share"] == 1.0
    platform_row = next(c for c in outcome.results["clients"] if c["client"] == "10.0.0.5")
    assert platform_row["peak_per_minute"] > DEFAULTS["SCRAPE_MAX_REQUESTS_PER_MINUTE"]
    assert platform_row["flagged"] is False


def test_login_bursts_from_the_failure_log_name_the_address():
    for i in range(25):
        AccessFailureLog.objects.create(username=f"user{i % 12}", ip_address="198.51.100.9", user_agent="curl",
                                        http_accept="*/*", path_info="/portal/login/")
    AccessFailureLog.objects.create(username="alice", ip_address="192.0.2.1", user_agent="firefox",
                                    http_accept="*/*", path_info="/portal/login/")
    run = _security_run(["login_abuse"])
    finding = run.findings.get()
    assert finding.fingerprint == "security.login_abuse:ip=198.51.100.9"
    assert finding.evidence["failures"] == 25 and finding.evidence["usernames"] == 12
    assert "user0" in finding.evidence["usernames_tried"]


def test_login_abuse_from_axes_attempt_counts_when_the_failure_log_is_off():
    for i in range(11):
        AccessAttempt.objects.create(username="admin", ip_address=f"203.0.113.{i}", user_agent="bot", get_data="",
                                     post_data="", http_accept="*/*", path_info="/portal/login/",
                                     failures_since_start=3)
    run = _security_run(["login_abuse"])
    finding = run.findings.get()
    assert finding.fingerprint == "security.login_abuse:username=admin"
    assert finding.evidence["ips"] == 11 and finding.evidence["failures"] == 33


def test_deploy_configuration_in_development_reports_without_findings(settings):
    settings.PRODUCTION = False
    settings.DEBUG = True
    outcome = deploy_configuration()
    assert outcome.results["mode"] == "development"
    assert any(row["id"] == "security.W018" for row in outcome.results["deploy_checks"])
    assert outcome.findings == []


def test_deploy_configuration_in_production_judges_debug_secret_and_admin(settings):
    settings.PRODUCTION = True
    settings.DEBUG = True
    settings.SECRET_KEY = "django-insecure-short"
    settings.AXES_ENABLED = False
    settings.ALLOWED_HOSTS = ["*"]
    outcome = deploy_configuration()
    by_check = {(f.check, f.subject): f for f in outcome.findings}
    assert by_check[("security.debug", "DEBUG")].severity == "critical"
    secret = by_check[("security.secret_strength", "SECRET_KEY")]
    assert secret.severity == "critical" and secret.evidence["length"] == 21
    assert "SECRET_KEY" not in str(secret.evidence.values()) or "django-insecure-short" not in str(secret.evidence)
    assert ("security.admin_exposure", "login_rate_limit") in by_check
    assert ("security.admin_exposure", "allowed_hosts_wildcard") in by_check
    assert any(f.check == "security.deploy_check" for f in outcome.findings)  # HSTS, SSL redirect, cookies...


def test_a_well_configured_production_has_no_configuration_finding(settings):
    settings.PRODUCTION = True
    settings.DEBUG = False
    settings.SECRET_KEY = "k9$Vq2!zR7#mLp4@wX8^nB3&cT6*jH1(eY5)uF0-sD+aG=oK~iQ_rZ.vN,bM;xC:lP"
    settings.ALLOWED_HOSTS = ["usher.example.org"]
    settings.AXES_ENABLED = True
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    outcome = deploy_configuration()
    assert outcome.findings == [], [f.title for f in outcome.findings]


def test_secret_strength_estimate():
    weak = secret_strength("aaaaaaaaaa")
    strong = secret_strength("k9$Vq2!zR7#mLp4@wX8^nB3&cT6*jH1(eY5)uF0-sD+aG=oK~iQ_rZ.vN,bM;xC:lP")
    assert weak["distinct_characters"] == 1 and weak["estimated_entropy_bits"] == 0
    assert strong["length"] == 66 and strong["estimated_entropy_bits"] > 300


def test_api_surface_finds_an_open_endpoint_and_accepts_the_allow_list(settings):
    settings.ROOT_URLCONF = "audits.tests.urls_open"
    run = _security_run(["api_surface"])
    check = next(c for c in run.results["checks"] if c["name"] == "security.api_surface")
    rows = {row["route"]: row for row in check["results"]["endpoints"]}
    assert rows["leaky/<int:pk>/"]["verdict"] == "open" and rows["leaky/<int:pk>/"]["status"] == 200
    assert rows["api/v1/reviews"]["verdict"] == "requires_auth"
    assert rows["portal/inbox/"]["verdict"] == "requires_auth"
    assert rows["healthz"]["verdict"] == "public_by_policy"
    assert rows["recommend/<int:viewer_id>"]["verdict"] == "public_by_policy"
    leaky = run.findings.get(fingerprint="security.api_surface:leaky/<int:pk>/")
    assert leaky.evidence["sample_path"] == "/leaky/1/"
    assert "answers without authentication" in leaky.title


def _stored_model_artifact(name: str) -> tuple[str, str]:
    indptr, indices = seen_csr([[0], []])
    arrays = {"item_ids": np.array(["m1", "m2"]), "user_ids": np.array([1, 2], dtype=np.int64),
              "user_factors": np.ones((2, 2), dtype=np.float32), "item_factors": np.ones((2, 2), dtype=np.float32),
              "user_bias": np.zeros(2, dtype=np.float32), "item_bias": np.zeros(2, dtype=np.float32),
              "seen_indptr": indptr, "seen_indices": indices}
    relative = f"models/test/{name}"
    sha, _ = write_artifact(directory=artifact_root() / relative, manifest={"kind": "factors", "algorithm": "svd"},
                            arrays=arrays)
    return relative, sha


def test_artifact_integrity_rehashes_every_file():
    intact_path, intact_sha = _stored_model_artifact("intact")
    tampered_path, tampered_sha = _stored_model_artifact("tampered")
    intact = VersionFactory(artifact_path=intact_path, artifact_sha256=intact_sha)
    tampered = VersionFactory(artifact_path=tampered_path, artifact_sha256=tampered_sha)
    missing = VersionFactory(artifact_path="models/test/gone", artifact_sha256="1" * 64)
    item_factors = artifact_root() / tampered_path / "item_factors.npy"
    item_factors.write_bytes(item_factors.read_bytes()[:-4] + b"\x00\x00\x00\x40")  # one weight 1.0 → 2.0

    run = _security_run(["artifact_integrity"])

    findings = {(f.evidence["kind"], f.evidence["id"]): f for f in run.findings.all()}
    # the factories' snapshot rows have no files at all: they are reported missing too
    snapshot_ids = {v.training_run.snapshot_id for v in (intact, tampered, missing)}
    assert set(findings) == {("model_version", tampered.pk), ("model_version", missing.pk)} | {
        ("snapshot", pk) for pk in snapshot_ids}
    bad = findings[("model_version", tampered.pk)]
    assert bad.severity == "critical"
    assert [p["file"] for p in bad.evidence["problems"]] == ["item_factors.npy"]
    assert bad.evidence["problems"][0]["expected"] != bad.evidence["problems"][0]["found"]
    assert findings[("model_version", missing.pk)].severity == "high"
    check = next(c for c in run.results["checks"] if c["name"] == "security.artifact_integrity")
    statuses = {(row["kind"], row["id"]): row["status"] for row in check["results"]["artifacts"]}
    assert statuses[("model_version", intact.pk)] == "ok"


def _velocity(rows: list[tuple], hours: int = 24):
    frame = pd.DataFrame(rows, columns=["viewer", "movie", "rating", "time"])
    return abuse.rating_velocity(events=frame, config=DEFAULTS, window=(NOW - dt.timedelta(hours=hours), NOW))


def _steady(rng, movies: int, per_hour: int, hours: range) -> list[tuple]:
    """Established viewers rating ``movies`` films (popularity ∝ 1/rank) at ``per_hour`` ratings an hour."""
    weights = 1.0 / np.arange(1, movies + 1)
    rows = []
    for h in hours:
        for m in rng.choice(movies, size=per_hour, p=weights / weights.sum()):
            when = NOW - dt.timedelta(hours=h) + dt.timedelta(seconds=int(rng.integers(0, 3600)))
            rows.append((int(rng.integers(1, 5000)), f"film+{int(m)}+1999", int(rng.integers(1, 6)), when))
    return rows


def test_busier_traffic_is_no_velocity_anomaly():
    # Given 23 quiet hours, then the last hour thirty times as busy with the same movies in the same shares
    # (a live simulator after a backfill: the demo's traffic)
    rng = np.random.default_rng(3)
    rows = _steady(rng, 100, 40, range(2, 25)) + _steady(rng, 100, 1200, range(1, 2))
    outcome = _velocity(rows)
    # then no movie is anomalous: its count is judged against its share of the bucket's ratings
    assert not outcome.findings, [f.title for f in outcome.findings]
    tests = outcome.results["movies_rated"] * 24  # Bonferroni over movies × hourly buckets
    assert outcome.results["tests"] == tests and outcome.results["p_limit"] == pytest.approx(0.001 / tests, rel=1e-2)
    judged = [m for m in outcome.results["movies"] if m["count"] >= 100]
    assert judged and all(not m["anomalous"] for m in judged)  # the old "× its hourly rate" rule fired on these


def test_a_one_sided_spike_blocks_and_a_mixed_surge_is_reported_low():
    rng = np.random.default_rng(4)
    rows = _steady(rng, 100, 60, range(1, 25))
    spike_at = NOW - dt.timedelta(hours=6) + dt.timedelta(minutes=5)  # inside one hourly bucket
    # 40 established viewers giving an unpopular film 1 star in one hour; 40 others rating another one mixed
    rows += [(10_000 + i, "film+90+1999", 1, spike_at + dt.timedelta(seconds=60 * i)) for i in range(40)]
    rows += [(20_000 + i, "film+91+1999", 1 + i % 5, spike_at + dt.timedelta(seconds=60 * i)) for i in range(40)]
    outcome = _velocity(rows)
    by_movie = {f.evidence["movie"]: f for f in outcome.findings}
    assert set(by_movie) == {"film+90+1999", "film+91+1999"}
    one_sided, surge = by_movie["film+90+1999"], by_movie["film+91+1999"]
    assert one_sided.severity == "medium" and one_sided.evidence["one_sided"] is True
    assert one_sided.evidence["extreme_value"] == 1 and one_sided.evidence["extreme_share"] == 1.0
    assert surge.severity == "low" and surge.evidence["one_sided"] is False
    # the title states the evidence's own count
    for finding in (one_sided, surge):
        assert f"got {finding.evidence['count']} of the {finding.evidence['bucket_ratings']} ratings" in finding.title
        assert finding.evidence["count"] >= 40


def _configured_security_run():
    run = services.audit_run_create(kind="security", actor=None, enqueue=False, window_hours=24)
    return services.audit_run_execute(run_id=run.pk)


def test_a_finding_seen_again_takes_the_new_figures_in_title_and_evidence(settings):
    # configured runs (an exploratory run's figures never replace the configured evidence)
    settings.AUDITS = {"SECURITY_CHECKS": ["rating_velocity"]}
    bot = [(777, f"film+{m}+1999", 5, NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=m)) for m in range(45)]
    rating_events(_ordinary_ratings() + bot)
    first = _configured_security_run().findings.get()
    assert "rated 45 movies" in first.title and first.evidence["peak_per_minute"] == 45
    # the same account rates ten more within that minute; the next run sees the same problem, bigger
    rating_events([(777, f"film+{m}+1999", 4, NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=m))
                   for m in range(45, 55)])
    assert not _configured_security_run().exploratory
    first.refresh_from_db()
    assert first.times_seen == 2
    assert first.evidence["peak_per_minute"] == 55 and "rated 55 movies" in first.title
