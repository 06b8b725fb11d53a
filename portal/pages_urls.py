"""Portal pages of the shell (mounted under /portal/)."""

from django.contrib import admin
from django.urls import path

from portal import pages, schedules_pages

app_name = "portal"
urlpatterns = [
    path("inbox/", admin.site.admin_view(pages.InboxView.as_view()), name="inbox"),
    path("inbox/<int:pk>/", admin.site.admin_view(pages.ReviewDetailView.as_view()), name="review"),
    path("activity/", admin.site.admin_view(pages.ActivityLogView.as_view()), name="activity"),
    path("account/token/", admin.site.admin_view(pages.ApiTokenView.as_view()), name="api-token"),
    path("schedules/", admin.site.admin_view(schedules_pages.SchedulesView.as_view()), name="schedules"),
    path("schedules/<int:pk>/", admin.site.admin_view(schedules_pages.ScheduleEditView.as_view()), name="schedule"),
]
