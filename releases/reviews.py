"""The releases' review kind: ``model_promotion`` decided by a reviewer who is not the requester.

Registered once, here: every promotion (a data scientist's request and scheduled retraining alike)
is a ``PromotionRequest`` whose review this kind decides (gate → review → canary). The registry's
own review path of the same name is gone (migration ``recommender 0012`` closed its pending reviews).
"""

from __future__ import annotations

from portal.reviews import ReviewKind, register_review_kind


def register_review_kinds() -> None:
    register_review_kind(
        ReviewKind(
            name="model_promotion", label="Model promotion", decider_role="reviewer", four_eyes=True,
            on_decision="releases.services.promotions.promotion_review_decided",
            target_page="releases:promotion",
        )
    )
