"""REST API routes of the audits app (mounted under /api/v1/)."""

from django.urls import path

from audits.api import views

urlpatterns = [
    path("audits/runs", views.AuditRunListApi.as_view(), name="api-audit-run-list"),
    path("audits/runs/<int:run_id>", views.AuditRunDetailApi.as_view(), name="api-audit-run-detail"),
    path("audits/runs/<int:run_id>/export", views.AuditRunExportApi.as_view(), name="api-audit-run-export"),
    path("audits/runs/<int:run_id>/signoff", views.AuditRunSignoffApi.as_view(), name="api-audit-run-signoff"),
    path("audits/findings", views.AuditFindingListApi.as_view(), name="api-audit-finding-list"),
    path("audits/findings/<int:finding_id>", views.AuditFindingDetailApi.as_view(), name="api-audit-finding-detail"),
    path("audits/findings/<int:finding_id>/acknowledge", views.AuditFindingAcknowledgeApi.as_view(),
         name="api-audit-finding-acknowledge"),
    path("audits/findings/<int:finding_id>/resolve", views.AuditFindingResolveApi.as_view(),
         name="api-audit-finding-resolve"),
    path("audits/findings/<int:finding_id>/waive", views.AuditFindingWaiveApi.as_view(),
         name="api-audit-finding-waive"),
    path("audits/gate/<int:version_id>", views.AuditReleaseGateApi.as_view(), name="api-audit-gate"),
    path("audits/schedules", views.AuditScheduleListApi.as_view(), name="api-audit-schedules"),
]
