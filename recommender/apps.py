"""Catalog, event ingestion, simulator, training, registry, serving, experiments and releases."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.reviews import ReviewKind, register_review_kind

        # A reviewer (not the requester) approves or rejects a candidate; the decision sets the
        # version's status. Moving the production alias is the release process's own step.
        register_review_kind(
            ReviewKind(
                name="model_promotion", label="Model promotion", decider_role="reviewer", four_eyes=True,
                on_decision="recommender.registry.services.model_promotion_decided",
            )
        )
        # Releases take over the decision (gate → review → canary) and record shadow comparisons.
        from recommender.releases.setup import releases_ready

        releases_ready()
