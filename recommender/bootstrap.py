"""First-run steps of the recommender app for `manage.py bootstrap` (run by every `make run`).

On a fresh database: backfill a simulated week straight into Usher (the world of the live
simulator that `make run` starts next), so the portal has data at once; then train a first model
and put it in production while nothing is in production. Each step does nothing when its work is
already done, so it is safe on every start.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

from django.conf import settings


def _world():
    from recommender.simulator.world import World, WorldConfig

    conf = settings.RECOMMENDER
    return World.build(WorldConfig(seed=conf["SIMULATOR_SEED"], viewers=conf["SIMULATOR_VIEWERS"],
                                   movies=conf["SIMULATOR_MOVIES"]))


def simulated_backfill_step() -> Iterator[str]:
    """Backfill ``RECOMMENDER['BOOTSTRAP_SIMULATED_DAYS']`` days into Usher unless there is data already."""
    from recommender.models import IngestSource, RatingEvent, RecommendationRequest
    from recommender.simulator.services import simulator_backfill

    days = settings.RECOMMENDER["BOOTSTRAP_SIMULATED_DAYS"]
    if days <= 0:
        yield "bootstrap: simulated backfill off (USHER_BOOTSTRAP_SIMULATED_DAYS=0)"
        return
    if RatingEvent.objects.exists() or RecommendationRequest.objects.exists() or IngestSource.objects.exists():
        yield "bootstrap: event data present; simulated backfill skipped"
        return
    started = time.monotonic()
    yield f"bootstrap: backfilling {days:g} simulated days into Usher (the world simulator) ..."

    def progress(stats, share: float) -> None:
        sys.stdout.write(f"\rbootstrap: {share:4.0%}  {stats['lines']:,} lines")
        sys.stdout.flush()

    stats = simulator_backfill(world=_world(), days=days, progress=progress)
    sys.stdout.write("\n")
    yield (f"bootstrap: simulated {days:g} days: {stats['lines']:,} lines ({stats['ratings']:,} ratings, "
           f"{stats['sessions']:,} watch sessions, {stats['visits']:,} recommendation requests) "
           f"in {time.monotonic() - started:.0f} s")


def steps() -> Iterator[str]:
    from recommender.training.bootstrap import first_model_step

    yield from simulated_backfill_step()
    # Training's step (recommender/training/bootstrap.py): a first model into production, only while
    # nothing is in production; recorded in the activity log as system:bootstrap.
    yield from first_model_step()
