"""The schedule form shared by the portal's Schedules page and the admin: it reads the fields into
the schedule service's parameters and shows the service's own refusal beside the field it names.
It decides nothing itself: ``portal.services.schedules`` checks, writes and logs."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django_celery_beat.models import PeriodicTask

from portal.errors import UsherError
from portal.schedules import CRONTAB_FIELDS, PERIOD_SECONDS, schedulable_tasks, schedule_spec

KINDS = [("interval", "every … (interval)"), ("crontab", "at … (crontab)")]


def _task_choices() -> list[tuple[str, str]]:
    return [(t.name, f"{t.name} — {t.label}") for t in schedulable_tasks()]


def _argument_help() -> str:
    lines = []
    for t in schedulable_tasks():
        if t.kwargs:
            args = ", ".join(f"{k} ({'required, ' if a.required else ''}{a.help or a.type.__name__})"
                             for k, a in t.kwargs.items())
            lines.append(f"{t.name}: {args}")
    return "A JSON object of named arguments, {} for none. " + "; ".join(lines)


class ScheduleForm(forms.Form):
    """Name, a listed task, its arguments as JSON, an interval or a crontab, enabled, description."""

    name = forms.CharField(max_length=200)
    task = forms.ChoiceField(choices=_task_choices)
    kwargs = forms.CharField(label="Arguments (JSON)", required=False, initial="{}",
                             widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(label="Schedule", choices=KINDS, initial="interval")
    every = forms.IntegerField(required=False, min_value=1, max_value=10**6)
    period = forms.ChoiceField(required=False, choices=[(p, p) for p in PERIOD_SECONDS], initial="minutes")
    minute = forms.CharField(required=False, initial="*", max_length=240)
    hour = forms.CharField(required=False, initial="*", max_length=96)
    day_of_month = forms.CharField(required=False, initial="*", max_length=124)
    month_of_year = forms.CharField(required=False, initial="*", max_length=64)
    day_of_week = forms.CharField(required=False, initial="*", max_length=64)
    timezone = forms.CharField(required=False, initial="UTC", max_length=63)
    enabled = forms.BooleanField(required=False, initial=True)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    schedule_fields = ["name", "task", "kwargs", "kind", "every", "period", *CRONTAB_FIELDS, "timezone",
                       "enabled", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kwargs"].help_text = _argument_help()

    @staticmethod
    def initial_for(row: PeriodicTask) -> dict[str, Any]:
        """The form's initial values for an existing schedule."""
        spec = schedule_spec(row)
        initial: dict[str, Any] = {"name": row.name, "task": row.task, "kwargs": row.kwargs or "{}",
                                   "enabled": row.enabled, "description": row.description}
        if "crontab" in spec:
            initial.update(kind="crontab", **spec["crontab"])
        elif "interval" in spec:
            initial.update(kind="interval", **spec["interval"])
        return initial

    def service_params(self) -> dict[str, Any]:
        """The cleaned fields as ``schedule_create`` / ``schedule_update`` keyword arguments."""
        data = self.cleaned_data
        params: dict[str, Any] = {"name": data["name"], "task": data["task"], "kwargs": data.get("kwargs") or "{}",
                                  "enabled": bool(data.get("enabled")), "description": data.get("description", "")}
        if data.get("kind") == "crontab":
            params["crontab"] = {f: (data.get(f) or "*") for f in CRONTAB_FIELDS}
            params["crontab"]["timezone"] = data.get("timezone") or "UTC"
        else:
            params["interval"] = {"every": data.get("every"), "period": data.get("period") or "minutes"}
        return params

    def _field_of(self, exc: UsherError) -> str | None:
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        if "argument" in detail:
            return "kwargs"
        field = str(detail.get("field", ""))
        if field.startswith("crontab."):
            field = field.split(".", 1)[1]
        elif field.startswith("interval."):
            field = field.split(".", 1)[1]
        elif field in ("interval", "crontab", "schedule"):
            field = "kind"
        return field if field in self.fields else None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        if data.get("kwargs", "").strip():
            try:
                json.loads(data["kwargs"])
            except ValueError as exc:
                self.add_error("kwargs", f"not valid JSON: {exc}")
                return data
        if data.get("kind") == "interval" and data.get("every") is None:
            self.add_error("every", "an interval needs a number of periods")
            return data
        from portal.services.schedules import schedule_check

        try:
            schedule_check(**self.service_params())
        except UsherError as exc:
            self.add_error(self._field_of(exc), exc.message)
        return data


class PeriodicTaskAdminForm(ScheduleForm, forms.ModelForm):
    """The same form for the admin's change page (a ModelForm, as the admin wants one); saved by
    the admin through the service, never by ``form.save()``."""

    class Meta:
        model = PeriodicTask
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial.update(self.initial_for(self.instance))

    def validate_unique(self) -> None:
        # The service refuses a duplicate name (409); the model's own check also demands a
        # schedule row, which the service chooses.
        return None
