"""The registry of review kinds. Domain apps register theirs in ``AppConfig.ready()``.

A kind says who decides (a role), whether four eyes are required (the requester may never
decide), and which function of the domain app's own services reacts to the decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class ReviewKind:
    """One kind of decision the inbox handles (``recommender.promotion``, ``audits.waiver``…)."""

    name: str
    label: str
    decider_role: str = "reviewer"
    four_eyes: bool = True
    # Dotted path to ``fn(*, review, actor) -> None`` called inside the decision's transaction.
    on_decision: str | None = None
    # URL name of the portal page of the reviewed object (reversed with the review's target id),
    # so the review links to the evidence it is about.
    target_page: str | None = None

    def __post_init__(self) -> None:
        from portal.roles import ROLE_NAMES

        if self.decider_role not in ROLE_NAMES or self.decider_role == "viewer":
            raise ValueError(f"review kind '{self.name}': decider_role must be one of {ROLE_NAMES[1:]}")

    def decision_handler(self) -> Callable | None:
        return import_string(self.on_decision) if self.on_decision else None


_KINDS: dict[str, ReviewKind] = {}


def register_review_kind(kind: ReviewKind) -> None:
    """Add (or replace) a kind; call it from the domain app's ``AppConfig.ready()``."""
    _KINDS[kind.name] = kind


def get_review_kind(name: str) -> ReviewKind | None:
    return _KINDS.get(name)


def review_kinds() -> dict[str, ReviewKind]:
    return dict(_KINDS)
