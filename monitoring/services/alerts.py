"""Alert rules: evaluated every minute by beat; a firing rule opens (or updates) its incident.

One rule's failure (a bad parameter, a query error) is recorded as that rule's ``error`` state and
never stops the others; no data is its own state, never "ok".
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.models import AlertRule, Incident
from monitoring.services import incidents
from monitoring.services.metrics import METRICS, metric_evaluate, rule_window_threshold
from portal.errors import ValidationError
from portal.permissions import require
from portal.services import activity_log_record

log = logging.getLogger(__name__)

EVALUATE_TASK = "monitoring.evaluate_alerts"

OPERATORS = {
    AlertRule.Operator.GT: operator.gt,
    AlertRule.Operator.GTE: operator.ge,
    AlertRule.Operator.LT: operator.lt,
    AlertRule.Operator.LTE: operator.le,
}


@dataclass(frozen=True)
class Evaluation:
    rule_id: int
    rule: str
    state: str
    value: float | None
    incident_id: int | None = None
    opened: bool = False
    error: str = ""


def alert_rule_evaluate(*, rule: AlertRule, now: datetime | None = None, actor: Any | None = None,
                        system: str | None = EVALUATE_TASK) -> Evaluation:
    """Evaluate one rule at ``now`` and act on the result (may open an incident: ``incident.handle``)."""
    require(actor, "incident.handle", system=system, target=rule)
    now = now or timezone.now()
    since = now - timedelta(minutes=rule.window_minutes)
    try:
        # A burn-rate tier's window and factor follow its SLO's period; the stored ones are kept in step.
        window, threshold = rule_window_threshold(metric=rule.metric, params=rule.params,
                                                  window_minutes=rule.window_minutes, threshold=rule.threshold)
        if (window, threshold) != (rule.window_minutes, rule.threshold):
            AlertRule.objects.filter(pk=rule.pk).update(window_minutes=window, threshold=threshold)
            rule.window_minutes, rule.threshold = window, threshold
            since = now - timedelta(minutes=window)
        result = metric_evaluate(metric=rule.metric, since=since, until=now, params=rule.params)
    except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the check
        log.exception("alert rule %s failed", rule.name)
        message = exc.message if hasattr(exc, "message") else f"{type(exc).__name__}: {exc}"
        AlertRule.objects.filter(pk=rule.pk).update(
            state=AlertRule.State.ERROR, last_evaluated_at=now, last_value=None,
            last_evidence={"error": message[:500]},
        )
        return Evaluation(rule.pk, rule.name, AlertRule.State.ERROR, None, error=message)
    value = result.value
    if value is None:
        state = AlertRule.State.NO_DATA
        firing = rule.no_data_fires
    else:
        firing = OPERATORS[rule.operator](value, rule.threshold)
        state = AlertRule.State.FIRING if firing else AlertRule.State.OK
    held = ""
    if firing and value is not None and result.held:
        # past the threshold on too little evidence (metrics.MetricValue.held): not firing, and an open
        # incident is neither fired again nor cleared
        firing, held, state = False, result.held, AlertRule.State.OK
    evidence = {"window": [since.isoformat(), now.isoformat()], "value": value, "threshold": rule.threshold,
                "condition": rule.condition, "state": state, **result.evidence}
    if held:
        evidence["held"] = held
    incident_id = None
    opened = False
    with transaction.atomic():
        if firing:
            incident, opened = incidents.incident_fire(rule=rule, value=value, evidence=evidence, now=now)
            incident_id = incident.pk
        else:
            active = Incident.objects.filter(rule=rule).exclude(status=Incident.Status.RESOLVED).first()
            if active is not None and state == AlertRule.State.OK and not held:
                incidents.incident_clear(incident=active, now=now, value=value)
                incident_id = active.pk
        AlertRule.objects.filter(pk=rule.pk).update(
            state=state, last_value=value, last_evaluated_at=now, last_evidence=_jsonable(evidence)
        )
    return Evaluation(rule.pk, rule.name, state, value, incident_id, opened)


def alert_rules_evaluate(*, now: datetime | None = None, actor: Any | None = None,
                         system: str | None = EVALUATE_TASK) -> list[Evaluation]:
    """Evaluate every enabled rule (the beat task, every minute; a person asking now needs ``incident.handle``)."""
    require(actor, "incident.handle", system=system)
    now = now or timezone.now()
    evaluations = []
    for rule in AlertRule.objects.filter(enabled=True).select_related("owner").order_by("pk"):
        try:
            evaluations.append(alert_rule_evaluate(rule=rule, now=now, actor=actor, system=system))
        except Exception as exc:  # noqa: BLE001 - acting on one rule failed; the others still run
            log.exception("acting on alert rule %s failed", rule.name)
            AlertRule.objects.filter(pk=rule.pk).update(state=AlertRule.State.ERROR, last_evaluated_at=now,
                                                        last_evidence={"error": f"{type(exc).__name__}: {exc}"[:500]})
            evaluations.append(Evaluation(rule.pk, rule.name, AlertRule.State.ERROR, None, error=str(exc)))
    return evaluations


def _jsonable(value: Any) -> Any:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


RULE_FIELDS = ("name", "description", "metric", "params", "operator", "threshold", "window_minutes", "severity",
               "owner", "no_data_fires", "enabled")


def _validate(data: dict) -> None:
    if "metric" in data and data["metric"] not in METRICS:
        raise ValidationError(f"unknown metric {data['metric']!r}", detail={"allowed": sorted(METRICS)})
    if "params" in data and not isinstance(data["params"], dict):
        raise ValidationError("params must be a JSON object")
    if "window_minutes" in data and int(data["window_minutes"]) < 1:
        raise ValidationError("window_minutes must be at least 1")
    tier = (data.get("params") or {}).get("tier") if isinstance(data.get("params"), dict) else None
    if tier is not None:
        from monitoring.services.slo import BURN_TIERS

        if data.get("metric", "slo_burn_rate") != "slo_burn_rate" or tier not in [t[0] for t in BURN_TIERS]:
            raise ValidationError(f"params.tier {tier!r} needs metric slo_burn_rate and one of "
                                  f"{[t[0] for t in BURN_TIERS]}", detail={"param": "tier"})


def alert_rule_create(*, actor: Any, channels: list | None = None, **data: Any) -> AlertRule:
    """Create a rule (API; ``config.manage``); the admin's form goes through ``alert_rule_saved``."""
    require(actor, "config.manage")
    _validate(data)
    with transaction.atomic():
        rule = AlertRule.objects.create(**{k: v for k, v in data.items() if k in RULE_FIELDS})
        if channels is not None:
            rule.channels.set(channels)
        activity_log_record(actor=actor, action="alert_rule.created", target=rule,
                            data={"after": _rule_state(rule)})
    return rule


