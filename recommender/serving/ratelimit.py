"""Per-client rate limits: a token bucket per client, in-process or in Redis.

Trade-off (also in docs/serving.md):

- ``local`` (default): a token bucket per client in each process. It costs about a microsecond and
  has no dependency, so ``/recommend`` never waits on anything. The limit is per process: with N
  gunicorn workers on M machines a client may get up to N × M times the rate, so set the rate
  divided by the number of processes when that matters.
- ``redis``: one bucket per client shared by every process and machine (a Lua script, atomic, using
  Redis's clock). Exact, but each request pays a round trip (≈0.1–0.3 ms on loopback) and depends on
  Redis: when Redis does not answer within 50 ms the limiter falls back to the local bucket rather
  than failing or blocking the request.

A refused request gets ``429`` with ``Retry-After`` (whole seconds, at least 1).
"""

from __future__ import annotations

import logging
import math
import threading
import time

logger = logging.getLogger(__name__)

_REDIS_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


class LocalTokenBucket:
    """Token buckets per client in this process; thread-safe."""

    def __init__(self, *, rate: float, burst: int, max_clients: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._evict(now)
                bucket = self._buckets[client] = [self.burst, now]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        full_after = self.burst / self.rate
        stale = [c for c, (_, ts) in self._buckets.items() if now - ts >= full_after]
        for client in stale:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:  # still full: forget the oldest half
            for client, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: self.max_clients // 2]:
                del self._buckets[client]


class RedisTokenBucket:
    """One token bucket per client shared by all processes; falls back to a local bucket on errors."""

    def __init__(self, *, rate: float, burst: int, url: str, scope: str, timeout: float = 0.05) -> None:
        import redis

        self.rate = float(rate)
        self.burst = int(burst)
        self.scope = scope
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self._client.register_script(_REDIS_SCRIPT)
        self._local = LocalTokenBucket(rate=rate, burst=burst)
        self._warned_at = 0.0

    def take(self, client: str, now: float | None = None) -> float:
        try:
            return float(self._script(keys=[f"usher:ratelimit:{self.scope}:{client}"], args=[self.rate, self.burst]))
        except Exception as exc:  # noqa: BLE001 - Redis away must not fail or block a request
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                logger.warning("rate limit: Redis unavailable (%s); using the in-process bucket", exc)
            return self._local.take(client, now)


def make_limiter(*, backend: str, rate: float, burst: int, scope: str) -> LocalTokenBucket | RedisTokenBucket:
    """The limiter for a backend name (``local`` or ``redis``)."""
    if backend == "redis":
        from django.conf import settings

        if not settings.REDIS_URL:
            raise ValueError("RATE_LIMIT_BACKEND='redis' needs REDIS_URL")
        return RedisTokenBucket(rate=rate, burst=burst, url=settings.REDIS_URL, scope=scope)
    return LocalTokenBucket(rate=rate, burst=burst)


def client_address(environ: dict, trusted_proxy_count: int) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry ``trusted_proxy_count`` hops back in
    ``X-Forwarded-For`` when Usher sits behind that many trusted proxies."""
    remote = environ.get("REMOTE_ADDR", "") or "unknown"
    if trusted_proxy_count <= 0:
        return remote
    forwarded = [p.strip() for p in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if len(forwarded) >= trusted_proxy_count:
        return forwarded[-trusted_proxy_count][:100]
    return remote
