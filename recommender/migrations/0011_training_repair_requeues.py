"""The training repair schedule now also sends queued runs that never reached the broker: say so in
its description (only where the description is still the one 0004 seeded, so an operator's own
wording is kept)."""

from django.db import migrations

OLD = "Fail training runs stuck in 'running' (worker lost) past RECOMMENDER['TRAINING_STUCK_MINUTES']."
NEW = ("Fail training runs stuck in 'running' (worker lost) past RECOMMENDER['TRAINING_STUCK_MINUTES'], and "
       "send again queued runs that never reached the broker (it was down when they were created).")


def describe(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="recommender.training_repair", description=OLD).update(description=NEW)


def undescribe(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="recommender.training_repair", description=NEW).update(description=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0010_ingest_ledger_retention"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(describe, undescribe)]
