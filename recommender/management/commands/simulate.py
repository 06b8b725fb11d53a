"""Run the world simulator: a backfill of simulated days, or live against a running Usher."""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommender.simulator.client import UsherClient
from recommender.simulator.engine import SimulationConfig, Simulator
from recommender.simulator.scenarios import parse_scenario
from recommender.simulator.services import simulator_catalog_import, simulator_catalog_write, simulator_history_load
from recommender.simulator.sinks import UsherSink, open_sink
from recommender.simulator.world import World, WorldConfig


class Command(BaseCommand):
    help = ("Simulate the streaming platform: --days N of backfill as fast as possible, or --live against "
            "--usher-url. Writes the event stream to --sink: a file, '-', redis://host:port/stream, "
            "kafka://host:port/topic or usher: (straight into Usher).")

    def add_arguments(self, parser) -> None:
        mode = parser.add_argument_group("mode")
        mode.add_argument("--days", type=float, help="backfill this many simulated days")
        mode.add_argument("--start", help="backfill start (ISO time); default: --days before now")
        mode.add_argument("--live", action="store_true", help="run on the wall clock against --usher-url")
        mode.add_argument("--usher-url", default="",
                          help="Usher's base URL for GET /recommend/<id> (live; in a backfill, ask it instead of the "
                               "built-in popularity server)")
        mode.add_argument("--rate", type=float, default=5.0, help="live: viewer visits per second (default 5)")
        mode.add_argument("--duration", type=float, default=None, help="live: stop after this many seconds")
        mode.add_argument("--timeout", type=float, default=0.6, help="live: /recommend timeout in s (default 0.6)")
        mode.add_argument("--wait", type=float, default=120.0,
                          help="live: wait up to this many seconds for Usher's /readyz (it can answer the contract) before starting")
        mode.add_argument("--max-sessions", type=int, default=500, help="live: at most this many watch sessions")
        parser.add_argument("--sink", default="-", help="where lines go (default: stdout)")
        world = parser.add_argument_group("world")
        conf = settings.RECOMMENDER
        world.add_argument("--seed", type=int, default=conf.get("SIMULATOR_SEED", 42),
                           help="the world's seed (default: the one `make run` uses)")
        world.add_argument("--viewers", type=int, default=conf.get("SIMULATOR_VIEWERS", WorldConfig.viewers))
        world.add_argument("--movies", type=int, default=conf.get("SIMULATOR_MOVIES", WorldConfig.movies))
        world.add_argument("--factors", type=int, default=WorldConfig.factors, help="rank of the latent tastes")
        world.add_argument("--viewer-id-start", type=int, default=WorldConfig.viewer_id_start)
        world.add_argument("--visits-per-day", type=float, default=WorldConfig.visits_per_viewer_per_day)
        behaviour = parser.add_argument_group("behaviour")
        behaviour.add_argument("--malformed-rate", type=float, default=0.0, help="share of lines corrupted")
        behaviour.add_argument("--duplicate-rate", type=float, default=0.0, help="share of lines sent twice")
        behaviour.add_argument("--scenario", action="append", default=[],
                               help="repeatable: drift:at=+3d,kind=taste,genre=Horror,strength=1.5 | "
                                    "bias:at=+1d,group=gender:F,kind=timeouts,strength=0.3 | "
                                    "shilling:at=+2d,accounts=50 | scraping:at=+1m,requests=500,rate=20")
        behaviour.add_argument("--catalog-out", help="also write the world's viewer and movie records (JSON lines)")
        behaviour.add_argument("--no-catalog", action="store_true",
                               help="with --sink usher:, do not import the world's catalog first")

    def handle(self, *args, **opts) -> None:
        if bool(opts["days"]) == bool(opts["live"]):
            raise CommandError("give either --days N (backfill) or --live")
        for knob in ("malformed_rate", "duplicate_rate"):
            if not 0 <= opts[knob] <= 1:
                raise CommandError(f"--{knob.replace('_', '-')} must be between 0 and 1")
        try:
            scenarios = [parse_scenario(spec) for spec in opts["scenario"]]
        except ValueError as exc:
            raise CommandError(str(exc))
        start = None
        if opts["start"]:
            try:
                start = datetime.fromisoformat(opts["start"])
            except ValueError:
                raise CommandError(f"--start must be an ISO-8601 time, not {opts['start']!r}")
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
        elif opts["days"]:
            start = datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(days=opts["days"])
        world = World.build(WorldConfig(
            seed=opts["seed"], viewers=opts["viewers"], movies=opts["movies"], factors=opts["factors"],
            viewer_id_start=opts["viewer_id_start"], visits_per_viewer_per_day=opts["visits_per_day"],
            start=start or datetime.now(tz=UTC),
        ))
        try:
            sink = open_sink(opts["sink"])
        except (ValueError, OSError) as exc:
            raise CommandError(f"--sink: {exc}")
        config = SimulationConfig(
            seed=opts["seed"] + 1, malformed_rate=opts["malformed_rate"], duplicate_rate=opts["duplicate_rate"],
            scenarios=scenarios, request_timeout_s=opts["timeout"],
            max_active_sessions=opts["max_sessions"] if opts["live"] else 0,
            batch_lines=200 if opts["live"] else 2000,
        )
        if opts["catalog_out"]:
            count = simulator_catalog_write(world=world, path=opts["catalog_out"])
            self.stderr.write(f"simulate: wrote {count} catalog records to {opts['catalog_out']}")
        if isinstance(sink, UsherSink) and not opts["no_catalog"]:
            summary = self._with_retry(lambda: simulator_catalog_import(world=world))
            self.stderr.write(f"simulate: catalog into Usher: {summary.movies_created} movies and "
                              f"{summary.viewers_created} viewers new, {summary.unchanged} unchanged")
        started = time.monotonic()
        if opts["live"]:
            stats = self._live(world, config, sink, opts)
        else:
            def progress(stats, share) -> None:
                self.stderr.write(f"\rsimulate: {share:5.0%} {stats['lines']:,} lines", ending="")

            recommend = scraper = None
            if opts["usher_url"]:  # a backfill that asks a real Usher for every recommendation
                recommend = UsherClient(opts["usher_url"], timeout_s=opts["timeout"])
                scraper = UsherClient(opts["usher_url"], timeout_s=opts["timeout"], user_agent="usher-sim-scraper/1.0")
            stats = Simulator(world, config, sink, recommend=recommend, scraper=scraper).run_backfill(
                start=start, days=opts["days"], progress=progress)
            self.stderr.write("")
        sink.close()
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.items()))
        self.stderr.write(f"simulate: {stats['lines']:,} lines in {elapsed:.1f} s ({summary})")

    def _with_retry(self, fn, attempts: int = 30):
        from django.db import OperationalError, close_old_connections

        for attempt in range(attempts):
            try:
                return fn()
            except OperationalError as exc:  # the database is not ready yet (first start)
                if attempt == attempts - 1:
                    raise CommandError(f"database not ready: {exc}")
                close_old_connections()
                time.sleep(2)

    def _live(self, world, config, sink, opts):
        if not opts["usher_url"]:
            raise CommandError("--live needs --usher-url, e.g. http://127.0.0.1:8000")
        client = UsherClient(opts["usher_url"], timeout_s=opts["timeout"])
        scraper = UsherClient(opts["usher_url"], timeout_s=opts["timeout"], user_agent="usher-sim-scraper/1.0")
        deadline = time.monotonic() + opts["wait"]
        while not client.healthy() and time.monotonic() < deadline:
            self.stderr.write(f"simulate: waiting for Usher at {opts['usher_url']} ...")
            time.sleep(2)
        stopping = {"flag": False}

        def stop(signum, frame) -> None:  # SIGTERM/SIGINT: finish the batch, flush, exit cleanly
            stopping["flag"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"simulate: live at {opts['rate']:g} visits/s against {opts['usher_url']}, "
                          f"lines to {opts['sink']}")
        sys.stderr.flush()
        simulator = Simulator(world, config, sink, recommend=client, scraper=scraper)
        if isinstance(sink, UsherSink):  # the history is in Usher: start from what the viewers have seen
            marked = self._with_retry(lambda: simulator_history_load(simulator=simulator))
            self.stderr.write(f"simulate: {marked} movies already rated or watched by the world's viewers in Usher")
        return simulator.run_live(rate=opts["rate"], duration_s=opts["duration"], stop=lambda: stopping["flag"])
