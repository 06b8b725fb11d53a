"""Roles are Django groups; this module says which model permissions each role holds.

``viewer`` reads everything. The working roles read everything and change what their work
touches. ``admin`` holds every permission. The groups themselves are created by a data
migration (portal 0002); permissions are synced after every migrate so new models are covered.
"""

from __future__ import annotations

ROLE_NAMES = ("viewer", "data_scientist", "operator", "reviewer", "admin")

# app_label -> model names each role may add/change (besides viewing everything).
ROLE_WRITES: dict[str, dict[str, list[str] | str]] = {
    "data_scientist": {"recommender": ["datasetsnapshot", "trainingrun", "modelversion", "registeredmodel"]},
    "operator": {
        "recommender": ["deployment", "experiment", "rollout", "movie", "viewer"],
        "monitoring": "*",
        "django_celery_beat": "*",
    },
    "reviewer": {"audits": ["auditfinding"], "portal": ["reviewrequest"]},
}
READ_ONLY_MODELS = {("portal", "activitylogentry"), ("portal", "activityloghead")}


def sync_role_permissions() -> None:
    from django.contrib.auth.models import Group, Permission

    perms = Permission.objects.select_related("content_type")
    view = [p for p in perms if p.codename.startswith("view_")]
    for name in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=name)
        if name == "admin":
            wanted = [
                p for p in perms
                if (p.content_type.app_label, p.content_type.model) not in READ_ONLY_MODELS
                or p.codename.startswith("view_")
            ]
        else:
            wanted = list(view)
            for app_label, models in ROLE_WRITES.get(name, {}).items():
                for p in perms:
                    if p.content_type.app_label != app_label or p.codename.startswith(("view_", "delete_")):
                        continue
                    if models == "*" or p.content_type.model in models:
                        wanted.append(p)
        group.permissions.set(wanted)


def sync_role_permissions_handler(sender, **kwargs) -> None:
    # post_migrate fires once per app; the last of Usher's apps sees every permission created.
    if sender.name == "audits":
        sync_role_permissions()
