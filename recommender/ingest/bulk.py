"""The bulk store of ingestion: a batch's rows written in a few statements, without the ORM.

On PostgreSQL, rows go in with ``COPY`` (straight into an insert-only table, or into a
per-connection temporary table followed by one statement) and keys as one array parameter;
elsewhere (SQLite) with multi-row ``INSERT``. Every writer takes the cursor of the caller's open
transaction; ``services`` orders the steps of a batch. See docs/ingest.md, "Storing a batch".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from recommender.ingest.parser import RatingEvent, RecommendationEvent, Rejected, WatchEvent
from recommender.models import IngestedLine, Movie, QuarantinedLine, Rating, RecommendationRequest, Viewer
from recommender.models import RatingEvent as RatingEventRow

# The ledger's one-letter kind of each parse result.
LEDGER_KIND = {RatingEvent: "r", WatchEvent: "w", RecommendationEvent: "q", Rejected: "x"}
MAX_RAW_LENGTH = 16_384


def clean_text(text: str, limit: int | None = None) -> str:
    """Text that every database stores: no NUL, no lone surrogates, at most ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


# --- SQL helpers --------------------------------------------------------------------------------
def table(model) -> str:
    """The model's table name, quoted for the connection's database."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model, name: str) -> str:
    """The column of the model's field ``name``, quoted for the connection's database."""
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _rows_per_statement(ncols: int) -> int:
    # SQLite allows 32766 bound parameters per statement (3.32+); PostgreSQL 65535.
    return max(1, min(2000, 30_000 // ncols))


def insert(
    cursor, head: str, ncols: int, rows: Sequence[Sequence[Any]], tail: str = "", returning: bool = False
) -> list[tuple]:
    """Multi-row ``INSERT``: ``head`` is ``INSERT INTO t (cols)``; ``tail`` e.g. an ON CONFLICT clause."""
    out: list[tuple] = []
    if not rows:
        return out
    one = "(" + ",".join(["%s"] * ncols) + ")"
    step = _rows_per_statement(ncols)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        sql = f"{head} VALUES {','.join([one] * len(chunk))} {tail}"
        cursor.execute(sql, [value for row in chunk for value in row])
        if returning:
            out.extend(cursor.fetchall())
    return out


def append(cursor, model, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Append rows to an insert-only table: ``COPY`` on PostgreSQL, multi-row ``INSERT`` elsewhere."""
    if not rows:
        return
    columns = ", ".join(column(model, n) for n in names)
    if connection.vendor != "postgresql":
        insert(cursor, f"INSERT INTO {table(model)} ({columns})", len(names), rows)
        return
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    with connection.wrap_database_errors:  # raw psycopg2 call: map its errors to Django's
        cursor.cursor.copy_expert(f"COPY {table(model)} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)


def copy_to_temp(cursor, name: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL: ``COPY`` rows into a per-connection temporary table emptied at commit."""
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS")
    cursor.execute(f"TRUNCATE {name}")
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    with connection.wrap_database_errors:  # raw psycopg2 call: map its errors to Django's
        cursor.cursor.copy_expert(f"COPY {name} FROM STDIN WITH (FORMAT csv)", buffer)


# --- the steps of a batch -----------------------------------------------------------------------
def ledger_claim(cursor, results: Mapping[str, RatingEvent | WatchEvent | RecommendationEvent | Rejected]) -> set[str]:
    """Enter the digests (32 hex digits → parse result) in the de-duplication ledger; return the new ones.

    Sorted keys keep the lock order the same in concurrent consumers; a digest another transaction
    holds waits for it, then is skipped.
    """
    rows = [(digest, LEDGER_KIND[type(results[digest])]) for digest in sorted(results)]
    head = f"INSERT INTO {table(IngestedLine)} ({column(IngestedLine, 'digest')}, {column(IngestedLine, 'kind')})"
    if connection.vendor == "postgresql":
        copy_to_temp(cursor, "usher_ingest_ledger", "digest uuid, kind varchar(1)", rows)
        # Return the digest as 32 hex digits, the form used in memory (no UUID objects per row).
        cursor.execute(
            f"{head} SELECT digest, kind FROM usher_ingest_ledger ORDER BY digest "
            f"ON CONFLICT ({column(IngestedLine, 'digest')}) DO NOTHING "
            f"RETURNING encode(uuid_send({column(IngestedLine, 'digest')}), 'hex')"
        )
        inserted = cursor.fetchall()
    else:
        tail = f"ON CONFLICT ({column(IngestedLine, 'digest')}) DO NOTHING RETURNING {column(IngestedLine, 'digest')}"
        inserted = insert(cursor, head, 2, rows, tail, returning=True)
    return {row[0] if isinstance(row[0], str) else row[0].hex for row in inserted}


def ledger_delete_before(*, cutoff: date, batch_size: int) -> tuple[int, int]:
    """Delete ledger rows written before ``cutoff``, at most ``batch_size`` per transaction; (removed, statements)."""
    table_, digest, day = table(IngestedLine), column(IngestedLine, "digest"), column(IngestedLine, "ingested_on")
    # The subquery walks the ingested_on index: each statement touches at most batch_size rows.
    sql = f"DELETE FROM {table_} WHERE {digest} IN (SELECT {digest} FROM {table_} WHERE {day} < %s LIMIT %s)"
    params = [connection.ops.adapt_datefield_value(cutoff), max(1, batch_size)]
    removed = statements = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            deleted = cursor.rowcount
        statements += 1
        removed += deleted
        if deleted < params[1]:
            return removed, statements


def catalog_stubs_ensure(cursor, *, viewer_ids: Collection[int], movie_ids: Collection[str]) -> None:
    """Create stub viewers and movies the stream names and the catalog does not know yet."""
    for model, ids in ((Viewer, viewer_ids), (Movie, movie_ids)):
        if not ids:
            continue
        # ON CONFLICT DO NOTHING skips the ones that exist: no separate lookup needed.
        _insert_stubs(cursor, model, sorted(ids))


def _insert_stubs(cursor, model, ids: list) -> None:
    """``INSERT … ON CONFLICT DO NOTHING`` rows holding only the key and each field's default.

    Built from the model's fields, so fields added to the catalog later are covered; raw SQL
    because instantiating thousands of models per batch is the slowest part of the hot path.
    """
    now = timezone.now()
    columns, constants = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            value = now
        elif f.has_default() or not f.null:
            value = f.get_default()
        else:
            value = None
        columns.append(connection.ops.quote_name(f.column))
        constants.append(f.get_db_prep_save(value, connection))
    pk = connection.ops.quote_name(model._meta.pk.column)
    if connection.vendor == "postgresql":
        # One array parameter for the keys; the defaults are sent once, not once per row.
        pk_type = model._meta.pk.db_type(connection)
        cursor.execute(
            f"INSERT INTO {table(model)} ({pk}, {', '.join(columns)}) "
            f"SELECT k, {', '.join(['%s'] * len(constants))} FROM unnest(%s::{pk_type}[]) AS k ORDER BY k "
            f"ON CONFLICT ({pk}) DO NOTHING",
            [*constants, ids],
        )
        return
    insert(
        cursor,
        f"INSERT INTO {table(model)} ({pk}, {', '.join(columns)})",
        1 + len(columns),
        [(i, *constants) for i in ids],
        f"ON CONFLICT ({pk}) DO NOTHING",
    )


def ratings_store(cursor, ratings: Sequence[RatingEvent]) -> None:
    """Ratings: the full history, and the latest per viewer and movie by event time."""
    if not ratings:
        return
    adapt_time = connection.ops.adapt_datetimefield_value
    append(
        cursor,
        RatingEventRow,
        ("viewer", "movie", "rating", "time"),
        [(ev.user_id, ev.movie_id, ev.rating, adapt_time(ev.time)) for ev in ratings],
    )
    latest: dict[tuple[int, str], RatingEvent] = {}
    for ev in ratings:  # a tie in time goes to the later-arriving line
        key = (ev.user_id, ev.movie_id)
        held = latest.get(key)
        if held is None or ev.time >= held.time:
            latest[key] = ev
    table_, v, m, r, t = (
        table(Rating),
        column(Rating, "viewer"),
        column(Rating, "movie"),
        column(Rating, "rating"),
        column(Rating, "time"),
    )
    insert(
        cursor,
        f"INSERT INTO {table_} ({v}, {m}, {r}, {t})",
        4,
        [(ev.user_id, ev.movie_id, ev.rating, adapt_time(ev.time)) for _, ev in sorted(latest.items())],
        f"ON CONFLICT ({v}, {m}) DO UPDATE SET {r} = excluded.{r}, {t} = excluded.{t} "
        f"WHERE {table_}.{t} <= excluded.{t}",
    )


def recommendations_append(cursor, recommendations: Sequence[RecommendationEvent]) -> None:
    """Recommendation requests as the platform logged them."""
    if not recommendations:
        return
    adapt_time = connection.ops.adapt_datetimefield_value
    append(
        cursor,
        RecommendationRequest,
        ("time", "viewer", "server", "status", "movie_ids", "response_ms", "error"),
        [
            (
                adapt_time(ev.time),
                ev.user_id,
                clean_text(ev.server, 255),
                ev.status,
                json.dumps(list(ev.movie_ids)),
                ev.response_ms,
                clean_text(ev.error),
            )
            for ev in recommendations
        ],
    )


def quarantine_append(cursor, *, source: str, rejected: Sequence[tuple[str, str, Rejected]]) -> None:
    """Quarantine (position, raw text, rejection) triples with their reason, under ``source``."""
    if not rejected:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    append(
        cursor,
        QuarantinedLine,
        ("source", "position", "raw", "reason", "reason_code", "created_at"),
        [
            (
                source[:255],
                position[:64],
                clean_text(raw, MAX_RAW_LENGTH),
                result.reason[:255],
                result.code,
                now,
            )
            for position, raw, result in rejected
        ],
    )
