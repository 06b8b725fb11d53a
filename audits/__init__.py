"""Audit runs and findings: fairness (aequitas), security checks, sign-off."""
