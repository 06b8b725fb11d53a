"""Releases and experiments: promotion requests and their release-gate checks, canary rollouts
with their recorded steps, A/B experiments with arms and analysis snapshots, shadow comparisons."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PromotionRequest(models.Model):
    """A request to put a model version into production: gate → four-eyes review → canary."""

    class Status(models.TextChoices):
        GATE_PENDING = "gate_pending", "gate queued"
        GATE_RUNNING = "gate_running", "gate running"
        GATE_FAILED = "gate_failed", "gate failed"
        AWAITING_REVIEW = "awaiting_review", "awaiting review"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        ROLLING_OUT = "rolling_out", "canary running"
        RELEASED = "released", "released"
        ROLLED_BACK = "rolled_back", "rolled back"
        CANCELLED = "cancelled", "cancelled"

    OPEN = (Status.GATE_PENDING, Status.GATE_RUNNING, Status.AWAITING_REVIEW, Status.APPROVED, Status.ROLLING_OUT)

    version = models.ForeignKey("recommender.ModelVersion", on_delete=models.PROTECT, related_name="promotions")
    baseline_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Production when the request was made (what the gate compares against).",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.GATE_PENDING, db_index=True)
    reason = models.TextField(help_text="Why this version should reach production.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_label = models.CharField(max_length=150, help_text="User name, or 'system:<task>'.")
    review = models.OneToOneField(
        "portal.ReviewRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="promotion"
    )
    gate_attempt = models.PositiveIntegerField(default=0, help_text="How many times the gate has run.")
    gate_passed = models.BooleanField(null=True, blank=True)
    gate_finished_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    canary_steps = models.JSONField(default=list, blank=True, help_text="Percent steps for the canary, e.g. [5, 25, 50, 100].")
    canary_interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "recommender_promotionrequest"  # the table from before releases had its own app
        ordering = ["-created_at"]
        constraints = [
            # One open promotion per version at a time.
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(status__in=["gate_pending", "gate_running", "awaiting_review", "approved", "rolling_out"]),
                name="promotion_one_open_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"Promotion #{self.pk} of {self.version_id} ({self.status})"


class ReleaseGateCheck(models.Model):
    """One check of a release-gate run with its evidence (offline metrics, fairness, security, artifact)."""

    class Name(models.TextChoices):
        OFFLINE_METRICS = "offline_metrics", "offline metrics vs production"
        FAIRNESS = "fairness_audit", "fairness audit"
        SECURITY = "security_checks", "security checks"
        ARTIFACT = "artifact_integrity", "artifact integrity"

    class Outcome(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"
        WAIVED = "waived", "passed (findings waived)"
        ERROR = "error"

    promotion = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="checks")
    attempt = models.PositiveIntegerField()
    name = models.CharField(max_length=32, choices=Name.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    summary = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "recommender_releasegatecheck"  # the table from before releases had its own app
        ordering = ["promotion", "attempt", "id"]
        constraints = [
            models.UniqueConstraint(fields=["promotion", "attempt", "name"], name="gate_check_once_per_attempt")
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"

    @property
    def ok(self) -> bool:
        return self.outcome in (self.Outcome.PASSED, self.Outcome.WAIVED)


class Rollout(models.Model):
    """A canary rollout: the candidate's share of traffic moves step by step, or is undone.

    ``revision`` grows with every transition; a task carries the revision it was scheduled for
    and does nothing when the rollout has moved on, so retried or duplicated tasks are harmless.
    ``applied_percent`` is the canary share the deployment holds according to this record; it is
    changed in the same transaction as the deployment, so the two never disagree after a crash.
    """

    class State(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        ROLLED_BACK = "rolled_back", "rolled back"

    ACTIVE = (State.RUNNING, State.PAUSED)

    promotion = models.OneToOneField(
        PromotionRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="rollout"
    )
    version = models.ForeignKey("recommender.ModelVersion", on_delete=models.PROTECT, related_name="rollouts")
    baseline_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Production when the canary started; a rollback returns to it.",
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING, db_index=True)
    steps = models.JSONField(help_text="Canary percent per step, increasing, ending at 100.")
    interval_seconds = models.PositiveIntegerField()
    step_index = models.IntegerField(default=0)
    applied_percent = models.PositiveSmallIntegerField(default=0)
    revision = models.PositiveIntegerField(default=0)
    step_started_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_decision = models.JSONField(default=dict, blank=True)
    started_by_label = models.CharField(max_length=150)
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "recommender_rollout"  # the table from before releases had its own app
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state__in=["running", "paused"]), name="rollout_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"Rollout #{self.pk} of {self.version_id} ({self.state} at {self.applied_percent}%)"

    @property
    def current_percent(self) -> int:
        return int(self.steps[self.step_index]) if self.steps else 0


class RolloutStep(models.Model):
    """One evaluated (or operator-made) transition of a rollout, with the numbers behind it."""

    class Outcome(models.TextChoices):
        STARTED = "started"
        HELD = "held", "held (not enough data)"
        ADVANCED = "advanced"
        COMPLETED = "completed"
        ROLLED_BACK = "rolled_back", "rolled back"
        PAUSED = "paused"
        RESUMED = "resumed"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="step_records")
    revision = models.PositiveIntegerField(help_text="The rollout revision this transition produced.")
    step_index = models.IntegerField()
    from_percent = models.PositiveSmallIntegerField()
    to_percent = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    metrics = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "recommender_rolloutstep"  # the table from before releases had its own app
        ordering = ["rollout", "revision"]
        constraints = [models.UniqueConstraint(fields=["rollout", "revision"], name="rollout_step_once_per_revision")]

    def __str__(self) -> str:
        return f"{self.outcome} {self.from_percent}%→{self.to_percent}%"


class Experiment(models.Model):
    """An A/B experiment: arms with model versions and allocations, a primary metric and guardrails."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        STOPPED = "stopped"

    name = models.CharField(max_length=120, unique=True)
    hypothesis = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    primary_metric = models.CharField(max_length=40, default="online_quality")
    guardrails = models.JSONField(default=dict, blank=True, help_text="max_error_rate, max_p99_ms, max_fallback_rate.")
    alpha = models.FloatField(default=0.05)
    minimum_detectable_effect = models.FloatField(default=0.02, help_text="Absolute difference in success rate.")
    power = models.FloatField(default=0.8)
    salt = models.CharField(max_length=64, blank=True, help_text="The deployment's bucketing salt while it ran.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    started_by_label = models.CharField(max_length=150, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by_label = models.CharField(max_length=150, blank=True)
    stop_reason = models.TextField(blank=True)
    decision = models.CharField(max_length=40, blank=True)
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "recommender_experiment"  # the table from before releases had its own app
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"), name="experiment_one_running"),
        ]

    def __str__(self) -> str:
        return f"Experiment {self.name} ({self.status})"


