"""REST API of the training side: algorithms, snapshots, training runs (create, cancel, progress,
comparison), the model registry (versions, lineage, integrity, promotion requests) and aliases."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.params import QueryParams, id_param, ids_param, text_param
from portal.errors import ValidationError
from portal.permissions import Can
from recommender.models import DatasetSnapshot, ModelAlias, ModelVersion, RegisteredModel, TrainingRun
from recommender.registry import selectors as registry_selectors
from recommender.registry import services as registry_services
from recommender.training import selectors
from recommender.training.algorithms import ALGORITHMS
from recommender.training.retraining import retraining_start
from recommender.training.runs import training_run_cancel, training_run_create
from recommender.training.snapshots import snapshot_create

# --- output serializers ----------------------------------------------------------------------------

class DatasetSnapshotSerializer(serializers.ModelSerializer):
    run_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = DatasetSnapshot
        fields = ["id", "name", "window_start", "window_end", "filters", "include_implicit", "rating_count",
                  "explicit_rating_count", "implicit_rating_count", "watch_session_count", "viewer_count",
                  "movie_count", "first_event_at", "last_event_at", "content_sha256", "storage_path", "size_bytes",
                  "files", "status", "created_at", "created_by_label", "run_count"]


class RunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = ["id", "snapshot", "algorithm", "hyperparameters", "seed", "split", "register",
                  "registered_model_name", "origin", "status", "stage", "percent", "cancel_requested", "attempts",
                  "worker", "queued_at", "started_at", "finished_at", "heartbeat_at", "training_seconds",
                  "evaluation_seconds", "total_seconds", "peak_memory_bytes", "metrics", "group_metrics",
                  "environment", "error", "created_by_label", "model_version"]

    def get_model_version(self, run: TrainingRun) -> int | None:
        version = selectors.training_run_version(run)
        return version.pk if version else None


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["log"]


class RegisteredModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "description", "created_at"]


class VersionSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name")
    snapshot = serializers.IntegerField(source="training_run.snapshot_id")
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "registered_model", "version", "training_run", "snapshot", "algorithm", "artifact_path",
                  "artifact_sha256", "artifact_size", "artifact_kind", "metrics", "tags", "description", "status",
                  "created_at", "aliases"]

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return [a.name for a in version.aliases.all()]


class AliasSerializer(serializers.ModelSerializer):
    version = serializers.PrimaryKeyRelatedField(read_only=True)
    version_name = serializers.SerializerMethodField()

    class Meta:
        model = ModelAlias
        fields = ["name", "version", "version_name", "moved_at", "moved_by_label", "reason"]

    def get_version_name(self, alias: ModelAlias) -> str | None:
        return str(alias.version) if alias.version else None


# --- algorithms and snapshots --------------------------------------------------------------------------

class AlgorithmListApi(APIView):
    """The algorithms Usher trains, with each hyperparameter's type, default and range."""

    @extend_schema(responses=inline_serializer("Algorithm", {
        "name": serializers.CharField(), "label": serializers.CharField(), "artifact_kind": serializers.CharField(),
        "seeded": serializers.BooleanField(), "hyperparameters": serializers.DictField(),
    }, many=True))
    def get(self, request) -> Response:
        return Response([a.describe() for a in ALGORITHMS.values()])


