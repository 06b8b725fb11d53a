"""Portal pages of releases and experiments (mounted under /portal/; the paths say ``releases/``)."""

from django.contrib import admin
from django.urls import path

from releases import pages

app_name = "releases"
urlpatterns = [
    path("releases/", admin.site.admin_view(pages.ReleasesView.as_view()), name="overview"),
    path("releases/promotions/<int:pk>/", admin.site.admin_view(pages.PromotionView.as_view()), name="promotion"),
    path("releases/rollouts/<int:pk>/", admin.site.admin_view(pages.RolloutView.as_view()), name="rollout"),
    path("releases/experiments/", admin.site.admin_view(pages.ExperimentsView.as_view()), name="experiments"),
    path("releases/experiments/<int:pk>/", admin.site.admin_view(pages.ExperimentView.as_view()), name="experiment"),
    path("releases/shadow/", admin.site.admin_view(pages.ShadowView.as_view()), name="shadow"),
]
