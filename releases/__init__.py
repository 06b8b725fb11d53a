"""Releases and experiments: the release gate, canary rollouts, A/B experiments, shadow and rollback.

Owns promotion requests and their gate, rollouts, experiments, shadow comparisons, their
statistics, models (whose tables keep their ``recommender_`` names), API, pages, templates
(``templates/releases/``), admin, navigation, review kind, schedules and tasks.

Releases is the top floor: portal ← recommender ← monitoring, audits ← releases. It imports portal,
the recommender areas, monitoring (online quality, guardrails, notifications) and audits (the gate's
fairness and security verdicts) at module level, through their selectors and services; nothing below
imports it. What the floors below need from it they get by registration in ``ReleasesConfig.ready``:
serving's live-traffic clearance policy (an approved promotion), the promotion request a winning
scheduled retrain files, the review kind and the shadow observer. The test and benchmark harness is
``releases/tests/simulation.py``.
"""
