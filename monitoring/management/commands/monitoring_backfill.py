"""Catch monitoring up with events already stored: rollups, feedback-loop buckets, today's reports."""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Roll up telemetry and compute feedback-loop buckets for history (after a backfill of events)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="ISO-8601 start (default: the first stored event)")
        parser.add_argument("--days", type=float, help="or: this many days back from now")

    def handle(self, *args, since=None, days=None, **options) -> None:
        from django.utils import timezone

        from monitoring.services.backfill import monitoring_backfill

        start = None
        if since:
            try:
                start = datetime.fromisoformat(since)
            except ValueError:
                raise CommandError(f"--since is not an ISO-8601 time: {since!r}")
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        elif days is not None:
            if days <= 0:
                raise CommandError("--days must be positive")
            start = timezone.now() - timedelta(days=days)
        summary = monitoring_backfill(since=start, system="monitoring_backfill command")
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in summary.items()))
