"""OpenAPI generation: every operation also documents the error answers of the shared handler.

The exception handler (``portal.api.exceptions``) answers every failure as
``{"error": ..., "detail": ...}``; this schema class adds those answers to each operation so a
client (and schemathesis) knows which statuses to expect, without each view repeating them.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    "Error",
    {
        "error": serializers.CharField(help_text="What went wrong, in one sentence."),
        "detail": serializers.JSONField(allow_null=True, help_text="Specifics: field errors, allowed values…"),
    },
)

_DESCRIPTIONS = {
    "400": "Invalid input: `detail` names the fields and what was wrong.",
    "401": "Not signed in: send `Authorization: Token <key>` or a session cookie.",
    "403": "Signed in, but your role may not do this.",
    "404": "No such object.",
    "409": "The object's state does not allow this (e.g. already decided).",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}


class UsherAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the shared error responses."""

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("409")
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]), code, direction=direction
                )
        return responses
