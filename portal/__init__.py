"""Usher's project package and portal shell."""

from portal.celery import app as celery_app

__all__ = ("celery_app",)
