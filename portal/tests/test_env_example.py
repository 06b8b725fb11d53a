"""`.env.example` lists every environment variable the settings, the Procfile and
gunicorn.conf.py read, each with a one-line comment."""

from __future__ import annotations

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def _read_by_settings() -> set[str]:
    source = (BASE_DIR / "portal" / "settings" / "__init__.py").read_text()
    names = set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))
    names |= set(re.findall(r"""["']([A-Z][A-Z0-9_]*)["']\s+in\s+env\.ENVIRON""", source))
    procfile = (BASE_DIR / "Procfile").read_text()
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", procfile))
    gunicorn = BASE_DIR / "gunicorn.conf.py"
    if gunicorn.exists():
        names |= set(re.findall(r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]*)["']""", gunicorn.read_text()))
    return names


def _listed() -> dict[str, str]:
    """Variable → the comment line above it."""
    lines = (BASE_DIR / ".env.example").read_text().splitlines()
    listed = {}
    for i, line in enumerate(lines):
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            listed[match.group(1)] = lines[i - 1] if i else ""
    return listed


def test_every_variable_is_listed_with_a_comment():
    read, listed = _read_by_settings(), _listed()
    assert read, "no env() calls found: the parser is out of date"
    missing = sorted(read - set(listed))
    assert not missing, f".env.example lacks: {missing}"
    uncommented = sorted(n for n in read if not listed[n].startswith("# ") or "=" in listed[n].split()[1])
    assert not uncommented, f"these need a one-line comment above them: {uncommented}"


def test_nothing_listed_that_nobody_reads():
    stale = sorted(set(_listed()) - _read_by_settings() - {"CHROMIUM_PATH"})
    assert not stale, f".env.example lists variables nothing reads: {stale}"
