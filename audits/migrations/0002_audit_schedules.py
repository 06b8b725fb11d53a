"""Seed the beat schedules of the audits (editable in the admin afterwards)."""

import json

from django.db import migrations

# name, task, kwargs, crontab (minute, hour) or interval (every, period), description
SCHEDULES = [
    ("audits: fairness nightly", "audits.scheduled_audit", {"kind": "fairness"}, ("30", "2"), None,
     "Fairness audit every night at 02:30 UTC: the production version at model level (aequitas on its "
     "snapshot's test part) and the live service over the last day (AUDITS['SYSTEM_WINDOW_HOURS'])."),
    ("audits: security hourly", "audits.scheduled_audit", {"kind": "security"}, ("15", "*"), None,
     "Security audit every hour at :15: deploy configuration, API surface, rating poisoning and velocity, "
     "scraping, artifact integrity, login abuse over the last AUDITS['SECURITY_WINDOW_HOURS'] hours."),
    ("audits: expire waivers", "audits.expire_waivers", {}, None, (10, "minutes"),
     "Reopen the findings whose waiver has expired."),
    ("audits: fail stuck runs", "audits.fail_stuck_runs", {}, None, (30, "minutes"),
     "End as failed the audit runs left running or queued past AUDITS['STUCK_RUN_MINUTES']."),
]


def seed(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, kwargs, cron, interval, description in SCHEDULES:
        defaults = {"task": task, "kwargs": json.dumps(kwargs), "description": description, "enabled": True}
        if cron is not None:
            minute, hour = cron
            defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC")
        else:
            every, period = interval
            defaults["interval"], _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults=defaults)


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audits", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(seed, unseed)]
