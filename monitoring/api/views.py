"""REST API of monitoring: every figure on the dashboard, and every action of the portal pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring import selectors
from monitoring.api import serializers as out
from monitoring.models import Incident, Notification
from monitoring.models.alerts import Severity
from monitoring.services import alerts, config, incidents, notifications
from monitoring.services.data_quality import data_quality_report_create
from monitoring.services.drift import drift_report_create
from monitoring.services.feedback import feedback_snapshots_update, feedback_trends
from monitoring.services.metrics import METRICS
from monitoring.services.quality import GROUP_KEYS, online_quality
from monitoring.services.slo import slo_status
from portal.api.params import QueryParams, id_param, int_param, text_param, time_param
from portal.permissions import Can

RANGE_PARAMS = [
    time_param("since", "ISO-8601 (UTC unless an offset is given); default: `hours` before `until`."),
    time_param("until", "ISO-8601 (UTC unless an offset is given); default: now."),
    OpenApiParameter("hours", {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 62 * 24},
                     description="Length of the range when `since` is not given (24)."),
]


def time_range(params, *, default_hours: float = 24.0, max_days: int = 62) -> tuple[datetime, datetime]:
    """``since``/``until`` (ISO-8601) or ``hours`` back from ``until``; a 400 naming the parameter otherwise."""
    q = QueryParams(params)
    until = q.time("until") or timezone.now()
    since = q.time("since")
    if since is None:
        hours = q.number("hours", default=default_hours)
        if not hours > 0:
            q.fail("hours", "must be more than 0")
        if hours > max_days * 24:
            q.fail("hours", f"the range may span at most {max_days} days")
        try:
            since = until - timedelta(hours=hours)
        except OverflowError:
            q.fail("until", "minus 'hours' is before the year 1")
    if since >= until:
        q.fail("since", "must be before 'until'")
    if until - since > timedelta(days=max_days):
        q.fail("since", f"the range from 'since' to 'until' may span at most {max_days} days")
    return since, until


def _int_filter(params, key: str) -> int | None:
    """An optional id filter: absent → None, anything but a whole number from 1 to 2^63 - 1 → a 400."""
    return QueryParams(params).id(key)


def _int_param(params, key: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
    return QueryParams(params).int(key, default=default, minimum=low, maximum=high)


# --- dashboard summary --------------------------------------------------------------------------

def monitoring_summary(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    hour = selectors.telemetry_window(since=now - timedelta(hours=1), until=now, source="client")
    server_hour = selectors.telemetry_window(since=now - timedelta(hours=1), until=now, source="server")
    latest_drift = selectors.drift_report_list().first()
    latest_dq = selectors.data_quality_report_list().first()
    trends = feedback_trends(until=now)
    return {
        "time": now,
        "last_hour": {k: hour.get(k) for k in ("requests", "availability", "error_rate", "latency_p95_ms",
                                               "latency_p99_ms", "no_data")},
        "last_hour_server": {k: server_hour.get(k) for k in ("requests", "personalization_rate", "fallback_rate",
                                                              "latency_p95_ms", "no_data")},
        "slos": [slo_status(slo=s, now=now) for s in selectors.slo_list(enabled_only=True)],
        "incidents_active": selectors.incident_list(filters={"active": True}).count(),
        "incidents_critical": selectors.incident_list(filters={"active": True, "severity": "critical"}).count(),
        "drift": None if latest_drift is None else {
            "id": latest_drift.pk, "status": latest_drift.status, "created_at": latest_drift.created_at,
            "drifted": latest_drift.drifted_features, "tested": latest_drift.tested_features},
        "data_quality": None if latest_dq is None else {
            "id": latest_dq.pk, "status": latest_dq.status, "window_end": latest_dq.window_end,
            "issues": latest_dq.issues},
        "feedback_adverse": sorted(k for k, v in trends.items() if v["adverse"]),
        "rules": {s: n for s, n in _rule_states()},
    }


def _rule_states():
    from django.db.models import Count

    return selectors.alert_rule_list(filters={"enabled": True}).values("state").annotate(n=Count("id")).values_list(
        "state", "n").order_by()


class SummaryApi(APIView):
    """Health at a glance: last hour's traffic, SLOs, active incidents, drift, data quality, feedback loops."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request) -> Response:
        return Response(monitoring_summary())


