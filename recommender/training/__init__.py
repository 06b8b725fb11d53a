"""The training side: dataset snapshots, algorithms, offline evaluation, training runs, retraining.

Owns the snapshots, the algorithms and their export, the evaluation protocols, the run lifecycle
and its worker, model comparison, retraining, and training's pages, admin, dashboard card and
tasks. Its models (``DatasetSnapshot``, ``TrainingRun``) live in ``recommender.models.registry``.

May import: portal, ``recommender.models``, ``recommender.errors`` and the registry (a finished run
registers its version). A winning scheduled retrain files its promotion request through the
requester the app above registers (``retraining_promotion_requester_register``; releases does).
"""
