"""Portal pages of the audits app (mounted under /portal/)."""

from django.contrib import admin
from django.urls import path

from audits import views

app_name = "audits"
urlpatterns = [
    path("audits/", admin.site.admin_view(views.AuditOverviewView.as_view()), name="overview"),
    path("audits/runs/<int:pk>/", admin.site.admin_view(views.AuditRunView.as_view()), name="run"),
    path("audits/runs/<int:pk>/export.json", admin.site.admin_view(views.AuditRunExportView.as_view()),
         name="run-export"),
    path("audits/runs/<int:pk>/report/", admin.site.admin_view(views.AuditRunPrintView.as_view()), name="run-report"),
    path("audits/findings/", admin.site.admin_view(views.AuditFindingListView.as_view()), name="findings"),
    path("audits/findings/<int:pk>/", admin.site.admin_view(views.AuditFindingView.as_view()), name="finding"),
]
