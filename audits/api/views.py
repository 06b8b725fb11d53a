"""REST API of the audits: runs (list, start, detail, export, sign-off), findings (list, detail,
acknowledge, resolve, waive), the release-gate view of a version, and the schedules."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audits import selectors, services, sources
from audits.api.serializers import (
    AuditFindingDetailSerializer,
    AuditFindingSerializer,
    AuditRunDetailSerializer,
    AuditRunSerializer,
    FindingWaiverSerializer,
)
from audits.errors import NotFound
from audits.models import AuditFinding, AuditRun, Severity
from portal.api.params import QueryParams, id_param, text_param
from portal.api.serializers import ReviewRequestSerializer
from portal.permissions import Can

RUN_FILTERS = [OpenApiParameter("kind", str, enum=AuditRun.Kind.values),
               OpenApiParameter("status", str, enum=AuditRun.Status.values),
               OpenApiParameter("trigger", str, enum=AuditRun.Trigger.values),
               OpenApiParameter("target", str, enum=AuditRun.Target.values),
               OpenApiParameter("model_version", int),
               OpenApiParameter("exploratory", bool, description="true: only exploratory runs (the gate ignores "
                                "them); false: only runs with the configured settings")]
FINDING_FILTERS = [OpenApiParameter("status", str, enum=AuditFinding.Status.values),
                   OpenApiParameter("severity", str, enum=Severity.values),
                   OpenApiParameter("min_severity", str, enum=Severity.values,
                                    description="This severity or above: " + ", ".join(Severity.values)),
                   OpenApiParameter("kind", str, enum=AuditRun.Kind.values),
                   text_param("check_name"), id_param("run"), id_param("model_version")]


def _choice(params, key: str, allowed: list[str]) -> str | None:
    return QueryParams(params).choice(key, allowed)


def _int(params, key: str) -> int | None:
    return QueryParams(params).id(key)


class AuditRunListApi(generics.ListAPIView):
    """Audit runs, newest first (GET); start one (POST): a model version's audit, or the live deployment's.

    A run with overrides that change the configured settings is exploratory (``"exploratory": true``):
    it needs the ``audit.explore`` work (not reviewers) and the release gate ignores it.
    """

    serializer_class = AuditRunSerializer
    filter_backends: list = []
    permission_classes = [Can("audit.run")]

    class AuditRunStartInputSerializer(serializers.Serializer):
        # Plain text checked by the service (an enum here would collide with other apps' "kind" enums).
        kind = serializers.CharField(max_length=16, help_text="fairness or security")
        model_version = serializers.IntegerField(required=False, allow_null=True, default=None,
                                                 help_text="Audit this version; omit to audit the live deployment.")
        window_hours = serializers.FloatField(required=False, allow_null=True, default=None,
                                              help_text="The live window (hours up to now).")
        overrides = serializers.DictField(required=False, default=dict,
                                          help_text="Per-run settings, e.g. FAIRNESS_BAND, FAIRNESS_REFERENCE_GROUPS.")

    @extend_schema(parameters=RUN_FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = self.request.query_params
        return selectors.audit_run_list(filters={
            "kind": _choice(p, "kind", AuditRun.Kind.values), "status": _choice(p, "status", AuditRun.Status.values),
            "trigger": _choice(p, "trigger", AuditRun.Trigger.values),
            "target": _choice(p, "target", AuditRun.Target.values), "model_version": _int(p, "model_version"),
            "exploratory": {"true": True, "false": False, None: None, "": None}.get(
                _choice(p, "exploratory", ["true", "false"])),
        })

    @extend_schema(request=AuditRunStartInputSerializer, responses={202: AuditRunSerializer})
    def post(self, request) -> Response:
        data = self.AuditRunStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = None
        if values["model_version"] is not None:
            version = sources.model_version_get(version_id=values["model_version"])
            if version is None:
                raise NotFound(f"model version #{values['model_version']} does not exist")
        run = services.audit_run_create(kind=values["kind"], actor=request.user, model_version=version,
                                        window_hours=values["window_hours"], overrides=values["overrides"])
        return Response(AuditRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class AuditRunDetailApi(generics.RetrieveAPIView):
    """One run with its settings and full results (per-group tables, disparities, checks)."""

    serializer_class = AuditRunDetailSerializer
    lookup_url_kwarg = "run_id"

    def get_queryset(self):
        return selectors.audit_run_list()


class AuditRunExportApi(APIView):
    """The run as one JSON document: settings, results, findings with evidence and review history."""

    @extend_schema(responses={200: inline_serializer("AuditRunExport", {
        "exported_at": serializers.DateTimeField(), "run": serializers.DictField(),
        "settings": serializers.DictField(), "results": serializers.DictField(),
        "findings": serializers.ListField(child=serializers.DictField()),
        "history": serializers.ListField(child=serializers.DictField())})})
    def get(self, request, run_id: int) -> Response:
        run = get_object_or_404(selectors.audit_run_list(), pk=run_id)
        response = Response(selectors.audit_run_export(run=run))
        response["Content-Disposition"] = f'attachment; filename="audit-{run.pk}.json"'
        return response


class AuditRunSignoffApi(APIView):
    """Ask a reviewer to sign off a succeeded run (a four-eyes review in the inbox)."""

    permission_classes = [Can("audit.run")]

    class AuditRunSignoffInputSerializer(serializers.Serializer):
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=AuditRunSignoffInputSerializer, responses={201: ReviewRequestSerializer})
    def post(self, request, run_id: int) -> Response:
        data = self.AuditRunSignoffInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = get_object_or_404(selectors.audit_run_list(), pk=run_id)
        review = services.audit_run_signoff_request(run=run, actor=request.user, **data.validated_data)
        return Response(ReviewRequestSerializer(review).data, status=status.HTTP_201_CREATED)


class AuditFindingListApi(generics.ListAPIView):
    """Findings, most recently seen first; filter by status, severity, kind, check, run, version."""

    serializer_class = AuditFindingSerializer
    filter_backends: list = []

    @extend_schema(parameters=FINDING_FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = self.request.query_params
        return selectors.audit_finding_list(filters={
            "status": _choice(p, "status", AuditFinding.Status.values),
            "severity": _choice(p, "severity", Severity.values),
            "min_severity": _choice(p, "min_severity", Severity.values),
            "kind": _choice(p, "kind", AuditRun.Kind.values), "check_name": QueryParams(p).text("check_name"),
            "run": _int(p, "run"), "model_version": _int(p, "model_version"),
        })


class AuditFindingDetailApi(generics.RetrieveAPIView):
    """One finding with its evidence, waivers and review history."""

    serializer_class = AuditFindingDetailSerializer
    lookup_url_kwarg = "finding_id"

    def get_queryset(self):
        return selectors.audit_finding_list()


class _FindingTransitionApi(APIView):
    permission_classes = [Can("finding.acknowledge")]

    class AuditFindingCommentInputSerializer(serializers.Serializer):
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def _finding(self, finding_id: int) -> AuditFinding:
        return get_object_or_404(selectors.audit_finding_list(), pk=finding_id)


class AuditFindingAcknowledgeApi(_FindingTransitionApi):
    """open → acknowledged."""

    @extend_schema(request=_FindingTransitionApi.AuditFindingCommentInputSerializer, responses={200: AuditFindingSerializer})
    def post(self, request, finding_id: int) -> Response:
        data = self.AuditFindingCommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        finding = services.finding_acknowledge(finding=self._finding(finding_id), actor=request.user,
                                               **data.validated_data)
        return Response(AuditFindingSerializer(selectors.audit_finding_get(finding_id=finding.pk)).data)


class AuditFindingResolveApi(_FindingTransitionApi):
    """Resolve with a comment saying what was done. Below the review level (medium by default) the
    finding is resolved at once (200); at or above it the resolution is only proposed (202): a
    review opens in the inbox (see ``resolutions[0].review``) and a reviewer other than you decides."""

    permission_classes = [Can("resolution.propose")]

    class AuditFindingResolveInputSerializer(serializers.Serializer):
        # required (not blank): the service's rule, shared with the portal's form
        comment = serializers.CharField(max_length=2000, allow_blank=True, help_text="required: what was done")

    @extend_schema(request=AuditFindingResolveInputSerializer,
                   responses={200: AuditFindingSerializer, 202: AuditFindingSerializer})
    def post(self, request, finding_id: int) -> Response:
        data = self.AuditFindingResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        finding = services.finding_resolve(finding=self._finding(finding_id), actor=request.user,
                                           **data.validated_data)
        proposed = finding.status != AuditFinding.Status.RESOLVED
        return Response(AuditFindingSerializer(selectors.audit_finding_get(finding_id=finding.pk)).data,
                        status=status.HTTP_202_ACCEPTED if proposed else status.HTTP_200_OK)


class AuditFindingWaiveApi(_FindingTransitionApi):
    """Request a waiver (justification and expiry); a reviewer other than you decides it in the inbox."""

    permission_classes = [Can("waiver.request")]

    class AuditFindingWaiveInputSerializer(serializers.Serializer):
        # 20 to 4000 characters: the service's rule (finding_waiver_request), shared with the portal's form
        justification = serializers.CharField(allow_blank=True, help_text="20 to 4000 characters")
        expires_at = serializers.DateTimeField()

    @extend_schema(request=AuditFindingWaiveInputSerializer, responses={201: FindingWaiverSerializer})
    def post(self, request, finding_id: int) -> Response:
        data = self.AuditFindingWaiveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        waiver = services.finding_waiver_request(finding=self._finding(finding_id), actor=request.user,
                                                 **data.validated_data)
        return Response(FindingWaiverSerializer(waiver).data, status=status.HTTP_201_CREATED)


class AuditReleaseGateApi(APIView):
    """What the release gate sees for a version: its latest fairness and security audits and what blocks."""

    @extend_schema(responses={200: inline_serializer("AuditGate", {
        "model_version": serializers.IntegerField(), "ok": serializers.BooleanField(),
        "fairness": serializers.DictField(), "security": serializers.DictField()})})
    def get(self, request, version_id: int) -> Response:
        version = sources.model_version_get(version_id=version_id)
        if version is None:
            raise NotFound(f"model version #{version_id} does not exist")
        return Response(selectors.audit_release_gate(model_version=version))


class AuditScheduleListApi(APIView):
    """The audits' beat schedules (change them through `/api/v1/schedules` or the Schedules page)."""

    @extend_schema(responses={200: inline_serializer("AuditSchedule", {
        "id": serializers.IntegerField(), "name": serializers.CharField(), "task": serializers.CharField(),
        "kwargs": serializers.CharField(), "schedule": serializers.CharField(), "enabled": serializers.BooleanField(),
        "last_run_at": serializers.DateTimeField(allow_null=True), "total_run_count": serializers.IntegerField(),
        "description": serializers.CharField()}, many=True)})
    def get(self, request) -> Response:
        rows = [{"id": t.pk, "name": t.name, "task": t.task, "kwargs": t.kwargs,
                 "schedule": str(t.crontab or t.interval or t.solar or t.clocked or ""), "enabled": t.enabled,
                 "last_run_at": t.last_run_at, "total_run_count": t.total_run_count, "description": t.description}
                for t in selectors.audit_schedule_list()]
        return Response(rows)
