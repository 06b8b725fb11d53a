"""API tokens of portal users: created (rotated) and revoked only here, each step logged.

A key is 40 random URL-safe characters, returned once by ``api_token_create`` and stored only as
its sha256 (``ApiToken.digest``) beside its first characters (``ApiToken.prefix``, to find it).
Its owner may create, rotate and revoke it; an admin (``users.manage``) may revoke anyone's.
``api_token_create_with_password`` is the same creation for a script that has a username and a
password and no session: it signs in through Django's ``authenticate`` (so django-axes counts the
failures and enforces the login lockout, exactly as on the portal's login page).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken
from portal.permissions import require
from portal.services.activity import activity_log_record

PREFIX_LENGTH = 8
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _target(user: Any) -> tuple[str, int, str]:
    return ("auth.user", user.pk, user.get_username())


def api_token_create(*, user: Any, via: str = "session") -> tuple[ApiToken, str]:
    """Give ``user`` a new token and return it with its key, which is not stored: the caller shows
    it once. Any previous token of the user stops working."""
    require(user, "token.own", target=_target(user))
    key = secrets.token_urlsafe(30)
    with transaction.atomic():
        replaced = ApiToken.objects.filter(user=user).delete()[0] > 0
        token = ApiToken.objects.create(user=user, prefix=key[:PREFIX_LENGTH], digest=token_digest(key))
        activity_log_record(actor=user, action="api_token.created", target=_target(user),
                            data={"prefix": token.prefix, "replaced_previous": replaced, "via": via})
    return token, key


def api_token_create_with_password(*, request: Any, username: str, password: str) -> tuple[ApiToken, str]:
    """Sign ``username`` in with ``password`` and give them a new token (as ``api_token_create``).

    ``request`` is the Django request: django-axes reads the client address from it, records a
    failure, and refuses every attempt (right password included) while the username and client are
    locked out. A wrong password, an unknown username and an inactive account get one answer, so
    the answer does not tell which accounts exist. Raises ``NotAuthenticated`` (401), ``LockedOut``
    (429) or ``PermissionDenied`` (403, an account with no Usher role)."""
    from django.conf import settings
    from django.contrib.auth import authenticate, user_logged_in

    from portal.errors import LockedOut, NotAuthenticated

    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        raise LockedOut(f"Too many failed logins: this account is locked for this client for up to {minutes} "
                        f"minutes. Try again later or ask an admin.", detail="locked_out")
    if user is None:
        raise NotAuthenticated("Invalid username or password.", detail="authentication_failed")
    # A login like the portal's: last_login is kept and django-axes clears the failures.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return api_token_create(user=user, via="password")


def api_token_revoke(*, user: Any, actor: Any | None = None, system: str | None = None, reason: str = "") -> int:
    """Delete every token of ``user``; return how many there were. The owner revokes their own;
    anyone else needs ``users.manage`` (the user services revoke with the admin as actor)."""
    actor = user if actor is None and system is None else actor
    if actor is None or actor.pk != user.pk:
        require(actor, "users.manage", system=system, target=_target(user))
    with transaction.atomic():
        prefixes = list(ApiToken.objects.filter(user=user).values_list("prefix", flat=True))
        ApiToken.objects.filter(user=user).delete()
        if prefixes:
            activity_log_record(actor=actor, system=system, action="api_token.revoked", target=_target(user),
                                data={"prefixes": prefixes, **({"reason": reason} if reason else {})})
    return len(prefixes)


def api_token_authenticate(key: str) -> ApiToken | None:
    """The token whose key is ``key`` (its user active), or None. The digest comparison is constant
    time; ``last_used_at`` is refreshed at most once a minute."""
    if not key or len(key) < PREFIX_LENGTH:
        return None
    digest = token_digest(key)
    found = None
    for token in ApiToken.objects.select_related("user").filter(prefix=key[:PREFIX_LENGTH]):
        if hmac.compare_digest(token.digest, digest):
            found = token
    if found is None or not found.user.is_active:
        return None
    now = timezone.now()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        found.last_used_at = now
    return found
