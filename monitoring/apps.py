"""Telemetry, SLOs, online quality, data quality, drift, feedback loops, alerts."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monitoring import prometheus
        from portal.reviews import ReviewKind, register_review_kind

        register_review_kind(ReviewKind(
            name="incident_ack",
            label="Incident to acknowledge",
            decider_role="operator",
            four_eyes=False,
            on_decision="monitoring.services.incidents.incident_review_decided",
            target_page="monitoring:incident",
        ))
        prometheus.register()
