"""Verify the activity log's hash chain; exit 1 naming the first broken entry."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.services import activity_log_head, activity_log_verify


class Command(BaseCommand):
    help = (
        "Check that no activity-log entry was altered, inserted out of order or removed. "
        "Exits 0 when intact, 1 naming the first broken entry."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--anchor", metavar="SEQ:HASH",
            help="a head printed by an earlier run: also catches the newest entries removed with the head rewound",
        )

    def handle(self, *args, anchor: str | None = None, **options) -> None:
        parsed = None
        if anchor:
            seq, _, digest = anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CommandError("--anchor must look like 1234:<64 hex characters>")
            parsed = (int(seq), digest)
        checked, problem = activity_log_verify(anchor=parsed)
        if problem is None:
            head_seq, head_hash = activity_log_head()
            self.stdout.write(self.style.SUCCESS(f"activity log intact: {checked} entries verified"))
            self.stdout.write(f"head {head_seq}:{head_hash}")
            return
        self.stderr.write(self.style.ERROR(f"activity log BROKEN: {problem.reason} "
                                           f"({checked} entries verified before it)"))
        raise SystemExit(1)
