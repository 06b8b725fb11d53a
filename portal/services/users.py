"""Portal users: created with one role and a generated password (there is no default password);
their role, their password and their access change only here, and a loss of power is immediate.

The role lives in one place, the user's group; ``is_staff`` and ``is_superuser`` follow it
(``portal.roles.role_is_staff``). A role change, a deactivation or a password reset revokes the
user's API tokens and ends every session of the user at once; each step is in the activity log.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict, ValidationError
from portal.permissions import require, user_role
from portal.roles import ROLE_NAMES, role_is_staff
from portal.services.activity import activity_log_record
from portal.services.tokens import api_token_revoke


def generate_password() -> str:
    """24 URL-safe random characters (about 144 bits)."""
    return secrets.token_urlsafe(18)


def _target(user: Any) -> tuple[str, int, str]:
    return ("auth.user", user.pk, user.get_username())


def _check_role(role: str) -> None:
    if role not in ROLE_NAMES:
        raise ValidationError(f"unknown role '{role}'", detail={"allowed": list(ROLE_NAMES)})


def _forget_cached_roles(user: Any) -> None:
    user.__dict__.pop("_usher_roles", None)


def _refuse_losing_the_last_admin(user: Any) -> None:
    """Nobody could manage users any more: the last active admin keeps the role."""
    others = get_user_model().objects.filter(groups__name="admin", is_active=True).exclude(pk=user.pk)
    if user_role(user) == "admin" and user.is_active and not others.exists():
        raise Conflict(f"'{user.get_username()}' is the last active admin: make another admin first")


def user_sessions_end(*, user: Any) -> int:
    """Delete every stored session signed in as ``user``; return how many. (Sessions are in the
    database; each is decoded to find its user, which is fine at a portal's scale.)"""
    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


def _revoke_access(*, user: Any, actor: Any | None, system: str | None, reason: str) -> dict:
    """Tokens and sessions of ``user`` end now; the counts go into the caller's log entry."""
    tokens = api_token_revoke(user=user, actor=actor, system=system, reason=reason)
    return {"tokens_revoked": tokens, "sessions_ended": user_sessions_end(user=user)}


def user_create(
    *, username: str, role: str, email: str = "", actor: Any | None = None, system: str | None = None
) -> tuple[Any, str]:
    """Create a user holding ``role`` (staff only for the admin role); return it with its generated
    password, which is not stored anywhere in clear: the caller shows it once."""
    require(actor, "users.manage", system=system)
    username = username.strip()
    if not username:
        raise ValidationError("a user name is required")
    _check_role(role)
    User = get_user_model()
    password = generate_password()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"user '{username}' already exists")
        staff = role_is_staff(role)
        user = User.objects.create_user(username=username, email=email, password=password, is_staff=staff,
                                        is_superuser=staff)
        user.groups.add(Group.objects.get(name=role))
        activity_log_record(actor=actor, system=system, action="user.created", target=_target(user),
                            data={"role": role, "email": email})
    return user, password


def user_set_role(*, user: Any, role: str, actor: Any | None = None, system: str | None = None) -> Any:
    """Give ``user`` exactly one role; ``is_staff``/``is_superuser`` follow it. Any change of role
    revokes the user's API tokens and ends their sessions, so a lost power is lost at once."""
    require(actor, "users.manage", system=system, target=_target(user))
    _check_role(role)
    before = user_role(user)
    held = set(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))
    staff = role_is_staff(role)
    if held == {role} and user.is_staff == staff and user.is_superuser == staff:
        return user
    if role != "admin":
        _refuse_losing_the_last_admin(user)
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=ROLE_NAMES).exclude(name=role))
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = user.is_superuser = staff
        user.save(update_fields=["is_staff", "is_superuser"])
        _forget_cached_roles(user)
        ended = _revoke_access(user=user, actor=actor, system=system, reason=f"role changed to {role}")
        activity_log_record(actor=actor, system=system, action="user.role_changed", target=_target(user),
                            data={"before": before, "after": role, **ended})
    return user


def user_deactivate(*, user: Any, actor: Any | None = None, system: str | None = None, reason: str = "") -> Any:
    """The user can no longer sign in; tokens and sessions end now. The row stays (the activity log
    points at it)."""
    require(actor, "users.manage", system=system, target=_target(user))
    if not user.is_active:
        return user
    _refuse_losing_the_last_admin(user)
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        _forget_cached_roles(user)
        ended = _revoke_access(user=user, actor=actor, system=system, reason="deactivated")
        activity_log_record(actor=actor, system=system, action="user.deactivated", target=_target(user),
                            data={"reason": reason, **ended})
    return user


def user_reactivate(*, user: Any, actor: Any | None = None, system: str | None = None) -> Any:
    """The user may sign in again (with their role; tokens are not restored)."""
    require(actor, "users.manage", system=system, target=_target(user))
    if user.is_active:
        return user
    with transaction.atomic():
        user.is_active = True
        user.save(update_fields=["is_active"])
        _forget_cached_roles(user)
        activity_log_record(actor=actor, system=system, action="user.reactivated", target=_target(user))
    return user


def user_password_reset(
    *, user: Any, password: str | None, actor: Any | None = None, system: str | None = None
) -> Any:
    """Set ``user``'s password (None: password sign-in disabled). Their own change needs no role;
    anyone else's needs ``users.manage``. Every API token and session of the user ends (a view
    that changed the signed-in user's own password re-keys its session with
    ``update_session_auth_hash``, so that one continues)."""
    if actor is None or actor.pk != user.pk:
        require(actor, "users.manage", system=system, target=_target(user))
    with transaction.atomic():
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save(update_fields=["password"])
        ended = _revoke_access(user=user, actor=actor, system=system, reason="password reset")
        activity_log_record(actor=actor, system=system, action="user.password_reset", target=_target(user),
                            data={"own": actor is not None and actor.pk == user.pk,
                                  "usable": password is not None, **ended})
    return user
