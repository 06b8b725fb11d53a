"""Portal pages of the recommender app (mounted under /portal/)."""

from django.urls import path  # noqa: F401

app_name = "recommender"
urlpatterns: list = []

# --- releases and experiments (recommender/releases/pages.py) ---
from django.contrib import admin  # noqa: E402

from recommender.releases import pages as release_pages  # noqa: E402

urlpatterns += [
    path("releases/", admin.site.admin_view(release_pages.ReleasesView.as_view()), name="releases"),
    path("releases/promotions/<int:pk>/", admin.site.admin_view(release_pages.PromotionView.as_view()),
         name="release_promotion"),
    path("releases/rollouts/<int:pk>/", admin.site.admin_view(release_pages.RolloutView.as_view()),
         name="release_rollout"),
    path("releases/experiments/", admin.site.admin_view(release_pages.ExperimentsView.as_view()),
         name="release_experiments"),
    path("releases/experiments/<int:pk>/", admin.site.admin_view(release_pages.ExperimentView.as_view()),
         name="release_experiment"),
    path("releases/shadow/", admin.site.admin_view(release_pages.ShadowView.as_view()), name="release_shadow"),
]
