"""Domain errors of the audits app: the portal's shared classes, so the API maps them alike."""

from portal.errors import Conflict, NotFound, PermissionDenied, UsherError, ValidationError

__all__ = ["UsherError", "ValidationError", "PermissionDenied", "NotFound", "Conflict", "AuditCheckError"]


class AuditCheckError(UsherError):
    """A check could not run on the data it was given (raised inside a run; the run then fails)."""

    status = 400
    code = "audit_check_failed"
