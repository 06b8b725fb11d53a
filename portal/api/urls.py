"""REST API routes of the portal shell."""

from django.urls import path

from portal.api import schedules, views

urlpatterns = [
    path("auth/token", views.TokenApi.as_view(), name="api-token"),
    path("me", views.MeApi.as_view(), name="api-me"),
    path("activity", views.ActivityLogListApi.as_view(), name="api-activity-list"),
    path("reviews", views.ReviewListApi.as_view(), name="api-review-list"),
    path("reviews/inbox", views.ReviewInboxApi.as_view(), name="api-review-inbox"),
    path("reviews/<int:review_id>", views.ReviewDetailApi.as_view(), name="api-review-detail"),
    path("reviews/<int:review_id>/decide", views.ReviewDecideApi.as_view(), name="api-review-decide"),
    path("schedules", schedules.ScheduleListApi.as_view(), name="api-schedule-list"),
    path("schedules/<int:schedule_id>", schedules.ScheduleDetailApi.as_view(), name="api-schedule-detail"),
]
