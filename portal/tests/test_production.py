"""Production mode (USHER_PRODUCTION=1) refuses unsafe configurations and passes
`check --deploy` with no warnings when configured properly. Each case is a fresh process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
STRONG_KEY = secrets.token_urlsafe(60)
# Variables the settings read: none of the test run's own may leak into the subprocess.
CLEARED = ("SECRET_KEY", "DEBUG", "USHER_DEBUG", "ALLOWED_HOSTS", "USHER_PRODUCTION", "DJANGO_SETTINGS_MODULE", "CSRF_TRUSTED_ORIGINS",
           "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
           # set for the whole session by the browser fixture; a real deployment never has it
           "DJANGO_ALLOW_ASYNC_UNSAFE")


def _run(tmp_path: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    clean.update({"USHER_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "portal.settings", **env})
    return subprocess.run([sys.executable, *argv], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=120)


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return _run(tmp_path, ["manage.py", *args], env)


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """What every entry point (web, worker, beat, manage.py) does first: load the settings."""
    return _run(tmp_path, ["-c", "import django; django.setup()"], env)


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "needs SECRET_KEY"),
        ({"SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "usher.example.com", "USHER_DEBUG": "1"}, "DEBUG on"),
        ({"SECRET_KEY": "short-and-weak", "ALLOWED_HOSTS": "usher.example.com"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "a" * 60, "ALLOWED_HOSTS": "usher.example.com"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "django-insecure-" + STRONG_KEY, "ALLOWED_HOSTS": "usher.example.com"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": STRONG_KEY}, "needs ALLOWED_HOSTS"),
        ({"SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": ""}, "needs ALLOWED_HOSTS"),
    ],
    ids=["no-key", "debug-on", "short-key", "repetitive-key", "insecure-prefix", "no-hosts", "empty-hosts"],
)
def test_production_refuses_to_start(tmp_path, env, message):
    result = _start(tmp_path, USHER_PRODUCTION="1", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_production_passes_the_deploy_check_with_no_warnings(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                     USHER_PRODUCTION="1", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="usher.example.com")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_mode_fails_the_deploy_check(tmp_path):
    # The check is real: without production mode it does complain
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W" in result.stderr


def test_development_key_is_generated_per_checkout_not_shipped(tmp_path):
    first = _manage(tmp_path, "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip().splitlines()[-1]
    assert len(key) >= 50 and (tmp_path / "dev-secret-key").read_text().strip() == key
    other = tmp_path / "other"
    second = _manage(other, "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)")
    assert second.returncode == 0 and second.stdout.strip().splitlines()[-1] != key


@pytest.mark.parametrize("env, expected", [({}, "False"), ({"USHER_DEBUG": "1"}, "True"), ({"USHER_DEBUG": "0"}, "False"),
                                           ({"DEBUG": "1"}, "False")],
                         ids=["default-off", "asked-for", "off", "plain-DEBUG-is-not-the-switch"])
def test_debug_is_off_unless_asked_for_also_in_development(tmp_path, env, expected):
    # Given the embedded default (no USHER_PRODUCTION), when the settings load, then DEBUG is what was asked
    result = _manage(tmp_path, "shell", "-c", "from django.conf import settings; print(settings.DEBUG)", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
