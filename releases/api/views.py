"""REST API of releases and experiments: promotion requests and the release gate, canary
rollouts, production rollback, A/B experiments, shadow reports and the sample-size calculator.

One view per command; reads are list/detail views. Every decision in a response carries who or
what made it (``*_label``, ``decided_label``) and why (``reason``, ``comment``)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.params import InvalidParameter, id_param, parse_time, query_choice, query_id
from portal.api.serializers import ActivityLogEntrySerializer
from portal.errors import ValidationError
from portal.permissions import Can
from recommender.models import ModelVersion
from releases import models, selectors, services, stats
from releases.conf import release_setting

# --- output serializers ---------------------------------------------------------------------------------


class VersionRefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__")

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "algorithm", "status"]


class GateCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ReleaseGateCheck
        fields = ["name", "attempt", "outcome", "summary", "evidence", "checked_at"]


class PromotionSerializer(serializers.ModelSerializer):
    version = VersionRefSerializer()
    baseline_version = VersionRefSerializer(allow_null=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rollout = serializers.SerializerMethodField()

    class Meta:
        model = models.PromotionRequest
        fields = ["id", "version", "baseline_version", "status", "reason", "requested_label", "review",
                  "gate_attempt", "gate_passed", "gate_finished_at", "decided_by", "decision_comment", "decided_at",
                  "canary_steps", "canary_interval_seconds", "rollout", "created_at", "updated_at"]

    def get_rollout(self, obj) -> int | None:
        rollout = getattr(obj, "rollout", None) if hasattr(obj, "rollout") else None
        return rollout.pk if rollout else None


class PromotionDetailSerializer(PromotionSerializer):
    checks = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    class Meta(PromotionSerializer.Meta):
        fields = [*PromotionSerializer.Meta.fields, "checks", "history"]

    @extend_schema(responses=GateCheckSerializer(many=True))
    def get_checks(self, obj) -> list[dict]:
        return GateCheckSerializer(selectors.promotion_checks(promotion=obj), many=True).data

    def get_history(self, obj) -> list[dict]:
        return ActivityLogEntrySerializer(
            selectors.release_history(target=obj), many=True
        ).data


class RolloutStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.RolloutStep
        fields = ["revision", "step_index", "from_percent", "to_percent", "outcome", "reason", "decided_label",
                  "metrics", "created_at"]


class RolloutSerializer(serializers.ModelSerializer):
    version = VersionRefSerializer()
    baseline_version = VersionRefSerializer(allow_null=True)

    class Meta:
        model = models.Rollout
        fields = ["id", "promotion", "version", "baseline_version", "state", "steps", "interval_seconds",
                  "step_index", "applied_percent", "revision", "step_started_at", "next_check_at", "last_decision",
                  "started_by_label", "finished_at", "finished_reason", "created_at"]


class RolloutEvidenceSerializer(serializers.Serializer):
    """The evidence the current step still needs (latest check): counts per side and the estimate."""

    current = serializers.BooleanField(help_text="false before the current step's first check")
    message = serializers.CharField(help_text="e.g. 'needs 120 more canary lists …, about 9 minutes at the current rate'")
    checked_at = serializers.DateTimeField(allow_null=True)
    next_check_at = serializers.DateTimeField(required=False, allow_null=True)
    needs_more = serializers.IntegerField(required=False, help_text="lists still needed, both sides")
    minutes = serializers.FloatField(required=False, allow_null=True,
                                     help_text="about how long they take at the current rate; null: no traffic")
    canary_needed = serializers.IntegerField(required=False)
    canary_have = serializers.IntegerField(required=False)
    canary_pending = serializers.IntegerField(required=False, help_text="served, success window still open")
    production_needed = serializers.IntegerField(required=False)
    production_have = serializers.IntegerField(required=False)
    lists_per_minute = serializers.FloatField(required=False)
    canary_lists_per_minute = serializers.FloatField(required=False)
    plan = serializers.DictField(required=False, help_text="stats.canary_plan: the evidence per step and why")


class RolloutDetailSerializer(RolloutSerializer):
    step_records = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "evidence", "step_records"]

    @extend_schema_field(RolloutEvidenceSerializer(allow_null=True))
    def get_evidence(self, obj) -> dict | None:
        evidence = selectors.rollout_evidence(rollout=obj)
        return None if evidence is None else RolloutEvidenceSerializer(evidence).data

    @extend_schema(responses=RolloutStepSerializer(many=True))
    def get_step_records(self, obj) -> list[dict]:
        return RolloutStepSerializer(selectors.rollout_steps(rollout=obj), many=True).data


class ArmSerializer(serializers.ModelSerializer):
    version = VersionRefSerializer()

    class Meta:
        model = models.ExperimentVariant
        fields = ["name", "version", "allocation", "is_control"]


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ExperimentSnapshot
        fields = ["id", "computed_at", "window_start", "window_end", "arms", "srm", "ztest", "sequential",
                  "sample_size", "decision", "decision_reason"]


class ExperimentSerializer(serializers.ModelSerializer):
    arms = ArmSerializer(many=True)

    class Meta:
        model = models.Experiment
        fields = ["id", "name", "hypothesis", "status", "primary_metric", "guardrails", "alpha",
                  "minimum_detectable_effect", "power", "salt", "arms", "started_at", "started_by_label",
                  "stopped_at", "stopped_by_label", "stop_reason", "decision", "decision_reason", "created_at"]


class ExperimentDetailSerializer(ExperimentSerializer):
    latest = serializers.SerializerMethodField()

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "latest"]

    @extend_schema(responses=SnapshotSerializer(allow_null=True))
    def get_latest(self, obj) -> dict | None:
        snap = selectors.experiment_latest_snapshot(experiment=obj)
        return SnapshotSerializer(snap).data if snap else None


class ShadowReportSerializer(serializers.ModelSerializer):
    shadow_version = VersionRefSerializer()
    production_version = VersionRefSerializer(allow_null=True)

    class Meta:
        model = models.ShadowReport
        fields = ["id", "shadow_version", "production_version", "window_start", "window_end", "requests",
                  "mean_overlap", "mean_kendall_tau", "mean_spearman_rho", "p50_shadow_latency_ms",
                  "overlap_histogram", "created_by_label", "created_at"]


class ShadowComparisonSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ShadowComparison
        fields = ["id", "request_id", "viewer_id", "production_version", "shadow_version", "production_items",
                  "shadow_items", "overlap", "kendall_tau", "spearman_rho", "shadow_latency_ms", "created_at"]


class ExperimentArmInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    version = serializers.IntegerField()
    allocation = serializers.IntegerField()
    is_control = serializers.BooleanField(default=False)


class ReasonSerializer(serializers.Serializer):
    # blank and length are the service's rule (require_reason), shared with the portal's forms
    reason = serializers.CharField(allow_blank=True, help_text="required, at most 2000 characters")


def _version(version_id: int) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise ValidationError(f"model version {version_id} does not exist")
    return version


# --- promotions ---------------------------------------------------------------------------------------------


class PromotionListApi(generics.ListAPIView):
    """Promotion requests, newest first; filter by status or version."""

    serializer_class = PromotionSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=models.PromotionRequest.Status.values), id_param("version")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.promotion_list(filters={"status": query_choice(self.request, "status", models.PromotionRequest.Status.values),
                                                 "version": query_id(self.request, "version")})


class PromotionCreateApi(APIView):
    """Ask for a model version to be promoted: the release gate runs on its own (Celery)."""

    permission_classes = [Can("promotion.request")]

    class PromotionCreateInputSerializer(serializers.Serializer):
        version = serializers.IntegerField()
        # blank and length are the service's rule (require_reason), shared with the portal's forms
        reason = serializers.CharField(allow_blank=True, help_text="required, at most 2000 characters")
        canary_steps = serializers.ListField(child=serializers.IntegerField(), required=False)
        # the range is the service's (validate_canary_plan), shared with the portal's form
        canary_interval_seconds = serializers.IntegerField(required=False)

    @extend_schema(request=PromotionCreateInputSerializer, responses={201: PromotionSerializer})
    def post(self, request) -> Response:
        data = self.PromotionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        promotion = services.promotion_request_create(
            version=_version(v["version"]), actor=request.user, reason=v["reason"],
            canary_steps=v.get("canary_steps"), canary_interval_seconds=v.get("canary_interval_seconds"),
        )
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED)


class PromotionDetailApi(generics.RetrieveAPIView):
    """One promotion request with its gate checks (evidence) and its history."""

    serializer_class = PromotionDetailSerializer
    lookup_url_kwarg = "promotion_id"

    def get_queryset(self):
        return selectors.promotion_list()


class PromotionDecideApi(APIView):
    """Approve, reject or request changes — a reviewer who is not the requester (four eyes)."""

    permission_classes = [Can("review.decide")]

    class PromotionDecideInputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "reject", "request_changes"])
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=PromotionDecideInputSerializer, responses={200: PromotionSerializer})
    def post(self, request, promotion_id: int) -> Response:
        data = self.PromotionDecideInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = get_object_or_404(selectors.promotion_list(), pk=promotion_id)
        promotion = services.promotion_decide(promotion=promotion, actor=request.user, **data.validated_data)
        return Response(PromotionSerializer(promotion).data)


class PromotionCancelApi(APIView):
    """Withdraw a promotion request before its canary starts (the requester or an operator)."""

    @extend_schema(request=ReasonSerializer, responses={200: PromotionSerializer})
    def post(self, request, promotion_id: int) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = get_object_or_404(selectors.promotion_list(), pk=promotion_id)
        promotion = services.promotion_cancel(promotion=promotion, actor=request.user, **data.validated_data)
        return Response(PromotionSerializer(promotion).data)


class PromotionGateRerunApi(APIView):
    """Run a failed release gate again (after a waiver, a new audit, a restored artifact)."""

    permission_classes = [Can("promotion.request")]

    @extend_schema(request=ReasonSerializer, responses={202: PromotionSerializer})
    def post(self, request, promotion_id: int) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = get_object_or_404(selectors.promotion_list(), pk=promotion_id)
        promotion = services.promotion_gate_rerun(promotion=promotion, actor=request.user, **data.validated_data)
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_202_ACCEPTED)


# --- rollouts ----------------------------------------------------------------------------------------------


class RolloutListApi(generics.ListAPIView):
    """Canary rollouts, newest first; filter by state."""

    serializer_class = RolloutSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=models.Rollout.State.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.rollout_list(filters={"state": query_choice(self.request, "state", models.Rollout.State.values)})


class RolloutDetailApi(generics.RetrieveAPIView):
    """One rollout with every step: the numbers, the outcome, who or what decided, and why."""

    serializer_class = RolloutDetailSerializer
    lookup_url_kwarg = "rollout_id"

    def get_queryset(self):
        return selectors.rollout_list()


class _RolloutActionApi(APIView):
    permission_classes = [Can("release.operate")]
    action = ""

    @extend_schema(request=ReasonSerializer, responses={200: RolloutStepSerializer})
    def post(self, request, rollout_id: int) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rollout = get_object_or_404(models.Rollout.objects.all(), pk=rollout_id)
        step = getattr(services, f"rollout_{self.action}")(rollout=rollout, actor=request.user, **data.validated_data)
        return Response(RolloutStepSerializer(step).data)


class RolloutPauseApi(_RolloutActionApi):
    """Hold the canary at its current share."""

    action = "pause"


class RolloutResumeApi(_RolloutActionApi):
    """Let the automatic step checks run again."""

    action = "resume"


class RolloutAdvanceApi(_RolloutActionApi):
    """Move to the next step by hand (completing at the last)."""

    action = "advance"


class RolloutRollbackApi(_RolloutActionApi):
    """Take the canary out of traffic now."""

    action = "rollback"


class ProductionRollbackApi(APIView):
    """Put the previous production version back, in one action."""

    permission_classes = [Can("release.operate")]

    @extend_schema(request=ReasonSerializer, responses={200: inline_serializer("ProductionRollbackOut", {
        "from": serializers.IntegerField(), "to": serializers.IntegerField(), "reason": serializers.CharField()})})
    def post(self, request) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.production_rollback(actor=request.user, **data.validated_data))


# --- experiments ----------------------------------------------------------------------------------------------


class ExperimentListApi(generics.ListAPIView):
    """A/B experiments, newest first; filter by status."""

    serializer_class = ExperimentSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=models.Experiment.Status.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.experiment_list(filters={"status": query_choice(self.request, "status", models.Experiment.Status.values)})


class ExperimentCreateApi(APIView):
    """Define an experiment: arms (version, allocation, one control), primary metric, guardrails."""

    permission_classes = [Can("experiment.manage")]

    class ExperimentCreateInputSerializer(serializers.Serializer):
        # required and at most 120 characters: the service's rule (experiment_create), shared with the portal
        name = serializers.CharField(allow_blank=True, help_text="required, at most 120 characters")
        hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
        arms = ExperimentArmInputSerializer(many=True)
        primary_metric = serializers.CharField(required=False, default="online_quality")
        guardrails = serializers.DictField(child=serializers.FloatField(), required=False)
        alpha = serializers.FloatField(required=False)
        minimum_detectable_effect = serializers.FloatField(required=False, default=0.02)
        power = serializers.FloatField(required=False, default=0.8)

    @extend_schema(request=ExperimentCreateInputSerializer, responses={201: ExperimentSerializer})
    def post(self, request) -> Response:
        data = self.ExperimentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        arms = [dict(arm) for arm in v.pop("arms")]
        experiment = services.experiment_create(actor=request.user, arms=arms, **v)
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailApi(generics.RetrieveAPIView):
    """One experiment with its arms and latest analysis."""

    serializer_class = ExperimentDetailSerializer
    lookup_url_kwarg = "experiment_id"

    def get_queryset(self):
        return selectors.experiment_list()


class ExperimentStartApi(APIView):
    """Start bucketing viewers into the arms."""

    permission_classes = [Can("experiment.manage")]

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    def post(self, request, experiment_id: int) -> Response:
        experiment = get_object_or_404(models.Experiment.objects.all(), pk=experiment_id)
        return Response(ExperimentSerializer(services.experiment_start(experiment=experiment, actor=request.user)).data)


class ExperimentStopApi(APIView):
    """Stop the experiment; a final analysis records the decision the data supports."""

    permission_classes = [Can("experiment.manage")]

    @extend_schema(request=ReasonSerializer, responses={200: ExperimentSerializer})
    def post(self, request, experiment_id: int) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = get_object_or_404(models.Experiment.objects.all(), pk=experiment_id)
        experiment = services.experiment_stop(experiment=experiment, actor=request.user, **data.validated_data)
        return Response(ExperimentSerializer(experiment).data)


class ExperimentAnalyzeApi(APIView):
    """Analyse now (SRM, z-test + CI, sequential test, sample size) and record a snapshot."""

    permission_classes = [Can("experiment.manage")]

    @extend_schema(request=None, responses={201: SnapshotSerializer})
    def post(self, request, experiment_id: int) -> Response:
        experiment = get_object_or_404(models.Experiment.objects.all(), pk=experiment_id)
        snapshot = services.experiment_analyze(experiment=experiment, actor=request.user, system=None)
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class ExperimentResultsApi(APIView):
    """Per-arm series over time (rate, lists, the difference's confidence sequence) and every snapshot."""

    @extend_schema(responses=inline_serializer("ExperimentResults", {
        "chart": serializers.DictField(), "snapshots": SnapshotSerializer(many=True)}))
    def get(self, request, experiment_id: int) -> Response:
        experiment = get_object_or_404(selectors.experiment_list(), pk=experiment_id)
        return Response({
            "chart": selectors.experiment_chart(experiment=experiment),
            "snapshots": SnapshotSerializer(selectors.experiment_snapshots(experiment=experiment), many=True).data,
        })


class SampleSizeApi(APIView):
    """Lists per arm needed to detect a minimum effect on a success rate (two-sided test) if lists were
    independent, and — with ``lists_per_viewer`` (and the ``design_effect`` an experiment's analysis
    measures, default EXPERIMENT_PRIOR_DESIGN_EFFECT) — the viewers per arm a viewer-randomised
    experiment needs. A calculation that changes nothing: every role may call it."""

    write_roles = ("viewer", "data_scientist", "operator", "reviewer")

    class SampleSizeInputSerializer(serializers.Serializer):
        baseline = serializers.FloatField()
        mde = serializers.FloatField()
        alpha = serializers.FloatField(default=0.05)
        power = serializers.FloatField(default=0.8)
        relative = serializers.BooleanField(default=False)
        lists_per_viewer = serializers.FloatField(required=False, min_value=1.0)
        design_effect = serializers.FloatField(required=False, min_value=0.01, max_value=10_000)

    @extend_schema(request=SampleSizeInputSerializer, responses=inline_serializer("SampleSizeOut", {
        "per_arm": serializers.IntegerField(), "baseline": serializers.FloatField(), "target": serializers.FloatField(),
        "viewers_per_arm": serializers.IntegerField(required=False), "lists_needed": serializers.IntegerField(
            required=False), "design_effect": serializers.FloatField(required=False),
        "design_effect_source": serializers.CharField(required=False)}))
    def post(self, request) -> Response:
        data = self.SampleSizeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        per_viewer, design_effect = v.pop("lists_per_viewer", None), v.pop("design_effect", None)
        try:
            n = stats.sample_size_two_proportions(**v)
        except ValueError as exc:
            raise ValidationError(str(exc), detail=dict(v))
        target = v["baseline"] * (1 + v["mde"]) if v["relative"] else v["baseline"] + v["mde"]
        out = {"per_arm": n, "baseline": v["baseline"], "target": target}
        if per_viewer is not None:
            source = "given" if design_effect is not None else "prior"
            if design_effect is None:
                design_effect = float(release_setting("EXPERIMENT_PRIOR_DESIGN_EFFECT"))
            plan = stats.sample_size_viewers(design_effect=design_effect, lists_per_viewer=per_viewer, **v)
            out.update({"viewers_per_arm": plan.viewers, "lists_needed": plan.lists_needed,
                        "design_effect": design_effect, "design_effect_source": source,
                        "lists_per_viewer": per_viewer})
        return Response(out)


# --- shadow -------------------------------------------------------------------------------------------------


class ShadowStartApi(APIView):
    """Mirror production's requests to a candidate version (off the request path)."""

    permission_classes = [Can("release.operate")]

    class ShadowStartInputSerializer(serializers.Serializer):
        version = serializers.IntegerField()
        # blank and length are the service's rule (require_reason), shared with the portal's forms
        reason = serializers.CharField(allow_blank=True, help_text="required, at most 2000 characters")

    @extend_schema(request=ShadowStartInputSerializer, responses={204: None})
    def post(self, request) -> Response:
        data = self.ShadowStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.shadow_start(version=_version(data.validated_data["version"]), actor=request.user,
                              reason=data.validated_data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShadowStopApi(APIView):
    """Stop mirroring requests."""

    permission_classes = [Can("release.operate")]

    @extend_schema(request=ReasonSerializer, responses={204: None})
    def post(self, request) -> Response:
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.shadow_stop(actor=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShadowReportListApi(generics.ListAPIView):
    """Shadow agreement reports, newest first."""

    serializer_class = ShadowReportSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.shadow_report_list()


class ShadowReportCreateApi(APIView):
    """Summarise a shadow version's agreement with production over a window (default: last hour)."""

    permission_classes = [Can("release.operate")]

    class ShadowReportCreateInputSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False)
        since = serializers.CharField(required=False)
        until = serializers.CharField(required=False)

    @extend_schema(request=ShadowReportCreateInputSerializer, responses={201: ShadowReportSerializer})
    def post(self, request) -> Response:
        data = self.ShadowReportCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        times = {}
        for key in ("since", "until"):
            if v.get(key):
                try:
                    times[key] = parse_time(v[key])
                except InvalidParameter as exc:
                    raise ValidationError(f"'{key}' {exc}", detail={key: [str(exc)]}) from None
        version = _version(v["version"]) if v.get("version") else None
        report = services.shadow_report_create(version=version, actor=request.user, **times)
        if report is None:
            raise ValidationError("no mirrored requests in that window (is a version running in shadow?)")
        return Response(ShadowReportSerializer(report).data, status=status.HTTP_201_CREATED)


class ShadowComparisonListApi(generics.ListAPIView):
    """Mirrored requests: production's list, the shadow's, and their agreement."""

    serializer_class = ShadowComparisonSerializer
    filter_backends: list = []

    @extend_schema(parameters=[id_param("version")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.shadow_comparison_list(version_id=query_id(self.request, "version"))


class VersionRequestPromotionApi(APIView):
    """Ask for a version's promotion: files the releases' promotion request (release gate → four-eyes
    review → canary), the same as ``POST /api/v1/releases/promotions/new``, whose answer it returns."""

    permission_classes = [Can("promotion.request")]

    class VersionRequestPromotionInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=VersionRequestPromotionInputSerializer, responses={201: PromotionSerializer})
    def post(self, request, version_id: int) -> Response:
        data = self.VersionRequestPromotionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = get_object_or_404(ModelVersion, pk=version_id)
        promotion = services.promotion_request_create(version=version, actor=request.user, reason=data.validated_data["reason"])
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED,
                        headers={"Location": reverse("api-promotion-detail", args=[promotion.pk])})
