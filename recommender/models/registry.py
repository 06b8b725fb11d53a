"""The training side: dataset snapshots, training runs, and the model registry (versions, aliases).

A model in Usher is never an anonymous file: a ``ModelVersion`` points at the ``TrainingRun`` that
produced it, which points at the ``DatasetSnapshot`` it was trained on (time window, filters, row
counts, content hash). Versions are immutable once registered (only their review status, tags and
description change, through services); aliases (``production``, ``canary``, ``shadow``) are moved
only by ``recommender.registry.services.model_alias_move``, which writes the activity log.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DatasetSnapshot(models.Model):
    """A frozen, reproducible training set exported to files under ``ARTIFACT_ROOT/snapshots``.

    ``content_sha256`` covers the exported ratings and watch sessions (see docs/training.md):
    the same data, window and filters always give the same hash.
    """

    class Status(models.TextChoices):
        READY = "ready"
        DELETED = "deleted"

    name = models.CharField(max_length=200, blank=True)
    window_start = models.DateTimeField(null=True, blank=True, help_text="Inclusive; empty = from the beginning.")
    window_end = models.DateTimeField(help_text="Exclusive upper bound of event time.")
    filters = models.JSONField(default=dict, blank=True, help_text="Normalised filter options used to export.")
    include_implicit = models.BooleanField(
        default=False, help_text="Watch sessions without a rating become implicit ratings (documented rule)."
    )
    rating_count = models.PositiveBigIntegerField(default=0, help_text="Rows in the training ratings file.")
    explicit_rating_count = models.PositiveBigIntegerField(default=0)
    implicit_rating_count = models.PositiveBigIntegerField(default=0)
    watch_session_count = models.PositiveBigIntegerField(default=0)
    viewer_count = models.PositiveIntegerField(default=0)
    movie_count = models.PositiveIntegerField(default=0)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    content_sha256 = models.CharField(max_length=64, db_index=True)
    storage_path = models.CharField(max_length=500, help_text="Folder relative to ARTIFACT_ROOT.")
    size_bytes = models.PositiveBigIntegerField(default=0)
    files = models.JSONField(default=dict, blank=True, help_text="File name → {sha256, bytes, rows}.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"snapshot #{self.pk} {self.name or self.content_sha256[:12]}"


class TrainingRun(models.Model):
    """One training of one algorithm with validated hyperparameters on one snapshot, executed by Celery."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Origin(models.TextChoices):
        MANUAL = "manual"
        SCHEDULED = "scheduled"
        BOOTSTRAP = "bootstrap"
        BENCHMARK = "benchmark"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="runs")
    algorithm = models.CharField(max_length=32, db_index=True)
    hyperparameters = models.JSONField(default=dict, blank=True, help_text="Validated, with defaults filled in.")
    seed = models.PositiveIntegerField(default=0)
    split = models.JSONField(default=dict, blank=True, help_text="How the evaluation split was made.")
    register = models.BooleanField(default=True, help_text="Register a model version when the run succeeds.")
    registered_model_name = models.CharField(max_length=100, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=64, blank=True)
    percent = models.FloatField(default=0.0)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process running it.")
    celery_task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    training_seconds = models.FloatField(null=True, blank=True, help_text="Time in the algorithm's fit.")
    evaluation_seconds = models.FloatField(null=True, blank=True)
    total_seconds = models.FloatField(null=True, blank=True)
    peak_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True, help_text="Peak RSS of the process.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Accuracy, ranking, beyond-accuracy, cost.")
    group_metrics = models.JSONField(default=dict, blank=True, help_text="The same per gender/age band/occupation.")
    environment = models.JSONField(default=dict, blank=True, help_text="Python, libraries, code version.")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(percent__gte=0, percent__lte=100), name="run_percent_0_100"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.algorithm} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class RegisteredModel(models.Model):
    """A named model whose versions are trained, compared and deployed (``movie-recommender``)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """An immutable, numbered version: the artifact (with its sha256), metrics and lineage of one run."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        APPROVED = "approved"
        REJECTED = "rejected"
        ARCHIVED = "archived"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    algorithm = models.CharField(max_length=32)
    artifact_path = models.CharField(max_length=500, help_text="Folder relative to ARTIFACT_ROOT.")
    artifact_sha256 = models.CharField(max_length=64)
    artifact_size = models.PositiveBigIntegerField()
    artifact_kind = models.CharField(max_length=32, help_text="Serving form: factors, biases, ranking, ...")
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="model_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class ModelAlias(models.Model):
    """A deployment pointer (``production``, ``canary``, ``shadow``) moved only by a service."""

    class Name(models.TextChoices):
        PRODUCTION = "production"
        CANARY = "canary"
        SHADOW = "shadow"

    name = models.CharField(max_length=16, choices=Name.choices, unique=True)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="aliases"
    )
    moved_at = models.DateTimeField(null=True, blank=True)
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    moved_by_label = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.name} → {self.version or '—'}"
