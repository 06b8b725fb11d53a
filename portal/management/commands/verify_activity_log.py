"""Verify the activity log's hash chain; exit 1 naming the first broken entry."""

from django.core.management.base import BaseCommand

from portal.services import activity_log_verify


class Command(BaseCommand):
    help = "Check that no activity-log entry was altered, inserted out of order or removed."

    def handle(self, *args, **options) -> None:
        checked, problem = activity_log_verify()
        if problem is None:
            self.stdout.write(self.style.SUCCESS(f"activity log intact: {checked} entries verified"))
            return
        self.stderr.write(self.style.ERROR(f"activity log BROKEN: {problem.reason} "
                                           f"({checked} entries verified before it)"))
        raise SystemExit(1)
