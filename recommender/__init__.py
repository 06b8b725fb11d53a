"""Catalog, event ingestion, simulator, training, registry, serving, experiments and releases."""
