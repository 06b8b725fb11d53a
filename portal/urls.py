"""Usher's URL map: the portal (admin-style UI), the REST API, health, and each app's routes."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from portal import views

api_v1 = [
    path("", include("portal.api.urls")),
    path("", include("recommender.api.urls")),
    path("", include("monitoring.api.urls")),
    path("", include("audits.api.urls")),
    path("", include("releases.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("portal/", include("portal.pages_urls")),
    path("portal/", include("recommender.urls")),
    path("portal/", include("monitoring.urls")),
    path("portal/", include("audits.urls")),
    path("portal/", include("releases.urls")),
    path("portal/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script as a file, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("recommender.serving_urls")),
]

# Errors: JSON in the API's shape under /api/, the portal's own pages elsewhere (portal/views.py).
handler400 = "portal.views.bad_request"
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
