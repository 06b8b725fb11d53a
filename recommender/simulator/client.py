"""The simulator's HTTP client for Usher's ``GET /recommend/<userid>``, as the platform calls it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import requests


@dataclass(frozen=True)
class RecommendResult:
    """What the platform's client saw: status 200 and movie ids, or status 0 and an error text."""

    status: int
    items: list[str]
    response_ms: int
    error: str = ""


class UsherClient:
    """Calls ``/recommend/<id>`` with a timeout; a timeout, refusal or non-200 answer is status 0."""

    def __init__(self, base_url: str, *, timeout_s: float = 0.6, user_agent: str = "usher-simulator/1.0") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        parsed = urlparse(self.base_url)
        self.server = parsed.netloc or self.base_url

    def __call__(self, viewer_id: int) -> RecommendResult:
        started = time.perf_counter()
        try:
            response = self.session.get(f"{self.base_url}/recommend/{viewer_id}", timeout=self.timeout_s)
        except requests.RequestException as exc:
            ms = int((time.perf_counter() - started) * 1000)
            return RecommendResult(0, [], ms, f"{type(exc).__name__}: {exc}"[:500])
        ms = int((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return RecommendResult(0, [], ms, f"HTTP {response.status_code}: {response.text[:200].strip()}")
        items = [part.strip() for part in response.text.strip().split(",") if part.strip()]
        return RecommendResult(200, items[:20], ms)

    def healthy(self) -> bool:
        try:
            return self.session.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def in_process_client(address: str, *, server: str) -> Callable[[int], RecommendResult]:
    """The simulator's view of Usher's ``GET /recommend/<id>``, called in-process (Django's test
    client) from ``address``; ``server`` names it in the simulator's records."""
    from django.test import Client

    client = Client(REMOTE_ADDR=address)

    def call(viewer_id: int) -> RecommendResult:
        started = time.perf_counter()
        response = client.get(f"/recommend/{viewer_id}")
        ms = int((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return RecommendResult(0, [], ms, f"HTTP {response.status_code}")
        return RecommendResult(200, [m for m in response.content.decode().strip().split(",") if m][:20], ms)

    call.server = server
    return call
