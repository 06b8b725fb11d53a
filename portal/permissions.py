"""Role-based permission classes for the REST API.

Roles are Django groups: ``viewer`` (read only), ``data_scientist``, ``operator``, ``reviewer``,
``admin``. Every signed-in user with a role may read; writes need the role named by the view.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

ROLES = ("viewer", "data_scientist", "operator", "reviewer", "admin")


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_usher_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ROLES)
        if user.is_superuser:
            cached.add("admin")
        user._usher_roles = cached
    return cached


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


def HasRole(*roles: str) -> type[BasePermission]:  # noqa: N802 - reads like a class in views
    """Permission class factory: ``permission_classes = [HasRole("operator")]``."""

    class _HasRole(BasePermission):
        message = f"This action needs the role: {' or '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            return user_has_role(request.user, *roles)

    _HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return _HasRole
