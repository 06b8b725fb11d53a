"""The world simulator: a seeded synthetic platform that writes the event stream (see docs/simulator.md).

``World`` is the population and catalog with latent tastes; ``Simulator`` runs it in backfill or
live mode into a sink, with scenarios (drift, planted bias, shilling, scraping) on cue.

May import: catalog (schema, slugs, its import service) and ingest (the line formats; the
``usher:`` sink hands lines to ingest's services, imported inside the sink). The product imports
it only from ``bootstrap`` and the ``simulate`` command; releases' test harness uses it too.
"""

from recommender.simulator.engine import SimulationConfig, Simulator  # noqa: F401
from recommender.simulator.scenarios import Drift, PlantedBias, Scraping, Shilling  # noqa: F401
from recommender.simulator.world import World, WorldConfig  # noqa: F401
