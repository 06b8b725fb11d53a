"""A URL configuration for the API-surface test: Usher's own routes plus one endpoint left open."""

from django.http import HttpResponse, JsonResponse
from django.urls import path

from portal.urls import urlpatterns as usher_urlpatterns


def leaky(request, pk: int) -> JsonResponse:
    return JsonResponse({"viewer": pk, "ratings": [5, 4, 3]})


def recommend(request, viewer_id: int) -> HttpResponse:
    return HttpResponse("m1,m2\n", content_type="text/plain")


urlpatterns = [
    path("leaky/<int:pk>/", leaky, name="leaky"),
    path("recommend/<int:viewer_id>", recommend, name="recommend"),
    *usher_urlpatterns,
]
