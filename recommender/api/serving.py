"""REST API of the serving side: recommendations as JSON, provenance of an answer, deployments."""

from __future__ import annotations

import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.params import INT64_MAX, INT64_MIN, QueryParams, id_param, int_param, text_param, time_param
from portal.errors import NotFound, ValidationError
from portal.permissions import Can, IsUsherUser
from recommender.models import DeploymentChange, PredictionLog
from recommender.serving import selectors, services
from recommender.serving.answers import InvalidViewerId, parse_viewer_id, recommend_answer
from recommender.serving.ratelimit import retry_after_seconds
from recommender.serving.runtime import get_runtime

ERROR = inline_serializer("Error", {"error": serializers.CharField(), "detail": serializers.JSONField()})


# --- recommendations -----------------------------------------------------------------------------------
class RecommendationItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    movie_id = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    score = serializers.FloatField(allow_null=True)
    explanation = inline_serializer("RecommendationExplanation", {
        "text": serializers.CharField(), "because": serializers.ListField(child=serializers.CharField()),
    })


class RecommendationsOutputSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    viewer_id = serializers.IntegerField()
    model_version = inline_serializer("ServedVersion", {"id": serializers.IntegerField(),
                                                        "label": serializers.CharField()}, allow_null=True)
    served_by = serializers.CharField(help_text="The version's label, or 'fallback'.")
    arm = serializers.CharField()
    fallback_reason = serializers.CharField(allow_blank=True)
    deployment_revision = serializers.IntegerField()
    k = serializers.IntegerField()
    latency_ms = serializers.FloatField()
    items = RecommendationItemSerializer(many=True)


class RecommendationsApi(APIView):
    """Recommendations for a viewer as JSON, with scores, the serving version and arm, and explanations."""

    permission_classes = [IsAuthenticated, IsUsherUser]
    throttle_classes: list = []  # the serving limiter below (RECOMMENDER['SERVING'] API_RATE/API_BURST)

    class InputSerializer(serializers.Serializer):  # query parameters, documented below
        k = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        parameters=[OpenApiParameter("k", int, description="How many items (1 to MAX_K, default K).")],
        responses={200: RecommendationsOutputSerializer, 400: ERROR, 429: OpenApiResponse(ERROR, "Rate limited; "
                   "see Retry-After.")},
    )
    def get(self, request, userid: str) -> Response:
        started = time.perf_counter()
        runtime = get_runtime()
        client = f"user:{request.user.get_username()}"
        wait = runtime.api_limiter.take(client)
        if wait:
            seconds = retry_after_seconds(wait)
            runtime.log(answer=None, endpoint="api", client=client, status=429, error="rate limit exceeded",
                        latency_ms=(time.perf_counter() - started) * 1000)
            return Response({"error": f"rate limit exceeded: retry after {seconds} s", "detail": {"retry_after": seconds}},
                            status=429, headers={"Retry-After": str(seconds)})
        try:
            viewer_id = parse_viewer_id(userid)
        except InvalidViewerId as exc:
            runtime.log(answer=None, endpoint="api", client=client, status=400, error=str(exc),
                        latency_ms=(time.perf_counter() - started) * 1000)
            raise ValidationError(str(exc), detail={"userid": userid[:40]})
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        k = data.validated_data.get("k", runtime.config.k)
        if k > runtime.config.max_k:
            raise ValidationError(f"k must be at most {runtime.config.max_k}, got {k}", detail={"k": k})
        served = recommend_answer(viewer_id=viewer_id, k=k, endpoint="api", client=client, started=started,
                                  explain=True)
        answer, version = served.answer, served.answer.version
        body = {
            "request_id": answer.request_id, "viewer_id": viewer_id,
            "model_version": {"id": version.version_id, "label": version.label} if version else None,
            "served_by": answer.served_by, "arm": answer.arm, "fallback_reason": answer.fallback_reason,
            "deployment_revision": answer.revision, "k": k, "latency_ms": round(served.latency_ms, 3),
            "items": served.items,
        }
        return Response(body, headers={"X-Request-Id": answer.request_id, "X-Model-Version": answer.served_by})


# --- provenance ---------------------------------------------------------------------------------------
class PredictionLogSerializer(serializers.ModelSerializer):
    request_id = serializers.SerializerMethodField()

    class Meta:
        model = PredictionLog
        fields = ["request_id", "created_at", "endpoint", "client", "viewer_id", "model_version", "model_label",
                  "deployment_revision", "arm", "items", "scores", "latency_ms", "status", "fallback_reason", "error"]

    def get_request_id(self, obj: PredictionLog) -> str:
        return obj.request_id.hex


class ProvenanceSearchApi(generics.ListAPIView):
    """Prediction-log records by viewer and time (newest first), each linking to its provenance."""

    serializer_class = PredictionLogSerializer
    filter_backends: list = []

    @extend_schema(parameters=[
        int_param("viewer", INT64_MIN, INT64_MAX), time_param("since"), time_param("until"),
        int_param("status", 0, 999, "An HTTP status (0: timeout or refused)."),
        OpenApiParameter("endpoint", str, enum=["plain", "api"]), text_param("arm"),
        id_param("model_version"), OpenApiParameter("fallback", str, enum=["yes", "no"]),
    ])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        q = QueryParams(self.request)  # a value such as "null" or month 13 is a 400 naming the parameter
        filters = {"since": q.time("since"), "until": q.time("until"), "endpoint": q.choice("endpoint", ("plain", "api")),
                   "arm": q.text("arm"), "fallback": q.choice("fallback", ("yes", "no")),
                   "viewer": q.int("viewer"), "model_version": q.id("model_version"),
                   "status": q.int("status", minimum=0, maximum=999)}  # an HTTP status
        return selectors.prediction_log_list(filters=filters)