# --- telemetry, SLOs, online quality -------------------------------------------------------------

class TelemetrySeriesApi(APIView):
    """Traffic, errors, availability, latency percentiles, personalization and fallbacks over time
    (from the per-minute rollups; minutes without requests are absent — no data, not zero)."""

    @extend_schema(parameters=[*RANGE_PARAMS,
                               OpenApiParameter("source", str, enum=["client", "server"]),
                               int_param("step", 1, 24 * 60, "Minutes per point (default: range/120)."),
                               OpenApiParameter("by_version", bool)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request) -> Response:
        params = request.query_params
        since, until = time_range(params)
        source = QueryParams(params).choice("source", ("client", "server"), default="client")
        span = int((until - since).total_seconds() // 60)
        step = _int_param(params, "step", max(1, span // 120), high=24 * 60)
        points = selectors.telemetry_series(since=since, until=until, source=source, step_minutes=step,
                                            by_version=QueryParams(params).bool("by_version", default=False))
        return Response({"since": since, "until": until, "source": source, "step_minutes": step, "points": points})


class TelemetryMinuteListApi(generics.ListAPIView):
    """The stored per-minute rollups (filter by source, model version, arm, time)."""

    serializer_class = out.TelemetryMinuteSerializer
    filter_backends: list = []

    @extend_schema(parameters=[*RANGE_PARAMS, OpenApiParameter("source", str, enum=["client", "server"]),
                               id_param("model_version_id"), text_param("arm")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        since, until = time_range(params)
        q = QueryParams(params)
        return selectors.telemetry_minute_list(filters={
            "since": since, "until": until, "source": q.choice("source", ("client", "server")),
            "model_version_id": _int_filter(params, "model_version_id"), "arm": q.text("arm")})


class SLOListApi(generics.ListCreateAPIView):
    """The SLOs (create: operators)."""

    serializer_class = out.SLOSerializer
    permission_classes = [Can("config.manage")]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.slo_list()

    def perform_create(self, serializer):
        from monitoring.models import SLO

        serializer.instance = config.config_save(instance=SLO(), actor=self.request.user,
                                                 data=serializer.validated_data)


class SLODetailApi(generics.RetrieveUpdateAPIView):
    """One SLO (change: operators)."""

    serializer_class = out.SLOSerializer
    permission_classes = [Can("config.manage")]
    lookup_url_kwarg = "slo_id"

    def get_queryset(self):
        return selectors.slo_list()

    def perform_update(self, serializer):
        serializer.instance = config.config_save(instance=serializer.instance, actor=self.request.user,
                                                 data=serializer.validated_data)


class SLOStatusApi(APIView):
    """Every enabled SLO's SLI, error budget (consumed, remaining) and burn rates now."""

    @extend_schema(responses=out.SLOStatusSerializer(many=True))
    def get(self, request) -> Response:
        now = timezone.now()
        return Response(out.SLOStatusSerializer(
            [slo_status(slo=s, now=now) for s in selectors.slo_list(enabled_only=True)], many=True).data)


class OnlineQualityApi(APIView):
    """Online quality: successes and trials of served lists (a watch of a recommended movie within
    the window), per model version, arm and/or time bucket; plus the mean rating of those movies."""

    @extend_schema(parameters=[
        *RANGE_PARAMS,
        int_param("window_minutes", 1, 24 * 60, "Attribution window (default 30)."),
        OpenApiParameter("group_by", {"type": "array", "items": {"type": "string", "enum": list(GROUP_KEYS)}},
                         style="form", explode=False, description=f"Comma-separated: {', '.join(GROUP_KEYS)}."),
        int_param("bucket_minutes", 1, 7 * 24 * 60, "Bucket length when grouping by bucket (60)."),
        OpenApiParameter("source", str, enum=["server", "client", "auto"]),
        OpenApiParameter("complete_only", bool, description="Leave out lists whose window is still open (true)."),
    ], responses=out.QualityGroupSerializer(many=True))
    def get(self, request) -> Response:
        params = request.query_params
        since, until = time_range(params)
        q = QueryParams(params)
        group_by = tuple(g for g in q.text("group_by", default="model_version_id,arm").split(",") if g)
        if set(group_by) - set(GROUP_KEYS):
            q.fail("group_by", f"must be a comma list of {', '.join(GROUP_KEYS)}")
        groups = online_quality(
            since=since, until=until, window_minutes=_int_param(params, "window_minutes", 30, high=24 * 60),
            group_by=group_by, bucket_minutes=_int_param(params, "bucket_minutes", 60, high=7 * 24 * 60),
            source=q.choice("source", ("server", "client", "auto"), default="server"),
            complete_only=q.bool("complete_only", default=True),
        )
        return Response(out.QualityGroupSerializer([g.as_dict() for g in groups], many=True).data)


# --- data quality, drift, feedback loops ----------------------------------------------------------

class DataQualityReportListApi(generics.ListAPIView):
    """Data-quality reports, newest first."""

    serializer_class = out.DataQualityReportSerializer

    def get_queryset(self):
        return selectors.data_quality_report_list()


class DataQualityReportDetailApi(generics.RetrieveAPIView):
    serializer_class = out.DataQualityReportSerializer
    lookup_url_kwarg = "report_id"

    def get_queryset(self):
        return selectors.data_quality_report_list()


class DataQualityRunApi(APIView):
    """Make a data-quality report now (operators); default window: the last hour."""

    permission_classes = [Can("config.manage")]

    @extend_schema(request=None, parameters=RANGE_PARAMS, responses={201: out.DataQualityReportSerializer})
    def post(self, request) -> Response:
        since, until = time_range(request.query_params, default_hours=1)
        report = data_quality_report_create(since=since, until=until, actor=request.user)
        return Response(out.DataQualityReportSerializer(report).data, status=status.HTTP_201_CREATED)


class DriftFeatureListApi(generics.ListAPIView):
    """The drift features and their thresholds."""

    serializer_class = out.DriftFeatureSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.drift_feature_list()


class DriftFeatureDetailApi(generics.RetrieveUpdateAPIView):
    """One drift feature; operators change its thresholds."""

    serializer_class = out.DriftFeatureSerializer
    permission_classes = [Can("config.manage")]
    lookup_url_kwarg = "feature_id"

    def get_queryset(self):
        return selectors.drift_feature_list()

    def perform_update(self, serializer):
        serializer.instance = config.config_save(instance=serializer.instance, actor=self.request.user,
                                                 data=serializer.validated_data)


class DriftReportListApi(generics.ListAPIView):
    """Drift reports, newest first."""

    serializer_class = out.DriftReportSerializer

    def get_queryset(self):
        return selectors.drift_report_list()


class DriftReportDetailApi(generics.RetrieveAPIView):
    """One drift report with every feature's test and the reference-vs-current histograms."""

    serializer_class = out.DriftReportDetailSerializer
    lookup_url_kwarg = "report_id"

    def get_queryset(self):
        return selectors.drift_report_list()


class DriftRunApi(APIView):
    """Make a drift report now (operators): the current window against the production model's
    training snapshot (or an explicit reference window)."""

    permission_classes = [Can("config.manage")]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DriftRunInput"

        current_since = serializers.DateTimeField(required=False)
        current_until = serializers.DateTimeField(required=False)
        window_hours = serializers.FloatField(required=False, help_text=(
            "The current window's length up to current_until, instead of current_since (the portal's form)."))
        reference_since = serializers.DateTimeField(required=False)
        reference_until = serializers.DateTimeField(required=False)

        def validate(self, attrs):
            # the current window is checked by the service (monitoring.services.windows), for the portal too
            if bool(attrs.get("reference_since")) != bool(attrs.get("reference_until")):
                raise serializers.ValidationError("give both reference_since and reference_until, or neither")
            if attrs.get("reference_since") and attrs["reference_since"] >= attrs["reference_until"]:
                raise serializers.ValidationError("reference_since must be before reference_until")
            return attrs

    @extend_schema(request=InputSerializer, responses={201: out.DriftReportDetailSerializer})
    def post(self, request) -> Response:
        from monitoring.sources import Reference

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        reference = None
        if v.get("reference_since"):
            reference = Reference(since=v["reference_since"], until=v["reference_until"],
                                  description={"kind": "explicit window", "by": request.user.get_username()})
        report = drift_report_create(current_since=v.get("current_since"), current_until=v.get("current_until"),
                                     window_hours=v.get("window_hours"), reference=reference, actor=request.user)
        return Response(out.DriftReportDetailSerializer(report).data, status=status.HTTP_201_CREATED)


class DriftTrendApi(APIView):
    """Each feature's drift score over the recent drift reports (for the dashboard's drift chart).

    ``drift_score`` reads the same way for every test: higher is more drift, above 1 is drifted
    (−log10 p ÷ −log10 alpha for KS and chi-square, distance ÷ threshold for the distances)."""

    @extend_schema(parameters=[int_param("reports", 1, 1000, "How many reports (48).")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request) -> Response:
        count = _int_param(request.query_params, "reports", 48, high=1000)
        return Response(selectors.drift_trend(reports=count))


class FeedbackApi(APIView):
    """Feedback-loop snapshots over time and the trend test of each metric."""

    @extend_schema(parameters=[*RANGE_PARAMS[:2], OpenApiParameter(
        "hours", {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 366 * 24},
        description="Length of the range when `since` is not given (30 days).")], responses=OpenApiTypes.OBJECT)
    def get(self, request) -> Response:
        params = request.query_params
        since, until = time_range(params, default_hours=24 * 30, max_days=366)
        snapshots = selectors.feedback_snapshot_list(since=since, until=until)
        return Response({
            "since": since, "until": until,
            "snapshots": out.FeedbackLoopSnapshotSerializer(snapshots, many=True).data,
            "trends": feedback_trends(until=until),
        })


class FeedbackRunApi(APIView):
    """Recompute the latest feedback-loop buckets now (operators)."""

    permission_classes = [Can("config.manage")]

    @extend_schema(request=None, parameters=[OpenApiParameter("buckets", int)],
                   responses={201: out.FeedbackLoopSnapshotSerializer(many=True)})
    def post(self, request) -> Response:
        count = _int_param(request.query_params, "buckets", 2, high=90)
        snapshots = feedback_snapshots_update(buckets=count, actor=request.user)
        return Response(out.FeedbackLoopSnapshotSerializer(snapshots, many=True).data, status=status.HTTP_201_CREATED)


# --- alert rules, incidents, notifications -------------------------------------------------------

class MetricListApi(APIView):
    """The metrics an alert rule can watch, with their parameters."""

    @extend_schema(responses=inline_serializer("MonitoringMetric", {
        "name": serializers.CharField(), "label": serializers.CharField(), "unit": serializers.CharField(),
        "params": serializers.DictField(child=serializers.CharField()),
    }, many=True))
    def get(self, request) -> Response:
        return Response([{"name": s.name, "label": s.label, "unit": s.unit, "params": s.params}
                         for s in METRICS.values()])


class AlertRuleListApi(generics.ListCreateAPIView):
    """Alert rules with their current state (create: operators)."""

    serializer_class = out.AlertRuleSerializer
    permission_classes = [Can("config.manage")]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.alert_rule_list()

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        serializer.instance = alerts.alert_rule_create(actor=self.request.user, channels=channels, **data)


class AlertRuleDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """One alert rule (change, delete: operators)."""

    serializer_class = out.AlertRuleSerializer
    permission_classes = [Can("config.manage")]
    lookup_url_kwarg = "rule_id"

    def get_queryset(self):
        return selectors.alert_rule_list()

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        serializer.instance = alerts.alert_rule_update(rule=serializer.instance, actor=self.request.user,
                                                       channels=channels, **data)

    def perform_destroy(self, instance):
        if instance.incidents.exists():
            from portal.errors import Conflict

            raise Conflict("this rule has incidents; disable it instead of deleting it")
        config.config_delete(instance=instance, actor=self.request.user)


_EVALUATION_FIELDS = {
    "rule_id": serializers.IntegerField(), "rule": serializers.CharField(), "state": serializers.CharField(),
    "value": serializers.FloatField(allow_null=True), "incident_id": serializers.IntegerField(allow_null=True),
    "opened": serializers.BooleanField(), "error": serializers.CharField(),
}
EvaluationSerializer = inline_serializer("Evaluation", _EVALUATION_FIELDS)
EvaluationListSerializer = inline_serializer("EvaluationList", _EVALUATION_FIELDS, many=True)


class AlertRuleEvaluateApi(APIView):
    """Evaluate one rule now (operators), as beat does every minute."""

    permission_classes = [Can("incident.handle")]

    @extend_schema(request=None, responses=EvaluationSerializer, operation_id="monitoring_alert_rule_evaluate")
    def post(self, request, rule_id: int) -> Response:
        rule = get_object_or_404(selectors.alert_rule_list(), pk=rule_id)
        return Response(alerts.alert_rule_evaluate(rule=rule, actor=request.user, system=None).__dict__)


class AlertRulesEvaluateApi(APIView):
    """Evaluate every enabled rule now (operators)."""

    permission_classes = [Can("incident.handle")]

    @extend_schema(request=None, responses=EvaluationListSerializer, operation_id="monitoring_alert_rules_evaluate_all")
    def post(self, request) -> Response:
        return Response([e.__dict__ for e in alerts.alert_rules_evaluate(actor=request.user, system=None)])


class IncidentListApi(generics.ListAPIView):
    """Incidents, newest first; filter by status (open, acknowledged, resolved, active), severity, rule."""

    serializer_class = out.IncidentSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["active", *Incident.Status.values]),
                               OpenApiParameter("severity", str, enum=Severity.values),
                               id_param("rule"), text_param("metric")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        q = QueryParams(params)
        filters = {"severity": q.choice("severity", Severity.values), "metric": q.text("metric"),
                   "rule": _int_filter(params, "rule")}
        status = q.choice("status", ["active", *Incident.Status.values])
        if status == "active":
            filters["active"] = True
        elif status:
            filters["status"] = status
        return selectors.incident_list(filters=filters)


class IncidentDetailApi(generics.RetrieveAPIView):
    """One incident with its evidence, notes, notifications and timeline."""

    serializer_class = out.IncidentDetailSerializer
    lookup_url_kwarg = "incident_id"

    def get_queryset(self):
        return selectors.incident_list().prefetch_related("notes", "notifications")


class _IncidentCommand(APIView):
    permission_classes = [Can("incident.handle")]

    def incident(self, incident_id: int) -> Incident:
        return get_object_or_404(selectors.incident_list(), pk=incident_id)

    def answer(self, incident_id: int) -> Response:
        fresh = selectors.incident_list().prefetch_related("notes", "notifications").get(pk=incident_id)
        return Response(out.IncidentDetailSerializer(fresh).data)


class IncidentAcknowledgeApi(_IncidentCommand):
    """Acknowledge (take) an open incident; its review in the inbox is approved."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "IncidentAcknowledgeInput"

        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=out.IncidentDetailSerializer)
    def post(self, request, incident_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_acknowledge(incident=self.incident(incident_id), actor=request.user,
                                       comment=data.validated_data["comment"])
        return self.answer(incident_id)


class IncidentAnnotateApi(_IncidentCommand):
    """Add a note to the incident's timeline."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "IncidentAnnotateInput"

        text = serializers.CharField(max_length=5000, allow_blank=True, help_text="required (the service says so)")

    @extend_schema(request=InputSerializer, responses=out.IncidentDetailSerializer)
    def post(self, request, incident_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_annotate(incident=self.incident(incident_id), actor=request.user,
                                    text=data.validated_data["text"])
        return self.answer(incident_id)


class IncidentResolveApi(_IncidentCommand):
    """Resolve an incident, saying what was done."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "IncidentResolveInput"

        resolution = serializers.CharField(max_length=5000, allow_blank=True,
                                           help_text="required (the service says so)")

    @extend_schema(request=InputSerializer, responses=out.IncidentDetailSerializer)
    def post(self, request, incident_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_resolve(incident=self.incident(incident_id), actor=request.user,
                                   resolution=data.validated_data["resolution"])
        return self.answer(incident_id)


class ChannelListApi(generics.ListCreateAPIView):
    """Notification channels (create: operators)."""

    serializer_class = out.NotificationChannelSerializer
    permission_classes = [Can("config.manage")]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.notification_channel_list()

    @extend_schema(responses={201: out.NotificationChannelCreatedSerializer})
    def post(self, request, *args, **kwargs) -> Response:
        from monitoring.models import NotificationChannel

        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel, generated = notifications.notification_channel_save(
            channel=NotificationChannel(), actor=request.user, data=data.validated_data)
        # The generated secret is in this answer and nowhere else, ever (rotate to get a new one).
        return Response(out.NotificationChannelCreatedSerializer(channel, secret=generated).data,
                        status=status.HTTP_201_CREATED)


class ChannelDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """One notification channel (change, delete: operators)."""

    serializer_class = out.NotificationChannelSerializer
    permission_classes = [Can("config.manage")]
    lookup_url_kwarg = "channel_id"

    def get_queryset(self):
        return selectors.notification_channel_list()

    def perform_update(self, serializer):
        serializer.instance, generated = notifications.notification_channel_save(
            channel=serializer.instance, actor=self.request.user, data=serializer.validated_data)
        self._generated = generated

    @extend_schema(responses=out.NotificationChannelCreatedSerializer)
    def update(self, request, *args, **kwargs) -> Response:
        self._generated = None
        response = super().update(request, *args, **kwargs)
        if self._generated:  # a channel made a webhook just now: its new secret, shown this once
            response.data = {**response.data, "secret": self._generated}
        return response

    def perform_destroy(self, instance):
        config.config_delete(instance=instance, actor=self.request.user)


class ChannelTestApi(APIView):
    """Send a test message through a channel now; answers with the delivery's outcome."""

    permission_classes = [Can("config.manage")]

    @extend_schema(request=None, responses=out.NotificationSerializer)
    def post(self, request, channel_id: int) -> Response:
        channel = get_object_or_404(selectors.notification_channel_list(), pk=channel_id)
        notification = notifications.notification_channel_test(channel=channel, actor=request.user)
        return Response(out.NotificationSerializer(notification).data)


class ChannelRotateSecretApi(APIView):
    """Give a channel a new generated secret; the answer shows it, once (the old one stops signing)."""

    permission_classes = [Can("config.manage")]

    @extend_schema(request=None, responses=out.NotificationChannelCreatedSerializer)
    def post(self, request, channel_id: int) -> Response:
        channel = get_object_or_404(selectors.notification_channel_list(), pk=channel_id)
        secret = notifications.notification_channel_rotate_secret(channel=channel, actor=request.user)
        return Response(out.NotificationChannelCreatedSerializer(channel, secret=secret).data)


class NotificationListApi(generics.ListAPIView):
    """Notifications sent or pending, with attempts and errors."""

    serializer_class = out.NotificationSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Notification.Status.values), id_param("incident")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return selectors.notification_list(filters={"status": QueryParams(params).choice("status", Notification.Status.values),
                                                    "incident": _int_filter(params, "incident")})
