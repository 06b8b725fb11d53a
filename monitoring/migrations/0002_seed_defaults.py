"""Seed monitoring's defaults: the SLOs, the drift features and thresholds, the alert rules
(multi-window burn rates per the Google SRE workbook, drift, feedback loops, data quality), and the
django-celery-beat schedules of the monitoring tasks. All are editable in the admin afterwards."""

from django.db import migrations

SLOS = [
    {"name": "availability", "kind": "availability", "source": "client", "objective": 0.99, "window_days": 7,
     "latency_threshold_ms": 600,
     "description": "99% of recommendation requests get status 200 within 600 ms, as the platform sees it."},
    {"name": "latency-p95", "kind": "latency", "source": "client", "objective": 0.95, "window_days": 7,
     "latency_threshold_ms": 200, "description": "p95 latency ≤ 200 ms: 95% of requests answered within 200 ms."},
]

FEATURES = [
    ("rating", "Rating distribution", "categorical", "jensen_shannon", 0.1),
    ("viewer_age", "Viewer age (active viewers)", "numeric", "wasserstein", 0.15),
    ("viewer_gender", "Viewer gender (active viewers)", "categorical", "jensen_shannon", 0.1),
    ("viewer_occupation", "Viewer occupation (active viewers)", "categorical", "jensen_shannon", 0.15),
    ("watch_genre", "Genre mix of watches", "categorical", "psi", 0.2),
    ("watched_movie_popularity", "Popularity of watched movies", "numeric", "wasserstein", 0.2),
    ("activity_per_viewer_day", "Events per active viewer-day", "numeric", "wasserstein", 0.2),
    ("recommended_item", "Recommended movies", "categorical", "jensen_shannon", 0.2),
]

RULES = [
    # (name, metric, params, operator, threshold, window, severity, description)
    ("availability: fast burn (1h/5m at 14.4x)", "slo_burn_rate", {"slo": "availability", "short_window_minutes": 5},
     "gt", 14.4, 60, "critical", "2% of a 30-day error budget in one hour; both windows must burn."),
    ("availability: slow burn (6h/30m at 6x)", "slo_burn_rate", {"slo": "availability", "short_window_minutes": 30},
     "gt", 6.0, 360, "critical", "5% of a 30-day error budget in six hours."),
    ("availability: budget leak (3d/6h at 1x)", "slo_burn_rate", {"slo": "availability", "short_window_minutes": 360},
     "gt", 1.0, 4320, "warning", "Burning the budget faster than it refills, for days."),
    ("latency-p95: fast burn (1h/5m at 14.4x)", "slo_burn_rate", {"slo": "latency-p95", "short_window_minutes": 5},
     "gt", 14.4, 60, "critical", "Requests slower than 200 ms eat the latency budget fast."),
    ("latency-p95: slow burn (6h/30m at 6x)", "slo_burn_rate", {"slo": "latency-p95", "short_window_minutes": 30},
     "gt", 6.0, 360, "critical", "Requests slower than 200 ms eat the latency budget."),
    ("latency-p95: budget leak (3d/6h at 1x)", "slo_burn_rate", {"slo": "latency-p95", "short_window_minutes": 360},
     "gt", 1.0, 4320, "warning", "The latency budget leaks, for days."),
    ("drift against the training snapshot", "drift_features_drifted", {}, "gt", 0.0, 180, "warning",
     "A drift report of the last 3 hours found at least one drifted feature."),
    ("feedback loop tightening", "feedback_adverse_trends",
     {"metrics": ["gini_recommended", "top1_share_recommended", "gini_watched", "share_watches_after_recommendation"]},
     "gt", 0.0, 1440, "warning", "Concentration of recommendations or watches rises steadily (Mann–Kendall)."),
    ("quarantine rate above 5%", "quarantine_rate", {}, "gt", 0.05, 60, "warning",
     "More than 5% of the stream's lines were quarantined in the last hour."),
    ("data-quality issues", "data_quality_issues", {}, "gt", 0.0, 30, "info",
     "The latest data-quality report lists problems."),
    ("ratings stream stale (30 min)", "freshness_seconds", {"event_type": "rating"}, "gt", 1800.0, 60, "warning",
     "No rating has arrived for 30 minutes."),
    ("recommendation lines stale (15 min)", "freshness_seconds", {"event_type": "recommendation"}, "gt", 900.0, 60,
     "warning", "The platform's recommendation lines stopped arriving."),
]

SCHEDULES = [
    ("monitoring: roll up telemetry", "monitoring.rollup_telemetry", 1),
    ("monitoring: evaluate alert rules", "monitoring.evaluate_alerts", 1),
    ("monitoring: deliver due notifications", "monitoring.deliver_due_notifications", 1),
    ("monitoring: data-quality report", "monitoring.data_quality_report", 15),
    ("monitoring: drift report", "monitoring.drift_report", 60),
    ("monitoring: feedback-loop snapshots", "monitoring.feedback_snapshots", 60),
]


def seed(apps, schema_editor):
    SLO = apps.get_model("monitoring", "SLO")
    DriftFeature = apps.get_model("monitoring", "DriftFeature")
    AlertRule = apps.get_model("monitoring", "AlertRule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for slo in SLOS:
        SLO.objects.get_or_create(name=slo["name"], defaults=slo)
    for name, label, kind, metric, threshold in FEATURES:
        DriftFeature.objects.get_or_create(
            name=name, defaults={"label": label, "kind": kind, "large_metric": metric, "large_threshold": threshold,
                                 "alpha": 0.01, "large_sample_min": 5000},
        )
    for name, metric, params, op, threshold, window, severity, description in RULES:
        AlertRule.objects.get_or_create(
            name=name, defaults={"metric": metric, "params": params, "operator": op, "threshold": threshold,
                                 "window_minutes": window, "severity": severity, "description": description},
        )
    for name, task, minutes in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[task for _, task, _ in SCHEDULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
