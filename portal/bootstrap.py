"""Bootstrap steps for a fresh install. Each app may add a ``bootstrap.steps()`` of its own."""

from __future__ import annotations

from collections.abc import Iterator

from portal.contrib import app_modules


def run_steps() -> Iterator[str]:
    """Each domain app's ``bootstrap.steps()`` in turn, then a last line."""
    for module in app_modules("bootstrap"):
        yield from module.steps()
    yield "bootstrap: done"
