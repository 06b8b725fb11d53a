"""Dashboard cards of the recommender app: each area contributes its own."""

from __future__ import annotations

from django.http import HttpRequest


def _serving_cards(request: HttpRequest) -> list[dict]:
    from recommender.serving import selectors
    from recommender.serving.predlog import spill_pending
    from recommender.serving.runtime import get_runtime

    summary = selectors.prediction_log_summary()
    rate = summary["fallback_rate"]
    return [
        {"title": "Answers in the last hour", "value": summary["total"], "link": "recommender:serving_provenance"},
        {"title": "Fallback share, last hour", "value": "—" if rate is None else f"{rate:.1%}",
         "link": "recommender:serving_provenance"},
        {"title": "Prediction records waiting to replay",
         "value": spill_pending(get_runtime().config.spill_dir)["queued_records"],
         "link": "recommender:serving_deployments"},
    ]


def cards(request: HttpRequest) -> list[dict]:
    from recommender.catalog.dashboard import catalog_cards
    from recommender.training.dashboard import training_cards

    return [*catalog_cards(request), *training_cards(request), *_serving_cards(request)]