class ProvenanceDetailApi(APIView):
    """One answer traced: request → model version → training run → snapshot → code and libraries."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: ERROR, 400: ERROR})
    def get(self, request, request_id: str) -> Response:
        record = selectors.prediction_log_get(request_id=request_id)
        if record is None:
            raise NotFound(f"no prediction with request id {request_id[:40]} (records are written within a few "
                           "seconds of the answer)")
        return Response(selectors.prediction_provenance(record=record))


# --- deployments ------------------------------------------------------------------------------------
class DeploymentListApi(APIView):
    """Every deployment with the version of each role, canary share, arms and traffic split."""

    @extend_schema(operation_id="deployments_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request) -> Response:
        rows = [selectors.deployment_describe(deployment=d) for d in selectors.deployment_list()]
        if not any(r["name"] == "default" for r in rows):
            rows.insert(0, selectors.deployment_describe(deployment=None))
        return Response({"results": rows})


def _deployment_or_404(name: str):
    deployment = selectors.deployment_get(name=name)
    if deployment is None and name != "default":
        raise NotFound(f"no deployment named '{name}'")
    return deployment


class DeploymentDetailApi(APIView):
    """A deployment, what each web worker of this machine is serving, and its recent changes."""

    @extend_schema(operation_id="deployments_detail", responses={200: OpenApiTypes.OBJECT, 404: ERROR})
    def get(self, request, name: str) -> Response:
        deployment = _deployment_or_404(name)
        body = selectors.deployment_describe(deployment=deployment)
        body["workers"] = selectors.serving_worker_status_list(state_dir=get_runtime().config.state_dir)
        body["recent_changes"] = [
            {"revision": c.revision, "at": c.created_at, "by": c.actor_label, "reason": c.reason}
            for c in (selectors.deployment_change_list(deployment=deployment)[:10] if deployment else [])
        ]
        return Response(body)


class ArmInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    version = serializers.IntegerField()
    percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    experiment = serializers.CharField(max_length=100, required=False, allow_blank=True)


class DeploymentChangeInputSerializer(serializers.Serializer):
    # required (not blank): the service's rule, shared with the portal's form
    reason = serializers.CharField(max_length=1000, allow_blank=True)
    production = serializers.IntegerField(required=False, allow_null=True, help_text="Version id; null clears.")
    canary = serializers.IntegerField(required=False, allow_null=True)
    shadow = serializers.IntegerField(required=False, allow_null=True)
    canary_percent = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    shadow_enabled = serializers.BooleanField(required=False)
    salt = serializers.CharField(max_length=64, required=False)
    arms = ArmInputSerializer(many=True, required=False, help_text="Replaces the experiment arms.")


class DeploymentChangeApi(APIView):
    """Change a deployment (operators): versions per role, canary share, arms, salt, shadow. Production, a
    canary share and arms take only versions with an approved promotion: 409 names what is missing."""

    permission_classes = [IsAuthenticated, Can("release.operate")]
    InputSerializer = DeploymentChangeInputSerializer

    @extend_schema(request=DeploymentChangeInputSerializer, responses={200: OpenApiTypes.OBJECT, 400: ERROR, 403: ERROR,
                                                       404: ERROR, 409: ERROR})
    def post(self, request, name: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "arms" in values:
            values["arms"] = [dict(a) for a in values["arms"]]
        deployment = services.deployment_update(actor=request.user, name=name, **values)
        return Response(selectors.deployment_describe(deployment=deployment))


class DeploymentRollbackInputSerializer(serializers.Serializer):
    # required (not blank): the service's rule, shared with the portal's form
    reason = serializers.CharField(max_length=1000, allow_blank=True)
    version = serializers.IntegerField(required=False, allow_null=True,
                                       help_text="A version that was in production before (default: the previous one).")


class DeploymentRollbackApi(APIView):
    """Emergency rollback (operators, alone): production back to a version that was in production before
    (the previous one by default). Logged as ``deployment.emergency_rollback``; 409 for any other version."""

    permission_classes = [IsAuthenticated, Can("release.operate")]
    InputSerializer = DeploymentRollbackInputSerializer

    @extend_schema(request=DeploymentRollbackInputSerializer, responses={200: OpenApiTypes.OBJECT, 403: ERROR, 409: ERROR})
    def post(self, request, name: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = services.deployment_rollback(actor=request.user, name=name, **data.validated_data)
        return Response(selectors.deployment_describe(deployment=deployment))


class DeploymentChangeSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_label = serializers.CharField()
    reason = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()


class DeploymentHistoryApi(generics.ListAPIView):
    """Every change of a deployment, newest first, with the state before and after."""

    serializer_class = DeploymentChangeSerializer
    filter_backends: list = []

    def get_queryset(self):
        deployment = _deployment_or_404(self.kwargs["name"])
        if deployment is None:
            return DeploymentChange.objects.none()
        return selectors.deployment_change_list(deployment=deployment)


class ServingStatusApi(APIView):
    """Live state of this machine's web workers, the serving snapshot and the prediction-log spill."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request) -> Response:
        from recommender.serving.predlog import spill_pending

        config = get_runtime().config
        return Response({
            "workers": selectors.serving_worker_status_list(state_dir=config.state_dir),
            "spill": spill_pending(config.spill_dir),
            "prediction_log_last_hour": selectors.prediction_log_summary(),
        })
