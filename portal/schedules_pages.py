"""The portal's Schedules page: every beat schedule (task, arguments, schedule in words, enabled,
last run), a form to add or edit one of a listed task, and enable, disable, run-now and delete
buttons. Every role reads it; each post goes through ``portal.services.schedules``, which checks
``schedule.manage`` and logs, and a refusal is shown as a message."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from portal import selectors
from portal.errors import PermissionDenied, UsherError
from portal.forms import unfold_widgets
from portal.pages import PortalPage
from portal.permissions import may, require
from portal.schedule_forms import ScheduleForm
from portal.schedules import SCHEDULE_APPS as APPS
from portal.schedules import schedulable_tasks, schedule_as_dict, schedule_list
from portal.services import schedules as schedule_services


def _styled(form: ScheduleForm) -> ScheduleForm:
    return unfold_widgets(form)


def _shown(row) -> dict:
    data = schedule_as_dict(row)
    data["kwargs_text"] = json.dumps(data["kwargs"], sort_keys=True)
    return data


def _app_filter(request: HttpRequest) -> str:
    app = request.GET.get("app", "")
    return app if app in APPS else ""


def _may_post(request: HttpRequest) -> bool:
    """Refuse (logged, as the service would) before reading the form, so a viewer's post is a
    refusal whatever it contains; the service checks again."""
    try:
        require(request.user, "schedule.manage")
    except PermissionDenied as exc:
        messages.error(request, exc.message)
        return False
    return True


class SchedulesView(PortalPage):
    """The list, filtered by ``?app=`` (the task's app), and the form for a new schedule."""

    template_name = "portal/schedules.html"
    title = "Schedules"

    def get_context_data(self, form: ScheduleForm | None = None, **kwargs):
        context = super().get_context_data(**kwargs)
        app = _app_filter(self.request)
        context.update({
            "schedules": [_shown(row) for row in schedule_list(filters={"app": app})],
            "app": app, "apps": APPS,
            "may_manage": may(self.request.user, "schedule.manage"),
            "form": form or _styled(ScheduleForm()),
            "tasks": schedulable_tasks(),
        })
        return context

    def _back(self, request: HttpRequest) -> HttpResponse:
        app = _app_filter(request)
        return redirect(reverse("portal:schedules") + (f"?app={app}" if app else ""))

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        if not _may_post(request):
            return self._back(request)
        if action == "create":
            form = _styled(ScheduleForm(request.POST))
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(form=form), status=400)
            try:
                row = schedule_services.schedule_create(actor=request.user, **form.service_params())
            except UsherError as exc:
                form.add_error(form._field_of(exc), exc.message)
                return self.render_to_response(self.get_context_data(form=form), status=exc.status)
            messages.success(request, f"Schedule {row.name!r} created.")
            return self._back(request)
        services = {
            "enable": (schedule_services.schedule_set_enabled, {"enabled": True}, "enabled"),
            "disable": (schedule_services.schedule_set_enabled, {"enabled": False}, "disabled"),
            "run": (schedule_services.schedule_run_now, {}, "sent to the worker"),
            "delete": (schedule_services.schedule_delete, {}, "deleted"),
        }
        if action not in services:
            messages.error(request, "Unknown action: choose create, enable, disable, run or delete.")
            return self._back(request)
        try:
            pk = int(request.POST.get("schedule", ""))
        except ValueError:
            messages.error(request, "Choose a schedule.")
            return self._back(request)
        service, extra, done = services[action]
        try:
            service(actor=request.user, schedule=pk, **extra)
            messages.success(request, f"Schedule #{pk} {done}.")
        except UsherError as exc:
            messages.error(request, f"Schedule #{pk}: {exc.message}")
        return self._back(request)


class ScheduleEditView(PortalPage):
    """One schedule: its form (for those who may manage schedules) and its history."""

    template_name = "portal/schedule_edit.html"
    title = "Schedule"

    def get_context_data(self, form: ScheduleForm | None = None, **kwargs):
        context = super().get_context_data(**kwargs)
        row = get_object_or_404(schedule_list(), pk=self.kwargs["pk"])
        context.update({
            "schedule": _shown(row),
            "may_manage": may(self.request.user, "schedule.manage"),
            "form": form or _styled(ScheduleForm(initial=ScheduleForm.initial_for(row))),
            "history": selectors.activity_log_list(
                filters={"target_type": "django_celery_beat.periodictask", "target_id": row.pk}).order_by("seq"),
            "title": f"Schedule: {row.name}",
        })
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(schedule_list(), pk=pk)
        if not _may_post(request):
            return redirect("portal:schedule", pk=pk)
        form = _styled(ScheduleForm(request.POST))
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            schedule_services.schedule_update(actor=request.user, schedule=pk, **form.service_params())
        except UsherError as exc:
            form.add_error(form._field_of(exc), exc.message)
            return self.render_to_response(self.get_context_data(form=form), status=exc.status)
        messages.success(request, "Schedule saved.")
        return redirect("portal:schedule", pk=pk)
