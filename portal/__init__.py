"""Usher's project package and portal shell: the ground floor of the house.

Owns the settings, the Celery app and ``queue.task_send``, users, roles and permissions, API
tokens, the activity log, the review inbox, the schedules, the API's shared plumbing (errors,
pagination, query parameters, schema) and the pages' frame (navigation, dashboard, template tags).

The layers: portal ← recommender ← monitoring, audits ← releases. Portal imports none of the
apps above it: their URLs are included by name (``urls.py``), and their ``navigation``,
``dashboard``, ``bootstrap``, ``schedules`` and ``health`` modules are found by name
(``contrib.py``).
"""

from portal.celery import app as celery_app

__all__ = ("celery_app",)
