"""Template tags of the portal's pages: show an action only to the roles that may do it.

``{% load portal_tags %}`` then ``{% may "config.manage" as can_config %}`` (the same rule the
services apply, ``portal.permissions.may``), and ``{% who_may "config.manage" %}`` for the note a
read-only role sees ("operators and admins").
"""

from __future__ import annotations

import re

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
        if isinstance(value, dict):
            value = f"({params_text(value)})" if value else "—"
        elif isinstance(value, list | tuple):
            value = ", ".join(f"({params_text(v)})" if isinstance(v, dict) else value_text(v, key) for v in value)
        else:
            value = value_text(value, key)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


@register.filter
def json_text(value) -> str:
    """A stored JSON value as JSON (``{"reason": "…"}``), not a Python repr (``{'reason': '…'}``)."""
    import json

    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


# --- numbers by unit ------------------------------------------------------------------------------
# Every figure a page shows goes through one of these: no raw floats (0.6325110689437059), no
# "258392064.0000 bytes". Anything that is not a number is shown as it is (None as "—").

def _number(value):
    """``value`` as an int or float, or None when it is not a number (bools are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except (TypeError, ValueError):
        return None


def _dash(value) -> str:
    return "—" if value in (None, "") else str(value)


@register.filter
def num(value, digits: int = 4) -> str:
    """A number with sensible digits: integers from 10,000 with thousands separators, floats to
    ``digits`` significant digits and never more than four decimals (``0.6325``, ``12.35``,
    ``1,234``), below 0.001 in scientific notation (``3.20e-06``)."""
    n = _number(value)
    if n is None:
        return _dash(value)
    if isinstance(n, int):
        return f"{n:,}" if abs(n) >= 10000 else str(n)
    if n != n or n in (float("inf"), float("-inf")):
        return str(n)
    if n == int(n) and abs(n) < 1e15:
        return f"{int(n):,}"
    magnitude = abs(n)
    if magnitude >= 1000:
        return f"{n:,.0f}"
    if magnitude < 1e-3:
        return f"{n:.2e}"
    digits = max(1, int(digits))
    text = f"{n:.{digits}g}"
    if "." in text:
        whole, decimals = text.split(".")
        text = f"{whole}.{decimals[:4]}".rstrip("0").rstrip(".")
    return text


@register.filter
def bytes_text(value) -> str:
    """A size in bytes in binary units: ``258392064`` → ``246.4 MiB``."""
    n = _number(value)
    if n is None:
        return _dash(value)
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@register.filter
def seconds_text(value) -> str:
    """A duration in seconds in the unit that reads best: ``0.2852`` → ``285 ms``, ``4.31`` →
    ``4.3 s``, ``252`` → ``4.2 min``, ``7200`` → ``2.0 h``."""
    n = _number(value)
    if n is None:
        return _dash(value)
    s = float(n)
    magnitude = abs(s)
    if magnitude == 0:
        return "0 s"
    if magnitude < 0.001:
        return f"{num(s * 1e6, 3)} µs"
    if magnitude < 1:
        return f"{num(s * 1000, 3)} ms"
    if magnitude < 60:
        return f"{s:.1f} s"
    if magnitude < 3600:
        return f"{s / 60:.1f} min"
    if magnitude < 86400 * 2:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


@register.filter
def percent(value, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.6325`` → ``63.3 %`` (``digits`` decimals, 1 unless told)."""
    n = _number(value)
    if n is None:
        return _dash(value)
    return f"{float(n) * 100:.{max(0, min(int(digits), 4))}f} %"


_BYTES_KEYS = ("bytes", "memory", "_size", "size_")
_SECONDS_KEYS = ("seconds", "duration", "latency_s", "elapsed", "_secs")
_PERCENT_KEYS = ("percent", "fraction", "share", "_rate", "ratio_pct")


def _unit_of(key: str) -> str:
    k = str(key).lower()
    if k.endswith("_ms") or "milliseconds" in k:
        return "ms"
    if any(part in k for part in _BYTES_KEYS) or k in ("size", "artifact_size"):
        return "bytes"
    if any(part in k for part in _SECONDS_KEYS) or k.endswith("_s"):
        return "seconds"
    return ""


