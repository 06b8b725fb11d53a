"""Django's Redis cache, failing open: with Redis away, every cache call answers as a miss.

The cache holds only what can be lost: API throttle counters and whatever a page keeps for a while.
A request must not fail because Redis did (DRF's throttle raised ``ConnectionError``, so every
authenticated API call answered 500 during an outage). Each failure is counted in the Prometheus
counter ``usher_cache_errors_total{operation}`` and logged as a warning (at most once every
``WARN_EVERY_SECONDS`` per process); after a failure the cache is skipped for ``RETRY_SECONDS``,
so a Redis that hangs costs one socket timeout, not one per call. Throttling is off meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from prometheus_client import Counter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CACHE_ERRORS = Counter(
    "usher_cache_errors_total", "Cache calls that failed open (Redis away), by operation.", ["operation"]
)
RETRY_SECONDS = 5.0
WARN_EVERY_SECONDS = 30.0


class FailOpenRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` whose calls never raise a Redis error."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._warned_at = -WARN_EVERY_SECONDS

    def _failed(self, operation: str, exc: Exception | None) -> None:
        CACHE_ERRORS.labels(operation=operation).inc()
        now = time.monotonic()
        with self._lock:
            if exc is not None:
                self._skip_until = now + RETRY_SECONDS
            warn = now - self._warned_at >= WARN_EVERY_SECONDS
            if warn:
                self._warned_at = now
        if warn:
            log.warning("cache unavailable, failing open (%s): %s", operation,
                        exc or f"skipped for {RETRY_SECONDS:.0f}s after an error")

    def _call(self, operation: str, fallback: Any, fn: Callable[[], Any]) -> Any:
        if time.monotonic() < self._skip_until:
            self._failed(operation, None)
            return fallback
        try:
            return fn()
        except RedisError as exc:
            self._failed(operation, exc)
            return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", False, lambda: super(FailOpenRedisCache, self).add(key, value, timeout, version))

    def get(self, key, default=None, version=None):
        return self._call("get", default, lambda: super(FailOpenRedisCache, self).get(key, default, version))

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, lambda: super(FailOpenRedisCache, self).set(key, value, timeout, version))

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, lambda: super(FailOpenRedisCache, self).touch(key, timeout, version))

    def delete(self, key, version=None):
        return self._call("delete", False, lambda: super(FailOpenRedisCache, self).delete(key, version))

    def get_many(self, keys, version=None):
        return self._call("get_many", {}, lambda: super(FailOpenRedisCache, self).get_many(keys, version))

    def has_key(self, key, version=None):
        return self._call("has_key", False, lambda: super(FailOpenRedisCache, self).has_key(key, version))

    def incr(self, key, delta=1, version=None):
        # As if the counter had just started: a limit counted here is not enforced meanwhile.
        return self._call("incr", delta, lambda: super(FailOpenRedisCache, self).incr(key, delta, version))

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", list(data),
                          lambda: super(FailOpenRedisCache, self).set_many(data, timeout, version))

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, lambda: super(FailOpenRedisCache, self).delete_many(keys, version))

    def clear(self):
        return self._call("clear", False, lambda: super(FailOpenRedisCache, self).clear())
