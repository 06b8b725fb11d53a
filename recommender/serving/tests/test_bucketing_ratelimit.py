"""Deterministic bucketing and the rate limiters (in-process and Redis)."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.serving import bucketing
from recommender.serving.ratelimit import LocalTokenBucket, RedisTokenBucket, client_address, retry_after_seconds


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=20))
def test_bucket_is_stable_and_in_range(viewer, salt):
    bucket = bucketing.viewer_bucket(viewer, salt)
    assert 0 <= bucket < bucketing.BUCKETS
    assert bucket == bucketing.viewer_bucket(viewer, salt)


def test_shares_match_the_allocation_and_salt_reshuffles():
    layout = bucketing.build_layout(salt="s1", canary_percent=10, arms=[("a", 20), ("b", 5)])
    routes = Counter(layout.route(v) for v in range(40_000))
    assert abs(routes["canary"] / 40_000 - 0.10) < 0.01
    assert abs(routes["arm:a"] / 40_000 - 0.20) < 0.01
    assert abs(routes["arm:b"] / 40_000 - 0.05) < 0.01
    assert abs(routes["production"] / 40_000 - 0.65) < 0.01
    other = bucketing.build_layout(salt="s2", canary_percent=10, arms=[])
    moved = sum(layout.route(v) == "canary" and other.route(v) != "canary" for v in range(40_000))
    assert moved > 3000  # a new salt draws a new canary population


def test_growing_the_canary_keeps_its_viewers_and_does_not_touch_the_arms():
    small = bucketing.build_layout(salt="x", canary_percent=5, arms=[("a", 10)])
    large = bucketing.build_layout(salt="x", canary_percent=25, arms=[("a", 10)])
    for viewer in range(20_000):
        if small.route(viewer) == "canary":
            assert large.route(viewer) == "canary"
        if small.route(viewer) == "arm:a":
            assert large.route(viewer) == "arm:a"


@pytest.mark.parametrize("canary,arms", [(60, [("a", 50)]), (101, []), (0, [("a", 0)])])
def test_impossible_allocations_are_refused(canary, arms):
    with pytest.raises(ValueError):
        bucketing.build_layout(salt="x", canary_percent=canary, arms=arms)


def test_local_token_bucket_allows_the_burst_then_refills_at_the_rate():
    bucket = LocalTokenBucket(rate=2.0, burst=3)
    assert [bucket.take("c", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take("c", now=100.0)
    assert wait == pytest.approx(0.5)
    assert retry_after_seconds(wait) == 1
    assert bucket.take("other", now=100.0) == 0.0
    assert bucket.take("c", now=100.6) == 0.0  # 0.6 s × 2/s = 1.2 tokens
    assert bucket.take("c", now=100.6) > 0


def test_local_bucket_forgets_idle_clients_when_full():
    bucket = LocalTokenBucket(rate=10.0, burst=1, max_clients=100)
    for n in range(100):
        bucket.take(f"c{n}", now=0.0)
    bucket.take("new", now=5.0)
    assert len(bucket._buckets) <= 100 and "new" in bucket._buckets


def test_client_address_uses_forwarded_for_only_behind_trusted_proxies():
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8"}
    assert client_address(environ, 0) == "10.0.0.1"
    assert client_address(environ, 1) == "5.6.7.8"
    assert client_address(environ, 2) == "1.2.3.4"
    assert client_address(environ, 3) == "10.0.0.1"


@pytest.mark.redis
def test_redis_bucket_is_shared_between_processes_limiters():
    import redis

    url = os.environ["REDIS_URL"]
    redis.Redis.from_url(url).delete("usher:ratelimit:test:shared")
    one = RedisTokenBucket(rate=0.1, burst=4, url=url, scope="test")
    two = RedisTokenBucket(rate=0.1, burst=4, url=url, scope="test")
    waits = [one.take("shared"), two.take("shared"), one.take("shared"), two.take("shared"), one.take("shared")]
    assert waits[:4] == [0.0] * 4 and waits[4] > 5  # the fifth waits ~10 s whichever process asks
    assert redis.Redis.from_url(url).ttl("usher:ratelimit:test:shared") > 0


def test_redis_bucket_falls_back_to_the_local_bucket_when_redis_is_away():
    from recommender.serving.tests.conftest import closed_port

    bucket = RedisTokenBucket(rate=1.0, burst=2, url=f"redis://127.0.0.1:{closed_port()}/0", scope="test")
    assert [bucket.take("c") == 0.0 for _ in range(3)] == [True, True, False]
