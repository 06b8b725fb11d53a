"""Monitoring's portal forms (a drift or data-quality report now; an incident's comment, note or
resolution). The fields parse what was typed; the rules are the services' (the window's in
``monitoring.services.windows``), the same the REST API applies, and a refusal is drawn beside the
field it names (``portal.forms``)."""

from __future__ import annotations

from django import forms

from portal.forms import PortalForm, Textarea, TextInput


class DriftRunForm(PortalForm):
    hours = forms.FloatField(label="Current window, hours", required=False, initial=24, widget=TextInput(),
                             help_text="up to now; empty = the configured window")

    service_fields = {"window_hours": "hours"}


class DataQualityRunForm(PortalForm):
    minutes = forms.FloatField(label="Window, minutes", required=False, initial=60, widget=TextInput(),
                               help_text="up to now; empty = the configured window")

    service_fields = {"window_minutes": "minutes"}


class IncidentActionForm(PortalForm):
    text = forms.CharField(label="Comment, note or resolution", required=False, widget=Textarea(rows=3))

    service_fields = {"resolution": "text", "comment": "text"}
