"""The world simulator: a seeded synthetic platform that writes the event stream (see docs/simulator.md).

``World`` is the population and catalog with latent tastes; ``Simulator`` runs it in backfill or
live mode into a sink, with scenarios (drift, planted bias, shilling, scraping) on cue.
"""

from recommender.simulator.engine import SimulationConfig, Simulator  # noqa: F401
from recommender.simulator.scenarios import Drift, PlantedBias, Scraping, Shilling  # noqa: F401
from recommender.simulator.world import World, WorldConfig  # noqa: F401
