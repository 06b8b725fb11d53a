"""Releases in a simulated world: the catalog's world simulator drives viewers, serving's runtime
answers them in-process, and every answer lands in the prediction log at *simulated* time, so
online quality (a watch within 30 minutes) can be measured without waiting for the wall clock.

Used by the simulator-driven tests and by ``benchmarks/experiments.py``::

    sim = ReleaseSimulation.create(viewers=400, movies=250, seed=3)
    sim.backfill(days=4)                      # history from the simulator's own popularity server
    svd = sim.train("svd"); pop = sim.train("popularity")
    sim.bootstrap_production(pop)
    sim.serve(hours=12)                       # viewers ask Usher; what they watch is ingested

Pieces used: ``recommender.simulator`` (World, Simulator, UsherSink into ``ingest_lines``),
``recommender.training`` (snapshot, run, inline execution → a registered version),
``recommender.serving.runtime`` (routing by the deployment's bucketing, the model's answer,
exclusions) and ``recommender.serving.predlog.write_records`` (the prediction log).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from recommender.models import ModelVersion

# A world where personal taste is learnable from a few dozen ratings per viewer: three latent
# factors, ratings close to the true scores, and viewers who choose mostly by taste (a list is
# followed outright 15% of the time). In the catalog's default world SVD learns little more than
# item biases and barely beats popularity online; these knobs make the difference a model's quality
# makes visible, which is what the release machinery has to detect.
WORLD = {"factors": 3, "taste_scale": 2.0, "rating_noise": 0.2, "mean_rating": 3.0}
BEHAVIOUR = {"follow_probability": 0.15, "extra_ratings_per_visit": 1.0, "taste_temperature": 3.0}
SVD_PARAMS = {"n_factors": 3, "n_epochs": 60, "lr_all": 0.007, "reg_all": 0.05}


@dataclass
class ReleaseSimulation:
    """A simulated world wired to Usher, with its own clock (``now``)."""

    world: Any
    simulator: Any
    runtime: Any
    now: datetime
    k: int = 20
    served: int = 0
    seed: int = 0
    _records: list = field(default_factory=list)
    _snapshot_at: datetime | None = None

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, viewers: int = 600, movies: int = 400, seed: int = 3, start: datetime | None = None,
               visits_per_viewer_per_day: float = 8.0, sim_config: dict | None = None,
               world_config: dict | None = None) -> ReleaseSimulation:
        """A world whose history starts at ``start`` (default: 10 days before now, on the minute).
        Viewers visit ``visits_per_viewer_per_day`` times a day: SVD needs a few dozen ratings per
        viewer before it beats popularity in this world."""
        from recommender.serving.runtime import runtime_reset
        from recommender.simulator.engine import SimulationConfig, Simulator
        from recommender.simulator.services import simulator_catalog_import
        from recommender.simulator.sinks import UsherSink
        from recommender.simulator.world import World

        # Midnight ten days ago: the world's day rhythm falls on the same hours in every run (a start on
        # the minute of the run made each run a different world).
        start = start or (datetime.now(tz=UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0)
        world = World.build(seed=seed, viewers=viewers, movies=movies, start=start,
                            visits_per_viewer_per_day=visits_per_viewer_per_day, **{**WORLD, **(world_config or {})})
        simulator_catalog_import(world=world)
        config = SimulationConfig(seed=seed + 1, timeout_rate=0.0, **{**BEHAVIOUR, **(sim_config or {})})
        simulator = Simulator(world, config, UsherSink(source="simulator", batch_size=20_000))
        sim = cls(world=world, simulator=simulator, runtime=None, now=start)
        sim.runtime = runtime_reset()
        sim.seed = seed
        return sim

    def backfill(self, *, days: float) -> None:
        """History served by the simulator's built-in popularity server (no prediction log)."""
        recommend, self.simulator.recommend = self.simulator.recommend, None
        try:
            self._run(until=self.now + timedelta(days=days))
        finally:
            self.simulator.recommend = recommend

    def train(self, algorithm: str, *, hyperparameters: dict | None = None, seed: int = 0,
              include_implicit: bool = False) -> ModelVersion:
        """Snapshot everything up to ``now`` (watch sessions as implicit ratings when asked) and
        train a version in this process."""
        from recommender.training.runs import training_run_create, training_run_execute
        from recommender.training.snapshots import snapshot_create

        snapshot = snapshot_create(actor=None, system="simulation", name=f"sim {algorithm} {self.now:%m-%d %H:%M}",
                                   window_end=self.now, include_implicit=include_implicit)
        run = training_run_create(actor=None, system="simulation", snapshot=snapshot, algorithm=algorithm,
                                  hyperparameters=hyperparameters, seed=seed, enqueue=False)
        training_run_execute(run_id=run.pk)  # what the worker does, in this process
        run.refresh_from_db()
        if run.status != "succeeded":
            raise RuntimeError(f"training {algorithm} failed: {run.error}")
        return ModelVersion.objects.get(training_run=run)

    def broken_copy(self, version: ModelVersion, *, seed: int = 99) -> ModelVersion:
        """``broken_copy_register``: ``version`` with random item factors, its offline metrics kept."""
        return broken_copy_register(version=version, seed=seed)

    def bootstrap_production(self, version: ModelVersion) -> None:
        """Put the first version in production (the bootstrap step: nothing is in production yet)."""
        from recommender.registry.services import model_alias_move
        from recommender.serving.services import deployment_update

        model_alias_move(alias="production", version=version, actor=None, reason="simulation bootstrap",
                         system="bootstrap")
        # Which viewers a canary or an arm gets follows from the deployment's salt, random by default:
        # the world's seed fixes it, so a seeded simulation is the same world every run.
        deployment_update(actor=None, system="simulation", reason="a seeded simulation", salt=f"simulation-{self.seed}")
        self.refresh(rebuild=True)

    # --- serving ---------------------------------------------------------------------------------
    def refresh(self, *, rebuild: bool = False) -> None:
        """Pick up deployment changes and the viewers' watched/rated movies, as a serving worker's
        background loops would: the seen-movies delta is polled until it has caught up, and the
        seen snapshot (with the popular-and-recent fallback) is rebuilt every 6 simulated hours."""
        from recommender.serving.snapshot import snapshot_build

        self.runtime.refresh_deployment(force=True)
        if rebuild or self._snapshot_at is None or self.now - self._snapshot_at >= timedelta(hours=6):
            config = self.runtime.config
            snapshot_build(root=config.snapshot_dir, fallback_size=config.fallback_size,
                           window_days=config.fallback_window_days, half_life_days=config.fallback_half_life_days)
            self._snapshot_at = self.now
        self.runtime.refresh_snapshot()
        while self.runtime.delta.poll():
            pass

    def _recommend(self, viewer_id: int):
        from recommender.serving.predlog import PredictionRecord
        from recommender.simulator.client import RecommendResult

        started = time.perf_counter()
        answer = self.runtime.recommend(int(viewer_id), self.k)
        latency = (time.perf_counter() - started) * 1000
        version = answer.version
        self._records.append(PredictionRecord(
            answer.request_id, self.simulator.now, "plain", "simulation", answer.viewer_id,
            version.version_id if version else None, version.label[:150] if version else "fallback",
            answer.revision, answer.arm, list(answer.items), None, round(latency, 3), 200, answer.fallback_reason,
            (answer.error or "")[:255],
        ))
        self.served += 1
        return RecommendResult(200, list(answer.items), max(1, int(latency)))

    def _run(self, *, until: datetime) -> None:
        self.simulator.run_backfill(start=self.now, until=until)
        self.flush()
        self.now = until

    def flush(self) -> None:
        from recommender.serving.predlog import write_records

        if self._records:
            write_records(self._records)
            self._records = []

    def serve(self, *, hours: float, chunk_minutes: float = 15.0) -> None:
        """Viewers visit and are answered by Usher for ``hours`` of simulated time; the deployment
        and the seen-movies snapshot are refreshed between chunks."""
        if self.simulator.recommend is None:
            self.simulator.recommend = self._recommend
        end = self.now + timedelta(hours=hours)
        while self.now < end:
            self.refresh()
            self._run(until=min(end, self.now + timedelta(minutes=chunk_minutes)))


