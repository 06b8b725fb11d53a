"""Portal forms: the fields only turn typed text into values; every rule (ranges, positive
durations, known choices) lives in the service the REST API calls too, so the two routes refuse the
same input with the same sentence. A refusal is put beside the field it names (``UsherError.field``
or ``detail["field"]``), the page is drawn again with everything typed still there, and the answer
is a 400 (``PortalPage.form_invalid``).

Widgets are Unfold's, so a portal form looks like the admin's forms around it; templates draw the
fields with ``portal/_field.html`` and the summary with ``portal/_form_errors.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanWidget,
)

from portal.errors import UsherError

T = TypeVar("T")

__all__ = [
    "PortalForm", "error_field", "TextInput", "Textarea", "Select", "Checkboxes", "Checkbox", "DateTimeInput", "DateInput",
]


def TextInput(**attrs: Any) -> UnfoldAdminTextInputWidget:  # noqa: N802 - reads like a widget class
    return UnfoldAdminTextInputWidget(attrs=attrs)


def Textarea(rows: int = 2, **attrs: Any) -> UnfoldAdminTextareaWidget:  # noqa: N802
    return UnfoldAdminTextareaWidget(attrs={"rows": rows, **attrs})


def Select(**attrs: Any) -> UnfoldAdminSelectWidget:  # noqa: N802
    return UnfoldAdminSelectWidget(attrs=attrs)


def Checkboxes(**attrs: Any) -> UnfoldAdminCheckboxSelectMultipleWidget:  # noqa: N802
    return UnfoldAdminCheckboxSelectMultipleWidget(attrs=attrs)


def Checkbox(**attrs: Any) -> UnfoldBooleanWidget:  # noqa: N802
    return UnfoldBooleanWidget(attrs=attrs)


def DateTimeInput(**attrs: Any) -> UnfoldAdminTextInputWidget:  # noqa: N802
    """The browser's date-and-time picker, in Unfold's input style (the text is parsed by the form)."""
    widget = UnfoldAdminTextInputWidget(attrs={"placeholder": "YYYY-MM-DD HH:MM", **attrs})
    widget.input_type = "datetime-local"
    return widget


def DateInput(**attrs: Any) -> UnfoldAdminTextInputWidget:  # noqa: N802
    """The browser's date picker, in Unfold's input style (the text is parsed by the form)."""
    widget = UnfoldAdminTextInputWidget(attrs={"placeholder": "YYYY-MM-DD", **attrs})
    widget.input_type = "date"
    return widget


def unfold_widgets(form: forms.BaseForm) -> forms.BaseForm:
    """Give a form built with Django's plain widgets Unfold's (same choices and attributes), so a
    form shared with the admin (the schedule form) looks like the portal's other forms."""
    for f in form.fields.values():
        old = f.widget
        attrs = {k: v for k, v in old.attrs.items() if k != "class"}
        if isinstance(old, forms.CheckboxSelectMultiple):
            new = Checkboxes(**attrs)
        elif isinstance(old, forms.Select):
            new = Select(**attrs)
        elif isinstance(old, forms.Textarea):
            new = Textarea(**attrs)
        elif isinstance(old, forms.CheckboxInput):
            new = Checkbox(**attrs)
        elif isinstance(old, forms.HiddenInput):
            continue
        else:
            new = TextInput(**attrs)
        if hasattr(old, "choices"):
            new.choices = old.choices
        new.is_required = old.is_required
        f.widget = new
    return form


def error_field(exc: UsherError) -> str | None:
    """The input a domain error is about, in the service's names, or None."""
    if getattr(exc, "field", None):
        return exc.field
    detail = exc.detail
    if isinstance(detail, dict) and isinstance(detail.get("field"), str):
        return detail["field"]
    return None


class PortalForm(forms.Form):
    """A form whose checks are the service's. ``service_fields`` maps a service's name for an input
    (``"split.test_fraction"``) to this form's field (``"test_fraction"``); a prefix match counts
    (``"hyperparameters.n_factors"`` → ``"hyperparameters"``)."""

    service_fields: dict[str, str] = {}
    #: the HTTP status of the page drawn again with this form's errors
    status: int = 400

    def field_for(self, name: str | None) -> str | None:
        while name:
            mapped = self.service_fields.get(name, name)
            if mapped in self.fields:
                return mapped
            name = name.rpartition(".")[0]
        return None

    def refuse(self, exc: UsherError) -> None:
        """Show a service's refusal beside the field it names (at the top when it names none)."""
        if exc.status != 400:
            self.status = exc.status
        self.add_error(self.field_for(error_field(exc)), exc.message)

    def submit(self, fn: Callable[[dict], T], *, actor: Any = None, work: str | None = None,
               target: Any = None) -> T | None:
        """``fn(cleaned_data)`` when the fields parse; its refusal lands on the form. None when refused.

        With ``work``, a role that may not do it is refused (and the refusal logged) before the
        fields are read, whatever they hold, as the API's ``Can(work)`` does; the service checks again."""
        try:
            if work is not None:
                from portal.permissions import require

                require(actor, work, target=target)
            if not self.is_valid():
                return None
            return fn(self.cleaned_data)
        except UsherError as exc:
            if not hasattr(self, "cleaned_data"):
                self.cleaned_data = {}
            self.refuse(exc)
            return None

    def error_summary(self) -> list[tuple[str, str]]:
        """(label, message) for every error, fields in form order (the summary at the top says the same)."""
        rows = [("", str(e)) for e in self.non_field_errors()]
        for field in self:
            rows.extend((str(field.label), str(e)) for e in field.errors)
        return rows


class ReviewDecisionForm(PortalForm):
    """The comment of a review's decision (the decision is the button pressed); whether it is
    required, and who may decide, is ``review_request_decide``'s to say."""

    comment = forms.CharField(required=False, widget=Textarea(rows=3, placeholder=(
        "Comment (required to reject or request changes)")))
