"""Schedules run what they show: clear the custom message headers and the queue, exchange and
routing-key overrides of every existing beat schedule, and disable each schedule naming a task that
is not listed (``portal.schedules``). Each row changed gets an activity-log entry (actor
``system:migration:portal.0007``) with its values before and after, and a warning on the console.

Celery merges a schedule's headers over the message's own, so ``{"task": "recommender.retrain"}``
ran retraining under another task's name; the schedule service now refuses headers and unlisted
tasks, and beat (``portal.beat``) drops the one and skips the other. ``celery.backend_cleanup`` is
listed: beat installs it to delete expired django-celery-results rows, which is still wanted.

The listed names are frozen here as they were when this migration was written. Not reversible in
content (the old headers are in the activity log); going back leaves the rows as they are.
"""

import json
import logging

from django.db import migrations
from django.utils import timezone

logger = logging.getLogger("portal.migrations")

SYSTEM = "migration:portal.0007"
LISTED = frozenset({
    "audits.expire_waivers", "audits.fail_stuck_runs", "audits.scheduled_audit", "celery.backend_cleanup",
    "monitoring.data_quality_report", "monitoring.deliver_due_notifications", "monitoring.drift_report",
    "monitoring.evaluate_alerts", "monitoring.feedback_snapshots", "monitoring.rollup_telemetry",
    "monitoring.rollup_telemetry_late", "portal.verify_activity_log", "recommender.ingest.ledger_prune",
    "recommender.releases.experiments_analyze", "recommender.releases.repair",
    "recommender.releases.rollouts_tick", "recommender.releases.shadow_report", "recommender.retrain",
    "recommender.training_repair",
})
ROUTING = ("queue", "exchange", "routing_key")


def _headers(text):
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def _record(apps, *, target, data) -> None:
    """One activity-log entry, chained as ``portal.services.activity`` chains them."""
    from portal.services.activity import _canonical, _entry_hash

    Entry = apps.get_model("portal", "ActivityLogEntry")
    Head = apps.get_model("portal", "ActivityLogHead")
    head, _ = Head.objects.select_for_update().get_or_create(id=1)
    seq, created_at, clean = head.seq + 1, timezone.now(), json.loads(_canonical(data))
    fields = {"actor_label": f"system:{SYSTEM}", "action": "schedule.cleaned",
              "target_type": "django_celery_beat.periodictask", "target_id": str(target.pk),
              "target_repr": target.name[:255]}
    digest = _entry_hash(seq=seq, created_at=created_at, actor_label=fields["actor_label"], action=fields["action"],
                         target_type=fields["target_type"], target_id=fields["target_id"],
                         target_repr=fields["target_repr"], data=clean, prev_hash=head.hash)
    Entry.objects.create(seq=seq, created_at=created_at, data=clean, prev_hash=head.hash, hash=digest, **fields)
    Head.objects.filter(id=1).update(seq=seq, hash=digest)


def clean_schedules(apps, schema_editor) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    changed = 0
    for row in PeriodicTask.objects.order_by("pk"):
        before, after = {}, {}
        headers = _headers(row.headers)
        if headers not in ({}, None):
            before["headers"], after["headers"] = headers, {}
            row.headers = "{}"
        for option in ROUTING:
            if getattr(row, option):
                before[option], after[option] = getattr(row, option), None
                setattr(row, option, None)
        if row.task not in LISTED and row.enabled:
            before["enabled"], after["enabled"] = True, False
            row.enabled = False
        if not before:
            continue
        row.save()
        changed += 1
        _record(apps, target=row, data={"task": row.task, "listed": row.task in LISTED, "before": before,
                                        "after": after, "fields": sorted(before)})
        logger.warning("schedule %r (%s): %s", row.name, row.task,
                       ", ".join(f"{k} {before[k]!r} -> {after[k]!r}" for k in sorted(before)))
    if changed:
        # Tell a running beat (the historical model has no save() hook doing it).
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0006_roles_in_one_place"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(clean_schedules, migrations.RunPython.noop)]
