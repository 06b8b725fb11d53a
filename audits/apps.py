"""Audit runs and findings: fairness (aequitas), security checks, sign-off."""

from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.reviews import ReviewKind, register_review_kind

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
