"""One exception handler: domain errors and DRF errors become ``{"error": ..., "detail": ...}``.

``error`` is one human sentence; ``detail`` carries the specifics (field errors, allowed values,
the DRF error code) or null. Domain errors (``portal.errors.UsherError``) keep their own status.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.api.params import InvalidQuery
from portal.errors import UsherError


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, UsherError):
        response = Response({"error": exc.message, "detail": exc.detail}, status=exc.status)
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = "Token"  # a 401 names the scheme to use (RFC 9110)
        return response
    if isinstance(exc, DjangoValidationError):
        # A model's clean() refused the input: a 400 naming the fields, not a 500.
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response({"error": "invalid input", "detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        # The database refused a value that came from the request (out of range, bad encoding):
        # the caller's input is at fault, so a 400 naming the database's complaint, not a 500.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "value out of range"
        return Response({"error": "invalid input", "detail": message}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        # A bad query parameter is named in the sentence too (portal.api.params.InvalidQuery).
        sentence = exc.sentence if isinstance(exc, InvalidQuery) else "invalid input"
        response.data = {"error": sentence, "detail": response.data}
    elif isinstance(exc, exceptions.APIException):
        detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
        response.data = {"error": str(detail), "detail": exc.get_codes() if isinstance(exc.detail, str) else None}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        response["Retry-After"] = "1"
    return response
