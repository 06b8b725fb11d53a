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

# --- The work each role may do: the one table the services, the API, the portal's forms and
# the admin's actions all consult (DESIGN.md, "Who may do what"). A service names the work it
# does and calls ``portal.permissions.require(actor, WORK)``; an API view declares
# ``permission_classes = [Can(WORK)]``; an admin action declares ``permissions=["usher_<work>"]``
# (see ``portal.admin_mixins``). Reading is open to every role and not listed here.
WORK: dict[str, tuple[str, ...]] = {
    # ingest sources, catalog import, alert rules, channels, SLOs, drift thresholds
    "config.manage": ("operator", "admin"),
    # snapshots, training runs, version tags and descriptions, archiving a candidate
    "model.build": ("data_scientist", "admin"),
    # request a promotion; request a waiver; propose a finding's resolution
    "promotion.request": ("data_scientist", "operator"),
    "waiver.request": ("data_scientist", "operator"),
    "resolution.propose": ("data_scientist", "operator"),
    # approve or reject a promotion, a waiver, a resolution, a sign-off (never one's own request)
    "review.decide": ("reviewer", "admin"),
    # shadow; pause, advance or abort an approved rollout; roll back to a former production
    # version; experiments between approved versions; incidents and alerts
    "release.operate": ("operator", "admin"),
    "experiment.manage": ("operator", "admin"),
    "incident.handle": ("operator", "admin"),
    # audits with the configured settings (the gate reads these); acknowledging a finding
    "audit.run": ("data_scientist", "operator", "reviewer", "admin"),
    "finding.acknowledge": ("data_scientist", "operator", "reviewer", "admin"),
    # exploratory audits with overrides (labelled; the gate ignores them)
    "audit.explore": ("data_scientist", "operator", "admin"),
    # schedules (the listed tasks, validated arguments); erasure requests
    "schedule.manage": ("operator", "admin"),
    "erasure.request": ("operator", "admin"),
    # events pushed through the API (the platform's service account holds operator)
    "events.ingest": ("operator", "admin"),
    # one's own API token
    "token.own": ROLE_NAMES,
    # users, roles, the Django admin's own records, legal holds
    "users.manage": ("admin",),
}


def roles_for(work: str) -> tuple[str, ...]:
    """The roles that may do ``work``; an unknown name is a programming error, not a refusal."""
    try:
        return WORK[work]
    except KeyError:
        raise KeyError(f"unknown work '{work}': add it to portal.roles.WORK") from None
