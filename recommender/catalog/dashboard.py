"""Dashboard figures of the data intake: the catalog and the event stream, read from the database."""

from __future__ import annotations

from django.http import HttpRequest


def catalog_cards(request: HttpRequest) -> list[dict]:
    """Movies, viewers, ratings, watch sessions, quarantined lines, and events in the last hour."""
    from recommender.catalog.selectors import catalog_counts

    counts = catalog_counts()
    return [
        {"title": "Movies", "value": counts["movies"], "link": "recommender:catalog"},
        {"title": "Viewers", "value": counts["viewers"], "link": "recommender:catalog_viewers"},
        {"title": "Ratings", "value": counts["ratings"], "link": "recommender:catalog"},
        {"title": "Watch sessions", "value": counts["watch_sessions"], "link": "recommender:catalog_viewers"},
        {"title": "Quarantined lines", "value": counts["quarantined"], "link": "recommender:catalog_quarantine"},
        {"title": "Events in the last hour", "value": counts["events_last_hour"],
         "link": "recommender:catalog_ingestion"},
    ]
