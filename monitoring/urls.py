"""Portal pages of the monitoring app (mounted under /portal/)."""

from django.contrib import admin
from django.urls import path

from monitoring import views

app_name = "monitoring"


def _page(view):
    return admin.site.admin_view(view.as_view())


urlpatterns = [
    path("monitoring/", _page(views.DashboardView), name="dashboard"),
    path("monitoring/slos/", _page(views.SLOView), name="slos"),
    path("monitoring/incidents/", _page(views.IncidentListView), name="incidents"),
    path("monitoring/incidents/<int:pk>/", _page(views.IncidentDetailView), name="incident"),
    path("monitoring/drift/", _page(views.DriftListView), name="drift"),
    path("monitoring/drift/<int:pk>/", _page(views.DriftReportView), name="drift_report"),
    path("monitoring/data-quality/", _page(views.DataQualityListView), name="data_quality"),
    path("monitoring/data-quality/<int:pk>/", _page(views.DataQualityReportView), name="data_quality_report"),
    path("monitoring/feedback/", _page(views.FeedbackView), name="feedback"),
    path("monitoring/online-quality/", _page(views.OnlineQualityView), name="online_quality"),
    path("monitoring/rules/", _page(views.RulesView), name="rules"),
]
