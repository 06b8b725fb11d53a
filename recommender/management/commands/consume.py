"""``manage.py consume URL``: ingest from a Redis Streams or Kafka consumer group until stopped."""

from __future__ import annotations

import gc
import json
import logging
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.errors import UsherError
from recommender.ingest.services import IngestSummary
from recommender.ingest.sources import ConsumerOptions, Stopper, open_source

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Consume event lines from redis://HOST:PORT/STREAM (Redis Streams consumer group) or "
        "kafka://HOST:PORT/TOPIC (Kafka consumer group). SIGTERM stops after the current batch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", help="redis://HOST:PORT/STREAM[?db=N] or kafka://HOST:PORT/TOPIC")
        parser.add_argument("--group", default="usher-ingest", help="consumer group (default usher-ingest)")
        parser.add_argument("--consumer", help="consumer name (default HOST-PID)")
        parser.add_argument("--batch-size", type=int, default=None, help="lines per transaction (default 5000)")
        parser.add_argument("--block-ms", type=int, default=1000, help="how long one read waits for lines")
        parser.add_argument(
            "--claim-idle-ms",
            type=int,
            default=60_000,
            help="Redis: claim entries other consumers left pending this long",
        )
        parser.add_argument(
            "--exit-when-idle",
            type=float,
            default=None,
            metavar="SECONDS",
            help="return once nothing arrived for this long (backfills, tests)",
        )
        parser.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")

    def handle(self, *args, **options) -> None:
        from django.conf import settings

        # Everything loaded so far (Django, the apps) lives for the whole run: keep it out of the
        # cyclic garbage collector's scans, which otherwise cost a noticeable share of the hot path.
        gc.freeze()
        batch_size = options["batch_size"] or settings.RECOMMENDER.get("INGEST_BATCH_SIZE", 5000)
        consumer_options = ConsumerOptions(
            group=options["group"],
            batch_size=batch_size,
            block_ms=options["block_ms"],
            claim_idle_ms=options["claim_idle_ms"],
            exit_when_idle=options["exit_when_idle"],
            max_batches=options["max_batches"],
        )
        if options["consumer"]:
            consumer_options.consumer = options["consumer"]
        try:
            source = open_source(options["url"], consumer_options)
        except UsherError as exc:
            raise CommandError(exc.message)
        stopper = Stopper().install()
        self.stderr.write(f"consuming {source.source_name} as {source.options.group}/{source.options.consumer}")

        def on_batch(batch: IngestSummary) -> None:
            self.stderr.write(
                f"batch up to {batch.last_position}: read {batch.lines_read}, stored {batch.stored_total}, "
                f"duplicates {batch.duplicates}, quarantined {batch.quarantined_total}"
            )

        try:
            summary = source.run(stopper=stopper, on_batch=on_batch if options["verbosity"] > 1 else None)
        finally:
            source.close()
        if stopper.stopped:
            self.stderr.write(f"{stopper.signal_name or 'stop'}: stopped cleanly after the current batch")
        self.stdout.write(json.dumps(summary.as_dict()))
        sys.stdout.flush()
