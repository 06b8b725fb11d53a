"""The training side's portal forms (training runs, snapshots). Fields parse the typed text; the
rules are the services' (``training_run_validate``, ``snapshot_create``), the same the API applies,
and a refusal is shown beside the field it names (``portal.forms``)."""

from __future__ import annotations

import json

from django import forms

from portal.forms import Checkbox, Checkboxes, DateTimeInput, PortalForm, Select, Textarea, TextInput
from recommender.models import DatasetSnapshot
from recommender.training.algorithms import ALGORITHMS
from recommender.training.evaluation import SPLIT_KINDS

SPLIT_LABELS = {"random": "random (seeded)", "temporal": "temporal", "leave_last_n": "leave last n per viewer",
                "kfold": "k-fold CV (RMSE/MAE)"}
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


def parse_hyperparameters(text: str) -> dict:
    """``{"n_factors": 50}`` or ``name=value`` pairs (by line or comma); the values are checked by
    ``validate_hyperparameters``, as for the API."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"hyperparameters are not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("hyperparameters must be a JSON object")
        return value
    params = {}
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            if "=" not in line:
                raise forms.ValidationError(f"'{line.strip()}' is not name=value")
            name, value = line.split("=", 1)
            params[name.strip()] = value.strip()
    return params


class TrainingRunForm(PortalForm):
    """A snapshot, one or more algorithms (one run each), hyperparameters for a single algorithm,
    the split and the seed."""

    snapshot = forms.TypedChoiceField(coerce=int, widget=Select(),
                                      error_messages={"required": "choose a snapshot (take one first)"})
    algorithm = forms.MultipleChoiceField(
        label="Algorithms (several = one run each, default parameters)",
        choices=(), widget=Checkboxes(),  # the registry's, set per form below
        error_messages={"required": "choose at least one algorithm"})
    hyperparameters = forms.CharField(
        required=False, widget=Textarea(rows=2, placeholder="n_factors=50, n_epochs=30"),
        label="Hyperparameters (one algorithm only)", help_text="name=value pairs or a JSON object")
    split_kind = forms.ChoiceField(label="Split", choices=[(k, SPLIT_LABELS.get(k, k)) for k in SPLIT_KINDS],
                                   initial="random", widget=Select())
    test_fraction = forms.FloatField(required=False, initial=0.2, widget=TextInput(),
                                     help_text="random and temporal splits")
    n = forms.IntegerField(required=False, initial=1, widget=TextInput(), help_text="leave last n")
    folds = forms.IntegerField(required=False, initial=5, widget=TextInput(), help_text="k-fold")
    seed = forms.IntegerField(required=False, initial=0, widget=TextInput())

    # the service's names (training_run_validate) → this form's fields
    service_fields = {"split.kind": "split_kind", "split.test_fraction": "test_fraction", "split.n": "n",
                      "split.folds": "folds", "split.seed": "seed", "split": "split_kind"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        snapshots = DatasetSnapshot.objects.filter(status="ready").order_by("-created_at")[:50]
        self.fields["snapshot"].choices = [
            (s.pk, f"#{s.pk} {s.name or ''} — {s.rating_count} ratings, {s.content_sha256[:12]}") for s in snapshots]
        self.fields["snapshot"].widget.choices = self.fields["snapshot"].choices
        self.fields["algorithm"].choices = [(name, name) for name in ALGORITHMS]

    def clean_hyperparameters(self) -> dict:
        return parse_hyperparameters(self.cleaned_data.get("hyperparameters", ""))

    def clean(self):
        data = super().clean()
        if data.get("hyperparameters") and len(data.get("algorithm") or []) > 1:
            self.add_error("hyperparameters", "hyperparameters apply to one algorithm: tick one, or empty this box")
        return data

    def split(self) -> dict:
        """The split as the API takes it (only the options of its kind)."""
        data = self.cleaned_data
        kind = data["split_kind"]
        split: dict = {"kind": kind}
        option = {"random": "test_fraction", "temporal": "test_fraction", "leave_last_n": "n", "kfold": "folds"}[kind]
        if data.get(option) is not None:
            split[option] = data[option]
        return split

    def snapshot_object(self) -> DatasetSnapshot:
        return DatasetSnapshot.objects.get(pk=self.cleaned_data["snapshot"])


class SnapshotForm(PortalForm):
    """A name, a time window, the two minimum-ratings filters and the implicit-ratings switch."""

    name = forms.CharField(required=False, max_length=200, widget=TextInput())
    window_start = forms.DateTimeField(label="From (empty = the beginning)", required=False,
                                       input_formats=DATETIME_FORMATS, widget=DateTimeInput())
    window_end = forms.DateTimeField(label="Until (empty = now)", required=False, input_formats=DATETIME_FORMATS,
                                     widget=DateTimeInput())
    min_viewer_ratings = forms.IntegerField(label="Min ratings per viewer", required=False, widget=TextInput())
    min_movie_ratings = forms.IntegerField(label="Min ratings per movie", required=False, widget=TextInput())
    include_implicit = forms.BooleanField(label="implicit ratings from watch sessions", required=False,
                                          widget=Checkbox())

    service_fields = {"filters.min_viewer_ratings": "min_viewer_ratings",
                      "filters.min_movie_ratings": "min_movie_ratings"}

    def service_params(self) -> dict:
        """The cleaned fields as ``snapshot_create`` keyword arguments (as the API passes them)."""
        data = self.cleaned_data
        return {"name": data.get("name") or "", "window_start": data.get("window_start"),
                "window_end": data.get("window_end"), "include_implicit": bool(data.get("include_implicit")),
                "filters": {key: data[key] for key in ("min_viewer_ratings", "min_movie_ratings")
                            if data.get(key) is not None}}


class AliasMoveForm(PortalForm):
    """Point an alias at a version (or clear it), through serving's ``deployment_update``."""

    alias = forms.ChoiceField(choices=[(a, a) for a in ("production", "canary", "shadow")], widget=Select())
    version = forms.ChoiceField(required=False, widget=Select())
    reason = forms.CharField(required=False, widget=TextInput())

    # deployment_update names the role it refuses ("production: model version … does not exist")
    service_fields = {"production": "version", "canary": "version", "shadow": "version", "canary_percent": "version"}

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "(clear)"), *[(str(v.pk), f"{v} · {v.algorithm} · {v.status}")
                                                              for v in versions]]


class VersionEditForm(PortalForm):
    description = forms.CharField(required=False, widget=Textarea(rows=2))
    tags = forms.CharField(required=False, widget=TextInput(placeholder="tag, tag"), help_text="comma-separated")

    def tag_list(self) -> list[str]:
        return [t for t in (self.cleaned_data.get("tags") or "").split(",") if t.strip()]


class ReasonForm(PortalForm):
    reason = forms.CharField(required=False, widget=TextInput(placeholder="reason"))
