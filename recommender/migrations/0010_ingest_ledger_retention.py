"""Ledger retention: the ingest day of each de-duplication ledger row, and the daily prune schedule.

``IngestedLine.ingested_on`` is the UTC day the line was first accepted, filled by a database default
(``CurrentUTCDate``), so the ingest hot path does not name it. Existing rows cannot know their ingest
day; they receive the day this migration runs (the default is evaluated once, when the column is
added). They are therefore kept for one full retention period (``INGEST_LEDGER_RETENTION_DAYS``) from
the upgrade, and pruned after that like any other row.

On PostgreSQL, adding a column whose default is not volatile does not rewrite the table; building
the index on ``ingested_on`` reads the whole ledger and blocks writes to it (consumers wait) while it
runs: seconds per few million rows.

The beat schedule (daily at 03:47 UTC, editable in the admin) runs ``recommender.ingest.ledger_prune``.
"""

from django.db import migrations, models

import recommender.models.events

TASK = "recommender.ingest.ledger_prune"
DESCRIPTION = (
    "Ingest ledger retention: delete de-duplication ledger rows written more than "
    "RECOMMENDER['INGEST_LEDGER_RETENTION_DAYS'] days ago (0 = keep forever), in small batches."
)


def seed(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="47", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=TASK, defaults={"task": TASK, "crontab": crontab, "description": DESCRIPTION, "enabled": True}
    )


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0009_serving"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="ingestedline",
            name="ingested_on",
            field=models.DateField(
                db_default=recommender.models.events.CurrentUTCDate(),
                db_index=True,
                help_text="UTC day the line was first accepted; pruned after INGEST_LEDGER_RETENTION_DAYS.",
            ),
        ),
        migrations.RunPython(seed, unseed),
    ]
