"""REST API routes of the monitoring app (mounted under /api/v1/)."""

from django.urls import path

from monitoring.api import views

p = "monitoring/"
urlpatterns = [
    path(f"{p}summary", views.SummaryApi.as_view(), name="api-monitoring-summary"),
    path(f"{p}telemetry", views.TelemetrySeriesApi.as_view(), name="api-monitoring-telemetry"),
    path(f"{p}telemetry/minutes", views.TelemetryMinuteListApi.as_view(), name="api-monitoring-telemetry-minutes"),
    path(f"{p}slos", views.SLOListApi.as_view(), name="api-monitoring-slo-list"),
    path(f"{p}slos/status", views.SLOStatusApi.as_view(), name="api-monitoring-slo-status"),
    path(f"{p}slos/<int:slo_id>", views.SLODetailApi.as_view(), name="api-monitoring-slo-detail"),
    path(f"{p}online-quality", views.OnlineQualityApi.as_view(), name="api-monitoring-online-quality"),
    path(f"{p}data-quality", views.DataQualityReportListApi.as_view(), name="api-monitoring-dq-list"),
    path(f"{p}data-quality/run", views.DataQualityRunApi.as_view(), name="api-monitoring-dq-run"),
    path(f"{p}data-quality/<int:report_id>", views.DataQualityReportDetailApi.as_view(), name="api-monitoring-dq-detail"),
    path(f"{p}drift/features", views.DriftFeatureListApi.as_view(), name="api-monitoring-drift-features"),
    path(f"{p}drift/features/<int:feature_id>", views.DriftFeatureDetailApi.as_view(),
         name="api-monitoring-drift-feature"),
    path(f"{p}drift/reports", views.DriftReportListApi.as_view(), name="api-monitoring-drift-list"),
    path(f"{p}drift/reports/<int:report_id>", views.DriftReportDetailApi.as_view(), name="api-monitoring-drift-detail"),
    path(f"{p}drift/run", views.DriftRunApi.as_view(), name="api-monitoring-drift-run"),
    path(f"{p}drift/trend", views.DriftTrendApi.as_view(), name="api-monitoring-drift-trend"),
    path(f"{p}feedback", views.FeedbackApi.as_view(), name="api-monitoring-feedback"),
    path(f"{p}feedback/run", views.FeedbackRunApi.as_view(), name="api-monitoring-feedback-run"),
    path(f"{p}metrics", views.MetricListApi.as_view(), name="api-monitoring-metrics"),
    path(f"{p}alert-rules", views.AlertRuleListApi.as_view(), name="api-monitoring-rule-list"),
    path(f"{p}alert-rules/evaluate", views.AlertRulesEvaluateApi.as_view(), name="api-monitoring-rules-evaluate"),
    path(f"{p}alert-rules/<int:rule_id>", views.AlertRuleDetailApi.as_view(), name="api-monitoring-rule-detail"),
    path(f"{p}alert-rules/<int:rule_id>/evaluate", views.AlertRuleEvaluateApi.as_view(),
         name="api-monitoring-rule-evaluate"),
    path(f"{p}incidents", views.IncidentListApi.as_view(), name="api-monitoring-incident-list"),
    path(f"{p}incidents/<int:incident_id>", views.IncidentDetailApi.as_view(), name="api-monitoring-incident-detail"),
    path(f"{p}incidents/<int:incident_id>/acknowledge", views.IncidentAcknowledgeApi.as_view(),
         name="api-monitoring-incident-ack"),
    path(f"{p}incidents/<int:incident_id>/annotate", views.IncidentAnnotateApi.as_view(),
         name="api-monitoring-incident-annotate"),
    path(f"{p}incidents/<int:incident_id>/resolve", views.IncidentResolveApi.as_view(),
         name="api-monitoring-incident-resolve"),
    path(f"{p}channels", views.ChannelListApi.as_view(), name="api-monitoring-channel-list"),
    path(f"{p}channels/<int:channel_id>", views.ChannelDetailApi.as_view(), name="api-monitoring-channel-detail"),
    path(f"{p}channels/<int:channel_id>/test", views.ChannelTestApi.as_view(), name="api-monitoring-channel-test"),
    path(f"{p}channels/<int:channel_id>/rotate-secret", views.ChannelRotateSecretApi.as_view(),
         name="api-monitoring-channel-rotate-secret"),
    path(f"{p}notifications", views.NotificationListApi.as_view(), name="api-monitoring-notifications"),
]
