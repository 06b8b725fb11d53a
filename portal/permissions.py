"""Role-based permission classes for the REST API.

Roles are Django groups: ``viewer`` (read only), ``data_scientist``, ``operator``, ``reviewer``,
``admin``. Every signed-in user with a role may read; writes need the role named by the view.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

ROLES = ("viewer", "data_scientist", "operator", "reviewer", "admin")


def user_roles(user) -> set[str]:
    """The Usher roles ``user`` holds: its role groups, and nothing else (``is_superuser`` follows
    the admin role, it does not grant it). An inactive user holds none."""
    if not user or not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_usher_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ROLES)
        user._usher_roles = cached
    return cached


def user_role(user) -> str | None:
    """The role group of ``user`` (the highest if a legacy account holds several), or None; an
    inactive user keeps its group (and holds no role while inactive, see ``user_roles``)."""
    if not user or not user.is_authenticated:
        return None
    held = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return next((role for role in reversed(ROLES) if role in held), None)


def user_has_role(user, *roles: str) -> bool:
    """True when the user holds one of ``roles``; ``admin`` holds every role."""
    held = user_roles(user)
    return "admin" in held or bool(held & set(roles))


class IsUsherUser(BasePermission):
    """Signed in and holding any Usher role; writes are refused to read-only viewers."""

    message = "You need an Usher role to use this endpoint."

    def has_permission(self, request, view) -> bool:
        roles = user_roles(request.user)
        if not roles:
            return False
        if request.method in SAFE_METHODS:
            return True
        write_roles = getattr(view, "write_roles", None)
        if write_roles is None:
            if roles - {"viewer"}:
                return True
            self.message = "Your role (viewer) has read-only access."
            return False
        if user_has_role(request.user, *write_roles):
            return True
        self.message = f"This action needs the role: {' or '.join(write_roles)}."
        return False


def may(user, work: str) -> bool:
    """True when ``user`` holds a role that may do ``work`` (``portal.roles.WORK``)."""
    from portal.roles import roles_for

    return bool(user_roles(user) & set(roles_for(work)))


def require(actor, work: str, *, system: str | None = None, target=None) -> None:
    """The check every state-changing service makes first, so the API, the portal's forms, the
    admin's actions and the commands cannot differ.

    A person (a signed-in user) must hold a role that may do ``work``; otherwise the refusal is
    written to the activity log with who tried and a ``PermissionDenied`` naming the roles is
    raised. A schedule, a task or a command acts with ``actor=None`` and ``system=<its name>``.
    Call it before the service opens its transaction, so the refusal's log entry is kept.
    """
    from portal.errors import PermissionDenied
    from portal.roles import roles_for

    roles = roles_for(work)
    if actor is None or not getattr(actor, "is_authenticated", False):
        if system:
            return
        raise PermissionDenied(f"{work}: a signed-in user or a system name is required")
    if user_roles(actor) & set(roles):
        return
    from portal.services.activity import activity_log_record

    activity_log_record(actor=actor, action="permission.refused", target=target,
                        data={"work": work, "needs": list(roles), "held": sorted(user_roles(actor))})
    raise PermissionDenied(f"this needs the role: {' or '.join(roles)}", detail={"work": work, "roles": list(roles)})


def Can(work: str) -> type[BasePermission]:  # noqa: N802 - reads like a class in views
    """Permission class factory for API views: signed in with a role; unsafe methods need a role
    that may do ``work``. The service checks again; this answers early with the same rule, and a
    refusal here is written to the activity log like the service's own (who tried, what, where)."""
    from portal.roles import roles_for

    roles = roles_for(work)

    class _Can(BasePermission):
        message = f"This action needs the role: {' or '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            held = user_roles(request.user)
            if not held:
                return False
            if request.method in SAFE_METHODS or held & set(roles):
                return True
            from portal.services.activity import activity_log_record

            activity_log_record(actor=request.user, action="permission.refused",
                                data={"work": work, "needs": list(roles), "held": sorted(held),
                                      "route": f"{request.method} {request.path}"[:255]})
            return False

    _Can.__name__ = f"Can_{work.replace('.', '_')}"
    _Can.work = work  # read by the attack suite: every state-changing endpoint names its work
    return _Can


def HasRole(*roles: str) -> type[BasePermission]:  # noqa: N802 - reads like a class in views
    """Permission class factory: ``permission_classes = [HasRole("operator")]``."""

    class _HasRole(BasePermission):
        message = f"This action needs the role: {' or '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            return user_has_role(request.user, *roles)

    _HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return _HasRole
