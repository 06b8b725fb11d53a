"""The platform-facing routes (``GET /recommend/<userid>``), outside the portal and the API."""

from django.urls import path

from recommender.serving import views

urlpatterns: list = [
    # <path:> so that a malformed id ("abc", "1/2") gets the endpoint's own one-line 400, not a 404.
    path("recommend/<path:rest>", views.recommend, name="recommend"),
    path("recommend/", views.recommend, name="recommend-missing"),
]