@register.filter
def value_text(value, key: str = "") -> str:
    """A figure in the unit its name says (``peak_memory_bytes`` → MiB, ``total_seconds`` → s,
    ``…_ms`` → ms), else with sensible digits; lists of plain values joined by commas."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list | tuple) for v in value):
        return ", ".join(value_text(v, key) for v in value)
    if isinstance(value, dict | list | tuple):
        return params_text(value) if isinstance(value, dict) else ", ".join(
            f"({params_text(v)})" if isinstance(v, dict) else value_text(v, key) for v in value)
    n = _number(value) if not isinstance(value, str) else None
    if n is None:
        return _dash(value)
    k = str(key).lower()
    if isinstance(n, int) and (k in _ID_PAGES or k in ("id", "pk", "seed", "year") or k.endswith("_id")):
        return str(n)  # an id reads as written: version 14245, not 14,245
    unit = _unit_of(key)
    if unit == "bytes":
        return bytes_text(n)
    if unit == "seconds":
        return seconds_text(n)
    if unit == "ms":
        return seconds_text(float(n) / 1000)
    return num(n)


# --- labels and links -----------------------------------------------------------------------------

@register.filter
def label(name) -> str:
    """The human label of a machine name (a review kind, a check, an activity-log verb):
    ``audits.run_signoff`` → ``Audit sign-off`` (``portal.reviews.human_label``)."""
    from portal.reviews import human_label

    return human_label(name)


# Which portal page an id under a given key names. ``run`` is a training run, except in the
# audits' own evidence (``evidence_table value "audits"``), where it is an audit run.
_ID_PAGES: dict[str, tuple[str, str]] = {
    "model_version": ("recommender:registry_version", "version"), "version": ("recommender:registry_version", "version"),
    "version_id": ("recommender:registry_version", "version"),
    "candidate": ("recommender:registry_version", "version"), "baseline": ("recommender:registry_version", "version"),
    "candidate_version": ("recommender:registry_version", "version"),
    "baseline_version": ("recommender:registry_version", "version"),
    "production_version": ("recommender:registry_version", "version"),
    "production": ("recommender:registry_version", "version"),
    "training_run": ("recommender:training_run", "run"), "training_run_id": ("recommender:training_run", "run"),
    "run": ("recommender:training_run", "run"), "run_id": ("recommender:training_run", "run"),
    "snapshot": ("recommender:training_snapshot", "snapshot"), "snapshot_id": ("recommender:training_snapshot", "snapshot"),
    "finding": ("audits:finding", "finding"), "finding_id": ("audits:finding", "finding"),
    "findings": ("audits:finding", "finding"), "new": ("audits:finding", "finding"),
    "seen_again": ("audits:finding", "finding"), "no_longer_found": ("audits:finding", "finding"),
    "blocking_findings": ("audits:finding", "finding"), "accepted_findings": ("audits:finding", "finding"),
    "audit_run": ("audits:run", "audit run"), "audit_run_id": ("audits:run", "audit run"),
    "promotion": ("releases:promotion", "promotion"),
    "promotion_id": ("releases:promotion", "promotion"),
    "promotion_request": ("releases:promotion", "promotion"),
    "rollout": ("releases:rollout", "rollout"), "rollout_id": ("releases:rollout", "rollout"),
    "incident": ("monitoring:incident", "incident"), "incident_id": ("monitoring:incident", "incident"),
    "experiment": ("releases:experiment", "experiment"),
    "experiment_id": ("releases:experiment", "experiment"),
    "drift_report": ("monitoring:drift_report", "drift report"),
    "drift_report_id": ("monitoring:drift_report", "drift report"),
    "review": ("portal:review", "review"), "review_id": ("portal:review", "review"),
}
_AUDITS_ID_PAGES = {**_ID_PAGES, "run": ("audits:run", "audit run"), "run_id": ("audits:run", "audit run"),
                    "first_run": ("audits:run", "audit run"), "runs": ("audits:run", "audit run"),
                    "skipped_runs": ("audits:run", "audit run")}


def _id_link(key: str, value, pages: dict) -> str | None:
    """``<a href=…>version #12</a>`` when ``key`` names an object with a page and ``value`` is its id."""
    from django.urls import NoReverseMatch, reverse
    from django.utils.html import format_html

    target = pages.get(str(key).lower())
    if target is None or isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        try:
            url = reverse(target[0], args=[int(value)])
        except NoReverseMatch:
            return None
        return format_html('<a class="text-primary-600 underline" href="{}">{} #{}</a>', url, target[1], value)
    return None


