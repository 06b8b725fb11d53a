"""The attack suite: who may change what, by every route Usher offers, generated from the code.

Generated so that a new route cannot be missed:
- every state-changing operation in the API schema (drf-spectacular's own endpoint list) must
  name the work it does (a ``portal.permissions.Can(work)`` permission class, or an entry in
  ``NOT_A_ROLE_CHECK`` saying why not); every role that may not do that work is refused with 403
  and the database is exactly as before;
- every action of every model admin declares its permissions, and a role without them changes
  nothing by posting it; every admin add/change form refuses the roles the table does not grant;
- every portal page that takes a POST (found through the URL resolver) changes nothing when a
  read-only viewer posts any of the portal's actions to it.

The per-route attacks of issue #14 have their own tests beside the services they concern; this
module proves the rule holds everywhere (docs/security.md, "The attack suite").
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

from portal.roles import ROLE_NAMES, WORK
from portal.tests.attack_world import ATTACK_ID, MOVIE_ID, build_world

pytestmark = pytest.mark.django_db

# Records that change on any request or by a refusal itself (the refusal is logged on purpose).
VOLATILE = {
    "portal.activitylogentry", "portal.activityloghead", "sessions.session", "axes.accessattempt",
    "axes.accesslog", "axes.accessfailurelog", "django_celery_results.taskresult",
    "django_celery_results.groupresult", "django_celery_results.chordcounter", "admin.logentry",
    "django_celery_beat.periodictasks",
}

# Unsafe operations that legitimately carry no single work check, and why. Those that change state
# are still refused to a viewer (who may change nothing but their own token): see the test below.
NOT_A_ROLE_CHECK = {
    ("POST", "/api/v1/auth/token"): "one's own token: any role (token.own), checked by the service",
    ("DELETE", "/api/v1/auth/token"): "one's own token: any role (token.own), checked by the service",
    ("POST", "/api/v1/reviews/{review_id}/decide"): "each review kind names its decider role; the review service checks it",
    ("POST", "/api/v1/releases/promotions/{promotion_id}/cancel"):
        "the requester (promotion.request) or an operator (release.operate): the service decides by ownership",
    ("POST", "/api/v1/releases/sample-size"): "a calculation: stores nothing",
    ("POST", "/api/v1/model-versions/{version_id}/verify"): "a check of the artifact's hashes: stores nothing",
}
STORES_NOTHING = {("POST", "/api/v1/releases/sample-size"), ("POST", "/api/v1/model-versions/{version_id}/verify")}
OWN_TOKEN = {("POST", "/api/v1/auth/token"), ("DELETE", "/api/v1/auth/token")}


def database_fingerprint() -> dict[str, str]:
    """A digest of every row of every table except the volatile ones: equal before and after
    means nothing was stored, changed or deleted."""
    prints = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in VOLATILE or model._meta.proxy or not model._meta.managed:
            continue
        digest = hashlib.sha256()
        for row in model._default_manager.order_by("pk").values_list():
            digest.update(repr(row).encode())
        prints[label] = digest.hexdigest()
    return prints


def assert_unchanged(before: dict[str, str], what: str) -> None:
    after = database_fingerprint()
    changed = sorted(label for label in before if before[label] != after.get(label))
    assert not changed, f"{what} changed {changed}"


@pytest.fixture
def world(users):
    """One object of every kind a route acts on, all with the primary key ``ATTACK_ID``."""
    return build_world(users)


def _path_value(name: str, world: dict) -> str:
    named = {"name": "default", "alias": "production", "userid": str(ATTACK_ID), "request_id": "r-1",
             "movie_id": MOVIE_ID}
    return named.get(name, str(ATTACK_ID))


# --- the API ------------------------------------------------------------------------------------


def unsafe_api_operations() -> list[tuple[str, str, type]]:
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()
    generator._initialise_endpoints()
    return sorted(
        (method, path, view.cls) for path, _regex, method, view in generator.endpoints
        if method in ("POST", "PUT", "PATCH", "DELETE")
    )


def declared_work(view_class: type) -> str | None:
    for permission in getattr(view_class, "permission_classes", []):
        work = getattr(permission, "work", None)
        if work:
            return work
    return None


API_OPERATIONS = unsafe_api_operations()


def test_every_state_changing_endpoint_names_its_work():
    missing = [
        f"{method} {path} ({cls.__name__})" for method, path, cls in API_OPERATIONS
        if declared_work(cls) is None and (method, path) not in NOT_A_ROLE_CHECK
    ]
    assert not missing, "endpoints that change state without naming their work (portal.permissions.Can):\n" + \
        "\n".join(missing)


def test_not_a_role_check_lists_only_real_endpoints():
    real = {(method, path) for method, path, _ in API_OPERATIONS}
    assert set(NOT_A_ROLE_CHECK) <= real, set(NOT_A_ROLE_CHECK) - real


ATTACK_BODY = {
    "reason": "attack suite", "comment": "attack suite", "decision": "approve", "canary": ATTACK_ID,
    "canary_percent": "100", "production": ATTACK_ID, "version": ATTACK_ID, "percent": 100, "name": "attack",
    "algorithm": "popularity", "snapshot": ATTACK_ID, "tags": ["x"], "description": "x", "enabled": True,
    "justification": "attack suite justification text", "task": "recommender.retrain",
    "headers": {"task": "recommender.retrain"}, "overrides": {"FAIRNESS_BAND": [0.01, 100]},
    "kind": "fairness", "model_version": ATTACK_ID, "lines": ["2024-01-01T00:00:00,1,GET /rate/m+2000=5"],
}


@pytest.mark.parametrize(
    ("method", "path", "view_class"), API_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in API_OPERATIONS]
)
def test_api_refuses_every_role_without_the_work(method, path, view_class, world, client_for):
    work = declared_work(view_class)
    if work is None:
        pytest.skip(NOT_A_ROLE_CHECK.get((method, path), "names no work: see the test above"))
    url = re.sub(r"\{(\w+)\}", lambda m: _path_value(m.group(1), world), path)
    allowed = set(WORK[work])
    for role in ROLE_NAMES:
        client = client_for(role)
        before = database_fingerprint()
        response = getattr(client, method.lower())(url, ATTACK_BODY, format="json")
        if role in allowed:
            # A stricter rule of the service may still refuse (an exploratory audit is audit.explore,
            # four eyes, ownership); what may not happen is a refusal for the endpoint's own work.
            refused_for = (response.json().get("detail") or {}).get("work") if response.status_code == 403 else None
            assert refused_for != work and not (response.status_code == 403 and refused_for is None), \
                f"{role} may do {work} but {method} {url} refused it: {response.content[:300]!r}"
            continue
        assert response.status_code == 403, f"{role} may not do {work}: {method} {url} answered {response.status_code}"
        assert_unchanged(before, f"{role}'s refused {method} {url}")


@pytest.mark.parametrize(("method", "path"), sorted(NOT_A_ROLE_CHECK), ids=[f"{m} {p}" for m, p in sorted(NOT_A_ROLE_CHECK)])
def test_endpoints_checked_in_their_service_still_refuse_a_viewer(method, path, world, client_for):
    """The routes whose rule is not one work (ownership, the review kind's role) still change nothing
    for a viewer; those that store nothing, and one's own token, are open to every role."""
    url = re.sub(r"\{(\w+)\}", lambda m: _path_value(m.group(1), world), path)
    before = database_fingerprint()
    response = getattr(client_for("viewer"), method.lower())(url, ATTACK_BODY, format="json")
    if (method, path) in OWN_TOKEN:
        assert response.status_code in (200, 201, 204), response.content
        return
    if (method, path) in STORES_NOTHING:
        assert response.status_code < 500, response.content
    else:
        assert response.status_code == 403, f"a viewer's {method} {url} answered {response.status_code}"
    assert_unchanged(before, f"a viewer's {method} {url}")


def test_an_api_refusal_is_logged_with_who_tried(world, client_for, users):
    from portal.models import ActivityLogEntry

    response = client_for("viewer").post("/api/v1/deployments/default/change", ATTACK_BODY, format="json")
    assert response.status_code == 403
    entry = ActivityLogEntry.objects.filter(action="permission.refused").first()
    assert entry is not None and entry.actor_id == users["viewer"].pk
    assert entry.data["work"] == "release.operate" and "deployments/default/change" in entry.data["route"]


# --- the admin ----------------------------------------------------------------------------------


def admin_actions() -> list[tuple[str, str]]:
    """(model label, action name) for every action of every registered model admin, the site-wide
    ones (``delete_selected``) included."""
    found = []
    for model, model_admin in admin.site._registry.items():
        for _func, name, _description in model_admin._get_base_actions():
            found.append((model._meta.label_lower, name))
    return sorted(set(found))


ADMIN_ACTIONS = admin_actions()


def _admin_of(label: str):
    model = apps.get_model(label)
    return model, admin.site._registry[model]


def _action_function(model_admin, name: str):
    return next(func for func, action, _ in model_admin._get_base_actions() if action == name)


def test_every_admin_action_declares_its_permissions():
    undeclared = []
    for label, name in ADMIN_ACTIONS:
        _model, model_admin = _admin_of(label)
        func = _action_function(model_admin, name)
        if not getattr(func, "allowed_permissions", None):
            undeclared.append(f"{label}: {name}")
    assert not undeclared, "admin actions without permissions=… run for anyone who can view the list:\n" + \
        "\n".join(undeclared)


@pytest.mark.parametrize(("label", "action"), ADMIN_ACTIONS, ids=[f"{lab}:{a}" for lab, a in ADMIN_ACTIONS])
def test_admin_action_changes_nothing_for_roles_without_its_permission(label, action, world, users, rf):
    from django.test import Client
    from django.urls import reverse

    model, model_admin = _admin_of(label)
    func = _action_function(model_admin, action)
    if not getattr(func, "allowed_permissions", None):
        pytest.fail(f"{label}:{action} declares no permissions: Django runs it for anyone who can view the list")
    pks = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)[:20]]
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for role in ROLE_NAMES:
        request = rf.post(url)
        request.user = users[role]
        permitted = all(
            getattr(model_admin, f"has_{perm}_permission")(request) for perm in func.allowed_permissions
        )
        if permitted:
            continue
        client = Client()
        client.force_login(users[role])
        before = database_fingerprint()
        client.post(url, {"action": action, "_selected_action": pks or ["1"], "index": "0", "post": "yes"})
        assert_unchanged(before, f"{role} posting the admin action {label}:{action}")


