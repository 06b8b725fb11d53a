"""Models of the recommender app, one module per area."""

from recommender.models.catalog import Movie, Viewer  # noqa: F401
from recommender.models.events import (  # noqa: F401
    IngestedLine,
    IngestSource,
    QuarantinedLine,
    Rating,
    RatingEvent,
    RecommendationRequest,
    WatchSession,
)
from recommender.models.registry import (  # noqa: F401
    DatasetSnapshot,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    TrainingRun,
)
from recommender.models.serving import (  # noqa: F401
    Deployment,
    DeploymentChange,
    ExperimentArm,
    PredictionLog,
)
