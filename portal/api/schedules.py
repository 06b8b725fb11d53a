"""REST API of the beat schedules: list and read them (any role); create, change, enable or
disable, and delete them (``schedule.manage``). Each write is one call of
``portal.services.schedules``, which checks the task, its arguments and the schedule and logs."""

from __future__ import annotations

from typing import Any

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.filters import BoolFilter, TextFilter
from portal.permissions import Can
from portal.schedules import SCHEDULE_APPS, schedule_as_dict, schedule_list
from portal.services import schedules as schedule_services

WORK = "schedule.manage"


class ScheduleFilter(django_filters.FilterSet):
    app = django_filters.ChoiceFilter(choices=[(a, a) for a in SCHEDULE_APPS], method="by_app",
                                      help_text="the task's app (the first part of its name)")
    task = TextFilter(field_name="task", help_text="exact task name")
    enabled = BoolFilter(field_name="enabled")

    def by_app(self, queryset, name, value):
        return queryset.filter(task__startswith=f"{value}.")


class ScheduleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    task = serializers.CharField()
    listed = serializers.BooleanField(help_text="false: the task is not listed, so the schedule cannot run")
    args = serializers.JSONField()
    kwargs = serializers.JSONField()
    schedule = serializers.JSONField(help_text='{"interval": {"every", "period"}} or {"crontab": {...}}')
    schedule_text = serializers.CharField()
    enabled = serializers.BooleanField()
    description = serializers.CharField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    total_run_count = serializers.IntegerField()

    def to_representation(self, instance) -> dict[str, Any]:
        return super().to_representation(schedule_as_dict(instance))


class ScheduleInputSerializer(serializers.Serializer):
    """The fields a schedule is made of; the service checks their content (a listed task, the
    task's own arguments, an interval or a crontab that can happen) and refuses headers and
    routing overrides, which are accepted here only so that they are refused by name."""

    name = serializers.CharField(max_length=200)
    task = serializers.CharField(max_length=200)
    kwargs = serializers.JSONField(required=False, help_text="the task's named arguments")
    args = serializers.JSONField(required=False, help_text="refused unless empty: arguments go by name")
    interval = serializers.JSONField(required=False, allow_null=True,
                                     help_text='{"every": 10, "period": "minutes"} (seconds|minutes|hours|days)')
    crontab = serializers.JSONField(required=False, allow_null=True,
                                    help_text='{"minute": "30", "hour": "2", "day_of_month": "*", '
                                              '"month_of_year": "*", "day_of_week": "*", "timezone": "UTC"}')
    enabled = serializers.BooleanField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    headers = serializers.JSONField(required=False, help_text="refused unless {}")
    queue = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="refused")
    exchange = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="refused")
    routing_key = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="refused")
    priority = serializers.IntegerField(required=False, allow_null=True, help_text="refused")


def _input(request: Request, *, partial: bool) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise DrfValidationError({"non_field_errors": ["send a JSON object"]})
    unknown = sorted(set(request.data) - set(ScheduleInputSerializer().fields))
    if unknown:
        raise DrfValidationError({unknown[0]: ["unknown field"]})
    data = ScheduleInputSerializer(data=request.data, partial=partial)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


EXAMPLE = OpenApiExample("Nightly fairness audit", request_only=True, value={
    "name": "fairness at 02:30", "task": "audits.scheduled_audit", "kwargs": {"kind": "fairness"},
    "crontab": {"minute": "30", "hour": "2"}})


class ScheduleListApi(generics.ListAPIView):
    """The beat schedules by name; filter by app, task and enabled. POST creates one."""

    permission_classes = [Can(WORK)]
    serializer_class = ScheduleOutputSerializer
    filterset_class = ScheduleFilter
    ordering_fields = ["name"]
    search_fields = ["name", "task"]

    def get_queryset(self):
        return schedule_list()

    @extend_schema(request=ScheduleInputSerializer, responses={201: ScheduleOutputSerializer}, examples=[EXAMPLE],
                   summary="Create a schedule of a listed task (operator, admin)")
    def post(self, request: Request) -> Response:
        row = schedule_services.schedule_create(actor=request.user, **_input(request, partial=False))
        return Response(ScheduleOutputSerializer(row).data, status=status.HTTP_201_CREATED)


class ScheduleDetailApi(APIView):
    """One schedule. PATCH changes the fields given (``{"enabled": false}`` alone disables it);
    giving ``interval`` or ``crontab`` replaces the schedule. DELETE removes it."""

    permission_classes = [Can(WORK)]

    def _row(self, schedule_id: int):
        return get_object_or_404(schedule_list(), pk=schedule_id)

    @extend_schema(responses=ScheduleOutputSerializer)
    def get(self, request: Request, schedule_id: int) -> Response:
        return Response(ScheduleOutputSerializer(self._row(schedule_id)).data)

    @extend_schema(request=ScheduleInputSerializer(partial=True), responses=ScheduleOutputSerializer,
                   summary="Change, enable or disable a schedule (operator, admin)")
    def patch(self, request: Request, schedule_id: int) -> Response:
        row = self._row(schedule_id)
        changes = _input(request, partial=True)
        if set(changes) == {"enabled"}:
            row = schedule_services.schedule_set_enabled(actor=request.user, schedule=row, enabled=changes["enabled"])
        else:
            row = schedule_services.schedule_update(actor=request.user, schedule=row, **changes)
        return Response(ScheduleOutputSerializer(schedule_list().get(pk=row.pk)).data)

    @extend_schema(request=None, responses={204: None}, summary="Delete a schedule (operator, admin)")
    def delete(self, request: Request, schedule_id: int) -> Response:
        schedule_services.schedule_delete(actor=request.user, schedule=self._row(schedule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
