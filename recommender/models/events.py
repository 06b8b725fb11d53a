"""What the event stream tells: ratings, watch sessions, client-side recommendation lines,
quarantined lines, the de-duplication ledger, and the status of each ingestion source."""

from __future__ import annotations

from django.db import models


class CurrentUTCDate(models.Func):
    """Today's date in UTC, computed by the database: a column default that costs no Python per row."""

    template = "CURRENT_DATE"  # SQLite's CURRENT_DATE is already in UTC
    arity = 0
    output_field = models.DateField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # CURRENT_DATE follows the session's TimeZone; pin it so every client writes the UTC day.
        return "((CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date)", []


class IngestedLine(models.Model):
    """De-duplication ledger: the digest of every accepted line, so a line delivered twice counts once.

    Rows are kept for ``RECOMMENDER['INGEST_LEDGER_RETENTION_DAYS']`` after the day they were written
    (``ingested_on``), then pruned daily (``ingest_ledger_prune``); see docs/ingest.md, "Ledger retention".
    """

    # A UUID column holds the 128-bit digest compactly and compares fast (no text collation).
    digest = models.UUIDField(primary_key=True, help_text="blake2b-128 of the line without surrounding whitespace.")
    kind = models.CharField(
        max_length=1, help_text="r = rating, w = watch, q = recommendation request, x = quarantined."
    )
    # The ingest day, not the event day: a replay of old history (a backfill, MovieLens' 1998 ratings)
    # must stay de-duplicated for a full retention period after it arrives. Set by the database's
    # default, so the hot path's INSERT does not name it.
    ingested_on = models.DateField(
        db_default=CurrentUTCDate(),
        db_index=True,
        help_text="UTC day the line was first accepted; pruned after INGEST_LEDGER_RETENTION_DAYS.",
    )

    def __str__(self) -> str:
        return str(self.digest)


class RatingEvent(models.Model):
    """Every rating line as it arrived: the history behind ``Rating``."""

    viewer = models.ForeignKey("recommender.Viewer", on_delete=models.CASCADE, related_name="+")
    movie = models.ForeignKey("recommender.Movie", on_delete=models.CASCADE, related_name="+")
    rating = models.PositiveSmallIntegerField()
    time = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["movie", "time"]), models.Index(fields=["viewer", "time"])]

    def __str__(self) -> str:
        return f"{self.viewer_id} rated {self.movie_id}={self.rating} at {self.time}"


class Rating(models.Model):
    """A viewer's current rating of a movie: the latest by event time wins."""

    viewer = models.ForeignKey("recommender.Viewer", on_delete=models.CASCADE, related_name="ratings")
    movie = models.ForeignKey("recommender.Movie", on_delete=models.CASCADE, related_name="ratings")
    rating = models.PositiveSmallIntegerField()
    time = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["viewer", "movie"], name="rating_one_per_viewer_movie"),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer_id}:{self.movie_id}={self.rating}"


class WatchSession(models.Model):
    """A viewer watching a movie, built from the one-line-per-minute watch events.

    Session rule: the watch lines of one viewer and movie form one session as long as consecutive
    lines (ordered by event time) are at most ``RECOMMENDER['WATCH_SESSION_GAP_MINUTES']`` apart; a
    longer gap starts a new session. A late line that closes a gap merges the two sessions, so the
    result does not depend on arrival order or batching. ``minutes_watched`` counts distinct minutes
    (``minutes_seen`` holds them as ranges), so a minute streamed twice counts once.
    """

    # Few indexes on purpose: every watch line updates a session row, and each index costs a write.
    viewer = models.ForeignKey(
        "recommender.Viewer", on_delete=models.CASCADE, related_name="watch_sessions", db_index=False
    )
    movie = models.ForeignKey(
        "recommender.Movie", on_delete=models.CASCADE, related_name="watch_sessions", db_index=False
    )
    started_at = models.DateTimeField(db_index=True, help_text="Time of the first minute line seen.")
    last_seen_at = models.DateTimeField(help_text="Time of the latest minute line seen.")
    first_minute = models.PositiveIntegerField()
    last_minute = models.PositiveIntegerField(help_text="Minute of the latest line by time.")
    highest_minute = models.PositiveIntegerField()
    minutes_watched = models.PositiveIntegerField(default=0, help_text="Distinct minutes seen.")
    minutes_seen = models.TextField(blank=True, default="", help_text="Distinct minutes seen, as ranges: '0-44,46'.")

    class Meta:
        indexes = [
            # No index holds last_seen_at or the minute counters, so extending a session is a HOT
            # update on PostgreSQL (no index writes); the table keeps free space for that (0003).
            models.Index(fields=["viewer", "movie"], name="watchsession_viewer_movie"),
            models.Index(fields=["movie", "started_at"], name="watchsession_movie_started"),
        ]

    def __str__(self) -> str:
        return f"{self.viewer_id} watched {self.movie_id} ({self.minutes_watched} min)"


class RecommendationRequest(models.Model):
    """The platform's client-side record of one recommendation call (what the viewer got)."""

    time = models.DateTimeField(db_index=True)
    viewer = models.ForeignKey("recommender.Viewer", on_delete=models.CASCADE, related_name="+")
    server = models.CharField(max_length=255, blank=True)
    status = models.PositiveSmallIntegerField(help_text="200 on success, 0 on a timeout or refusal.")
    movie_ids = models.JSONField(default=list, blank=True)
    response_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["viewer", "time"])]

    def __str__(self) -> str:
        return f"{self.time} {self.viewer_id} status {self.status}"


class QuarantinedLine(models.Model):
    """A line (or metadata record) that could not be accepted, with the reason why."""

    source = models.CharField(max_length=255, db_index=True)
    position = models.CharField(max_length=64, blank=True, help_text="Line number, stream id or offset.")
    raw = models.TextField()
    reason = models.CharField(max_length=255, db_index=True)
    reason_code = models.CharField(max_length=64, db_index=True, help_text="Stable key for counts by reason.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source}@{self.position}: {self.reason}"


class IngestSource(models.Model):
    """An ingestion source (file, Redis stream, Kafka topic, HTTP) and how it is doing."""

    name = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16)
    lines_read = models.PositiveBigIntegerField(default=0)
    lines_stored = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    quarantined = models.PositiveBigIntegerField(default=0)
    position = models.CharField(
        max_length=64, blank=True, default="", help_text="Last committed position: line number, stream id or offset."
    )
    lag = models.BigIntegerField(null=True, blank=True, help_text="Messages behind the head, when known.")
    rate_per_s = models.FloatField(null=True, blank=True, help_text="Lines per second over the last batch.")
    last_event_time = models.DateTimeField(null=True, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
