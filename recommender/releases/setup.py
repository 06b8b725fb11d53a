"""Wiring done once per process from ``RecommenderConfig.ready()``: the review kind and the
shadow observer."""

from __future__ import annotations


def releases_ready() -> None:
    from recommender.releases.reviews import register_review_kinds

    register_review_kinds()
    try:
        from recommender.serving.shadow import shadow_observer_register
    except ImportError:  # serving not installed in this build
        return
    from recommender.releases.shadow_observer import recorder

    shadow_observer_register(recorder)
