"""Audit runs and findings: fairness (aequitas), security checks, sign-off."""

from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"
    default_auto_field = "django.db.models.BigAutoField"
