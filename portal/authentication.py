"""API authentication by a hashed token: ``Authorization: Token <key>``, as DRF's TokenAuthentication,
but the key is looked up by its digest (``portal.models.ApiToken``), never stored in clear."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str):
        from portal.services.tokens import api_token_authenticate

        token = api_token_authenticate(key)
        if token is None:
            # One message for an unknown key and an inactive user: a key's owner is not revealed.
            raise exceptions.AuthenticationFailed("Invalid token.")
        return token.user, token
