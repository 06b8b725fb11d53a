"""Domain errors of the recommender app (all subclasses of ``portal.errors.UsherError``)."""

from __future__ import annotations

from portal.errors import Conflict, UsherError, ValidationError  # noqa: F401


class ArtifactIntegrityError(UsherError):
    """A model artifact failed its integrity check (sha256 mismatch, missing or unexpected file)."""

    status = 409
    code = "artifact_integrity"


class TrainingCancelled(Exception):
    """Raised inside a running training when its run was asked to stop (not an API error)."""
