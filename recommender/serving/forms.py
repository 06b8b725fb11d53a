"""The deployments page's forms (change the deployment; emergency rollback). The fields parse what
was typed; the rules are ``deployment_update``'s and ``deployment_rollback``'s (shares 0–100, a
reason, the one door to live traffic), the same the REST API applies, and a refusal is drawn beside
the field it names (``portal.forms``)."""

from __future__ import annotations

from django import forms

from portal.forms import Checkbox, PortalForm, Select, TextInput


class DeploymentChangeForm(PortalForm):
    production = forms.ChoiceField(widget=Select())
    canary = forms.ChoiceField(widget=Select())
    canary_percent = forms.CharField(label="Canary share (%)", required=False, widget=TextInput(),
                                     help_text="0 to 100; empty = unchanged")
    shadow = forms.ChoiceField(widget=Select())
    shadow_enabled = forms.BooleanField(label="mirror requests to the shadow", required=False, widget=Checkbox())
    reason = forms.CharField(required=False, widget=TextInput())

    def __init__(self, *args, deployment: dict, approved, deployable, **kwargs):
        kwargs.setdefault("initial", {"production": "keep", "canary": "keep", "shadow": "keep",
                                      "canary_percent": deployment.get("canary_percent"),
                                      "shadow_enabled": bool(deployment.get("shadow_enabled"))})
        super().__init__(*args, **kwargs)

        def keep(role: str) -> tuple[str, str]:
            return "keep", f"keep {(deployment.get(role) or {}).get('label') or 'none'}"

        self.fields["production"].choices = [keep("production"), *[(str(v.pk), f"{v} ({v.algorithm})")
                                                                   for v in approved]]
        for role in ("canary", "shadow"):
            self.fields[role].choices = [keep(role), ("none", "none"),
                                         *[(str(v.pk), f"{v} ({v.status})") for v in deployable]]

    def service_params(self) -> dict:
        """``deployment_update``'s arguments: only what is to change."""
        data = self.cleaned_data
        changes: dict = {"reason": data.get("reason", ""), "shadow_enabled": bool(data.get("shadow_enabled"))}
        for role in ("production", "canary", "shadow"):
            if data[role] != "keep":
                changes[role] = None if data[role] == "none" else data[role]
        if (data.get("canary_percent") or "").strip():
            changes["canary_percent"] = data["canary_percent"].strip()
        return changes


class RollbackForm(PortalForm):
    reason = forms.CharField(required=False, widget=TextInput())
