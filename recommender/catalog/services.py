"""Writes to the catalog: viewer and movie metadata imported from JSON records, in bulk.

Every record is stored (created, or enriched where it differs) or quarantined with a reason;
a batch is written in one transaction, so nothing is half-written. Importing the same records
twice changes nothing: unchanged rows are not touched and an identical quarantined record
(same source, position and text) is not stored again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.permissions import require
from portal.services import activity_log_record
from recommender.catalog.http import MetadataClient
from recommender.catalog.schema import RawRecord, RecordError, record_kind, validate_movie, validate_viewer
from recommender.models import Movie, QuarantinedLine, Viewer

MOVIE_FIELDS = [
    "tmdb_id", "imdb_id", "title", "original_title", "adult", "genres", "release_date", "year", "runtime",
    "original_language", "popularity", "vote_average", "vote_count", "budget", "revenue", "status", "extra",
]
VIEWER_FIELDS = ["age", "gender", "occupation"]


@dataclass
class CatalogImportSummary:
    """What one import did: counts by outcome, and quarantined records by reason code."""

    records: int = 0
    viewers_created: int = 0
    viewers_updated: int = 0
    movies_created: int = 0
    movies_updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "records": self.records, "viewers_created": self.viewers_created,
            "viewers_updated": self.viewers_updated, "movies_created": self.movies_created,
            "movies_updated": self.movies_updated, "unchanged": self.unchanged,
            "quarantined": self.quarantined, "reasons": dict(sorted(self.reasons.items())),
        }


def _raw_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    try:
        return json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(data)


def quarantine_store(*, source: str, rows: list[tuple[str, str, str, str]]) -> int:
    """Store ``(position, raw, reason, reason_code)`` rows unless an identical one is already there."""
    if not rows:
        return 0
    existing = set(
        QuarantinedLine.objects.filter(source=source, position__in={r[0] for r in rows}).values_list("position", "raw")
    )
    fresh: list[QuarantinedLine] = []
    for position, raw, reason, code in rows:
        if (position, raw) in existing:
            continue
        existing.add((position, raw))
        fresh.append(QuarantinedLine(source=source[:255], position=position[:64], raw=raw,
                                     reason=reason[:255], reason_code=code[:64]))
    QuarantinedLine.objects.bulk_create(fresh, batch_size=1000)
    return len(fresh)


def _apply(model, clean_by_id: dict[Any, dict], fields: list[str], now, summary: CatalogImportSummary, kind: str) -> None:
    existing = model.objects.in_bulk(list(clean_by_id))
    to_create, to_update = [], []
    for pk, clean in clean_by_id.items():
        obj = existing.get(pk)
        if obj is None:
            to_create.append(model(id=pk, enriched_at=now, **{k: v for k, v in clean.items() if k in fields}))
            continue
        changed = False
        for name in fields:
            if name in clean and getattr(obj, name) != clean[name]:
                setattr(obj, name, clean[name])
                changed = True
        if changed or obj.enriched_at is None:
            obj.enriched_at = now
            to_update.append(obj)
        else:
            summary.unchanged += 1
    model.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        model.objects.bulk_update(to_update, fields + ["enriched_at"], batch_size=500)
    setattr(summary, f"{kind}_created", getattr(summary, f"{kind}_created") + len(to_create))
    setattr(summary, f"{kind}_updated", getattr(summary, f"{kind}_updated") + len(to_update))


def _import_batch(batch: list[RawRecord], source: str, summary: CatalogImportSummary) -> None:
    viewers: dict[int, dict] = {}
    movies: dict[str, dict] = {}
    bad: list[tuple[str, str, str, str]] = []
    for rec in batch:
        summary.records += 1
        raw_text = _raw_text(rec.data)
        if rec.error is not None:
            bad.append((rec.position, raw_text, *rec.error))
            continue
        data = rec.data
        try:
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except ValueError as exc:
                    raise RecordError(f"not valid JSON: {exc.msg} at column {exc.colno}", "catalog.bad_json")
            kind = record_kind(data)
            if kind == "viewer":
                clean = validate_viewer(data)
                viewers[clean.pop("id")] = clean
            elif kind == "movie":
                clean = validate_movie(data)
                movies[clean.pop("id")] = clean
            else:
                raise RecordError("record is neither a viewer (user_id) nor a movie (id)", "catalog.unknown_record")
        except RecordError as exc:
            bad.append((rec.position, raw_text, exc.reason, exc.code))
    now = timezone.now()
    with transaction.atomic():
        _apply(Viewer, viewers, VIEWER_FIELDS, now, summary, "viewers")
        _apply(Movie, movies, MOVIE_FIELDS, now, summary, "movies")
        quarantine_store(source=source, rows=bad)
    summary.quarantined += len(bad)
    summary.reasons.update(code for *_, code in bad)


def catalog_records_import(
    *,
    records: Iterable[RawRecord],
    source: str,
    batch_size: int = 1000,
    actor: Any | None = None,
    system: str | None = None,
) -> CatalogImportSummary:
    """Validate and store viewer and movie records; bad ones go to quarantine with their reason.

    ``source`` names where they came from (``catalog:<file>`` or ``catalog:<base url>``) and is
    the quarantine's source. Each batch is one transaction. Records one activity-log entry.
    Importing is ``config.manage`` work; a command or the simulator names itself with ``system=``.
    """
    require(actor, "config.manage", system=system)
    summary = CatalogImportSummary()
    batch: list[RawRecord] = []
    for rec in records:
        batch.append(rec)
        if len(batch) >= batch_size:
            _import_batch(batch, source, summary)
            batch = []
    if batch:
        _import_batch(batch, source, summary)
    activity_log_record(
        actor=actor, system=system or "import_catalog", action="catalog.imported",
        target=("recommender.catalog", source[:64], source), data=summary.as_dict(),
    )
    return summary


def jsonl_records(lines: Iterable[str]) -> Iterator[RawRecord]:
    """Records of a JSON-lines text, positioned by line number; blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text:
            yield RawRecord(position=str(number), data=text)


def catalog_import_file(*, path: str, actor: Any | None = None, batch_size: int = 1000,
                        system: str | None = None) -> CatalogImportSummary:
    """Import a JSON-lines file of viewer and movie records (``.gz`` too; ``-`` for stdin)."""
    import gzip
    import sys

    require(actor, "config.manage", system=system)
    if path == "-":
        return catalog_records_import(records=jsonl_records(sys.stdin), source="catalog:-", actor=actor,
                                      batch_size=batch_size, system=system)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return catalog_records_import(records=jsonl_records(handle), source=f"catalog:{path}", actor=actor,
                                      batch_size=batch_size, system=system)


def catalog_import_url(
    *,
    base_url: str,
    viewer_ids: Iterable[int] = (),
    movie_ids: Iterable[str] = (),
    concurrency: int = 8,
    rate_per_s: float = 50.0,
    retries: int = 3,
    timeout_s: float = 5.0,
    actor: Any | None = None,
    batch_size: int = 500,
    system: str | None = None,
) -> CatalogImportSummary:
    """Fetch ``/user/<id>`` and ``/movie/<id>`` from the platform's metadata API and import them."""
    require(actor, "config.manage", system=system)

    client = MetadataClient(base_url=base_url, concurrency=concurrency, rate_per_s=rate_per_s,
                            retries=retries, timeout_s=timeout_s)
    paths = [f"/user/{int(v)}" for v in viewer_ids] + [f"/movie/{m}" for m in movie_ids]
    return catalog_records_import(records=client.fetch(paths), source=f"catalog:{base_url.rstrip('/')}",
                                  actor=actor, batch_size=batch_size, system=system)
