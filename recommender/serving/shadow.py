"""The shadow hook: a candidate version answers mirrored requests off the request path.

The request path only offers ``(viewer, k, served items, seen)`` to a bounded queue (dropped when
full, counted). One thread per process asks the shadow model for its list and compares it with what
production served: overlap@k and Spearman's rank correlation over the two lists' union
(``portal.stats.ranking_agreement``, the same definition the Releases side stores) are accumulated
here and shown per worker; ``shadow_observer_register(fn)`` lets the Releases side receive every
comparison (``fn(ShadowComparison)``) for its own analysis.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from portal.stats import ranking_agreement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowComparison:
    """One mirrored request: what production served and what the shadow version would have."""

    viewer_id: int
    shadow_version_id: int
    served_version_id: int | None
    served: tuple[str, ...]
    shadow: tuple[str, ...] | None  # None: the shadow model does not know the viewer
    overlap: float | None
    rank_correlation: float | None  # Spearman's rho over the union (portal.stats.ranking_agreement)
    request_id: str = ""  # the production answer's X-Request-Id
    latency_ms: float | None = None  # the shadow model's own scoring time


_observers: list[Callable[[ShadowComparison], None]] = []


def shadow_observer_register(observer: Callable[[ShadowComparison], None]) -> None:
    """Call ``observer`` (in the shadow thread) with every comparison."""
    if observer not in _observers:
        _observers.append(observer)


def shadow_observer_unregister(observer: Callable[[ShadowComparison], None]) -> None:
    if observer in _observers:
        _observers.remove(observer)


class ShadowRunner:
    """A bounded queue and one thread computing shadow answers for mirrored requests."""

    def __init__(self, *, maxsize: int = 1000) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.offered = 0
        self.dropped = 0
        self.compared = 0
        self.unknown = 0
        self.errors = 0
        self.overlap_sum = 0.0
        self.rank_corr_sum = 0.0
        self.rank_corr_n = 0

    def offer(self, *, loaded, viewer_id: int, k: int, served: list[str], served_version_id: int | None,
              exclude: list[str], request_id: str = "") -> None:
        """Called on the request path: never blocks."""
        self.offered += 1
        try:
            self._queue.put_nowait((loaded, viewer_id, k, tuple(served), served_version_id, exclude, request_id))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="serving-shadow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                break
            try:
                self.process(*item)
            except Exception:  # noqa: BLE001 - a shadow failure never matters to viewers
                self.errors += 1
                logger.exception("shadow: comparison failed")

    def process(self, loaded, viewer_id: int, k: int, served: tuple[str, ...], served_version_id: int | None,
                exclude: list[str], request_id: str = "") -> ShadowComparison:
        started = time.perf_counter()
        result = loaded.model.recommend(viewer_id, k, exclude)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if result is None:
            self.unknown += 1
            comparison = ShadowComparison(viewer_id, loaded.version_id, served_version_id, served, None, None, None,
                                          request_id, latency_ms)
        else:
            shadow = tuple(item for item, _ in result)
            agreement = ranking_agreement(served, shadow, k=k)
            overlap, rho = agreement.overlap, agreement.spearman_rho
            self.compared += 1
            self.overlap_sum += overlap
            if rho is not None:
                self.rank_corr_sum += rho
                self.rank_corr_n += 1
            comparison = ShadowComparison(viewer_id, loaded.version_id, served_version_id, served, shadow, overlap, rho,
                                          request_id, latency_ms)
        for observer in list(_observers):
            try:
                observer(comparison)
            except Exception:  # noqa: BLE001
                logger.exception("shadow observer %r failed", observer)
        return comparison

    def summary(self) -> dict:
        return {
            "offered": self.offered, "dropped": self.dropped, "compared": self.compared, "unknown_viewer": self.unknown,
            "errors": self.errors,
            "mean_overlap": round(self.overlap_sum / self.compared, 4) if self.compared else None,
            "mean_rank_correlation": round(self.rank_corr_sum / self.rank_corr_n, 4) if self.rank_corr_n else None,
        }
