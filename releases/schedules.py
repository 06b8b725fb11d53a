"""The releases' tasks operators may schedule (collected by ``portal.schedules``). The task names
keep the ``recommender.releases.`` prefix they had before releases had its own app: stored beat
schedules, activity-log labels and the docs name them."""

from __future__ import annotations

from portal.schedules import SchedulableTask

TASKS = [
    SchedulableTask("recommender.releases.rollouts_tick", "Step checks of running canary rollouts"),
    SchedulableTask("recommender.releases.repair", "Releases repair"),
    SchedulableTask("recommender.releases.experiments_analyze", "Analyse running A/B experiments",
                    min_interval_seconds=300),
    SchedulableTask("recommender.releases.shadow_report", "Shadow agreement report", min_interval_seconds=300),
]
