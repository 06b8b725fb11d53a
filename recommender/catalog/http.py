"""A client for the platform's metadata API: bounded concurrency, a rate limit, retries with backoff.

``MetadataClient.fetch(paths)`` yields one ``RawRecord`` per path, in the order given, while at most
``concurrency`` requests are in flight and no more than ``rate_per_s`` start per second. Connection
errors, timeouts, 429 and 5xx answers are retried ``retries`` times with exponential backoff
(``Retry-After`` is honoured on 429/503); what still fails becomes a record with an ``error``, which
the import quarantines with the reason.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import quote

import requests

from recommender.catalog.schema import RawRecord

RETRY_STATUSES = {429, 500, 502, 503, 504}


class RateLimiter:
    """Spaces request starts at least ``1 / rate_per_s`` apart across threads."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s and rate_per_s > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class MetadataClient:
    """Fetches metadata records from a base URL (``http://host:port``)."""

    def __init__(self, *, base_url: str, concurrency: int = 8, rate_per_s: float = 50.0, retries: int = 3,
                 timeout_s: float = 5.0, backoff_s: float = 0.2, max_backoff_s: float = 5.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, int(concurrency))
        self.limiter = RateLimiter(rate_per_s)
        self.retries = max(0, int(retries))
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._local = threading.local()
        self.requests_made = 0
        self._count_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "usher-import-catalog/1.0"
            self._local.session = session
        return session

    def _sleep_before_retry(self, attempt: int, response: requests.Response | None) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * (2**attempt)) * (0.5 + random.random() / 2)
        if response is not None and response.headers.get("Retry-After", "").strip().isdigit():
            delay = min(self.max_backoff_s, float(response.headers["Retry-After"]))
        time.sleep(delay)

    def get_one(self, path: str) -> RawRecord:
        url = self.base_url + quote(path, safe="/+._-~")
        last = ""
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            response = None
            with self._count_lock:
                self.requests_made += 1
            try:
                response = self._session().get(url, timeout=self.timeout_s)
            except requests.Timeout:
                last = f"timed out after {self.timeout_s:g} s"
            except requests.RequestException as exc:
                last = f"connection failed: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    try:
                        return RawRecord(position=path, data=response.json())
                    except ValueError:
                        return RawRecord(position=path, data=response.text[:10_000],
                                         error=(f"GET {path}: answer is not JSON", "catalog.bad_json"))
                if response.status_code not in RETRY_STATUSES:
                    code = "catalog.not_found" if response.status_code == 404 else "catalog.fetch_failed"
                    return RawRecord(position=path, data=url,
                                     error=(f"GET {path}: HTTP {response.status_code}", code))
                last = f"HTTP {response.status_code}"
            if attempt < self.retries:
                self._sleep_before_retry(attempt, response)
        return RawRecord(position=path, data=url,
                         error=(f"GET {path} failed after {self.retries + 1} attempts: {last}", "catalog.fetch_failed"))

    def fetch(self, paths: Iterable[str]) -> Iterator[RawRecord]:
        """Records for ``paths`` in order; at most ``4 × concurrency`` are held at once."""
        window = self.concurrency * 4
        pending: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="catalog-fetch") as pool:
            for path in paths:
                pending.append(pool.submit(self.get_one, path))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
