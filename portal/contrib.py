"""How the domain apps plug into the portal shell: optional modules found by name.

An app contributes by having the module: ``<app>.navigation`` (``sections(request)``),
``<app>.dashboard`` (``cards(request)``, optional ``charts(request)``), ``<app>.bootstrap``
(``steps()``), ``<app>.schedules`` (``TASKS``: the tasks operators may schedule), ``<app>.health``
(``readiness_checks()``: ``{name: check}`` that ``/readyz`` runs beside the database and the broker,
each raising when not ready; ``readiness_detail()``: what signed-in callers of ``/readyz`` see beside
the checks). A missing module is skipped; an error inside one is raised, not hidden.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

DOMAIN_APPS = ("recommender", "monitoring", "audits", "releases")


def app_modules(name: str) -> Iterator[ModuleType]:
    """Yield ``<app>.<name>`` for each domain app that has it, in the apps' order."""
    for app in DOMAIN_APPS:
        if find_spec(f"{app}.{name}") is not None:
            yield import_module(f"{app}.{name}")
