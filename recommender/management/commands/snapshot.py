"""Take a dataset snapshot: ``python manage.py snapshot [--since ...] [--until ...] [--implicit]``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.errors import UsherError


def _when(value: str | None, name: str):
    if not value:
        return None
    parsed = parse_datetime(value) or parse_datetime(f"{value}T00:00:00")
    if parsed is None:
        raise CommandError(f"--{name} is not an ISO-8601 date or time: {value!r}")
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = "Export ratings (and watch sessions) of a time window to a content-hashed dataset snapshot."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", default="")
        parser.add_argument("--since", help="window start (inclusive), ISO-8601")
        parser.add_argument("--until", help="window end (exclusive), ISO-8601; default now")
        parser.add_argument("--implicit", action="store_true", help="add implicit ratings from watch sessions")
        parser.add_argument("--min-viewer-ratings", type=int, default=0)
        parser.add_argument("--min-movie-ratings", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")

    def handle(self, *args, **opts) -> None:
        from recommender.training.snapshots import snapshot_create

        try:
            snapshot = snapshot_create(
                actor=None, system="manage.py snapshot", name=opts["name"],
                window_start=_when(opts["since"], "since"), window_end=_when(opts["until"], "until"),
                include_implicit=opts["implicit"],
                filters={"min_viewer_ratings": opts["min_viewer_ratings"],
                         "min_movie_ratings": opts["min_movie_ratings"]},
            )
        except UsherError as exc:
            raise CommandError(exc.message)
        if opts["json"]:
            self.stdout.write(json.dumps({"id": snapshot.pk, "content_sha256": snapshot.content_sha256,
                                          "ratings": snapshot.rating_count, "viewers": snapshot.viewer_count,
                                          "movies": snapshot.movie_count}))
            return
        self.stdout.write(f"snapshot #{snapshot.pk}: {snapshot.rating_count} ratings "
                          f"({snapshot.implicit_rating_count} implicit), {snapshot.viewer_count} viewers, "
                          f"{snapshot.movie_count} movies, sha256 {snapshot.content_sha256}")
