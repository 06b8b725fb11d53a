"""The recommender: catalog, event ingestion, simulator, training, registry and serving.

Owns the shared models (``recommender.models``, one module per area) and errors
(``recommender.errors``), the REST API (``recommender.api``), the pages' URLs, navigation, admin
and tasks, and one sub-package per area, each saying in its docstring what it owns and imports.

May import portal, nothing above it: monitoring, audits and releases build on it (releases, the top
floor, registers what recommender asks of it: serving's live-traffic clearance, retraining's
promotion request). Inside, an area imports only the floors below it: models and errors ← ingest,
registry ← catalog, training, serving ← simulator, movielens ← api, urls, navigation, admin, tasks. The few imports that still run up are named in the areas' docstrings.
"""