# --- a broken export ------------------------------------------------------------------------------


def broken_copy_register(*, version: ModelVersion, seed: int = 99) -> ModelVersion:
    """A deliberately broken model: ``version``'s serving artifact with its item factors (or
    scores) replaced by noise, so each viewer gets random recommendations; registered with
    ``version``'s offline metrics, as an export bug that offline evaluation did not see. (The release
    gate re-scores artifacts and stops it; the canary tests and ``benchmarks/canary_live.py`` start
    its canary from an approved promotion to show that the canary catches it too.)"""
    from recommender.models import TrainingRun
    from recommender.registry.artifacts import artifact_abspath, artifact_root, load_serving_model, write_artifact
    from recommender.registry.services import model_version_register

    folder = artifact_abspath(version.artifact_path)
    model = load_serving_model(directory=folder, expected_sha256=version.artifact_sha256)  # verified first
    rng = np.random.default_rng(seed)
    arrays = {name: np.load(folder / entry["file"], allow_pickle=False)
              for name, entry in model.manifest["arrays"].items()}
    for name in ("item_factors", "item_scores", "item_bias"):
        if name in arrays:
            arrays[name] = rng.normal(size=arrays[name].shape).astype(arrays[name].dtype)
    manifest = {k: v for k, v in model.manifest.items() if k not in ("format", "format_version", "arrays")}
    source = version.training_run
    run = TrainingRun.objects.create(
        snapshot=source.snapshot, algorithm=source.algorithm, hyperparameters=source.hyperparameters,
        seed=source.seed, split=source.split, status=TrainingRun.Status.SUCCEEDED, stage="done", percent=100,
        metrics=version.metrics, created_by_label="system:simulation", log="broken export (random factors)",
    )
    relative = f"models/simulation/broken-{version.pk}-{seed}-{int(time.time() * 1000)}"
    sha, size = write_artifact(directory=artifact_root() / relative, manifest=manifest, arrays=arrays)
    return model_version_register(
        run=run, artifact_path=relative, artifact_sha256=sha, artifact_size=size,
        artifact_kind=version.artifact_kind, metrics=dict(version.metrics),
        description=f"broken copy of {version}: random item factors", system="simulation",
    )


