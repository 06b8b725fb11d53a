"""Admin of the recommender app: each area registers its models in its own admin module."""

from recommender.catalog import admin as catalog_admin  # noqa: F401
from recommender.ingest import admin as ingest_admin  # noqa: F401
from recommender.registry import admin as registry_admin  # noqa: F401
from recommender.serving import admin as serving_admin  # noqa: F401
from recommender.training import admin as training_admin  # noqa: F401
