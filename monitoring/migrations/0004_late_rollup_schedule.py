"""Seed the hourly late-rows rollup schedule (editable in the admin)."""

from django.db import migrations

NAME = "monitoring: roll up late telemetry (last hour)"
TASK = "monitoring.rollup_telemetry_late"


def seed(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=60, period="minutes")
    PeriodicTask.objects.get_or_create(name=NAME, defaults={"task": TASK, "interval": interval})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_alter_telemetryminute_personalized")]

    operations = [migrations.RunPython(seed, unseed)]
