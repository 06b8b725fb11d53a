"""Reads of the portal shell: the activity log and the review inbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.models import ActivityLogEntry, ReviewRequest
from portal.permissions import user_has_role, user_roles


def activity_log_list(*, filters: dict | None = None) -> QuerySet[ActivityLogEntry]:
    """Entries newest first; ``filters``: actor (contains), action (prefix), target_type,
    target_id, since, until."""
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


def activity_log_daily_counts(*, days: int = 14) -> list[tuple[str, int]]:
    """Entries per day over the last ``days`` days (oldest first, zero-filled)."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        ActivityLogEntry.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
    )
    by_day = {row["day"]: row["n"] for row in rows}
    return [((start + timedelta(days=i)).isoformat(), by_day.get(start + timedelta(days=i), 0)) for i in range(days)]


def activity_log_last_check() -> dict | None:
    """The latest finished ``portal.verify_activity_log`` run: ``{"result": {...}, "at": datetime}``."""
    import json

    from django_celery_results.models import TaskResult

    row = (
        TaskResult.objects.filter(task_name="portal.verify_activity_log", status="SUCCESS")
        .order_by("-date_done")
        .values("result", "date_done")
        .first()
    )
    if row is None:
        return None
    try:
        result = json.loads(row["result"] or "null")
    except ValueError:
        return None
    return {"result": result, "at": row["date_done"]} if isinstance(result, dict) else None


def activity_log_last_anchor() -> tuple[int, str] | None:
    """The head ``(seq, hash)`` that the latest successful verification saw intact."""
    check = activity_log_last_check()
    if not check or not check["result"].get("ok") or not check["result"].get("head_hash"):
        return None
    return int(check["result"]["head_seq"]), str(check["result"]["head_hash"])


def review_request_list(*, filters: dict | None = None) -> QuerySet[ReviewRequest]:
    """Every review request, newest first; ``filters``: status, kind, assigned_role."""
    filters = filters or {}
    qs = ReviewRequest.objects.select_related("requester", "decided_by", "assigned_to")
    for key in ("status", "kind", "assigned_role"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return qs.order_by("-created_at")


def review_request_inbox(*, user: Any) -> QuerySet[ReviewRequest]:
    """Pending reviews this user may decide: assigned to them, or to one of their roles.
    Their own requests are left out where they could not decide them anyway."""
    roles = user_roles(user)
    if not roles:
        return ReviewRequest.objects.none()
    qs = ReviewRequest.objects.filter(status=ReviewRequest.Status.PENDING)
    if "admin" in roles:
        mine = Q(assigned_to__isnull=True) | Q(assigned_to=user)
    else:
        mine = Q(assigned_to=user) | Q(assigned_to__isnull=True, assigned_role__in=roles)
    return qs.filter(mine).exclude(requester=user).select_related("requester").order_by("due_at", "id")


def review_request_status_counts() -> dict[str, int]:
    """How many review requests are in each status."""
    counts = dict(ReviewRequest.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in ReviewRequest.Status.values}


def review_request_may_decide(*, review: ReviewRequest, user: Any) -> bool:
    """Whether ``user`` holds the role (or is the person) the review is assigned to.
    Four eyes is checked apart, by the service, because a refusal on that ground is logged."""
    if not getattr(user, "is_authenticated", False):
        return False
    if review.assigned_to_id is not None:
        return review.assigned_to_id == user.pk or user_has_role(user, "admin")
    return user_has_role(user, review.assigned_role)
