"""Template tags of the portal's pages: show an action only to the roles that may do it.

``{% load portal_tags %}`` then ``{% may "config.manage" as can_config %}`` (the same rule the
services apply, ``portal.permissions.may``), and ``{% who_may "config.manage" %}`` for the note a
read-only role sees ("operators and admins").
"""

from __future__ import annotations

from django import template

from portal import permissions
from portal.roles import roles_for

register = template.Library()

_PLURAL = {"viewer": "viewers", "data_scientist": "data scientists", "operator": "operators",
           "reviewer": "reviewers", "admin": "admins"}


@register.simple_tag(takes_context=True)
def may(context, work: str) -> bool:
    """True when the signed-in user may do ``work`` (``portal.roles.WORK``)."""
    request = context.get("request")
    return bool(request is not None and permissions.may(request.user, work))


@register.simple_tag
def who_may(work: str) -> str:
    """The roles that may do ``work``, in words: "data scientists, operators and admins"."""
    names = [_PLURAL.get(role, role) for role in roles_for(work)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@register.filter
def params_text(params) -> str:
    """A dict of settings in words: ``{"slo": "availability", "metrics": ["a", "b"]}`` →
    ``slo: availability; metrics: a, b`` (not a Python repr)."""
    if not isinstance(params, dict):
        return "" if params in (None, "") else str(params)
    parts = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


@register.filter
def json_text(value) -> str:
    """A stored JSON value as JSON (``{"reason": "…"}``), not a Python repr (``{'reason': '…'}``)."""
    import json

    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
