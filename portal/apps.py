"""The portal shell app, and the admin app configured with the portal's site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Usher portal"
    default_auto_field = "django.db.models.BigAutoField"
    default = True  # this module also holds PortalAdminConfig

    def ready(self) -> None:
        from portal import roles

        # Permissions of models added by later migrations are granted to the roles as they appear.
        post_migrate.connect(roles.sync_role_permissions_handler, dispatch_uid="usher-roles")


class PortalAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``admin.site`` being the portal's site (portal.sites)."""

    default = False  # named explicitly in INSTALLED_APPS
    default_site = "portal.sites.PortalAdminSite"