class ExperimentVariant(models.Model):
    """One arm of an experiment as planned: a model version and its share of all traffic.

    While the experiment runs, serving's ``ExperimentArm`` rows of the deployment mirror these
    (route ``arm:<name>``); this record stays after the experiment stops, for its results.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.SlugField(max_length=40)
    version = models.ForeignKey("recommender.ModelVersion", on_delete=models.PROTECT, related_name="experiment_variants")
    allocation = models.PositiveSmallIntegerField(help_text="Percent of traffic.")
    is_control = models.BooleanField(default=False)

    class Meta:
        db_table = "recommender_experimentvariant"  # the table from before releases had its own app
        ordering = ["experiment", "-is_control", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="experiment_variant_unique_name"),
            models.CheckConstraint(condition=models.Q(allocation__gte=1, allocation__lte=100),
                                   name="experiment_variant_allocation_1_100"),
        ]
        verbose_name = "experiment arm"

    def __str__(self) -> str:
        return f"{self.name} ({self.allocation}%)"


class ExperimentSnapshot(models.Model):
    """The analysis of a running experiment at one moment (hourly): per-arm counts and the tests."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(db_index=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    arms = models.JSONField(help_text="Per arm: successes, trials, rate, guardrail telemetry.")
    srm = models.JSONField(default=dict)
    ztest = models.JSONField(default=dict)
    sequential = models.JSONField(default=dict)
    sample_size = models.JSONField(default=dict)
    decision = models.CharField(max_length=40)
    decision_reason = models.TextField()

    class Meta:
        db_table = "recommender_experimentsnapshot"  # the table from before releases had its own app
        ordering = ["experiment", "computed_at"]

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.computed_at:%Y-%m-%d %H:%M}: {self.decision}"


class ShadowComparison(models.Model):
    """A mirrored request: what production answered and what the shadow candidate would have."""

    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    viewer_id = models.BigIntegerField()
    production_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, on_delete=models.CASCADE, related_name="+"
    )
    shadow_version = models.ForeignKey("recommender.ModelVersion", on_delete=models.CASCADE, related_name="+")
    production_items = models.JSONField()
    shadow_items = models.JSONField()
    overlap = models.FloatField(help_text="|P ∩ S| / k, k = 20.")
    kendall_tau = models.FloatField(null=True)
    spearman_rho = models.FloatField(null=True)
    shadow_latency_ms = models.FloatField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "recommender_shadowcomparison"  # the table from before releases had its own app
        indexes = [models.Index(fields=["shadow_version", "created_at"])]

    def __str__(self) -> str:
        return f"shadow {self.shadow_version_id} vs {self.production_version_id}: overlap {self.overlap:.2f}"


class ShadowReport(models.Model):
    """Agreement of a shadow candidate with production over a window of mirrored requests."""

    shadow_version = models.ForeignKey("recommender.ModelVersion", on_delete=models.CASCADE, related_name="+")
    production_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, on_delete=models.CASCADE, related_name="+"
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    requests = models.PositiveIntegerField()
    mean_overlap = models.FloatField(null=True)
    mean_kendall_tau = models.FloatField(null=True)
    mean_spearman_rho = models.FloatField(null=True)
    p50_shadow_latency_ms = models.FloatField(null=True)
    overlap_histogram = models.JSONField(default=list)
    created_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "recommender_shadowreport"  # the table from before releases had its own app
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Shadow report #{self.pk} ({self.requests} requests)"
