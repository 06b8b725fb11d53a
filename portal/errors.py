"""Domain errors shared by every app; one DRF exception handler maps them to HTTP answers."""

from __future__ import annotations


class UsherError(Exception):
    """Base of every domain error. ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, detail: object | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        #: the input this error is about, in the service's own names (``"canary_interval_seconds"``,
        #: ``"split.test_fraction"``): the portal's forms show the message beside that field.
        self.field = field


class ValidationError(UsherError):
    status = 400
    code = "invalid"


class NotAuthenticated(UsherError):
    """Wrong or missing credentials (a username and password that do not sign in)."""

    status = 401
    code = "authentication_failed"


class LockedOut(UsherError):
    """Too many failed logins for this username from this client (django-axes)."""

    status = 429
    code = "locked_out"


class PermissionDenied(UsherError):
    status = 403
    code = "permission_denied"


class NotFound(UsherError):
    status = 404
    code = "not_found"


class Conflict(UsherError):
    status = 409
    code = "conflict"
