"""Serving: ``GET /recommend/<userid>``, the JSON recommendations API, deployments and bucketing,
the in-memory model cache, seen-items index and fallback, the prediction log, provenance and rate limits.

See docs/serving.md. The request path never touches the database: everything it needs is held in
memory (or memory-mapped) and refreshed by background threads; what it records is appended to an
in-process buffer that a background flusher writes in batches.

May import: portal, ``recommender.models`` and the registry (artifacts, aliases, selectors; today
imported inside functions). Releases and the API build on it; which versions may serve viewers is
the clearance policy releases registers (``selectors.clearance_policy_register``: none registered,
nothing is cleared). Today ``pages`` imports the API's
private ``_explain`` inside a function: an arrow up, to be removed.
"""
