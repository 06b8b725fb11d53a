"""Event intake: the platform's line parser, ingestion into the database, and the sources feeding it.

Owns the line formats (``parser``), the batch pipeline (``services`` orders it, ``bulk`` writes the
rows, ``sessions`` folds watch minutes into sessions), the file and stream sources (``sources``),
the ledger-prune task, the intake's selectors and admin. Its models (``IngestSource``,
``IngestedLine``, ``QuarantinedLine``, ``Rating``, ``RatingEvent``, ``RecommendationRequest``,
``WatchSession``) live in ``recommender.models.events``. See docs/ingest.md.

May import: portal, ``recommender.models`` and ``recommender.errors``; no other area. It is the
recommender's ground floor: catalog, movielens and the simulator build on it.
"""
