"""Bootstrap steps for a fresh install. Each app may add a ``bootstrap.steps()`` of its own."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module


def run_steps() -> Iterator[str]:
    for app in ("recommender", "monitoring", "audits"):
        try:
            module = import_module(f"{app}.bootstrap")
        except ModuleNotFoundError:
            continue
        yield from module.steps()
    yield "bootstrap: done"
