"""Models of the monitoring app, one module per area."""

from monitoring.models.alerts import (  # noqa: F401
    AlertRule,
    Incident,
    IncidentNote,
    Notification,
    NotificationChannel,
)
from monitoring.models.drift import DriftFeature, DriftReport, DriftResult  # noqa: F401
from monitoring.models.feedback import FeedbackLoopSnapshot  # noqa: F401
from monitoring.models.quality import DataQualityReport  # noqa: F401
from monitoring.models.telemetry import LATENCY_BUCKETS_MS, SLO, TelemetryMinute  # noqa: F401
