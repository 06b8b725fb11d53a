"""Releases and experiments: the release gate, canary rollouts, A/B experiments, shadow and rollback.

Owns promotion requests and their gate, rollouts, experiments, shadow comparisons, their
statistics, pages, admin, review kind and tasks. Its models live in ``recommender.models.releases``.

Releases is the top floor: portal ← recommender ← monitoring, audits ← releases. It may import
portal, every recommender area, monitoring (online quality, guardrails, notifications) and audits
(the gate's fairness and security verdicts); nothing below imports it, except recommender's API,
URLs, navigation, admin, tasks and app setup that wire it in, and retraining's promotion request.
Today it still lives inside recommender and reaches monitoring and audits through imports inside
functions (``integrations``, ``simulation``); it will move to a top-level app above monitoring and
audits, importing them at module level.
"""
