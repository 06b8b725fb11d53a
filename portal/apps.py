"""The portal shell app."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Usher portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal import roles

        # Permissions of models added by later migrations are granted to the roles as they appear.
        post_migrate.connect(roles.sync_role_permissions_handler, dispatch_uid="usher-roles")