class SnapshotListCreateApi(generics.ListAPIView):
    """Dataset snapshots, newest first; POST exports a new one (data scientists)."""

    serializer_class = DatasetSnapshotSerializer
    filter_backends: list = []
    permission_classes = [Can("model.build")]

    class DatasetSnapshotCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        window_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
        window_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
        include_implicit = serializers.BooleanField(required=False, default=False)
        filters = serializers.DictField(required=False, default=dict,
                                        help_text="min_viewer_ratings, min_movie_ratings")

    def get_queryset(self):
        return selectors.snapshot_list()

    @extend_schema(request=DatasetSnapshotCreateInputSerializer, responses={201: DatasetSnapshotSerializer})
    def post(self, request) -> Response:
        data = self.DatasetSnapshotCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = snapshot_create(actor=request.user, **data.validated_data)
        return Response(DatasetSnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotDetailApi(generics.RetrieveAPIView):
    """One snapshot: window, filters, counts, content hash, files."""

    serializer_class = DatasetSnapshotSerializer
    lookup_url_kwarg = "snapshot_id"

    def get_queryset(self):
        return selectors.snapshot_list()


# --- training runs ---------------------------------------------------------------------------------------

class RunListCreateApi(generics.ListAPIView):
    """Training runs, newest first (filter by status, algorithm, snapshot, origin); POST queues one."""

    serializer_class = RunSerializer
    filter_backends: list = []
    permission_classes = [Can("model.build")]

    class RunListCreateInputSerializer(serializers.Serializer):
        snapshot = serializers.IntegerField()
        algorithm = serializers.CharField(max_length=32, help_text=f"one of: {', '.join(ALGORITHMS)} "
                                                                  "(GET /api/v1/algorithms describes each)")
        hyperparameters = serializers.DictField(required=False, default=dict)
        seed = serializers.IntegerField(required=False, default=0)
        split = serializers.DictField(required=False, default=None, allow_null=True,
                                      help_text="{kind: random|temporal|leave_last_n|kfold, ...}")
        register = serializers.BooleanField(required=False, default=True)
        registered_model_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=TrainingRun.Status.values),
                               text_param("algorithm"), id_param("snapshot"),
                               OpenApiParameter("origin", str, enum=TrainingRun.Origin.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        q = QueryParams(self.request)
        filters = {"status": q.choice("status", TrainingRun.Status.values), "algorithm": q.text("algorithm"),
                   "origin": q.choice("origin", TrainingRun.Origin.values), "snapshot": q.id("snapshot")}
        return selectors.training_run_list(filters=filters)

    @extend_schema(request=RunListCreateInputSerializer, responses={201: RunSerializer})
    def post(self, request) -> Response:
        data = self.RunListCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        snapshot = DatasetSnapshot.objects.filter(pk=values.pop("snapshot")).first()
        if snapshot is None:
            raise ValidationError(f"snapshot #{request.data.get('snapshot')} does not exist")
        run = training_run_create(actor=request.user, snapshot=snapshot, **values)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(generics.RetrieveAPIView):
    """One run with its metrics, per-group metrics, environment and log."""

    serializer_class = RunDetailSerializer
    lookup_url_kwarg = "run_id"

    def get_queryset(self):
        return selectors.training_run_list()


class RunProgressApi(APIView):
    """Status, stage and percent of a run (what the portal's progress bars poll)."""

    @extend_schema(responses=inline_serializer("RunProgress", {
        "id": serializers.IntegerField(), "status": serializers.CharField(), "stage": serializers.CharField(),
        "percent": serializers.FloatField(), "cancel_requested": serializers.BooleanField(),
        "model_version": serializers.IntegerField(allow_null=True),
        "log_tail": serializers.ListField(child=serializers.CharField()),
    }))
    def get(self, request, run_id: int) -> Response:
        run = get_object_or_404(TrainingRun, pk=run_id)
        return Response(selectors.training_run_progress(run=run))


class RunCancelApi(APIView):
    """Cancel a run: a queued one at once, a running one at its next stage or epoch."""

    permission_classes = [Can("model.build")]

    class RunCancelInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=RunCancelInputSerializer, responses={200: RunSerializer})
    def post(self, request, run_id: int) -> Response:
        data = self.RunCancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = get_object_or_404(TrainingRun, pk=run_id)
        run = training_run_cancel(run=run, actor=request.user, **data.validated_data)
        return Response(RunSerializer(run).data)


class RunCompareApi(APIView):
    """Succeeded runs side by side: accuracy, training cost, inference cost, size.

    Give ``snapshot`` (all its runs) or ``runs`` (comma-separated ids)."""

    @extend_schema(parameters=[id_param("snapshot"), ids_param("runs", "Comma-separated run ids: 1,2,3.")],
                   responses=inline_serializer("RunComparison", {
                       "snapshot": serializers.IntegerField(allow_null=True),
                       "same_snapshot": serializers.BooleanField(), "groups": serializers.DictField(),
                       "runs": serializers.ListField(child=serializers.DictField()), "best": serializers.DictField(),
                   }))
    def get(self, request) -> Response:
        q = QueryParams(request)
        snapshot_id, run_ids = q.id("snapshot"), q.ints("runs")
        if snapshot_id is None and not run_ids:
            raise ValidationError("give ?snapshot=<id> or ?runs=<id>,<id>,...")
        return Response(selectors.training_run_comparison(snapshot_id=snapshot_id, run_ids=run_ids))


class RetrainApi(APIView):
    """Start the scheduled retraining now (snapshot + run of the production configuration)."""

    permission_classes = [Can("model.build")]

    @extend_schema(request=None, responses={201: RunSerializer, 200: inline_serializer(
        "RetrainSkipped", {"detail": serializers.CharField()})})
    def post(self, request) -> Response:
        run = retraining_start(actor=request.user, system="api")
        if run is None:
            return Response({"detail": "nothing to train (see the activity log: retraining.skipped)"})
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


# --- registry ---------------------------------------------------------------------------------------------

class RegisteredModelListApi(generics.ListAPIView):
    """Registered model names."""

    serializer_class = RegisteredModelSerializer
    filter_backends: list = []

    def get_queryset(self):
        return registry_selectors.registered_model_list()


