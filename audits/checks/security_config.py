"""Deployment configuration: Django's deploy checks, secret strength, debug, admin exposure.

In production mode (``USHER_PRODUCTION=1``) every warning of the security deployment checks that
``manage.py check --deploy`` runs (those tagged ``security``: Django's own) becomes a finding; other
apps' deployment checks (drf-spectacular's regenerates the API schema) are not run here. In the embedded development mode the same messages are reported in the results but raise
no finding: a development checkout is expected to run with DEBUG and without HTTPS.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audits.checks.base import CheckOutcome, FindingDraft

# Deploy-check ids covered by the dedicated checks below (reported once, there).
COVERED_IDS = {"security.W018", "security.W009"}
HIGH_IDS = {"security.W004", "security.W008", "security.W012", "security.W016", "security.W020"}
DORMANT_SUPERUSER_DAYS = 90


def secret_strength(secret: str) -> dict[str, Any]:
    """Length, distinct characters and an entropy estimate (Shannon bits per character × length)."""
    counts = Counter(secret)
    n = len(secret)
    bits_per_char = -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0
    return {
        "length": n,
        "distinct_characters": len(counts),
        "estimated_entropy_bits": round(bits_per_char * n, 1),
        "insecure_prefix": secret.startswith("django-insecure"),
    }


def _secret_problems(strength: dict[str, Any]) -> list[str]:
    problems = []
    if strength["length"] < 50:
        problems.append(f"{strength['length']} characters (50 or more are needed)")
    if strength["distinct_characters"] < 5:
        problems.append(f"only {strength['distinct_characters']} distinct characters")
    if strength["estimated_entropy_bits"] < 128:
        problems.append(f"about {strength['estimated_entropy_bits']} bits of entropy (128 or more are needed)")
    if strength["insecure_prefix"]:
        problems.append("it starts with 'django-insecure' (a generated development key)")
    return problems


def deploy_configuration() -> CheckOutcome:
    """Run the checks; see the module docstring."""
    production = bool(getattr(settings, "PRODUCTION", False))
    outcome = CheckOutcome(name="security.deploy_config")
    # The deployment checks `check --deploy` adds that are tagged "security" (Django's own). Other apps'
    # deployment checks (drf-spectacular regenerates the whole API schema) are not security checks.
    deploy_rows = []
    for check in checks.registry.registry.deployment_checks:
        judged = checks.Tags.security in getattr(check, "tags", ())
        if not judged:
            continue
        for m in check(app_configs=None, databases=None):
            if m.level >= checks.WARNING and m.id not in settings.SILENCED_SYSTEM_CHECKS:
                deploy_rows.append({"id": m.id, "level": m.level, "level_name": _level_name(m.level),
                                    "message": str(m.msg), "hint": str(m.hint or ""), "judged": judged})
    outcome.results["mode"] = "production" if production else "development"
    outcome.results["deploy_checks"] = deploy_rows

    # Secret strength (the key itself is never recorded).
    secrets = {"SECRET_KEY": settings.SECRET_KEY}
    for i, fallback in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", []) or []):
        secrets[f"SECRET_KEY_FALLBACKS[{i}]"] = fallback
    strengths = {name: secret_strength(str(value)) for name, value in secrets.items()}
    outcome.results["secrets"] = strengths
    outcome.results["debug"] = bool(settings.DEBUG)

    # Admin exposure.
    try:
        admin_path = reverse("admin:index")
    except NoReverseMatch:
        admin_path = None
    user_model = get_user_model()
    superusers = user_model.objects.filter(is_superuser=True, is_active=True)
    dormant_cutoff = timezone.now() - timedelta(days=DORMANT_SUPERUSER_DAYS)
    dormant = list(
        superusers.filter(last_login__isnull=True, date_joined__lt=dormant_cutoff).values_list("username", flat=True)
    ) + list(superusers.filter(last_login__lt=dormant_cutoff).values_list("username", flat=True))
    admin = {
        "admin_path": admin_path,
        "login_rate_limited": bool(getattr(settings, "AXES_ENABLED", False)),
        "axes_failure_limit": getattr(settings, "AXES_FAILURE_LIMIT", None),
        "active_superusers": superusers.count(),
        "dormant_superusers": sorted(dormant),
        "allowed_hosts": list(settings.ALLOWED_HOSTS),
    }
    outcome.results["admin"] = admin

    if not production:
        outcome.summary = (f"development mode: {len(deploy_rows)} deploy-check message(s) reported, not judged "
                           "(set USHER_PRODUCTION=1 to judge them)")
        return outcome

    for row in deploy_rows:
        if row["id"] in COVERED_IDS or not row["judged"]:
            continue
        severity = "high" if row["id"] in HIGH_IDS or row["level"] >= checks.ERROR else "medium"
        outcome.findings.append(FindingDraft(
            check="security.deploy_check", subject=row["id"], severity=severity,
            title=f"Deploy check {row['id']}: {row['message'][:180]}",
            evidence={"check_id": row["id"], "level": row["level_name"], "message": row["message"],
                      "hint": row["hint"], "mode": "production"},
        ))
    if settings.DEBUG:
        outcome.findings.append(FindingDraft(
            check="security.debug", subject="DEBUG", severity="critical",
            title="DEBUG is on in production: error pages expose settings and source code",
            evidence={"DEBUG": True, "mode": "production"},
        ))
    for name, strength in strengths.items():
        problems = _secret_problems(strength)
        if problems:
            outcome.findings.append(FindingDraft(
                check="security.secret_strength", subject=name, severity="critical",
                title=f"{name} is weak: {'; '.join(problems)}",
                evidence={"setting": name, **strength, "problems": problems},
            ))
    if admin_path in ("/admin/",):
        outcome.findings.append(FindingDraft(
            check="security.admin_exposure", subject="admin_path", severity="low",
            title=f"The admin is mounted at the guessable path {admin_path}",
            evidence={"admin_path": admin_path},
        ))
    if not admin["login_rate_limited"]:
        outcome.findings.append(FindingDraft(
            check="security.admin_exposure", subject="login_rate_limit", severity="high",
            title="Login is not protected against brute force: django-axes is disabled (AXES_ENABLED=False)",
            evidence={"AXES_ENABLED": False, "admin_path": admin_path},
        ))
    if "*" in admin["allowed_hosts"]:
        outcome.findings.append(FindingDraft(
            check="security.admin_exposure", subject="allowed_hosts_wildcard", severity="high",
            title="ALLOWED_HOSTS contains '*': the portal answers for any Host header",
            evidence={"ALLOWED_HOSTS": admin["allowed_hosts"]},
        ))
    if dormant:
        outcome.findings.append(FindingDraft(
            check="security.admin_exposure", subject="dormant_superusers", severity="low",
            title=f"{len(dormant)} active superuser account(s) unused for {DORMANT_SUPERUSER_DAYS}+ days: "
                  + ", ".join(sorted(dormant)[:10]),
            evidence={"accounts": sorted(dormant), "days": DORMANT_SUPERUSER_DAYS},
        ))
    outcome.summary = f"production mode: {len(outcome.findings)} configuration finding(s)"
    return outcome


def _level_name(level: int) -> str:
    for name in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        if level >= getattr(checks, name):
            return name.lower()
    return "debug"
