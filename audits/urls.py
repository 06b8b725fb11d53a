"""Portal pages of the audits app (mounted under /portal/)."""

from django.urls import path  # noqa: F401

app_name = "audits"
urlpatterns: list = []