class VersionListApi(generics.ListAPIView):
    """Model versions, newest first (filter by status, algorithm, registered_model, snapshot)."""

    serializer_class = VersionSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=ModelVersion.Status.values),
                               text_param("algorithm"), text_param("registered_model"), id_param("snapshot")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        q = QueryParams(self.request)
        return registry_selectors.model_version_list(
            filters={"status": q.choice("status", ModelVersion.Status.values), "algorithm": q.text("algorithm"),
                     "registered_model": q.text("registered_model"), "snapshot": q.id("snapshot")})


class VersionDetailApi(generics.RetrieveAPIView):
    """One version; PATCH edits its tags and description (its artifact and metrics never change)."""

    serializer_class = VersionSerializer
    lookup_url_kwarg = "version_id"
    permission_classes = [Can("model.build")]

    class VersionDetailInputSerializer(serializers.Serializer):
        # at most 50 characters a tag: the service's rule (model_version_update), shared with the portal's form
        tags = serializers.ListField(child=serializers.CharField(), required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    def get_queryset(self):
        return registry_selectors.model_version_list()

    @extend_schema(request=VersionDetailInputSerializer, responses={200: VersionSerializer})
    def patch(self, request, version_id: int) -> Response:
        data = self.VersionDetailInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = get_object_or_404(ModelVersion, pk=version_id)
        version = registry_services.model_version_update(version=version, actor=request.user, **data.validated_data)
        return Response(VersionSerializer(registry_selectors.model_version_get(version_id=version.pk)).data)


class VersionLineageApi(APIView):
    """Snapshot → run → version → where it is deployed (and its alias history)."""

    @extend_schema(responses=inline_serializer("Lineage", {
        "snapshot": serializers.DictField(), "run": serializers.DictField(), "version": serializers.DictField(),
        "deployments": serializers.ListField(child=serializers.DictField()),
        "deployment_history": serializers.ListField(child=serializers.DictField()),
    }))
    def get(self, request, version_id: int) -> Response:
        version = get_object_or_404(registry_selectors.model_version_list(), pk=version_id)
        return Response(registry_selectors.model_version_lineage(version=version))


class VersionVerifyApi(APIView):
    """Load the version's artifact and check every sha256; 409 with the mismatch when it was altered."""

    @extend_schema(request=None, responses=inline_serializer("ArtifactCheck", {
        "ok": serializers.BooleanField(), "artifact_sha256": serializers.CharField(),
        "kind": serializers.CharField(), "users": serializers.IntegerField(), "items": serializers.IntegerField(),
    }))
    def post(self, request, version_id: int) -> Response:
        version = get_object_or_404(ModelVersion, pk=version_id)
        model = registry_selectors.model_version_load(version=version)
        return Response({"ok": True, "artifact_sha256": version.artifact_sha256, "kind": model.kind,
                         "users": model.n_users, "items": len(model.item_ids)})


class VersionArchiveApi(APIView):
    """Archive a version that is not deployed."""

    permission_classes = [Can("model.build")]

    class VersionArchiveInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500, allow_blank=True)  # required: the service says so

    @extend_schema(request=VersionArchiveInputSerializer, responses={200: VersionSerializer})
    def post(self, request, version_id: int) -> Response:
        data = self.VersionArchiveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = get_object_or_404(ModelVersion, pk=version_id)
        registry_services.model_version_set_status(version=version, status=ModelVersion.Status.ARCHIVED,
                                                   actor=request.user, reason=data.validated_data["reason"])
        return Response(VersionSerializer(registry_selectors.model_version_get(version_id=version.pk)).data)


class AliasListApi(generics.ListAPIView):
    """The deployment aliases and the versions they point at."""

    serializer_class = AliasSerializer
    filter_backends: list = []
    pagination_class = None

    def get_queryset(self):
        return registry_selectors.model_alias_list()


class AliasMoveApi(APIView):
    """Point an alias at a version (or clear it with ``version: null``) through the deployment's one door:
    production and a canary take only a version with an approved promotion (409 names what is missing)."""

    permission_classes = [Can("release.operate")]

    class AliasMoveInputSerializer(serializers.Serializer):
        version = serializers.IntegerField(allow_null=True)
        reason = serializers.CharField(max_length=2000, allow_blank=True)  # required: the service says so

    @extend_schema(request=AliasMoveInputSerializer, responses={200: AliasSerializer})
    def post(self, request, alias: str) -> Response:
        data = self.AliasMoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version_id = data.validated_data["version"]
        version = None
        if version_id is not None:
            version = ModelVersion.objects.filter(pk=version_id).first()
            if version is None:
                raise ValidationError(f"model version #{version_id} does not exist")
        row = registry_services.model_alias_move(alias=alias, version=version, actor=request.user,
                                                 reason=data.validated_data["reason"])
        return Response(AliasSerializer(row).data)
