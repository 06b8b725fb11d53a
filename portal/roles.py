"""Roles are Django groups; this module is the one place that says what each role may do.

``WORK`` (below) names the work each role may do; the services, the API, the portal's forms and
the admin's actions consult it. ``ADMIN_MODELS`` says which admin pages (model permissions) each
role holds: the admin is for admins; the other roles work in the portal's own pages and get a
model permission only where an admin form is the one editing page of their work. ``is_staff`` and
``is_superuser`` follow the role (``role_is_staff``); the role itself lives in one place, the
user's group. The groups are created by a data migration (portal 0002); their permissions are
set to exactly this table after every migrate (``sync_role_permissions``), and nothing else grants
a permission: per-user permissions are cleared by the same sync.
"""

from __future__ import annotations

ROLE_NAMES = ("viewer", "data_scientist", "operator", "reviewer", "admin")

# The roles for which the user is staff (and superuser): "the admin is for admins".
STAFF_ROLES = ("admin",)

_VIEW_ADD_CHANGE = ("view", "add", "change")

# role -> {"app_label.model": permitted admin operations}. ``"*"`` is every permission of every
# model except writes to the append-only activity log (READ_ONLY_MODELS).
ADMIN_MODELS: dict[str, dict[str, tuple[str, ...]] | str] = {
    # reads everything through the portal's pages and the API; nothing in the admin
    "viewer": {},
    # snapshots, runs and versions have portal pages (training, registry) and API endpoints
    "data_scientist": {},
    # reviews are decided in the portal's inbox; audits and findings have their own pages
    "reviewer": {},
    "operator": {
        # config.manage: the admin form is the only editing page of SLOs, alert rules, channels
        # and drift thresholds (the portal's monitoring pages link to these change lists)
        "monitoring.slo": _VIEW_ADD_CHANGE,
        "monitoring.alertrule": _VIEW_ADD_CHANGE,
        "monitoring.notificationchannel": _VIEW_ADD_CHANGE,
        "monitoring.driftfeature": ("view", "change"),
        # config.manage (catalog import): the lists' "fetch metadata again" action; the rows
        # themselves come from imports and are not edited by hand
        "recommender.movie": ("view",),
        "recommender.viewer": ("view",),
        # schedule.manage has the portal's own Schedules page (and /api/v1/schedules): no admin rows
    },
    # users, groups, API tokens, task results, the activity log's head, and everything else
    "admin": "*",
}
READ_ONLY_MODELS = {("portal", "activitylogentry"), ("portal", "activityloghead")}


def role_is_staff(role: str | None) -> bool:
    """``is_staff`` and ``is_superuser`` of a user holding ``role``."""
    return role in STAFF_ROLES


def role_permissions(role: str, perms) -> list:
    """The permissions (from ``perms``, Permission rows with their content type) ``role`` holds."""
    table = ADMIN_MODELS.get(role, {})
    wanted = []
    for p in perms:
        app_label, model = p.content_type.app_label, p.content_type.model
        operation = p.codename.split("_", 1)[0]
        if table == "*":
            if (app_label, model) not in READ_ONLY_MODELS or operation == "view":
                wanted.append(p)
        elif operation in table.get(f"{app_label}.{model}", ()):
            wanted.append(p)
    return wanted


def sync_role_permissions() -> None:
    """Set each role group's permissions to exactly ``ADMIN_MODELS``; clear per-user grants."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    # Permissions of models that no longer exist (an app removed) are granted to nobody.
    perms = [p for p in Permission.objects.select_related("content_type") if p.content_type.model_class() is not None]
    for name in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(role_permissions(name, perms))
    get_user_model().user_permissions.through.objects.all().delete()


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
