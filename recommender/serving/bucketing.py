"""Deterministic bucketing of viewers into production, canary and experiment arms.

A viewer's bucket is ``blake2b(f"{salt}:{viewer_id}") mod 10_000`` (basis points), the same in
every process and on every machine (Python's ``hash()`` is salted per process, so it is not used).

The 10,000 buckets are laid out so that changing one allocation moves as few viewers as possible:

- the canary takes buckets ``[0, canary_bp)``: raising the canary from 5% to 25% keeps the first 5%
  in the canary and only adds viewers;
- experiment arms take ranges from the top down, in arm order: ``[10000 - a1, 10000)`` for the first
  arm, the next range below it for the second, and so on;
- every other bucket is production.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

BUCKETS = 10_000
PRODUCTION = "production"
CANARY = "canary"


def viewer_bucket(viewer_id: int, salt: str) -> int:
    """The viewer's bucket in ``[0, 10000)``; stable for a given salt."""
    digest = hashlib.blake2b(f"{salt}:{viewer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def percent_to_buckets(percent: Decimal | float | int) -> int:
    """0–100 (two decimals) to a number of buckets (basis points)."""
    return int(round(Decimal(str(percent)) * 100))


@dataclass(frozen=True)
class ArmRange:
    """A named route (``canary`` or ``arm:<name>``) owning buckets ``[start, end)``."""

    route: str
    start: int
    end: int


@dataclass(frozen=True)
class Layout:
    """The bucket ranges of one deployment revision; everything outside them is production."""

    salt: str
    ranges: tuple[ArmRange, ...]

    def route_for_bucket(self, bucket: int) -> str:
        for arm in self.ranges:
            if arm.start <= bucket < arm.end:
                return arm.route
        return PRODUCTION

    def route(self, viewer_id: int) -> str:
        if not self.ranges:
            return PRODUCTION
        return self.route_for_bucket(viewer_bucket(viewer_id, self.salt))

    def share(self, route: str) -> float:
        """The share (0–1) of buckets a route owns."""
        if route == PRODUCTION:
            return 1.0 - sum(r.end - r.start for r in self.ranges) / BUCKETS
        return sum(r.end - r.start for r in self.ranges if r.route == route) / BUCKETS


def build_layout(*, salt: str, canary_percent: Decimal | float | int, arms: list[tuple[str, Decimal | float]]) -> Layout:
    """The layout for a canary share and experiment arms ``[(name, percent), ...]`` in order.

    Raises ``ValueError`` when the allocations add up to more than 100%.
    """
    ranges: list[ArmRange] = []
    canary = percent_to_buckets(canary_percent)
    if canary < 0 or canary > BUCKETS:
        raise ValueError("the canary share must be between 0 and 100%")
    if canary:
        ranges.append(ArmRange(CANARY, 0, canary))
    top = BUCKETS
    for name, percent in arms:
        size = percent_to_buckets(percent)
        if size <= 0:
            raise ValueError(f"arm '{name}' needs a share above 0%")
        start = top - size
        if start < canary:
            raise ValueError("the canary and the experiment arms add up to more than 100% of traffic")
        ranges.append(ArmRange(f"arm:{name}", start, top))
        top = start
    return Layout(salt=salt, ranges=tuple(ranges))
