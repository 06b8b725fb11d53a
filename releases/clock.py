"""The releases' clock: the wall clock, unless a simulation drives time (``simulated``).

Rollouts and experiments compare what was served after they started; in a simulated world the
prediction log and the viewers' watches carry simulated time, so the release services read the
time here and a simulation substitutes its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    return _source() if _source is not None else timezone.now()


@contextmanager
def simulated(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, the release services take the time from ``source``."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous
