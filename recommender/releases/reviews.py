"""The releases' review kind: ``model_promotion`` decided by a reviewer who is not the requester.

The registry registers the kind first (its handler sets the version's status); this module
re-registers it with ``promotion_review_decided``, which handles promotion requests and hands
reviews the registry opened itself (scheduled retraining) back to the registry's handler.
"""

from __future__ import annotations

from portal.reviews import ReviewKind, register_review_kind


def register_review_kinds() -> None:
    register_review_kind(
        ReviewKind(
            name="model_promotion", label="Model promotion", decider_role="reviewer", four_eyes=True,
            on_decision="recommender.releases.services.promotions.promotion_review_decided",
        )
    )
