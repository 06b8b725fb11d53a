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


# --- human labels of machine names -------------------------------------------------------------
# One registry for the names pages show: review kinds (their ``ReviewKind.label``), and whatever an
# app registers next to its kinds (audit check names, activity-log verbs …). A name nobody
# registered reads as words ("audit_run.succeeded" → "Audit run succeeded").

_LABELS: dict[str, str] = {
    "review.requested": "Review requested", "review.approve": "Review approved", "review.reject": "Review rejected",
    "review.request_changes": "Changes requested", "review.refused": "Decision refused",
    "review.cancelled": "Review cancelled",
}


def register_labels(labels: dict[str, str]) -> None:
    """Add human labels for machine names (``{"security.rating_velocity": "Rating velocity"}``);
    call it from the app's ``AppConfig.ready()``, next to its review kinds."""
    _LABELS.update(labels)


def human_label(name: object) -> str:
    """The label of a machine name: a review kind's label, a registered label, else the name in words."""
    text = "" if name is None else str(name)
    kind = _KINDS.get(text)
    if kind is not None:
        return kind.label
    if text in _LABELS:
        return _LABELS[text]
    words = text.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# The portal page of an object named by its ``app_label.model`` (activity-log targets, review targets).
TARGET_PAGES: dict[str, str] = {
    "portal.reviewrequest": "portal:review",
    "audits.auditrun": "audits:run", "audits.auditfinding": "audits:finding",
    "recommender.modelversion": "recommender:registry_version", "recommender.trainingrun": "recommender:training_run",
    "recommender.datasetsnapshot": "recommender:training_snapshot",
    "releases.promotionrequest": "releases:promotion", "releases.rollout": "releases:rollout",
    "releases.experiment": "releases:experiment",
    "monitoring.incident": "monitoring:incident", "monitoring.driftreport": "monitoring:drift_report",
    "monitoring.dataqualityreport": "monitoring:data_quality_report",
}


# Objects whose model moved to another app (``recommender.promotionrequest`` → ``releases.promotionrequest``):
# activity-log entries keep the name they were written with (the log is a hash chain), so readers map
# it to the model's name now. The app that took the models over registers them.
_RENAMED_TARGETS: dict[str, str] = {}


def register_renamed_targets(renamed: dict[str, str]) -> None:
    """``{"old_app.model": "new_app.model"}`` for models that moved between apps."""
    _RENAMED_TARGETS.update({old.lower(): new.lower() for old, new in renamed.items()})


def current_target_type(target_type: str) -> str:
    """The ``app_label.model`` a stored target name means today."""
    return _RENAMED_TARGETS.get(str(target_type).lower(), str(target_type))


def stored_target_types(target_type: str) -> list[str]:
    """Every name stored entries may give ``target_type`` (today's first, then the ones it had)."""
    return [target_type, *(old for old, new in _RENAMED_TARGETS.items() if new == target_type)]


def target_url(target_type: str, target_id: object, *, kind: str = "") -> str | None:
    """The portal page of an object (``recommender.modelversion``, ``12``), or of a review's target
    (its kind's ``target_page`` first); None when it has no page."""
    from django.urls import NoReverseMatch, reverse

    review_kind = _KINDS.get(kind) if kind else None
    names = [review_kind.target_page] if review_kind is not None and review_kind.target_page else []
    target_type = current_target_type(target_type)
    if target_type in TARGET_PAGES:
        names.append(TARGET_PAGES[target_type])
    for name in names:
        try:
            return reverse(name, args=[target_id])
        except NoReverseMatch:
            continue
    return None
