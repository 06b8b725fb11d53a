"""Portal pages of the recommender app (mounted under /portal/)."""

from django.contrib import admin
from django.urls import path

app_name = "recommender"
urlpatterns: list = []

# --- training side and model registry (recommender/training/pages.py) ---
from recommender.training import pages as training_pages  # noqa: E402

urlpatterns += [
    path("training/runs/", admin.site.admin_view(training_pages.RunListView.as_view()), name="training_runs"),
    path("training/runs/<int:pk>/", admin.site.admin_view(training_pages.RunDetailView.as_view()),
         name="training_run"),
    path("training/snapshots/", admin.site.admin_view(training_pages.SnapshotListView.as_view()),
         name="training_snapshots"),
    path("training/snapshots/<int:pk>/", admin.site.admin_view(training_pages.SnapshotDetailView.as_view()),
         name="training_snapshot"),
    path("training/compare/", admin.site.admin_view(training_pages.CompareView.as_view()), name="training_compare"),
    path("registry/", admin.site.admin_view(training_pages.RegistryView.as_view()), name="registry"),
    path("registry/versions/<int:pk>/", admin.site.admin_view(training_pages.VersionDetailView.as_view()),
         name="registry_version"),
    path("registry/versions/<int:pk>/lineage/", admin.site.admin_view(training_pages.LineageView.as_view()),
         name="registry_lineage"),
]

# --- serving (recommender/serving/pages.py) ---
from recommender.serving import pages as serving_pages  # noqa: E402

urlpatterns += [
    path("serving/deployments/", admin.site.admin_view(serving_pages.DeploymentsView.as_view()),
         name="serving_deployments"),
    path("serving/provenance/", admin.site.admin_view(serving_pages.ProvenanceView.as_view()),
         name="serving_provenance"),
    path("serving/provenance/<str:request_id>/", admin.site.admin_view(serving_pages.ProvenanceDetailView.as_view()),
         name="serving_provenance_detail"),
]

# --- catalog, viewers, ingestion status, quarantine (recommender/catalog/pages.py) ---
from recommender.catalog import pages as catalog_pages  # noqa: E402

urlpatterns += [
    path("catalog/", admin.site.admin_view(catalog_pages.CatalogView.as_view()), name="catalog"),
    path("catalog/movies/<str:movie_id>/", admin.site.admin_view(catalog_pages.MovieView.as_view()),
         name="catalog_movie"),
    path("catalog/viewers/", admin.site.admin_view(catalog_pages.ViewerListView.as_view()), name="catalog_viewers"),
    path("catalog/viewers/<int:viewer_id>/", admin.site.admin_view(catalog_pages.ViewerView.as_view()),
         name="catalog_viewer"),
    path("ingestion/", admin.site.admin_view(catalog_pages.IngestionStatusView.as_view()), name="catalog_ingestion"),
    path("ingestion/quarantine/", admin.site.admin_view(catalog_pages.QuarantineView.as_view()),
         name="catalog_quarantine"),
]
