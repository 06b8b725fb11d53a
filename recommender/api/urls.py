"""REST API routes of the recommender app (mounted under /api/v1/)."""

from django.urls import path

urlpatterns: list = []

# --- event intake (recommender/api/ingest.py) ---
from recommender.api import ingest as ingest_api  # noqa: E402

urlpatterns += [
    path("events", ingest_api.EventsIngestApi.as_view(), name="api-events-ingest"),
    path("ingest/sources", ingest_api.IngestSourceListApi.as_view(), name="api-ingest-source-list"),
    path("ingest/sources/<int:source_id>", ingest_api.IngestSourceDetailApi.as_view(),
         name="api-ingest-source-detail"),
    path("ingest/quarantine", ingest_api.QuarantineListApi.as_view(), name="api-quarantine-list"),
    path("ingest/quarantine/counts", ingest_api.QuarantineCountsApi.as_view(), name="api-quarantine-counts"),
]

# --- training side and model registry (recommender/api/training.py) ---
from recommender.api import training as training_api  # noqa: E402

urlpatterns += [
    path("algorithms", training_api.AlgorithmListApi.as_view(), name="api-algorithm-list"),
    path("snapshots", training_api.SnapshotListCreateApi.as_view(), name="api-snapshot-list"),
    path("snapshots/<int:snapshot_id>", training_api.SnapshotDetailApi.as_view(), name="api-snapshot-detail"),
    path("training-runs", training_api.RunListCreateApi.as_view(), name="api-run-list"),
    path("training-runs/compare", training_api.RunCompareApi.as_view(), name="api-run-compare"),
    path("training-runs/retrain", training_api.RetrainApi.as_view(), name="api-run-retrain"),
    path("training-runs/<int:run_id>", training_api.RunDetailApi.as_view(), name="api-run-detail"),
    path("training-runs/<int:run_id>/progress", training_api.RunProgressApi.as_view(), name="api-run-progress"),
    path("training-runs/<int:run_id>/cancel", training_api.RunCancelApi.as_view(), name="api-run-cancel"),
    path("registered-models", training_api.RegisteredModelListApi.as_view(), name="api-registered-model-list"),
    path("model-versions", training_api.VersionListApi.as_view(), name="api-version-list"),
    path("model-versions/<int:version_id>", training_api.VersionDetailApi.as_view(), name="api-version-detail"),
    path("model-versions/<int:version_id>/lineage", training_api.VersionLineageApi.as_view(),
         name="api-version-lineage"),
    path("model-versions/<int:version_id>/verify", training_api.VersionVerifyApi.as_view(),
         name="api-version-verify"),
    path("model-versions/<int:version_id>/archive", training_api.VersionArchiveApi.as_view(),
         name="api-version-archive"),
    path("aliases", training_api.AliasListApi.as_view(), name="api-alias-list"),
    path("aliases/<str:alias>", training_api.AliasMoveApi.as_view(), name="api-alias-move"),
]

# --- serving (recommender/api/serving.py, docs/serving.md) ---
from recommender.api import serving as serving_api  # noqa: E402

urlpatterns += [
    path("recommendations/<str:userid>", serving_api.RecommendationsApi.as_view(), name="api-recommendations"),
    path("provenance", serving_api.ProvenanceSearchApi.as_view(), name="api-provenance-search"),
    path("provenance/<str:request_id>", serving_api.ProvenanceDetailApi.as_view(), name="api-provenance"),
    path("deployments", serving_api.DeploymentListApi.as_view(), name="api-deployments"),
    path("deployments/<slug:name>", serving_api.DeploymentDetailApi.as_view(), name="api-deployment"),
    path("deployments/<slug:name>/change", serving_api.DeploymentChangeApi.as_view(), name="api-deployment-change"),
    path("deployments/<slug:name>/rollback", serving_api.DeploymentRollbackApi.as_view(),
         name="api-deployment-rollback"),
    path("deployments/<slug:name>/history", serving_api.DeploymentHistoryApi.as_view(),
         name="api-deployment-history"),
    path("serving/status", serving_api.ServingStatusApi.as_view(), name="api-serving-status"),
]

# --- catalog: movies and viewers (recommender/api/catalog.py) ---
from recommender.api import catalog as catalog_api  # noqa: E402

urlpatterns += [
    path("movies", catalog_api.MovieViewSet.as_view({"get": "list"}), name="api-movie-list"),
    path("movies/<str:pk>", catalog_api.MovieViewSet.as_view({"get": "retrieve"}), name="api-movie-detail"),
    path("viewers", catalog_api.ViewerViewSet.as_view({"get": "list"}), name="api-viewer-list"),
    path("viewers/<int:pk>", catalog_api.ViewerViewSet.as_view({"get": "retrieve"}), name="api-viewer-detail"),
]
