"""Portal pages of the recommender app (mounted under /portal/)."""

from django.urls import path  # noqa: F401

app_name = "recommender"
urlpatterns: list = []