ADMIN_MODELS = sorted(model._meta.label_lower for model in admin.site._registry)


@pytest.mark.parametrize("label", ADMIN_MODELS)
def test_admin_forms_refuse_roles_without_the_model_permission(label, world, web_client_for, users):
    from django.urls import NoReverseMatch, reverse

    model, model_admin = _admin_of(label)
    opts = model._meta
    for role in ROLE_NAMES:
        user = users[role]
        client = web_client_for(role)
        may_add = user.has_perm(f"{opts.app_label}.add_{opts.model_name}")
        may_view = user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or \
            user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        if not may_view:
            assert client.get(changelist).status_code in (302, 403, 404), f"{role} reads the admin list of {label}"
        if not may_add:
            try:
                add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            except NoReverseMatch:
                continue
            before = database_fingerprint()
            response = client.post(add, {"name": "attack", "task": "recommender.retrain",
                                         "headers": '{"task": "recommender.retrain"}'})
            assert response.status_code in (302, 403, 404), f"{role} may post the admin add form of {label}"
            assert_unchanged(before, f"{role} posting the admin add form of {label}")


# --- the portal's forms -------------------------------------------------------------------------


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def portal_post_pages() -> list[tuple[str, str]]:
    """(route, view name) of every portal page (not the admin's own) whose view takes a POST."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is None and hasattr(pattern.callback, "__wrapped__"):
            view_class = getattr(pattern.callback.__wrapped__, "view_class", None)
        if not route.startswith("portal/") or view_class is None or not hasattr(view_class, "post"):
            continue
        if view_class.__module__.startswith(("django.", "unfold.")):
            continue
        found.append((route, f"{view_class.__module__}.{view_class.__name__}"))
    return sorted(set(found))


PORTAL_POSTS = portal_post_pages()
ACTIONS = sorted(set(re.findall(r'name="action" value="([a-z_-]+)"', "\n".join(
    p.read_text() for p in Path(settings.BASE_DIR, "templates").rglob("*.html")))))
# A viewer may manage their own API token and decide nothing; everything else must be refused.
VIEWER_MAY = {"portal.pages.ApiTokenView"}
# Fields a page's form needs beyond ATTACK_BODY for its post to go through (the control below shows
# it does, for a role that may); the viewer posts the same.
PAGE_FORMS = {
    "portal.schedules_pages.SchedulesView": {"kind": "interval", "every": "2", "period": "hours", "kwargs": "{}",
                                             "task": "portal.verify_activity_log", "timezone": "UTC"},
    "portal.schedules_pages.ScheduleEditView": {"kind": "interval", "every": "2", "period": "hours", "kwargs": "{}",
                                                "task": "portal.verify_activity_log", "timezone": "UTC"},
    "audits.views.AuditOverviewView": {"kind": "security", "overrides": ""},
    "recommender.training.pages.RegistryView": {"alias": "shadow"},
    "recommender.serving.pages.DeploymentsView": {"production": "keep", "canary": "keep", "shadow": str(ATTACK_ID),
                                                  "canary_percent": "", "shadow_enabled": "on"},
    "releases.pages.ReleasesView": {"version": str(ATTACK_ID + 2)},
    "releases.pages.ExperimentsView": {
        "name": "attack-aa", "arm0_name": "control", "arm0_version": str(ATTACK_ID + 1), "arm0_allocation": "50",
        "control": "0", "arm1_name": "same", "arm1_version": str(ATTACK_ID + 1), "arm1_allocation": "50"},
}
# Pages whose every action needs more than the world holds, and why (the control skips them).
CONTROL_INERT = {
    "releases.pages.RolloutView": "its actions act on a running canary; the world has none",
}


def _attack_form() -> dict:
    return {k: v if not isinstance(v, list | dict) else str(v) for k, v in ATTACK_BODY.items()}


def _form(view: str) -> dict:
    return {**_attack_form(), **PAGE_FORMS.get(view, {})}


def _fill(route: str, world: dict) -> str:
    def value(match):
        converter, name = match.group(1), match.group(2)
        return str(ATTACK_ID) if converter == "int" else _path_value(name, world)

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


@pytest.mark.parametrize(("route", "view"), PORTAL_POSTS, ids=[v for _, v in PORTAL_POSTS])
def test_portal_forms_change_nothing_for_a_viewer(route, view, world, web_client_for):
    if view in VIEWER_MAY:
        pytest.skip("a viewer manages their own API token")
    client = web_client_for("viewer")
    url = _fill(route, world)
    for form in (_attack_form(), _form(view)):  # the hostile payload, and the one the page accepts
        for action in ["", *ACTIONS]:
            before = database_fingerprint()
            response = client.post(url, {**form, "action": action})
            assert response.status_code < 500, f"viewer POST {url} action={action!r} answered {response.status_code}"
            assert_unchanged(before, f"viewer POST {url} action={action!r}")


def test_the_suite_found_routes_to_attack():
    """Guards the generators themselves: if discovery broke, every test above would pass vacuously."""
    assert len(API_OPERATIONS) >= 40
    assert len(ADMIN_ACTIONS) >= 10
    assert len(PORTAL_POSTS) >= 15
    assert {"archive", "analyze", "rollback_production"} <= set(ACTIONS)


@pytest.mark.parametrize(("route", "view"), PORTAL_POSTS, ids=[v for _, v in PORTAL_POSTS])
def test_the_portal_payloads_change_things_for_a_role_that_may(route, view, world, web_client_for):
    """The control for the viewer test above: the same posts, made by the working roles, change the
    database — so "nothing changed for a viewer" is the role check at work, not a payload no page
    would accept."""
    if view in VIEWER_MAY or view in CONTROL_INERT:
        pytest.skip(CONTROL_INERT.get(view, "a viewer's own token"))
    url, form = _fill(route, world), _form(view)
    for role in ("data_scientist", "operator", "reviewer", "admin"):
        client = web_client_for(role)
        for action in ["", *ACTIONS]:
            before = database_fingerprint()
            client.post(url, {**form, "action": action})
            if database_fingerprint() != before:
                return
    pytest.fail(f"no working role changed anything through {url}: the viewer test there proves nothing")