def _key_text(key, value=None) -> str:
    """A key in words; a figure shown in its own unit drops the unit from its name
    (``window_seconds: 300`` reads "Window: 5.0 min")."""
    text = str(key).replace("_", " ").strip()
    if _unit_of(key) and _number(value) is not None and not isinstance(value, bool | str):
        shorter = re.sub(r"\s*\b(in )?(seconds|secs|bytes|ms|milliseconds|s)$", "", text)
        text = shorter or text
    return text[:1].upper() + text[1:]


_ROWS_SHOWN = 50
_TABLE = 'class="text-sm border border-base-200 rounded-default dark:border-base-800 my-1"'
_TH = 'class="px-3 py-1 text-left font-semibold align-top whitespace-nowrap"'
_TD = 'class="px-3 py-1 align-top" style="word-break: break-word"'


def _render(value, key: str, pages: dict, depth: int) -> str:
    from django.utils.html import conditional_escape, format_html
    from django.utils.safestring import mark_safe

    link = _id_link(key, value, pages)
    if link:
        return link
    if isinstance(value, list | tuple) and value and all(
            not isinstance(v, dict | list | tuple) for v in value):
        links = [_id_link(key, v, pages) for v in value]
        if all(links):
            return mark_safe(", ".join(links))
    if depth > 6:
        return conditional_escape(json_text(value) if isinstance(value, dict | list) else value_text(value, key))
    if isinstance(value, dict):
        if not value:
            return "—"
        rows = []
        for k, v in list(value.items())[:_ROWS_SHOWN]:
            rows.append(format_html('<tr class="border-t border-base-200 dark:border-base-800"><th {}>{}</th><td {}>{}</td></tr>',
                                    mark_safe(_TH), _key_text(k, v), mark_safe(_TD), _render(v, k, pages, depth + 1)))
        more = len(value) - _ROWS_SHOWN
        if more > 0:
            rows.append(format_html('<tr><td colspan="2" class="px-3 py-1 text-gray-500">… {} more</td></tr>', more))
        return format_html("<table {}><tbody>{}</tbody></table>", mark_safe(_TABLE), mark_safe("".join(rows)))
    if isinstance(value, list | tuple):
        if not value:
            return "—"
        if all(isinstance(v, dict) for v in value):
            # rows of records: one column per key, in first-seen order; an "id" column links to
            # the object the list is about (``blocking_findings`` → findings)
            columns: list = []
            for record in value[:_ROWS_SHOWN]:
                columns += [k for k in record if k not in columns]
            head = "".join(format_html("<th {}>{}</th>", mark_safe(_TH), _key_text(c)) for c in columns)
            body = []
            for record in value[:_ROWS_SHOWN]:
                cells = []
                for c in columns:
                    cell_key = key if c in ("id", "pk") and str(key).lower() in pages else c
                    cells.append(format_html("<td {}>{}</td>", mark_safe(_TD),
                                             _render(record.get(c), cell_key, pages, depth + 1) if c in record else "—"))
                body.append(format_html('<tr class="border-t border-base-200 dark:border-base-800">{}</tr>',
                                        mark_safe("".join(cells))))
            more = len(value) - _ROWS_SHOWN
            if more > 0:
                body.append(format_html('<tr><td colspan="{}" class="px-3 py-1 text-gray-500">… {} more</td></tr>',
                                        len(columns), more))
            return format_html("<table {}><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", mark_safe(_TABLE),
                               mark_safe(head), mark_safe("".join(body)))
        if all(not isinstance(v, dict | list | tuple) for v in value):
            shown = ", ".join(value_text(v, key) for v in value[:_ROWS_SHOWN])
            return conditional_escape(shown + (f", … {len(value) - _ROWS_SHOWN} more" if len(value) > _ROWS_SHOWN else ""))
        items = "".join(format_html("<li>{}</li>", _render(v, key, pages, depth + 1)) for v in value[:_ROWS_SHOWN])
        return format_html('<ul class="list-disc pl-4">{}</ul>', mark_safe(items))
    return conditional_escape(value_text(value, key))


