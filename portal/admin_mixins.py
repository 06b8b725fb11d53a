"""Admin actions declare the work they do, in ``portal.roles.WORK``'s names.

Django runs an action without ``permissions=`` for anyone who may view the list, and looks up a
declared permission ``p`` as ``modeladmin.has_<p>_permission(request)``. With the mixin below,
``@admin.action(permissions=["config_manage"])`` means ``may(request.user, "config.manage")``:
the action is offered to, and run for, only the roles that may do that work (the service it calls
checks again). An unknown name fails Django's system check (admin.E129) at start-up.
Use ``portal.admin_mixins.ModelAdmin`` (unfold's, with the mixin) as every admin's base class.
"""

from __future__ import annotations

from unfold.admin import ModelAdmin as UnfoldModelAdmin

from portal.permissions import may
from portal.roles import WORK

# "config_manage" -> "config.manage": the action permission names Django can look up.
ACTION_PERMISSIONS = {work.replace(".", "_"): work for work in WORK}


def work_of_permission(permission: str) -> str | None:
    """The WORK name an action's ``permissions=`` entry stands for, or None (a Django one)."""
    return ACTION_PERMISSIONS.get(permission)


class WorkPermissionsMixin:
    """``has_<work>_permission(request)`` for every work in ``portal.roles.WORK``."""

    def __getattr__(self, name: str):
        if name.startswith("has_") and name.endswith("_permission"):
            work = ACTION_PERMISSIONS.get(name[len("has_"):-len("_permission")])
            if work is not None:
                def has_work_permission(request, obj=None) -> bool:
                    return may(request.user, work)

                return has_work_permission
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class AdminOnlyMixin:
    """Users, groups, tokens: the admin role (``users.manage``) and nobody else, whatever a
    permission row says."""

    def has_view_permission(self, request, obj=None) -> bool:
        return may(request.user, "users.manage") and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args) -> bool:
        return may(request.user, "users.manage") and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return may(request.user, "users.manage") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return may(request.user, "users.manage") and super().has_delete_permission(request, obj)

    def has_module_permission(self, request) -> bool:
        return may(request.user, "users.manage") and super().has_module_permission(request)


class ModelAdmin(WorkPermissionsMixin, UnfoldModelAdmin):
    """unfold's ModelAdmin whose actions may declare WORK permissions."""


class ReadOnlyAdmin(ModelAdmin):
    """No add, change or delete: for append-only records and rows changed only through services."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
