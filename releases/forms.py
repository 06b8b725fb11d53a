"""The releases' portal forms (promotion request, production rollback, experiments, shadow). The
fields parse what was typed; every rule is the service's (``validate_canary_plan``,
``require_reason``, ``experiment_create``…), the same the REST API applies, and a refusal is drawn
beside the field it names (``portal.forms``)."""

from __future__ import annotations

from django import forms

from portal.forms import Checkbox, PortalForm, Select, Textarea, TextInput
from recommender.models import ModelVersion
from recommender.registry.selectors import model_version_list

ARM_ROWS = 4


def _version_choices(queryset) -> list[tuple[int, str]]:
    return [(v.pk, f"{v} ({v.algorithm}, {v.get_status_display()})") for v in queryset]


class VersionChoiceField(forms.TypedChoiceField):
    """A model version among the page's list (a known choice); the service still checks its status."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", Select())
        kwargs.setdefault("error_messages", {"required": "choose a model version",
                                             "invalid_choice": "model version #%(value)s is not one of those listed"})
        super().__init__(coerce=int, **kwargs)

    def set_versions(self, queryset) -> None:
        self.choices = _version_choices(queryset)

    def version(self, value: int) -> ModelVersion:
        return ModelVersion.objects.get(pk=value)


def _reason_field(label: str = "Reason", rows: int = 2) -> forms.CharField:
    # required by the service (require_reason), whose sentence the form shows
    return forms.CharField(label=label, required=False, widget=Textarea(rows=rows))


class PromotionRequestForm(PortalForm):
    """A candidate (or approved) version, why, and the canary plan (steps, seconds between steps)."""

    version = VersionChoiceField(label="Model version")
    reason = _reason_field("Why should it reach production?")
    canary_steps = forms.CharField(label="Canary steps (percent)", required=False, widget=TextInput(),
                                   help_text="comma-separated, increasing, ending at 100; empty = the default")
    canary_interval_seconds = forms.IntegerField(label="Seconds between steps", required=False, widget=TextInput(),
                                                 help_text="from 10 to 604800 (a week); empty = the default")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].set_versions(
            model_version_list().filter(status__in=["candidate", "approved"]).order_by("status", "-pk")[:100])

    def service_params(self) -> dict:
        """``promotion_request_create``'s arguments, as the API passes them."""
        data = self.cleaned_data
        steps = [s.strip() for s in (data.get("canary_steps") or "").split(",") if s.strip()]
        return {"version": self.fields["version"].version(data["version"]), "reason": data.get("reason", ""),
                "canary_steps": steps or None, "canary_interval_seconds": data.get("canary_interval_seconds")}


class ReasonForm(PortalForm):
    """A reason and nothing else (rolling production back, stopping a shadow, cancelling…)."""

    reason = forms.CharField(label="Reason", required=False, widget=TextInput())

    def __init__(self, *args, placeholder: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if placeholder:
            self.fields["reason"].widget.attrs["placeholder"] = placeholder


class ShadowStartForm(PortalForm):
    version = VersionChoiceField(label="Model version")
    reason = forms.CharField(label="Reason", required=False, widget=TextInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].set_versions(model_version_list().exclude(status__in=["rejected", "archived"])[:100])


class ExperimentForm(PortalForm):
    """A name, a hypothesis, up to four arms (slug, version, % of traffic; one control), the
    minimum detectable effect and α. Empty arm rows are left out."""

    name = forms.CharField(max_length=120, required=False, widget=TextInput())
    hypothesis = forms.CharField(required=False, widget=Textarea(rows=2))
    control = forms.TypedChoiceField(coerce=int, choices=[(i, f"arm {i + 1}") for i in range(ARM_ROWS)],
                                     initial=0, widget=Select(), label="Control arm")
    mde = forms.FloatField(label="Minimum detectable effect", required=False, initial=0.02, widget=TextInput(),
                           help_text="in (0, 1); empty = 0.02")
    alpha = forms.FloatField(label="α", required=False, initial=0.05, widget=TextInput(),
                             help_text="in (0, 0.5); empty = the configured α")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        versions = _version_choices(model_version_list().exclude(status__in=["rejected", "archived"])[:100])
        defaults = {0: ("control", 50), 1: ("treatment", 50)}
        for i in range(ARM_ROWS):
            name, share = defaults.get(i, ("", None))
            self.fields[f"arm{i}_name"] = forms.CharField(label=f"Arm {i + 1}", required=False, initial=name,
                                                          widget=TextInput())
            self.fields[f"arm{i}_version"] = forms.TypedChoiceField(
                label="Version", coerce=int, choices=versions, required=False, widget=Select(),
                error_messages={"invalid_choice": "model version #%(value)s is not one of those listed"})
            self.fields[f"arm{i}_allocation"] = forms.IntegerField(label="% of traffic", required=False,
                                                                   initial=share, widget=TextInput())
        self.rows: list[int] = []  # the form's row of each arm sent to the service

    def arm_rows(self) -> list[list[forms.BoundField]]:
        return [[self[f"arm{i}_name"], self[f"arm{i}_version"], self[f"arm{i}_allocation"]] for i in range(ARM_ROWS)]

    def field_for(self, name: str | None) -> str | None:
        # the service numbers the arms it was given (arms.<n>.<what>); map back to the form's rows
        parts = (name or "").split(".")
        if parts[0] == "arms" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(self.rows):
            return f"arm{self.rows[int(parts[1])]}_{parts[2]}"
        if name in ("arms", "arms.control"):
            return "control" if name == "arms.control" else None
        return super().field_for({"minimum_detectable_effect": "mde"}.get(name or "", name))

    def service_params(self) -> dict:
        """``experiment_create``'s arguments, as the API passes them."""
        data = self.cleaned_data
        arms, self.rows = [], []
        for i in range(ARM_ROWS):
            if not (data.get(f"arm{i}_name") or "").strip():
                continue
            self.rows.append(i)
            arms.append({"name": data[f"arm{i}_name"], "version": data.get(f"arm{i}_version"),
                         "allocation": data.get(f"arm{i}_allocation"), "is_control": data.get("control") == i})
        return {"name": data.get("name", ""), "hypothesis": data.get("hypothesis", ""), "arms": arms,
                "minimum_detectable_effect": data["mde"] if data.get("mde") is not None else 0.02,
                "alpha": data.get("alpha")}


class SampleSizeForm(PortalForm):
    """The sample-size calculator (a GET form): ``stats.sample_size_two_proportions`` and
    ``stats.sample_size_viewers`` check the values, as for ``/api/v1/releases/experiments/sample-size``."""

    baseline = forms.FloatField(label="Baseline rate", initial=0.2, widget=TextInput())
    mde = forms.FloatField(label="Effect", initial=0.02, widget=TextInput())
    relative = forms.BooleanField(required=False, widget=Checkbox())
    alpha = forms.FloatField(label="α", required=False, initial=0.05, widget=TextInput())
    power = forms.FloatField(required=False, initial=0.8, widget=TextInput())
    lists_per_viewer = forms.FloatField(label="Lists per viewer", required=False, widget=TextInput())
    design_effect = forms.FloatField(label="Design effect", required=False, widget=TextInput())
