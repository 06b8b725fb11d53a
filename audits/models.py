"""Audit runs, the findings they raise, and the waivers reviewers grant on findings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}


def severity_rank(value: str) -> int:
    """0 for info … 4 for critical; unknown values raise KeyError."""
    return SEVERITY_RANK[value]


class AuditRun(models.Model):
    """One fairness or security audit of a model version, or of the live deployment over a window."""

    class Kind(models.TextChoices):
        FAIRNESS = "fairness"
        SECURITY = "security"

    class Target(models.TextChoices):
        MODEL_VERSION = "model_version", "model version"
        LIVE = "live", "live deployment over a window"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        RELEASE_GATE = "release_gate", "release gate"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    target = models.CharField(max_length=16, choices=Target.choices)
    model_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_runs",
        help_text="The audited model version (a model-level fairness audit, or the version live at the time).",
    )
    target_repr = models.CharField(max_length=255, blank=True, help_text="What was audited, in words.")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    params = models.JSONField(default=dict, blank=True, help_text="The settings the audit ran with.")
    results = models.JSONField(default=dict, blank=True, help_text="Tables and figures, per check.")
    report = models.TextField(blank=True, help_text="A plain-text summary of the outcome.")
    error = models.TextField(blank=True)
    passed = models.BooleanField(null=True, blank=True, help_text="No open finding at or above the fail level.")
    exploratory = models.BooleanField(
        default=False, db_index=True,
        help_text="Ran with overrides or a subset of the checks: shown, never read by the release gate.",
    )
    artifact_sha256 = models.CharField(
        max_length=64, blank=True,
        help_text="The audited model version's artifact sha256 when the run was created (the gate compares it).",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_label = models.CharField(max_length=150, help_text="User name, or 'system:<task>'.")
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    signoff_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} audit #{self.pk} ({self.target_repr or self.target})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AuditFinding(models.Model):
    """Something an audit found, with its evidence; worked open → acknowledged → resolved, or waived.

    A finding is identified by its ``fingerprint`` (check + subject): when a later run sees the same
    problem while the finding is still open, acknowledged or waived, that run is added to ``runs``
    instead of raising a duplicate. A resolved finding that comes back is a new finding.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"
        WAIVED = "waived"

    class ResolvedVia(models.TextChoices):
        REVIEW = "review", "approved by a reviewer who did not propose it"
        RERUN = "rerun", "a configured re-run no longer found it"
        SINGLE = "single", "one person (below the review level)"

    ACTIVE_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED, Status.WAIVED)

    run = models.ForeignKey(AuditRun, on_delete=models.PROTECT, related_name="raised_findings",
                            help_text="The run that first raised it.")
    runs = models.ManyToManyField(AuditRun, related_name="findings", blank=True,
                                  help_text="Every run that observed it.")
    kind = models.CharField(max_length=16, choices=AuditRun.Kind.choices, db_index=True)
    check_name = models.CharField(max_length=64, db_index=True, help_text="e.g. fairness.disparity")
    fingerprint = models.CharField(max_length=255, db_index=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, db_index=True)
    title = models.CharField(max_length=255)
    evidence = models.JSONField(default=dict, blank=True, help_text="The numbers behind the finding.")
    model_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_findings"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_comment = models.TextField(blank=True)
    resolved_via = models.CharField(max_length=16, choices=ResolvedVia.choices, blank=True,
                                    help_text="How a resolved finding was closed (the gate accepts review and rerun).")
    times_seen = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} [{self.severity}] {self.title}"

    @property
    def severity_rank(self) -> int:
        return severity_rank(self.severity)


class FindingWaiver(models.Model):
    """A request to accept a finding's risk until a date; a reviewer (never the requester) decides it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        REJECTED = "rejected"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    finding = models.ForeignKey(AuditFinding, on_delete=models.CASCADE, related_name="waivers")
    justification = models.TextField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    review = models.OneToOneField(
        "portal.ReviewRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The reviewer who accepted (or rejected) the waiver.",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["finding"], condition=models.Q(status__in=["pending", "active"]),
                name="one_pending_or_active_waiver_per_finding",
            )
        ]

    def __str__(self) -> str:
        return f"waiver of finding #{self.finding_id} until {self.expires_at:%Y-%m-%d} ({self.status})"


class FindingResolution(models.Model):
    """A proposal that a finding is fixed; a reviewer (never the proposer) approves it, which resolves the finding."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    finding = models.ForeignKey(AuditFinding, on_delete=models.CASCADE, related_name="resolutions")
    comment = models.TextField(help_text="What was done about the finding.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(auto_now_add=True)
    review = models.OneToOneField(
        "portal.ReviewRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The reviewer who approved (or rejected) the resolution.",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["finding"], condition=models.Q(status="pending"),
                name="one_pending_resolution_per_finding",
            )
        ]

    def __str__(self) -> str:
        return f"resolution of finding #{self.finding_id} ({self.status})"
