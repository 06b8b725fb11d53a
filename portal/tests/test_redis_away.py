"""Redis away: the cache fails open. A real redis-server is started on a free loopback port for the
test's cache, used, then killed; the API (throttled), the login form (django-axes' lockout path) and
the review inbox answer without a 5xx, each failure is logged and counted."""

from __future__ import annotations

import logging
import socket
import subprocess
import time

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from portal import services

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test only; ``own_redis.kill()`` stops it (SIGKILL, no goodbye)."""
    import redis

    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    for _ in range(100):  # up to ~5 s for the server to accept connections
        try:
            if client.ping():
                break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("redis-server did not start")
    process.port = port
    process.client = client
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def _errors() -> float:
    total = 0.0
    for operation in ("get", "set", "add", "incr", "delete", "get_many", "set_many", "has_key", "touch"):
        total += REGISTRY.get_sample_value("usher_cache_errors_total", {"operation": operation}) or 0.0
    return total


@pytest.mark.redis
def test_api_login_and_inbox_answer_while_redis_is_away(own_redis, settings, users, caplog):
    # Given the cache on a real Redis, which the throttle uses
    settings.CACHES = {"default": {
        "BACKEND": "portal.cache.FailOpenRedisCache", "LOCATION": f"redis://127.0.0.1:{own_redis.port}/0",
        "KEY_PREFIX": "usher-test", "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
    settings.AXES_ENABLED = True
    _, key = services.api_token_create(user=users["operator"])
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/activity").status_code == 200
    assert own_redis.client.keys("usher-test:*"), "the throttle should have written to Redis"
    inbox = Client()
    inbox.force_login(users["reviewer"])
    before = _errors()

    # When Redis goes away
    own_redis.kill()
    own_redis.wait(timeout=10)

    # Then an API list, the login form (wrong, then right password) and the inbox still answer
    with caplog.at_level(logging.WARNING, logger="portal.cache"):
        statuses = [api.get("/api/v1/activity").status_code for _ in range(3)]
        assert api.get("/api/v1/training-runs").status_code == 200
        login = Client()
        wrong = login.post("/portal/login/", {"username": users["viewer"].username, "password": "wrong"})
        right = login.post("/portal/login/", {"username": users["viewer"].username,
                                              "password": users["viewer"].raw_password, "next": "/portal/inbox/"})
        page = inbox.get("/portal/inbox/")
    assert statuses == [200, 200, 200]
    assert wrong.status_code == 200 and right.status_code == 302 and right["Location"] == "/portal/inbox/"
    assert page.status_code == 200
    # And each failure is counted and the outage logged as a warning
    assert _errors() > before
    assert any("cache unavailable" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_failed_cache_answers_like_a_miss():
    from portal.cache import FailOpenRedisCache

    cache = FailOpenRedisCache(f"redis://127.0.0.1:{_free_port()}/0", {"OPTIONS": {"socket_connect_timeout": 1}})
    assert cache.get("k", "default") == "default"
    assert cache.set("k", 1) is None and cache.add("k", 1) is False
    assert cache.get_many(["a", "b"]) == {} and cache.has_key("k") is False
    assert cache.incr("n", 3) == 3 and cache.delete("k") is False
