"""Reads of the portal shell."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from portal.models import ActivityLogEntry, ReviewRequest
from portal.permissions import user_roles


def activity_log_list(*, filters: dict | None = None) -> QuerySet[ActivityLogEntry]:
    filters = filters or {}
    qs = ActivityLogEntry.objects.select_related("actor").order_by("-seq")
    if filters.get("actor"):
        qs = qs.filter(actor_label__icontains=filters["actor"])
    if filters.get("action"):
        qs = qs.filter(action__startswith=filters["action"])
    if filters.get("target_type"):
        qs = qs.filter(target_type=filters["target_type"])
    if filters.get("target_id"):
        qs = qs.filter(target_id=str(filters["target_id"]))
    if filters.get("since"):
        qs = qs.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(created_at__lte=filters["until"])
    return qs


def review_request_list(*, filters: dict | None = None) -> QuerySet[ReviewRequest]:
    filters = filters or {}
    qs = ReviewRequest.objects.select_related("requester", "decided_by", "assigned_to")
    for key in ("status", "kind", "assigned_role"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return qs.order_by("-created_at")


def review_request_inbox(*, user) -> QuerySet[ReviewRequest]:
    """Pending reviews this user may decide: assigned to them, or to one of their roles.
    Their own requests are left out where they could not decide them anyway."""
    roles = user_roles(user)
    qs = ReviewRequest.objects.filter(status=ReviewRequest.Status.PENDING)
    if "admin" in roles:
        mine = Q(assigned_to__isnull=True) | Q(assigned_to=user)
    else:
        mine = Q(assigned_to=user) | Q(assigned_to__isnull=True, assigned_role__in=roles)
    return qs.filter(mine).exclude(requester=user).select_related("requester").order_by("due_at")
