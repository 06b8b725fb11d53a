"""``manage.py ingest FILE``: ingest an event-stream file (``-`` = stdin, ``.gz`` too) with a progress bar."""

from __future__ import annotations

import gc
import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from portal.errors import UsherError
from recommender.ingest.services import IngestSummary, ingest_lines, ingest_run_record
from recommender.ingest.sources import open_lines


def format_summary(summary: IngestSummary, *, seconds: float | None = None) -> str:
    """The closing summary: lines read, stored by type, duplicates, quarantined by reason."""
    rows = [f"{'lines read':<30}{summary.lines_read:>12,}", f"{'stored':<30}{summary.stored_total:>12,}"]
    rows += [f"  {kind:<28}{count:>12,}" for kind, count in summary.stored.items()]
    rows.append(f"{'duplicates':<30}{summary.duplicates:>12,}")
    rows.append(f"{'quarantined':<30}{summary.quarantined_total:>12,}")
    for code, count in sorted(summary.quarantined.items(), key=lambda item: (-item[1], item[0])):
        rows.append(f"  {code:<28}{count:>12,}")
    if seconds:
        rows.append(f"{'rate':<30}{summary.lines_read / seconds:>12,.0f} lines/s")
    return "\n".join(rows)


class Command(BaseCommand):
    help = "Ingest an event-stream file in the platform's format (- for stdin; .gz is decompressed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path to the file, or - for stdin")
        parser.add_argument("--source", help="source name shown in the portal (default: the file's path)")
        parser.add_argument("--batch-size", type=int, default=None, help="lines per transaction (default 5000)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def handle(self, *args, **options) -> None:
        from django.conf import settings

        # Everything loaded so far (Django, the apps) lives for the whole run: keep it out of the
        # cyclic garbage collector's scans, which otherwise cost a noticeable share of the hot path.
        gc.freeze()
        path = options["file"]
        source = options["source"] or ("stdin" if path == "-" else f"file:{os.path.abspath(path)}")
        batch_size = options["batch_size"] or settings.RECOMMENDER.get("INGEST_BATCH_SIZE", 5000)
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            lines = open_lines(path)
            total = os.path.getsize(path) if path != "-" and not path.endswith(".gz") else None
            bar = tqdm(
                total=total,
                unit="B" if total else " lines",
                unit_scale=True,
                file=sys.stderr,
                disable=True if options["no_progress"] else None,
                desc="ingest",
            )
            counted = _ByteCounter(lines) if total else None

            def on_batch(batch: IngestSummary) -> None:
                if counted is not None:
                    bar.update(counted.take())
                else:
                    bar.update(batch.lines_read)
                bar.set_postfix(stored=batch.stored_total, quarantined=batch.quarantined_total, refresh=False)

            summary = ingest_lines(
                lines=counted if counted is not None else lines,
                source=source,
                kind="stdin" if path == "-" else "file",
                batch_size=batch_size,
                on_batch=on_batch,
            )
            bar.close()
        except UsherError as exc:
            raise CommandError(exc.message)
        ingest_run_record(source=source, summary=summary, system="manage.py ingest")
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict(), indent=2))
        else:
            self.stdout.write(format_summary(summary, seconds=summary.seconds))


class _ByteCounter:
    """Wraps a line iterator and counts what it yields, for a size-based progress bar."""

    def __init__(self, lines) -> None:
        self.lines = iter(lines)
        self.pending = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.pending += len(line)  # characters: close enough to bytes for a progress bar
        return line

    def take(self) -> int:
        taken, self.pending = self.pending, 0
        return taken
