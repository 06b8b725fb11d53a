"""Receives serving's shadow comparisons (in its shadow thread, off the request path) and stores
them in batches as ``ShadowComparison`` rows with overlap@k, Kendall's tau and Spearman's rho."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from django.db import close_old_connections

logger = logging.getLogger(__name__)


class ShadowRecorder:
    """A callable observer: buffers comparisons, writes a batch every ``batch`` rows or ``seconds``."""

    def __init__(self, *, batch: int = 50, seconds: float = 5.0) -> None:
        self.batch = batch
        self.seconds = seconds
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self.written = 0
        self.failed = 0

    def __call__(self, comparison: Any) -> None:
        from releases.conf import release_setting

        if comparison.shadow is None:  # the shadow model does not know this viewer
            return
        rate = float(release_setting("SHADOW_SAMPLE_RATE"))
        if rate < 1.0 and random.random() >= rate:  # noqa: S311 - sampling, not security
            return
        row = {
            "request_id": getattr(comparison, "request_id", "") or "",
            "viewer_id": comparison.viewer_id,
            "production_version_id": comparison.served_version_id,
            "shadow_version_id": comparison.shadow_version_id,
            "production_items": list(comparison.served),
            "shadow_items": list(comparison.shadow),
            "shadow_latency_ms": getattr(comparison, "latency_ms", None),
        }
        with self._lock:
            self._rows.append(row)
            due = len(self._rows) >= self.batch or time.monotonic() - self._last >= self.seconds
        if due:
            self.flush()

    def flush(self) -> int:
        from releases.services.shadow import shadow_comparisons_record

        with self._lock:
            rows, self._rows = self._rows, []
            self._last = time.monotonic()
        if not rows:
            return 0
        try:
            written = shadow_comparisons_record(comparisons=rows)
            self.written += written
            return written
        except Exception:  # a shadow record never matters to viewers; counted and logged
            self.failed += len(rows)
            logger.exception("shadow: could not store %d comparisons", len(rows))
            return 0
        finally:
            if threading.current_thread() is not threading.main_thread():
                close_old_connections()  # the shadow thread's own connection, never a request's


recorder = ShadowRecorder()
