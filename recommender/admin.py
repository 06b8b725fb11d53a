"""Admin of the recommender app: each area registers its models in its own admin module."""

from recommender.releases import admin as releases_admin  # noqa: F401
