"""Audit runs and findings: fairness (aequitas), security checks, sign-off."""

from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.reviews import ReviewKind, register_labels, register_review_kind

        # Four eyes on all three: whoever asks for a waiver, a sign-off or a resolution cannot grant it.
        register_review_kind(ReviewKind(
            name="audits.finding_waiver", label="Audit finding waiver", decider_role="reviewer", four_eyes=True,
            on_decision="audits.services.finding_waiver_on_decision", target_page="audits:finding",
        ))
        register_review_kind(ReviewKind(
            name="audits.finding_resolution", label="Audit finding resolution", decider_role="reviewer",
            four_eyes=True, on_decision="audits.services.finding_resolution_on_decision", target_page="audits:finding",
        ))
        register_review_kind(ReviewKind(
            name="audits.run_signoff", label="Audit sign-off", decider_role="reviewer", four_eyes=True,
            on_decision="audits.services.audit_run_signoff_on_decision", target_page="audits:run",
        ))
        # What the pages call the checks and the activity-log verbs of the audits.
        register_labels({
            "fairness.model": "Fairness of the model", "fairness.system": "Fairness of the live system",
            "fairness.disparity": "Fairness disparity", "fairness.exposure": "Fairness of exposure",
            "fairness.service": "Fairness of service",
            "security.api_surface": "API surface", "security.artifact_integrity": "Artifact integrity",
            "security.deploy_config": "Deployment settings", "security.deploy_check": "Deployment check",
            "security.deployment_review": "Deployment review", "security.login_abuse": "Login abuse",
            "security.rating_poisoning": "Rating poisoning", "security.rating_velocity": "Rating velocity",
            "security.scraping": "Scraping", "security.admin_exposure": "Admin exposure",
            "security.debug": "Debug mode", "security.secret_strength": "Secret strength",
            "audit_run.queued": "Audit queued", "audit_run.started": "Audit started",
            "audit_run.succeeded": "Audit finished", "audit_run.failed": "Audit failed",
        })
