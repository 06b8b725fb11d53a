"""The audits shown working on the world simulator: planted bias, a shilling attack and a scraping
client are caught and named; a clean world stays clean (the false-positive check).

Each test simulates days of the platform straight into Usher's ingestion, trains a real Surprise
SVD through the training app, and runs the audits through their services — nothing is mocked.

The worlds are "neutral": the simulator gives each (age band, gender) group its own taste
direction, and a model trained on a few days of such a world serves the 25–34 majority measurably
better (NDCG@20 0.28 against 0.14–0.19 for the other age bands in a 20-day, 600-viewer world) — a real
disparity the audit reports. For a controlled experiment, the neutral world draws every viewer's
taste from one distribution, so the only difference between the clean and the biased run is the
planted scenario.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from audits import services
from audits.models import AuditFinding

simulator = pytest.importorskip("recommender.simulator.services", reason="the world simulator is not installed")

from recommender.simulator.engine import SimulationConfig  # noqa: E402
from recommender.simulator.scenarios import PlantedBias, Shilling  # noqa: E402
from recommender.simulator.world import World, WorldConfig  # noqa: E402
from recommender.tests.factories_training import trained_svd_version  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
DAYS = 10


def _neutral_world(seed: int = 1, viewers: int = 500) -> World:
    world = World.build(WorldConfig(viewers=viewers, movies=300, seed=seed))
    world.U = np.random.default_rng(seed + 4).normal(0, world.U.std(), size=world.U.shape)
    return world


def _backfill(world: World, scenarios: list, end: dt.datetime) -> dict:
    return simulator.simulator_backfill(world=world, days=DAYS, end=end,
                                        config=SimulationConfig(seed=3, scenarios=scenarios))


def _audit(kind: str, **kwargs):
    run = services.audit_run_create(kind=kind, actor=None, enqueue=False, **kwargs)
    run = services.audit_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    return run


def _end() -> dt.datetime:
    return timezone.now().replace(second=0, microsecond=0)


def test_planted_bias_fails_fairness_for_the_right_group():
    end = _end()
    _backfill(_neutral_world(), [
        PlantedBias(at=dt.timedelta(0), group="gender:F", kind="ratings", strength=3.0),
        PlantedBias(at=dt.timedelta(0), group="gender:F", kind="timeouts", strength=0.3),
    ], end)
    version = trained_svd_version()

    model_run = _audit("fairness", model_version=version)
    live_run = _audit("fairness", window_hours=DAYS * 24 + 1)

    # one finding per judged metric outside the band, all of them for women
    model = {f.fingerprint: f for f in model_run.findings.all()}
    prefix = f"fairness.disparity:version={version.pk}:gender=F:"
    assert model and all(key.startswith(prefix) for key in model), list(model)
    finding = model[prefix + "rmse"]
    assert finding.evidence["reference_group"] == "M" and finding.evidence["metric"] == "rmse"
    assert finding.evidence["rmse"] > finding.evidence["reference_rmse"] * 1.25
    assert model_run.passed is False

    live = {f.fingerprint: f for f in live_run.findings.all()}
    # Women are served worse, and no finding says men are. Known open problem (issue #15's note): since
    # viewers follow lists by their appeal, this world's live audit also flags an occupation of 7 men
    # on online quality — lists of a few viewers are not independent trials, and the online-quality
    # comparison still counts lists; findings on other attributes are therefore not asserted here.
    assert [key for key in live if key.startswith("fairness.service:live:gender=F:")], list(live)
    assert not [key for key in live if key.startswith("fairness.service:live:gender=M:")], list(live)
    figures = live["fairness.service:live:gender=F:availability"].evidence["group_figures"]
    assert figures["availability"] < 0.8 < figures["disparities"]["availability"]["reference_value"]


def test_a_clean_world_yields_no_finding():
    end = _end()
    _backfill(_neutral_world(), [], end)
    version = trained_svd_version()

    model_run = _audit("fairness", model_version=version)
    live_run = _audit("fairness", window_hours=DAYS * 24 + 1)
    security_run = _audit("security", overrides={"SECURITY_CHECKS": [
        "rating_poisoning", "rating_velocity", "scraping", "artifact_integrity", "login_abuse"]})

    assert AuditFinding.objects.count() == 0, [f.title for f in AuditFinding.objects.all()]
    assert model_run.passed and live_run.passed and security_run.passed
    # the runs did look: every group was judged, and the data checks saw the traffic
    gender = next(c for c in model_run.results["checks"] if c["name"] == "fairness.model")["results"]["attributes"]
    assert {g["group"]: g["verdict"] for g in gender["gender"]["groups"]} == {"M": "reference", "F": "pass"}
    poisoning = next(c for c in security_run.results["checks"] if c["name"] == "security.rating_poisoning")
    assert poisoning["results"]["rating_events"] > 500


def test_a_shilling_attack_is_named_with_its_accounts_and_movie():
    end = _end()
    world = _neutral_world(seed=2, viewers=400)
    attack = Shilling(at=dt.timedelta(days=DAYS - 0.5), accounts=40, rating=5, window_minutes=60)
    _backfill(world, [attack], end)

    run = _audit("security", overrides={"SECURITY_CHECKS": ["rating_poisoning", "rating_velocity"]})

    poisoning = run.findings.filter(check_name="security.rating_poisoning")
    assert poisoning.count() == 1, [f.title for f in run.findings.all()]
    finding = poisoning.get()
    from recommender.simulator.engine import Simulator

    target = Simulator(world, SimulationConfig(seed=3)).shilling_target(attack)
    first_id = int(world.viewer_ids[-1]) + 1_000_001
    assert finding.evidence["movie"] == target
    assert finding.evidence["account_ids"] == list(range(first_id, first_id + 40))
    assert finding.evidence["rating"] == 5 and finding.severity == "high"
    assert not run.findings.filter(check_name="security.rating_velocity").exists()


def test_a_scraping_client_is_named(settings, tmp_path):
    from recommender.serving.runtime import get_runtime, runtime_reset
    from recommender.serving.services import deployment_update
    from recommender.simulator.client import in_process_client
    from recommender.simulator.engine import Simulator
    from recommender.simulator.scenarios import Scraping
    from recommender.simulator.sinks import UsherSink

    settings.RECOMMENDER = {**settings.RECOMMENDER, "SERVING": {
        **settings.RECOMMENDER.get("SERVING", {}), "STATE_DIR": str(tmp_path / "serving"), "AUTOSTART": False,
        "RATE_LIMIT_BACKEND": "local"}}
    runtime_reset()
    try:
        end = _end()
        world = _neutral_world(seed=4, viewers=400)
        _backfill(world, [], end - dt.timedelta(hours=1))
        version = trained_svd_version()
        from releases.tests.factories import approved_promotion

        approved_promotion(version)  # its promotion is not the test; the door to live traffic asks for one
        deployment_update(actor=None, system="test", reason="test: production", production=version)
        # The last hour: the platform asks Usher for its visiting viewers; a scraper walks the viewer ids.
        platform = in_process_client("10.0.0.5", server="usher-test:8082")
        scraper = in_process_client("203.0.113.66", server="usher-test:8082")
        live = Simulator(world, SimulationConfig(seed=5, scenarios=[Scraping(at=dt.timedelta(0), requests=300)]),
                         sink=UsherSink(source="simulator"), recommend=platform, scraper=scraper)
        stats = live.run_backfill(start=end - dt.timedelta(hours=1), until=end)
        live.sink.close()
        get_runtime().predlog.flush()
        assert stats["scrape_requests"] == 300 and stats["visits"] > 5

        run = _audit("security", overrides={"SECURITY_CHECKS": ["scraping"]})
    finally:
        runtime_reset()

    finding = run.findings.get()
    assert finding.fingerprint == "security.scraping:client=203.0.113.66"
    assert finding.evidence["distinct_viewers"] == 300 and finding.evidence["sequential_share"] == 1.0
    first = int(world.viewer_ids[0])
    assert finding.evidence["viewer_id_range"] == [first, first + 299]
    clients = {c["client"]: c for c in next(c for c in run.results["checks"]
                                             if c["name"] == "security.scraping")["results"]["clients"]}
    assert clients["10.0.0.5"]["flagged"] is False and clients["10.0.0.5"]["inactive_share"] == 0.0
