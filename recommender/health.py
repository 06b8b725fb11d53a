"""The recommender's part of ``/readyz``'s detail (found by ``portal.contrib.app_modules("health")``)."""

from __future__ import annotations


def readiness_detail() -> dict:
    """Whether everything that serves viewers went through an approved promotion (serving goes on
    either way: this is detail for signed-in callers, not readiness)."""
    from recommender.serving.selectors import deployment_review_state

    return {"deployment": deployment_review_state()}
