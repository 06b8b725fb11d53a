"""Admin of Celery beat's schedules and results, in the portal's style (imported by portal/admin.py).

Every change to a schedule goes through ``portal.services.schedules`` (the same checks and
activity-log entry as the API and the portal's Schedules page): the change form, the enable,
disable and toggle actions, "run now" (listed tasks only, logged) and delete. Interval and crontab
rows are read only: they can be shared by several schedules, so the service picks or creates the
row a schedule needs and never edits one. Solar and clocked schedules are not offered.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django_celery_beat.admin import PeriodicTaskInline
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from django_celery_results.admin import GroupResultAdmin as BaseGroupResultAdmin
from django_celery_results.admin import TaskResultAdmin as BaseTaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult
from unfold.admin import TabularInline

from portal.admin_mixins import ModelAdmin, ReadOnlyAdmin
from portal.errors import PermissionDenied, UsherError
from portal.permissions import may
from portal.schedule_forms import PeriodicTaskAdminForm
from portal.schedules import schedule_words
from portal.services import schedules as schedule_services

for _model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule, TaskResult,
               GroupResult):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(ModelAdmin):
    form = PeriodicTaskAdminForm
    list_display = ["name", "task", "kwargs", "schedule_in_words", "enabled", "last_run_at", "total_run_count"]
    list_filter = ["enabled", "task"]
    search_fields = ["name", "task"]
    actions = ["enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"]
    fieldsets = (
        (None, {"fields": ("name", "task", "kwargs", "enabled", "description")}),
        ("Schedule", {"fields": ("kind", "every", "period", "minute", "hour", "day_of_month", "month_of_year",
                                 "day_of_week", "timezone")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("interval", "crontab", "solar", "clocked")

    @admin.display(description="schedule")
    def schedule_in_words(self, obj: PeriodicTask) -> str:
        return schedule_words(obj)

    # Changing needs both the admin's model permission and the work itself (the service checks again).
    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and may(request.user, "schedule.manage")

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may(request.user, "schedule.manage")

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may(request.user, "schedule.manage")

    def save_form(self, request, form, change):
        params = form.service_params()
        try:
            if change:
                return schedule_services.schedule_update(actor=request.user, schedule=form.instance.pk, **params)
            return schedule_services.schedule_create(actor=request.user, **params)
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc

    def save_model(self, request, obj, form, change) -> None:
        return  # written by save_form through the service

    def save_related(self, request, form, formsets, change) -> None:
        return

    def delete_model(self, request, obj) -> None:
        schedule_services.schedule_delete(actor=request.user, schedule=obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self._each(request, obj, schedule_services.schedule_delete, "deleted")

    def _each(self, request, obj, service, done: str, **kwargs) -> bool:
        try:
            service(actor=request.user, schedule=obj, **kwargs)
        except UsherError as exc:
            self.message_user(request, f"{obj.name}: {exc.message}", level=messages.ERROR)
            return False
        self.message_user(request, f"{obj.name}: {done}.")
        return True

    @admin.action(description="Enable selected schedules", permissions=["schedule_manage"])
    def enable_tasks(self, request, queryset) -> None:
        for obj in queryset:
            self._each(request, obj, schedule_services.schedule_set_enabled, "enabled", enabled=True)

    @admin.action(description="Disable selected schedules", permissions=["schedule_manage"])
    def disable_tasks(self, request, queryset) -> None:
        for obj in queryset:
            self._each(request, obj, schedule_services.schedule_set_enabled, "disabled", enabled=False)

    @admin.action(description="Toggle selected schedules", permissions=["schedule_manage"])
    def toggle_tasks(self, request, queryset) -> None:
        for obj in queryset:
            self._each(request, obj, schedule_services.schedule_set_enabled,
                       "disabled" if obj.enabled else "enabled", enabled=not obj.enabled)

    @admin.action(description="Run selected schedules now (listed tasks only)", permissions=["schedule_manage"])
    def run_tasks(self, request, queryset) -> None:
        for obj in queryset:
            self._each(request, obj, schedule_services.schedule_run_now, "sent")


class ReadOnlyScheduleAdmin(ReadOnlyAdmin):
    """Shared interval or crontab rows: shown with the schedules using them, never edited here."""

    class UsedBy(PeriodicTaskInline, TabularInline):
        pass

    inlines = [UsedBy]


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(ReadOnlyScheduleAdmin):
    list_display = ["__str__", "every", "period"]


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(ReadOnlyScheduleAdmin):
    list_display = ["__str__", "human_readable"]


@admin.register(TaskResult)
class TaskResultAdmin(BaseTaskResultAdmin, ModelAdmin):
    pass


@admin.register(GroupResult)
class GroupResultAdmin(BaseGroupResultAdmin, ModelAdmin):
    pass
