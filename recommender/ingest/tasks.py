"""Celery entry points of event ingestion: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from recommender.ingest.services import ingest_ledger_prune


@shared_task(name="recommender.ingest.ledger_prune")
def ledger_prune() -> int:
    """Daily: delete de-duplication ledger rows older than ``INGEST_LEDGER_RETENTION_DAYS``; returns the count.

    Idempotent: a second run the same day finds nothing left to delete.
    """
    return ingest_ledger_prune()
