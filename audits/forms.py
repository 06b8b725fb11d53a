"""The audits' portal forms (start an audit; acknowledge, resolve or ask a waiver for a finding).
The fields parse what was typed; the rules are the services' (``audit_run_create``,
``finding_waiver_request``…), the same the REST API applies, and a refusal is drawn beside the
field it names (``portal.forms``)."""

from __future__ import annotations

import json
from datetime import datetime, time

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audits.models import AuditRun
from portal.forms import DateInput, PortalForm, Select, Textarea, TextInput


class AuditRunForm(PortalForm):
    """Kind, an optional model version, the window and (for exploratory runs) settings overrides."""

    kind = forms.ChoiceField(choices=[(k, k) for k in AuditRun.Kind.values], widget=Select())
    model_version = forms.IntegerField(label="Model version id", required=False,
                                       widget=TextInput(placeholder="(live)"),
                                       help_text="empty = the live deployment")
    window_hours = forms.FloatField(label="Window hours", required=False, widget=TextInput(placeholder="default"))
    overrides = forms.CharField(label="Overrides (JSON, makes the run exploratory)", required=False,
                                widget=TextInput(placeholder='{"FAIRNESS_BAND": [0.9, 1.1]}', **{"data-testid": "overrides"}))

    def clean_overrides(self) -> dict:
        raw = (self.cleaned_data.get("overrides") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"overrides must be a JSON object; {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError(f"overrides must be a JSON object; got {raw!r}")
        return value


def parse_expiry(raw: str) -> datetime | None:
    """A date (the end of that day, local time) or a date and time; None when it is neither."""
    raw = (raw or "").strip()
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            return None
        value = datetime.combine(day, time(23, 59))
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


class ExpiryField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        parsed = parse_expiry(value)
        if parsed is None:
            raise forms.ValidationError(f"expires_at must be a date (YYYY-MM-DD) or a time; got {value!r}")
        return parsed


class WaiverForm(PortalForm):
    justification = forms.CharField(required=False, widget=Textarea(rows=2, placeholder="Why the risk is accepted"),
                                    help_text="at least 20 characters")
    expires_at = ExpiryField(label="Expires", required=False, widget=DateInput())


class CommentForm(PortalForm):
    comment = forms.CharField(required=False, widget=Textarea(rows=2))

    def __init__(self, *args, placeholder: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if placeholder:
            self.fields["comment"].widget.attrs["placeholder"] = placeholder
