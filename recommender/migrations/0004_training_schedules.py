"""Seed the beat schedules of the training side (editable in the admin afterwards)."""

from django.db import migrations

SCHEDULES = [
    # (task name, every, period, description)
    ("recommender.retrain", 3, "days",
     "Scheduled retraining: snapshot the latest data, train the production configuration, evaluate, "
     "register a candidate, and open a promotion review when it beats production."),
    ("recommender.training_repair", 10, "minutes",
     "Fail training runs stuck in 'running' (worker lost) past RECOMMENDER['TRAINING_STUCK_MINUTES']."),
]


def seed(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task, every, period, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=task, defaults={"task": task, "interval": interval, "description": description, "enabled": True}
        )


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0003_training_registry"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(seed, unseed)]
