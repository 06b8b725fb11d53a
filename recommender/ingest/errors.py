"""Domain errors of event intake (subclasses of ``portal.errors.UsherError``)."""

from __future__ import annotations

from portal.errors import UsherError, ValidationError  # noqa: F401


class PayloadTooLarge(UsherError):
    """A batch of lines over the configured limit (``EVENTS_MAX_LINES`` / ``EVENTS_MAX_BYTES``)."""

    status = 413
    code = "too_large"