@register.simple_tag
def evidence_table(value, context: str = "") -> str:
    """Evidence (any stored JSON) as key/value tables, nested as deep as it goes, figures by unit,
    and the ids it names linked to their pages (``model_version: 12`` → "version #12");
    ``context="audits"`` (or a review kind of the audits, ``audits.run_signoff``) reads ``run`` as
    an audit run. Never a ``{'…': …}`` dump."""
    from django.utils.html import format_html

    pages = _AUDITS_ID_PAGES if str(context).split(".")[0] == "audits" else _ID_PAGES
    if value in (None, "", {}, []):
        return format_html('<p class="text-sm text-gray-500">{}</p>', "No evidence recorded.")
    return format_html('<div data-testid="evidence-table" class="overflow-auto">{}</div>',
                       _render(value, "", pages, 0))


@register.simple_tag
def target_link(target_type, target_id, text="", kind=""):
    """A link to the portal page of ``target_type`` #``target_id`` (an activity-log entry's or a
    review's target), or the text alone when it has no page."""
    from django.utils.html import format_html

    from portal.reviews import target_url

    text = text or target_text(target_type, target_id)
    url = target_url(str(target_type or ""), target_id, kind=str(kind or "")) if target_id not in (None, "") else None
    if url is None:
        return format_html("{}", text)
    return format_html('<a class="text-primary-600" href="{}">{}</a>', url, text)


@register.simple_tag
def target_text(target_type, target_id) -> str:
    """An object named by ``app_label.model`` and id, in words: ``promotion request #4242``."""
    from django.apps import apps

    from portal.reviews import current_target_type

    name = current_target_type(str(target_type or ""))
    try:
        name = str(apps.get_model(name)._meta.verbose_name)
    except (LookupError, ValueError):
        name = name.rsplit(".", 1)[-1]
    return f"{name} #{target_id}" if target_id not in (None, "") else name


@register.filter
def when(value) -> str:
    """A moment (a datetime, or the ISO text an export stores) as ``2026-12-07 15:18:19``, UTC."""
    from datetime import UTC, datetime

    if value in (None, ""):
        return "—"
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def kwargs_text(value) -> str:
    """A schedule's JSON arguments (``{"kind": "fairness"}``) in words (``kind: fairness``); empty for none."""
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return value
    return params_text(value) if isinstance(value, dict) else ("" if value in (None, []) else str(value))


# --- statuses in words ----------------------------------------------------------------------------
# A status, state, kind or outcome is stored as a machine name (``awaiting_review``); a page shows
# the model field's label ("Canary running" from ``get_status_display``) or, for a value read out of
# stored JSON, the name in words ("Rolled back"). The crawl test fails on a snake_case word in a badge.

_BADGE_GOOD = {"passed", "released", "completed", "approved", "running", "waived", "succeeded", "ok", "resolved",
               "fixed", "ready", "healthy", "met", "pass", "ship", "accepted", "advanced", "started", "resumed",
               "active", "sent", "delivered", "done", "production"}
_BADGE_BAD = {"failed", "gate_failed", "rejected", "rolled_back", "error", "invalid_srm", "guardrail_breach",
              "keep_control", "open", "firing", "critical", "high", "breached", "drifted", "fail", "quarantined",
              "cancelled", "blocking", "regressed", "violated", "down", "missed", "exhausted"}
_BADGE_WAIT = {"paused", "held", "awaiting_review", "gate_running", "gate_pending", "continue", "rolling_out",
               "queued", "pending", "acknowledged", "medium", "warning", "warn", "inconclusive", "changes_requested",
               "draft", "at_risk", "stale", "candidate", "retrying", "canary", "shadow"}
# Unfold's label colours (unfold/helpers/label.html), utilities its stylesheet holds; portal.css
# gives the dark theme's (``.usher-badge[data-tone]``).
_BADGE_CLASS = {"good": "bg-green-100 text-green-700", "bad": "bg-red-100 text-red-700",
                "wait": "bg-orange-100 text-orange-700", "": "bg-base-500/8 text-base-700"}


