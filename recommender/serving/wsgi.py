"""The WSGI application gunicorn runs: ``/recommend/`` answered directly, everything else by Django.

Django is set up first (settings, apps), so the serving code runs with the same configuration; only
the per-request middleware stack is skipped for ``/recommend/`` — see ``handlers`` for why and for
what the fast path still checks.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from portal.wsgi import application as django_application  # noqa: E402
from recommender.serving.handlers import PREFIX, recommend_wsgi  # noqa: E402


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(PREFIX):
        return recommend_wsgi(environ, start_response)
    return django_application(environ, start_response)
