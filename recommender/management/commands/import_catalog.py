"""Import viewer and movie metadata from a JSON-lines file or the platform's metadata API."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from recommender.catalog import selectors, services


def _id_list(text: str) -> list[int]:
    ids: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "-" in part:
            low, high = part.split("-", 1)
            ids.extend(range(int(low), int(high) + 1))
        else:
            ids.append(int(part))
    return ids


class Command(BaseCommand):
    help = (
        "Import viewer (/user/<id>) and movie (/movie/<id>) records. Give a JSON-lines FILE ('-' for stdin, "
        ".gz too), or --base-url to fetch from the platform's API (by default every stub viewer and movie)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", help="JSON-lines file of viewer and movie records")
        parser.add_argument("--base-url", help="fetch from this metadata API, e.g. http://127.0.0.1:8080")
        parser.add_argument("--viewers", default="", help="viewer ids to fetch: '1-100,250'")
        parser.add_argument("--movies", default="", help="movie ids to fetch, comma-separated")
        parser.add_argument("--stubs", action="store_true",
                            help="fetch every stub viewer and movie (the default when no ids are given)")
        parser.add_argument("--limit", type=int, default=None, help="at most this many stubs of each kind")
        parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
        parser.add_argument("--rate", type=float, default=50.0, help="requests started per second (default 50)")
        parser.add_argument("--retries", type=int, default=3, help="retries per request (default 3)")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **opts) -> None:
        if bool(opts["file"]) == bool(opts["base_url"]):
            raise CommandError("give either a FILE or --base-url")
        if opts["file"]:
            try:
                summary = services.catalog_import_file(path=opts["file"], actor=None, system="import_catalog")
            except OSError as exc:
                raise CommandError(f"cannot read {opts['file']}: {exc.strerror or exc}")
        else:
            try:
                viewer_ids = _id_list(opts["viewers"])
            except ValueError:
                raise CommandError(f"--viewers must be ids and ranges like '1-100,250', not {opts['viewers']!r}")
            movie_ids = [m.strip() for m in opts["movies"].split(",") if m.strip()]
            if opts["stubs"] or not (viewer_ids or movie_ids):
                stub_viewers, stub_movies = selectors.catalog_stub_ids(limit=opts["limit"])
                viewer_ids += stub_viewers
                movie_ids += stub_movies
            try:
                summary = services.catalog_import_url(
                    base_url=opts["base_url"], viewer_ids=viewer_ids, movie_ids=movie_ids,
                    concurrency=opts["concurrency"], rate_per_s=opts["rate"], retries=opts["retries"],
                    timeout_s=opts["timeout"], actor=None, system="import_catalog",
                )
            except ValueError as exc:
                raise CommandError(str(exc))
        data = summary.as_dict()
        if opts["json"]:
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(
            f"records {data['records']}: viewers +{data['viewers_created']} ~{data['viewers_updated']}, "
            f"movies +{data['movies_created']} ~{data['movies_updated']}, unchanged {data['unchanged']}, "
            f"quarantined {data['quarantined']}"
        )
        for code, count in data["reasons"].items():
            self.stdout.write(f"  quarantined {code}: {count}")
