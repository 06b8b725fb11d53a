"""Simulator runs wired to Usher: the world's catalog into Usher, a backfill straight into ingestion,
and what the world's viewers have already seen, read back from Usher for a live run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from recommender.catalog.schema import RawRecord
from recommender.catalog.services import CatalogImportSummary, catalog_records_import
from recommender.simulator.engine import SimulationConfig, Simulator
from recommender.simulator.sinks import Sink, UsherSink
from recommender.simulator.world import World


def simulator_catalog_import(*, world: World, actor=None, system: str | None = "simulator") -> CatalogImportSummary:
    """Import the world's viewer and movie records into Usher's catalog (idempotent)."""
    records = (RawRecord(position=f"/{'user' if 'user_id' in r else 'movie'}/{r.get('user_id', r.get('id'))}",
                         data=r) for r in world.records())
    return catalog_records_import(records=records, source="catalog:simulator", actor=actor, system=system)


def simulator_catalog_write(*, world: World, path: str) -> int:
    """Write the world's records as JSON lines (for ``import_catalog FILE``); returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in world.records():
            handle.write(json.dumps(record) + "\n")
            count += 1
    return count


def simulator_backfill(
    *,
    world: World,
    days: float,
    sink: Sink | None = None,
    config: SimulationConfig | None = None,
    end: datetime | None = None,
    progress: Callable[[Counter, float], None] | None = None,
) -> Counter:
    """Simulate ``days`` ending at ``end`` (default: now) into ``sink`` (default: straight into Usher)."""
    end = end or datetime.now(tz=UTC).replace(second=0, microsecond=0)
    sink = sink if sink is not None else UsherSink(source="simulator")
    if isinstance(sink, UsherSink):
        simulator_catalog_import(world=world)
    # A little of what the platform's stream carries on purpose: malformed and repeated lines.
    config = config or SimulationConfig(seed=world.config.seed + 1, malformed_rate=0.002, duplicate_rate=0.002)
    simulator = Simulator(world, config, sink)
    stats = simulator.run_backfill(start=end - timedelta(days=days), until=end, progress=progress)
    sink.close()
    return stats


def simulator_history_load(*, simulator: Simulator) -> int:
    """Mark as seen every movie the world's viewers rated or watched in Usher (a backfill, an earlier
    live run), so that a live run started later knows what its viewers have seen, as Usher does: they
    do not pick those again, and a list is judged against the favourites they have *not* seen yet
    (``Simulator.list_appeal``). Without it a fresh process thinks every viewer has seen nothing,
    and Usher's lists, which rightly leave out what they saw, look worse to them than they are.
    Returns how many (viewer, movie) pairs were marked."""
    from recommender.models import Rating, WatchSession

    world = simulator.world
    viewers = {int(v): u for u, v in enumerate(world.viewer_ids)}
    movies = simulator.movie_index
    marked = 0
    for model in (Rating, WatchSession):
        pairs = model.objects.filter(viewer_id__in=list(viewers)).values_list("viewer_id", "movie_id").distinct()
        for viewer_id, movie_id in pairs.iterator(chunk_size=20_000):
            u, m = viewers.get(int(viewer_id)), movies.get(movie_id)
            if u is not None and m is not None and m not in simulator.seen[u]:
                simulator.seen[u].add(m)
                marked += 1
    return marked
