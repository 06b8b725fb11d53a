"""Serving: ``GET /recommend/<userid>``, the JSON recommendations API, deployments and bucketing,
the in-memory model cache, seen-items index and fallback, the prediction log, provenance and rate limits.

See docs/serving.md. The request path never touches the database: everything it needs is held in
memory (or memory-mapped) and refreshed by background threads; what it records is appended to an
in-process buffer that a background flusher writes in batches.
"""
