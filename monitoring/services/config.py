"""Changes to monitoring's configuration (SLOs, drift thresholds, channels) made in the admin or the API."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.forms.models import model_to_dict

from portal.errors import ValidationError
from portal.permissions import require
from portal.services import activity_log_record

SECRET_FIELDS = {"secret"}


def config_state(instance: models.Model) -> dict:
    """The instance's fields as JSON, secrets masked (for the activity log's before/after)."""
    data = model_to_dict(instance)
    for key in SECRET_FIELDS & data.keys():
        data[key] = "***" if data[key] else ""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, default=str))


def config_save(*, instance: models.Model, actor: Any, data: dict | None = None) -> models.Model:
    """Apply ``data`` to a configuration record, validate it (``full_clean``) and save it, with
    before/after in the activity log. Configuration is ``config.manage`` work."""
    require(actor, "config.manage", target=instance if instance.pk else None)
    created = instance.pk is None
    before = None if created else config_state(type(instance).objects.get(pk=instance.pk))
    for key, value in (data or {}).items():
        setattr(instance, key, value)
    try:
        instance.full_clean()
    except Exception as exc:  # django ValidationError → the domain's
        detail = getattr(exc, "message_dict", None) or {"__all__": getattr(exc, "messages", [str(exc)])}
        raise ValidationError(f"invalid {instance._meta.verbose_name}", detail=detail)
    with transaction.atomic():
        instance.save()
        activity_log_record(actor=actor, action=f"{instance._meta.model_name}.{'created' if created else 'updated'}",
                            target=instance, data={"before": before, "after": config_state(instance)})
    return instance


def config_delete(*, instance: models.Model, actor: Any) -> None:
    """Delete a configuration record (``config.manage``), its last state in the activity log."""
    require(actor, "config.manage", target=instance)
    with transaction.atomic():
        state = config_state(instance)
        activity_log_record(actor=actor, action=f"{instance._meta.model_name}.deleted", target=instance,
                            data={"before": state})
        instance.delete()