@register.filter
def choice_text(value) -> str:
    """A machine name in words, first letter capital: ``rolled_back`` → ``Rolled back``; ``—`` for
    none. What follows a colon is a name and stays as written (``ship:svd`` → ``Ship svd``)."""
    if value in (None, ""):
        return "—"
    head, colon, name = str(value).partition(":")
    text = head.replace("_", " ").strip() + (f" {name}" if colon else "")
    return text[:1].upper() + text[1:]


@register.filter
def display(obj, field: str) -> str:
    """The human label of ``obj``'s choice field ``field`` (``get_<field>_display``, first letter
    capital): ``{{ promotion|display:"status" }}`` → ``Canary running``; a value outside the
    field's choices (or a field without choices) in words (``choice_text``)."""
    value = getattr(obj, field, None) if not isinstance(obj, dict) else obj.get(field)
    shown = getattr(obj, f"get_{field}_display", None)
    text = str(shown()) if callable(shown) else ""
    if not text or text == str(value):
        return choice_text(value)
    return text[:1].upper() + text[1:]


@register.simple_tag
def status_badge(obj, field: str = "") -> str:
    """A coloured pill with a status in words: ``{% status_badge rollout "state" %}`` (the field's
    label) or ``{% status_badge snapshot.decision %}`` (a stored value in words). The machine name
    stays in ``data-status`` for tests and styles."""
    from django.utils.html import format_html

    value = (getattr(obj, field, None) if not isinstance(obj, dict) else obj.get(field)) if field else obj
    text = display(obj, field) if field else choice_text(obj)
    key = str(value or "").lower()
    head = key.split(":", 1)[0]  # an experiment's "ship:svd" is a ship
    tone = next((t for t, names in (("good", _BADGE_GOOD), ("bad", _BADGE_BAD), ("wait", _BADGE_WAIT))
                 if key in names or head in names), "")
    return format_html('<span class="usher-badge inline-block rounded-default px-2 text-xs font-semibold '
                       'whitespace-nowrap {}" data-tone="{}" data-testid="status" data-status="{}">{}</span>',
                       _BADGE_CLASS[tone], tone or "none", key, text)


# --- filter bars ----------------------------------------------------------------------------------
# A list page's GET filter bar draws its controls with the PortalForm widgets (``portal.forms``:
# Unfold's input, select and checkbox), so it looks like the portal's forms and the admin's; the
# bar's layout is ``.usher-filter-bar`` in portal.css.

def _options(choices, empty: str, names: bool) -> list[tuple[str, str]]:
    """``choices`` as (value, label) pairs: pairs as given (Django's ``choices``), plain values in
    words (``rolled_back`` → ``Rolled back``) or, with ``names``, as written (a genre, a source);
    ``empty`` first as the "any" option when given."""
    options = [("", empty)] if empty else []
    for choice in choices or ():
        if isinstance(choice, list | tuple) and len(choice) == 2:
            text = str(choice[1])
            options.append((str(choice[0]), text[:1].upper() + text[1:]))
        else:
            options.append((str(choice), str(choice) if names else choice_text(choice)))
    return options


@register.simple_tag
def filter_select(name: str, value, choices, empty: str = "", names: bool = False) -> str:
    """An Unfold select for a filter bar: ``{% filter_select "status" filters.status statuses "any status" %}``
    (``names=True``: the values are names, shown as written)."""
    from portal.forms import Select

    widget = Select(**{"aria-label": empty or name.replace("_", " ")})
    widget.choices = _options(choices, empty, names)
    return widget.render(name, "" if value is None else str(value))


@register.simple_tag
def filter_input(name: str, value="", placeholder: str = "", type: str = "text", **attrs) -> str:  # noqa: A002
    """An Unfold text input for a filter bar (``type="datetime-local"``, ``"number"``… as told)."""
    from portal.forms import TextInput

    widget = TextInput(placeholder=placeholder, **{"aria-label": placeholder or name.replace("_", " ")}, **attrs)
    widget.input_type = type
    return widget.render(name, None if value in (None, "") else str(value))


@register.simple_tag
def filter_checkbox(name: str, checked, label: str, value: str = "true") -> str:
    """An Unfold checkbox with its label for a filter bar (sends ``name=value`` when ticked)."""
    from django.utils.html import format_html

    from portal.forms import Checkbox

    box = Checkbox(value=value).render(name, bool(checked))
    return format_html('<label class="flex items-center gap-2 text-sm">{}{}</label>', box, label)
