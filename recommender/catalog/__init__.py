"""The catalog: viewer and movie metadata (schema, import services, selectors).

Owns the record schema and its checks (``schema``), slugs, the import services and the metadata
API's client (``http``), the catalog's pages, admin and dashboard card. Its models (``Viewer``,
``Movie``) live in ``recommender.models.catalog``.

May import: portal, ``recommender.models`` and ingest (the catalog pages list the intake's sources
and quarantine through ingest's selectors).
"""
