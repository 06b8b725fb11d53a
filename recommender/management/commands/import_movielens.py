"""Import a MovieLens folder (ml-100k, ml-1m, ml-latest, ml-latest-small, ml-25m)."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from recommender.movielens.layouts import LayoutError, detect_layout
from recommender.movielens.services import movielens_import


class Command(BaseCommand):
    help = ("Import a MovieLens folder: movies (slug ids from title and year), viewers with demographics, "
            "ratings. Idempotent; streams the ratings in chunks.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder", help="a folder with u.data (ml-100k), ratings.dat (ml-1m) or ratings.csv")
        parser.add_argument("--user-offset", type=int, default=0,
                            help="added to MovieLens user ids (to keep two datasets' viewers apart)")
        parser.add_argument("--chunk-size", type=int, default=50_000, help="ratings per transaction")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--quiet", action="store_true", help="no progress line")

    def handle(self, *args, **opts) -> None:
        try:
            layout = detect_layout(opts["folder"])
        except LayoutError as exc:
            raise CommandError(str(exc))
        if opts["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")

        def progress(summary) -> None:
            if not opts["quiet"] and not opts["json"]:
                sys.stderr.write(f"\r{layout.name}: {summary.ratings_read:,} ratings read, "
                                 f"{summary.ratings_stored:,} stored, {summary.quarantined:,} quarantined")
                sys.stderr.flush()

        summary = movielens_import(layout=layout, user_offset=opts["user_offset"], chunk_size=opts["chunk_size"],
                                   progress=progress)
        if not opts["quiet"] and not opts["json"]:
            sys.stderr.write("\n")
        data = summary.as_dict()
        if opts["json"]:
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(
            f"{data['layout']} in {data['seconds']} s: movies +{data['movies_created']} ~{data['movies_updated']}, "
            f"viewers +{data['viewers_created']} ~{data['viewers_updated']}, ratings read {data['ratings_read']:,}, "
            f"stored {data['ratings_stored']:,}, duplicates {data['duplicates']:,}, "
            f"quarantined {data['quarantined']:,}"
        )
        for code, count in data["reasons"].items():
            self.stdout.write(f"  quarantined {code}: {count}")