# --- people ----------------------------------------------------------------------------------------


def sim_users() -> dict:
    """One user per role (``sim_<role>``), created on first use."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.roles import ROLE_NAMES, sync_role_permissions

    sync_role_permissions()
    users = {}
    for role in ROLE_NAMES:
        user, created = get_user_model().objects.get_or_create(
            username=f"sim_{role}", defaults={"is_staff": True, "email": f"sim_{role}@example.com"})
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role))
        users[role] = user
    return users


# --- scenarios (tests and benchmarks/experiments.py) ------------------------------------------------------


def scenario_ab_test(sim: ReleaseSimulation, *, control: ModelVersion, treatment: ModelVersion, hours: int,
                     allocation: int = 50, name: str = "svd-vs-popularity", mde: float = 0.03,
                     stop_when_significant: bool = False) -> dict:
    """An A/B experiment between two versions, analysed every simulated hour."""
    from releases import services

    users = sim_users()
    experiment = services.experiment_create(
        name=name, hypothesis=f"{treatment.algorithm} gets watched more than {control.algorithm}",
        actor=users["operator"], minimum_detectable_effect=mde,
        arms=[{"name": "control", "version": control.pk, "allocation": allocation, "is_control": True},
              {"name": "treatment", "version": treatment.pk, "allocation": allocation}],
    )
    experiment = services.experiment_start(experiment=experiment, actor=users["operator"], now=sim.now)
    hourly, first_significant = [], None
    for hour in range(1, hours + 1):
        sim.serve(hours=1)
        experiment.refresh_from_db()
        snap = services.experiment_analyze(experiment=experiment, now=sim.now)
        seq = snap.sequential.get("treatment") or {}
        hourly.append({"hour": hour, "decision": snap.decision,
                       "control": {k: snap.arms["control"][k] for k in ("trials", "successes", "rate", "viewers")},
                       "treatment": {k: snap.arms["treatment"][k] for k in ("trials", "successes", "rate", "viewers")},
                       "p_sequential": seq.get("p_value"), "srm_p": snap.srm["p_value"]})
        if first_significant is None and seq.get("reject"):
            first_significant = hour
            if stop_when_significant:
                break
    experiment = services.experiment_stop(experiment=experiment, actor=users["operator"], reason="analysis done",
                                          now=sim.now)
    final = experiment.snapshots.order_by("-computed_at").first()
    return {"experiment": experiment.pk, "decision": experiment.decision, "reason": experiment.decision_reason,
            "first_significant_hour": first_significant, "hours": len(hourly), "hourly": hourly,
            "final": {"arms": final.arms, "ztest": final.ztest, "sequential": final.sequential,
                      "srm": final.srm, "sample_size": final.sample_size}}


def scenario_canary(sim: ReleaseSimulation, *, candidate: ModelVersion, hours: int, steps: list[int] | None = None,
                    interval_hours: float = 1.0, waive_audit_findings: bool = False) -> dict:
    """The whole release path for ``candidate``: a data scientist's request, the release gate (run
    in-process instead of by a worker), the requester's own approval refused, a second person's
    approval, then a canary checked every ``interval_hours`` of simulated time until it completes
    or is rolled back (or ``hours`` pass)."""
    from portal.errors import PermissionDenied
    from releases import clock, services
    from releases.models import PromotionRequest, Rollout

    users = sim_users()
    promotion = services.promotion_request_create(
        version=candidate, actor=users["data_scientist"], reason=f"offline metrics of {candidate} look good",
        canary_steps=steps or [5, 25, 50, 100], canary_interval_seconds=int(interval_hours * 3600))
    promotion = services.release_gate_run(promotion=promotion)
    result: dict = {"promotion": promotion.pk, "gate_attempts": [_gate_summary(promotion)]}
    if promotion.status == PromotionRequest.Status.GATE_FAILED and waive_audit_findings:
        waived = _waive_blocking_findings(promotion, users)
        if waived:
            services.promotion_gate_rerun(promotion=promotion, actor=users["data_scientist"],
                                          reason=f"findings {waived} waived by a reviewer")
            promotion = services.release_gate_run(promotion=promotion)
            result["waived_findings"] = waived
            result["gate_attempts"].append(_gate_summary(promotion))
    result["gate"] = result["gate_attempts"][-1]
    result["gate_status"] = promotion.status
    if promotion.status != PromotionRequest.Status.AWAITING_REVIEW:
        return result
    try:
        services.promotion_decide(promotion=promotion, actor=users["data_scientist"], decision="approve")
    except PermissionDenied as exc:
        result["self_approval"] = f"refused: {exc.message}"
    with clock.simulated(lambda: sim.now):  # the canary starts at the world's time, not the wall clock's
        promotion = services.promotion_decide(promotion=promotion, actor=users["reviewer"], decision="approve",
                                              comment="gate passed; canary it")
    rollout = Rollout.objects.filter(promotion=promotion).first()
    if rollout is None:
        result["state"] = "waiting (another canary or an experiment holds the traffic split)"
        return result
    served_before = sim.served
    timeline = []
    while rollout.state in Rollout.ACTIVE and (sim.now - rollout.created_at).total_seconds() < hours * 3600:
        sim.serve(hours=interval_hours)
        step = services.rollout_evaluate(rollout=rollout, expected_revision=rollout.revision,
                                         now=sim.now + timedelta(seconds=1))
        rollout.refresh_from_db()
        if step is not None:
            head = step.metrics or {}
            timeline.append({
                "after_hours": round((sim.now - rollout.created_at).total_seconds() / 3600, 2),
                "outcome": step.outcome, "share": f"{step.from_percent}% → {step.to_percent}%",
                "canary": {k: (head.get("canary") or {}).get(k) for k in ("successes", "trials", "rate")},
                "production": {k: (head.get("production") or {}).get(k) for k in ("successes", "trials", "rate")},
                "p_sequential": (head.get("sequential") or {}).get("p_value"), "reason": step.reason,
                "design_effect": (head.get("sequential") or {}).get("design_effect"),
                "decided_by": step.decided_label,
            })
    if rollout.state in Rollout.ACTIVE:  # out of time: an operator takes it out, with the reason recorded
        services.rollout_rollback(rollout=rollout, actor=users["operator"], now=sim.now,
                                  reason=f"undecided after {hours} simulated hours")
        rollout.refresh_from_db()
    promotion.refresh_from_db()
    last = rollout.step_records.order_by("-revision").first()
    result.update({"rollout": rollout.pk, "state": rollout.state, "promotion_status": promotion.status,
                   "final_decided_by": last.decided_label if last else None,
                   "timeline": timeline, "requests_during_canary": sim.served - served_before,
                   "canary_lists": _route_lists(rollout, "canary")})
    return result


def _gate_summary(promotion) -> dict:
    return {c.name: {"outcome": c.outcome, "summary": c.summary}
            for c in promotion.checks.filter(attempt=promotion.gate_attempt).order_by("id")}


def _waive_blocking_findings(promotion, users) -> list[int]:
    """The audit findings that blocked the gate, waived the audits way: an operator asks with a
    justification, a reviewer approves in the inbox."""
    from datetime import timedelta as _td

    from django.utils import timezone

    from audits.models import AuditFinding
    from audits.services import finding_waiver_request
    from portal.services import review_request_decide

    ids = []
    for check in promotion.checks.filter(attempt=promotion.gate_attempt, outcome="failed",
                                         name__in=["fairness_audit", "security_checks"]):
        ids += [f["id"] for f in check.evidence.get("blocking_findings", [])]
    waived = []
    for finding in AuditFinding.objects.filter(pk__in=ids, status__in=["open", "acknowledged"]):
        waiver = finding_waiver_request(
            finding=finding, actor=users["operator"], expires_at=timezone.now() + _td(days=30),
            justification="The API schema and docs are public on purpose in this simulated deployment; "
                          "they describe endpoints and expose no data.")
        review_request_decide(review=waiver.review, actor=users["reviewer"], decision="approve",
                              comment="accepted for the simulation")
        waived.append(finding.pk)
    return waived


def _route_lists(rollout, route: str) -> int:
    from recommender.serving.selectors import prediction_log_list

    return prediction_log_list().filter(created_at__gte=rollout.created_at, arm=route).count()
