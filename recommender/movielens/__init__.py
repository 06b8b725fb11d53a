"""MovieLens import: layouts (ml-100k, ml-1m, ml-latest / ml-25m) and the bulk import service.

May import: portal, ``recommender.models``, catalog (slugs, its quarantine) and ingest (the ledger's
line digest, so imported ratings de-duplicate like streamed ones). Only the ``import_movielens``
command imports it.
"""
