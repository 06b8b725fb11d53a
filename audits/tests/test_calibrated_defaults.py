"""The audits' defaults against the simulator's truth, on the path ``make run`` takes.

A clean world (the simulator's default world, a week of backfill as ``manage.py bootstrap`` writes it,
then an hour of the live simulator's traffic at the Procfile's 2 visits a second from a fresh
simulator) must raise no finding that blocks the release gate, in the security and the fairness
audits of a model trained on it; the same world with a shilling attack must be caught. The error
rates over many seeds are measured by ``benchmarks/calibration.py`` (docs/audits.md, *Calibration*).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from django.utils import timezone

from audits import services, sources
from audits.checks import abuse
from audits.conf import configured_settings, review_severity
from audits.models import severity_rank
from recommender.simulator.engine import SimulationConfig, Simulator
from recommender.simulator.scenarios import Shilling
from recommender.simulator.services import simulator_backfill
from recommender.simulator.sinks import UsherSink
from recommender.simulator.world import World, WorldConfig
from recommender.tests.factories_training import trained_svd_version

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
DATA_CHECKS = ["rating_poisoning", "rating_velocity", "scraping", "login_abuse"]


def _make_run_world(end: dt.datetime, scenarios=()) -> World:
    """A week of backfill (bootstrap: 0.2 % malformed and repeated lines), then the live simulator's
    hour: 2 visits a second, a new process (its own seen-sets), at most 500 watch sessions."""
    world = World.build(WorldConfig(seed=42, viewers=300, movies=300))
    live_start = end - dt.timedelta(hours=1)
    simulator_backfill(world=world, days=7, end=live_start, config=SimulationConfig(
        seed=43, malformed_rate=0.002, duplicate_rate=0.002, scenarios=list(scenarios)))
    live = replace(world)
    live.config = replace(world.config, visits_per_viewer_per_day=2 * 86400 / float(world.activity.sum()))
    sink = UsherSink(source="simulator")
    Simulator(live, SimulationConfig(seed=44, malformed_rate=0.002, max_active_sessions=500), sink).run_backfill(
        start=live_start, until=end)
    sink.close()
    return world


def _audit(kind: str, **kwargs):
    run = services.audit_run_create(kind=kind, actor=None, enqueue=False, **kwargs)
    run = services.audit_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    return run


def _blocking(run) -> list[str]:
    level = severity_rank(review_severity())
    return [f"[{f.severity}] {f.title}" for f in run.findings.all() if severity_rank(f.severity) >= level]


def test_the_demo_s_clean_traffic_blocks_no_release():
    # Given the make-run path's clean traffic: a bootstrap week, then an hour ~100× as busy
    end = timezone.now().replace(second=0, microsecond=0)
    _make_run_world(end)
    version = trained_svd_version()

    # When the gate's audits run on a model trained on it (security over the last 24 hours)
    security = _audit("security", model_version=version, overrides={"SECURITY_CHECKS": DATA_CHECKS})
    fairness = _audit("fairness", model_version=version)

    # Then nothing blocks the gate
    assert _blocking(security) == [] and _blocking(fairness) == []
    # and the checks did look: the busy hour was judged, every gender group too
    velocity = next(c for c in security.results["checks"] if c["name"] == "security.rating_velocity")["results"]
    assert velocity["tests"] > 100 * 24 and velocity["movies"]  # movies with 20+ ratings in an hour were judged
    model = next(c for c in fairness.results["checks"] if c["name"] == "fairness.model")["results"]
    assert {g["group"]: g["verdict"] for g in model["attributes"]["gender"]["groups"]} == {
        "M": "reference", "F": "pass"}


def test_a_shilling_attack_in_the_same_traffic_is_caught():
    end = timezone.now().replace(second=0, microsecond=0)
    attack = Shilling(at=dt.timedelta(days=6, hours=12), accounts=50)  # the scenario's defaults: 5 stars, 30 min
    world = _make_run_world(end, [attack])
    target = Simulator(world).shilling_target(attack)

    security = _audit("security", overrides={"SECURITY_CHECKS": DATA_CHECKS})

    blocking = [f for f in security.findings.all() if severity_rank(f.severity) >= severity_rank(review_severity())]
    assert [(f.check_name, f.evidence["movie"]) for f in blocking] == [("security.rating_poisoning", target)]
    assert 45 <= blocking[0].evidence["accounts"] <= 50  # a few of the attack's lines may be among the 0.2 % malformed
    # rating velocity alone (nothing left to poisoning) catches it too, as a one-sided spike
    window = (end - dt.timedelta(hours=24), end)
    alone = abuse.rating_velocity(events=sources.rating_events(start=window[0], end=window[1]),
                                  config=configured_settings(), window=window)
    spikes = [f for f in alone.findings if f.evidence.get("movie") == target]
    assert spikes and spikes[0].severity == "medium" and spikes[0].evidence["extreme_value"] == 5
