"""Bulk import of a MovieLens folder: movies, viewers with demographics, ratings and rating events.

Memory stays bounded: ratings are streamed in chunks (``chunk_size`` rows); only the movie id map
and the set of viewer ids already written are held, never the ratings. Each chunk is one
transaction. Importing twice changes nothing: each rating is keyed in the de-duplication ledger
(``IngestedLine``) by the digest of the platform line it stands for
(``<time>,<user>,GET /rate/<movie>=<stars>``), so a rating already stored is skipped, and
``Rating`` keeps the latest rating per viewer and movie. MovieLens metadata only fills in what a
movie or viewer lacks; it never overwrites what the platform's metadata said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from portal.services import activity_log_record
from recommender.catalog.services import quarantine_store
from recommender.ingest.services import line_digest
from recommender.models import IngestedLine, IngestSource, Movie, Rating, RatingEvent, Viewer
from recommender.movielens.layouts import Layout, MovieRow, RowError, UserRow, read_movies, read_ratings, read_users
from recommender.movielens.layouts import stars as to_stars


@dataclass
class MovieLensSummary:
    """What one import did."""

    layout: str = ""
    movies_created: int = 0
    movies_updated: int = 0
    viewers_created: int = 0
    viewers_updated: int = 0
    ratings_read: int = 0
    ratings_stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "layout": self.layout, "movies_created": self.movies_created, "movies_updated": self.movies_updated,
            "viewers_created": self.viewers_created, "viewers_updated": self.viewers_updated,
            "ratings_read": self.ratings_read, "ratings_stored": self.ratings_stored,
            "duplicates": self.duplicates, "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())), "seconds": round(self.seconds, 2),
        }


def rating_line(*, time: datetime, viewer_id: int, movie_id: str, stars: int) -> str:
    """The platform line a rating stands for: ``2022-02-25T13:38:49,284508,GET /rate/audition+1999=3``."""
    return f"{time:%Y-%m-%dT%H:%M:%S},{viewer_id},GET /rate/{movie_id}={stars}"


SQLITE_CACHE_KIB = 256 * 1024


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy(raw_cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    import io

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    raw_cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def bulk_insert(table: str, columns: tuple[str, ...], rows: list[tuple], *, rows_per_statement: int = 1000) -> None:
    """Insert prepared values without model instances: ``COPY`` on PostgreSQL, multi-row ``INSERT`` on SQLite."""
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the driver's cursor: skips per-query debug logging on a million rows
        if connection.vendor == "postgresql":
            _copy(raw, table, columns, rows)
            return
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        one = "(" + ",".join(["%s"] * len(columns)) + ")"
        for part in _chunks(rows, rows_per_statement):
            raw.execute(head + ",".join([one] * len(part)), [value for row in part for value in row])


def db_time(value: datetime):
    """A UTC datetime as the database backend stores it (SQLite: text; PostgreSQL: the datetime)."""
    if connection.vendor == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if value.microsecond else value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def rating_upsert(rows: list[tuple[int, str, int, datetime]]) -> None:
    """Insert or update ``Rating`` rows ``(viewer, movie, stars, time)``: the latest by time wins.

    One multi-row ``INSERT … ON CONFLICT … DO UPDATE … WHERE`` per 1,000 rows (PostgreSQL and SQLite).
    Rows must name each (viewer, movie) at most once.
    """
    table = Rating._meta.db_table
    upsert = (f"ON CONFLICT (viewer_id, movie_id) DO UPDATE SET rating = excluded.rating, time = excluded.time "
              f"WHERE excluded.time >= {table}.time")
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if connection.vendor == "postgresql":
            # COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT: far fewer round trips.
            raw.execute("CREATE TEMPORARY TABLE IF NOT EXISTS usher_rating_load "
                        "(viewer_id bigint, movie_id varchar(255), rating smallint, time timestamptz) ON COMMIT DELETE ROWS")
            _copy(raw, "usher_rating_load", ("viewer_id", "movie_id", "rating", "time"), rows)
            raw.execute(f"INSERT INTO {table} (viewer_id, movie_id, rating, time) "
                        f"SELECT viewer_id, movie_id, rating, time FROM usher_rating_load {upsert}")
            raw.execute("DELETE FROM usher_rating_load")
            return
        for part in _chunks(rows, 1000):
            params: list = []
            for viewer_id, movie_id, stars, time in part:
                params.extend((viewer_id, movie_id, stars, db_time(time)))
            values = ",".join(["(%s,%s,%s,%s)"] * len(part))
            raw.execute(f"INSERT INTO {table} (viewer_id, movie_id, rating, time) VALUES {values} {upsert}", params)


def _movies(layout: Layout, source: str, summary: MovieLensSummary) -> dict[int, str]:
    rows: list[MovieRow] = []
    bad: list[tuple[str, str, str, str]] = []
    for number, raw, row in read_movies(layout):
        if isinstance(row, RowError):
            bad.append((f"{layout.movies.name}:{number}", raw, row.reason, row.code))
        else:
            rows.append(row)
    rows.sort(key=lambda r: r.ml_id)
    slugs: dict[int, str] = {}
    taken: set[str] = set()
    for row in rows:
        slug = row.slug
        if slug in taken:  # two MovieLens ids with one title and year: the later id is told apart
            slug = f"{slug}+ml{row.ml_id}"
        taken.add(slug)
        slugs[row.ml_id] = slug
    now = timezone.now()
    for part in _chunks(rows, 2000):
        with transaction.atomic():
            existing = Movie.objects.in_bulk([slugs[r.ml_id] for r in part])
            create, update = [], []
            for row in part:
                slug = slugs[row.ml_id]
                ml_ref = {layout.dataset: row.ml_id}
                movie = existing.get(slug)
                if movie is None:
                    create.append(Movie(id=slug, title=row.title, year=row.year, genres=row.genres,
                                        release_date=row.release_date, enriched_at=now,
                                        extra={"movielens": ml_ref, "movielens_title": row.raw_title}))
                    continue
                changed = False
                for name, value in (("title", row.title), ("year", row.year), ("genres", row.genres),
                                    ("release_date", row.release_date)):
                    if value and not getattr(movie, name):
                        setattr(movie, name, value)
                        changed = True
                refs = dict(movie.extra.get("movielens") or {})
                if refs.get(layout.dataset) != row.ml_id:
                    movie.extra = {**movie.extra, "movielens": {**refs, **ml_ref}}
                    changed = True
                if changed:
                    movie.enriched_at = movie.enriched_at or now
                    update.append(movie)
            Movie.objects.bulk_create(create, batch_size=1000)
            if update:
                Movie.objects.bulk_update(update, ["title", "year", "genres", "release_date", "extra", "enriched_at"],
                                          batch_size=500)
            summary.movies_created += len(create)
            summary.movies_updated += len(update)
    _quarantine(source, bad, summary)
    return slugs


def _users(layout: Layout, source: str, offset: int, summary: MovieLensSummary) -> set[int]:
    rows: list[UserRow] = []
    bad: list[tuple[str, str, str, str]] = []
    for number, raw, row in read_users(layout):
        if isinstance(row, RowError):
            bad.append((f"{layout.users.name}:{number}", raw, row.reason, row.code))
        else:
            rows.append(row)
    now = timezone.now()
    written: set[int] = set()
    for part in _chunks(rows, 2000):
        with transaction.atomic():
            existing = Viewer.objects.in_bulk([r.ml_id + offset for r in part])
            create, update = [], []
            for row in part:
                viewer_id = row.ml_id + offset
                written.add(viewer_id)
                viewer = existing.get(viewer_id)
                if viewer is None:
                    create.append(Viewer(id=viewer_id, age=row.age, gender=row.gender, occupation=row.occupation,
                                         enriched_at=now))
                    continue
                changed = False
                for name, value in (("age", row.age), ("gender", row.gender), ("occupation", row.occupation)):
                    if value and not getattr(viewer, name):
                        setattr(viewer, name, value)
                        changed = True
                if changed:
                    viewer.enriched_at = viewer.enriched_at or now
                    update.append(viewer)
            Viewer.objects.bulk_create(create, batch_size=1000)
            if update:
                Viewer.objects.bulk_update(update, ["age", "gender", "occupation", "enriched_at"], batch_size=500)
            summary.viewers_created += len(create)
            summary.viewers_updated += len(update)
    _quarantine(source, bad, summary)
    return written


def _quarantine(source: str, bad: list[tuple[str, str, str, str]], summary: MovieLensSummary) -> None:
    if bad:
        with transaction.atomic():
            quarantine_store(source=source, rows=bad)
    summary.quarantined += len(bad)
    summary.reasons.update(code for *_, code in bad)


def _ratings_chunk(rows: list[tuple[int, str, int, datetime, str]], viewers_known: set[int],
                   summary: MovieLensSummary) -> None:
    """Store one chunk of ``(viewer, movie, stars, time, digest)`` rows in one transaction."""
    by_digest: dict[str, tuple[int, str, int, datetime, str]] = {}
    for row in rows:
        if row[4] in by_digest:
            summary.duplicates += 1
        else:
            by_digest[row[4]] = row
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Safe to lose on a crash (the import is idempotent; re-run it), and much faster to commit.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        seen: set[str] = set()
        for part in _chunks(list(by_digest), 5000):
            seen.update(u.hex for u in IngestedLine.objects.filter(digest__in=part).values_list("digest", flat=True))
        fresh = [row for digest, row in by_digest.items() if digest not in seen]
        summary.duplicates += len(by_digest) - len(fresh)
        if not fresh:
            return
        new_viewers = {row[0] for row in fresh} - viewers_known
        if new_viewers:
            Viewer.objects.bulk_create([Viewer(id=v) for v in sorted(new_viewers)], ignore_conflicts=True,
                                       batch_size=1000)
            viewers_known.update(new_viewers)
        bulk_insert(IngestedLine._meta.db_table, ("digest", "kind"), [(row[4], "r") for row in fresh])
        bulk_insert(RatingEvent._meta.db_table, ("viewer_id", "movie_id", "rating", "time"),
                    [(row[0], row[1], row[2], db_time(row[3])) for row in fresh])
        latest: dict[tuple[int, str], tuple[int, str, int, datetime]] = {}
        for viewer_id, movie_id, stars, time, _ in fresh:
            key = (viewer_id, movie_id)
            if key not in latest or time >= latest[key][3]:
                latest[key] = (viewer_id, movie_id, stars, time)
        rating_upsert(list(latest.values()))
    summary.ratings_stored += len(fresh)


def movielens_import(
    *,
    layout: Layout,
    user_offset: int = 0,
    chunk_size: int = 50_000,
    actor=None,
    progress: Callable[[MovieLensSummary], None] | None = None,
) -> MovieLensSummary:
    """Import a MovieLens folder (see ``detect_layout``); viewer ids are MovieLens user ids + ``user_offset``.

    Ratings become ``Rating`` (latest per viewer and movie) and ``RatingEvent`` rows, half stars
    rounded half up (``layouts.stars``). A rating naming a movie missing from the movies file is
    quarantined. Progress is reported after every chunk.
    """
    import time as _time

    started = _time.monotonic()
    if connection.vendor == "sqlite":
        # A big page cache for this connection: the ledger's and the indexes' B-trees take random
        # inserts, and SQLite's default 2 MB cache makes each one a read from the file.
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    source = f"movielens:{layout.folder}"
    summary = MovieLensSummary(layout=layout.name)
    slugs = _movies(layout, source, summary)
    viewers_known = _users(layout, source, user_offset, summary)
    IngestSource.objects.get_or_create(name=source[:255], defaults={"kind": "movielens"})
    rows: list[tuple[int, str, int, datetime, str]] = []
    bad: list[tuple[str, str, str, str]] = []
    ratings_name = layout.ratings.name
    stored_before = 0

    def flush() -> None:
        nonlocal rows, bad, stored_before
        batch_started = _time.monotonic()
        duplicates_before = summary.duplicates
        _ratings_chunk(rows, viewers_known, summary)
        _quarantine(source, bad, summary)
        elapsed = max(_time.monotonic() - batch_started, 1e-6)
        IngestSource.objects.filter(name=source[:255]).update(
            lines_read=F("lines_read") + len(rows) + len(bad),
            lines_stored=F("lines_stored") + (summary.ratings_stored - stored_before),
            duplicates=F("duplicates") + (summary.duplicates - duplicates_before),
            quarantined=F("quarantined") + len(bad),
            rate_per_s=(len(rows) + len(bad)) / elapsed, last_batch_at=timezone.now(),
            last_event_time=max((r[3] for r in rows), default=None) or F("last_event_time"),
        )
        stored_before = summary.ratings_stored
        rows, bad = [], []
        if progress:
            progress(summary)

    for number, raw, parsed in read_ratings(layout):
        summary.ratings_read += 1
        if isinstance(parsed, RowError):
            bad.append((f"{ratings_name}:{number}", raw, parsed.reason, parsed.code))
        else:
            user, ml_movie, rating, ts = parsed
            slug = slugs.get(ml_movie)
            if slug is None:
                bad.append((f"{ratings_name}:{number}", raw, f"movie {ml_movie} is not in the movies file",
                            "movielens.unknown_movie"))
            else:
                when = datetime.fromtimestamp(ts, tz=UTC)
                viewer_id = user + user_offset
                stars = to_stars(rating)
                digest = line_digest(rating_line(time=when, viewer_id=viewer_id, movie_id=slug, stars=stars))
                rows.append((viewer_id, slug, stars, when, digest))
        if len(rows) + len(bad) >= chunk_size:
            flush()
    if rows or bad:
        flush()
    summary.seconds = _time.monotonic() - started
    activity_log_record(actor=actor, system="import_movielens", action="movielens.imported",
                        target=("recommender.movielens", layout.dataset, str(layout.folder)), data=summary.as_dict())
    return summary
