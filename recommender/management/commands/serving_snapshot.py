"""Build the serving snapshot (seen-items index and popular-and-recent fallback) now."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from recommender.serving.conf import serving_settings
from recommender.serving.snapshot import BuildLock, SeenSnapshot, current_snapshot_dir, snapshot_build


class Command(BaseCommand):
    help = "Build the seen-items index and the fallback ranking that web workers memory-map (one builder at a time)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--if-stale", action="store_true",
                            help="Only build when the current snapshot is older than SNAPSHOT_REFRESH_SECONDS.")

    def handle(self, *args, **options) -> None:
        config = serving_settings()
        root = config.snapshot_dir
        lock = BuildLock(root)
        if not lock.acquire():
            self.stdout.write("serving_snapshot: another build is running; nothing to do")
            return
        try:
            current = current_snapshot_dir(root)
            if options["if_stale"] and current is not None:
                age = SeenSnapshot.load(current).age_seconds
                if age < config.snapshot_refresh_seconds:
                    self.stdout.write(f"serving_snapshot: {current.name} is {age:.0f}s old; fresh enough")
                    return
            started = time.monotonic()
            path = snapshot_build(root=root, fallback_size=config.fallback_size,
                                  window_days=config.fallback_window_days,
                                  half_life_days=config.fallback_half_life_days)
            snap = SeenSnapshot.load(path)
            self.stdout.write(
                f"serving_snapshot: {path.name}: {snap.viewers.shape[0]} viewers, {snap.pairs} seen pairs, "
                f"{len(snap.popular)} fallback movies in {time.monotonic() - started:.1f}s"
            )
        finally:
            lock.release()
