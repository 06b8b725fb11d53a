"""Seed the beat schedules of releases and experiments (editable in the admin afterwards)."""

from django.db import migrations

SCHEDULES = [
    # (task name, every, period, description)
    ("recommender.releases.rollouts_tick", 1, "minutes",
     "Canary rollouts: run the step check of every running rollout whose interval has passed."),
    ("recommender.releases.repair", 1, "minutes",
     "Releases repair: restore each active rollout's recorded traffic split, re-run interrupted release "
     "gates, start approved canaries that were waiting."),
    ("recommender.releases.experiments_analyze", 1, "hours",
     "A/B experiments: hourly analysis snapshot (SRM, z-test, sequential test, sample size) of running experiments."),
    ("recommender.releases.shadow_report", 1, "hours",
     "Shadow: agreement of the shadow candidate with production over the last hour of mirrored requests."),
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
        ("recommender", "0006_releases"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(seed, unseed)]
