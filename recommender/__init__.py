"""The recommender: catalog, event ingestion, simulator, training, registry, serving, experiments and releases.

Owns the shared models (``recommender.models``, one module per area) and errors
(``recommender.errors``), the REST API (``recommender.api``), the pages' URLs, navigation, admin
and tasks, and one sub-package per area, each saying in its docstring what it owns and imports.

May import portal, nothing above it: monitoring and audits build on it. The exception is
``releases``, which reaches monitoring and audits inside functions until it moves out to a
top-level app above them. Inside, an area imports only the floors below it: models and errors ←
ingest, registry ← catalog, training, serving ← simulator, movielens ← releases ← api, urls,
navigation, admin, tasks. The few imports that still run up are named in the areas' docstrings.
"""
