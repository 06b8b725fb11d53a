"""The model registry: versions with provenance, their artifacts, and the deployment aliases.

Owns the artifact format (``artifacts``: writing, verifying and loading a version's arrays), the
registered models and versions (services, selectors), the aliases (production, canary, shadow)
and their admin. Its models live in ``recommender.models.registry``.

May import: portal, ``recommender.models`` and ``recommender.errors``. Training, serving, releases
and audits read it. Today ``model_alias_move`` goes through serving's ``deployment_update``,
imported inside the function: an arrow up, to be removed.
"""