def alert_rule_update(*, rule: AlertRule, actor: Any, channels: list | None = None, **data: Any) -> AlertRule:
    """Change a rule's fields (``config.manage``); the activity log keeps before and after."""
    require(actor, "config.manage", target=rule)
    _validate(data)
    with transaction.atomic():
        before = _rule_state(rule)
        for key, value in data.items():
            if key in RULE_FIELDS:
                setattr(rule, key, value)
        rule.save()
        if channels is not None:
            rule.channels.set(channels)
        activity_log_record(actor=actor, action="alert_rule.updated", target=rule,
                            data={"before": before, "after": _rule_state(rule)})
    return rule


def alert_rule_saved(*, rule: AlertRule, actor: Any, created: bool, before: dict | None) -> None:
    """Record a rule saved through the admin form (the form has already validated it).

    The admin checks ``config.manage`` before it saves the row, so a refused role changes nothing."""
    require(actor, "config.manage", target=rule)
    _validate({"metric": rule.metric, "params": rule.params, "window_minutes": rule.window_minutes})
    activity_log_record(actor=actor, action="alert_rule.created" if created else "alert_rule.updated", target=rule,
                        data={"before": before, "after": _rule_state(rule)})


def _rule_state(rule: AlertRule) -> dict:
    return _jsonable({k: (rule.owner_id if k == "owner" else getattr(rule, k)) for k in RULE_FIELDS})
