"""Releases and experiments, the top floor of the house: the release gate, canary rollouts, A/B
experiments, shadow comparisons and production rollback."""

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases and experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.reviews import register_renamed_targets
        from recommender.serving.selectors import ClearancePolicy, clearance_policy_register
        from recommender.serving.shadow import shadow_observer_register
        from recommender.training.retraining import retraining_promotion_requester_register
        from releases import selectors, services
        from releases.reviews import register_review_kinds
        from releases.shadow_observer import recorder

        # The promotion review kind (gate → review → canary); the one door to live traffic that serving
        # asks (an approved promotion); the promotion request a winning scheduled retrain files; and
        # every shadow comparison recorded.
        register_review_kinds()
        # Activity-log entries written before releases had its own app name its objects recommender.<model>.
        register_renamed_targets({f"recommender.{m._meta.model_name}": m._meta.label_lower
                                  for m in self.get_models()})
        clearance_policy_register(ClearancePolicy(clearance=selectors.live_traffic_clearance,
                                                  start_links=selectors.promotion_start_links))
        retraining_promotion_requester_register(services.promotion_request_create)
        shadow_observer_register(recorder)
