"""Replay prediction-log records spilled to disk while the database was unreachable."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommender.serving.conf import serving_settings
from recommender.serving.predlog import spill_pending, spill_replay


class Command(BaseCommand):
    help = ("Write spilled prediction-log records (STATE_DIR/spill) to the database. Idempotent: records "
            "already written are skipped. Web workers also do this on their own once the database is back.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--status", action="store_true", help="Only show what is waiting.")

    def handle(self, *args, **options) -> None:
        directory = serving_settings().spill_dir
        before = spill_pending(directory)
        self.stdout.write(f"spill folder {directory}: {before}")
        if options["status"]:
            return
        try:
            result = spill_replay(directory)
        except Exception as exc:  # noqa: BLE001
            raise CommandError(f"the database did not take the records: {exc}") from exc
        self.stdout.write(f"replayed {result['records']} records from {result['files']} files "
                          f"({result['rejected']} rejected, {result['unreadable_lines']} unreadable lines)")
