"""The portal's pages and the admin render for every role; the dashboard shows real figures;
the sidebar carries the pending-review badge."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from portal.roles import ROLE_NAMES
from portal.services import activity_log_record, review_request_create

pytestmark = pytest.mark.django_db

PORTAL_PAGES = ["admin:index", "portal:inbox", "portal:activity", "portal:api-token"]


@pytest.fixture
def some_history(users, review_kind):
    """Two pending reviews for reviewers, one decided, and a few log entries."""
    for i in range(2):
        review_request_create(kind=review_kind.name, target=("demo.model", i), title=f"Promote v{i}",
                              requester=users["data_scientist"])
    from portal.services import review_request_decide

    done = review_request_create(kind=review_kind.name, target=("demo.model", 9), title="Promote v9",
                                 requester=users["data_scientist"])
    review_request_decide(review=done, actor=users["reviewer"], decision="approve")
    activity_log_record(actor=users["operator"], action="thing.done")


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize("name", PORTAL_PAGES)
def test_portal_pages_render_for_every_role(users, web_client_for, some_history, role, name):
    response = web_client_for(role).get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Usher" in html
    assert 'data-error="1"' not in html  # no dashboard contribution failed


def test_review_detail_renders_for_every_role(users, web_client_for, some_history):
    from portal.models import ReviewRequest

    review = ReviewRequest.objects.first()
    for role in ROLE_NAMES:
        assert web_client_for(role).get(reverse("portal:review", args=[review.pk])).status_code == 200
    assert web_client_for("viewer").get(reverse("portal:review", args=[999999])).status_code == 404


def test_pages_need_a_login(db):
    from django.test import Client

    for name in PORTAL_PAGES:
        response = Client().get(reverse(name))
        assert response.status_code == 302 and "/portal/login/" in response["Location"]


def _cards(response) -> dict[str, str]:
    return {c["title"]: str(c["value"]) for c in response.context["usher_cards"]}


def test_dashboard_shows_real_figures(users, web_client_for, some_history):
    # Given two pending reviews for reviewers, one approved, and six log entries
    reviewer = web_client_for("reviewer").get(reverse("admin:index"))
    cards = _cards(reviewer)
    # Then the figures are the database's
    assert cards["Reviews waiting for you"] == "2"
    assert cards["Pending reviews (everyone)"] == "2"
    assert cards["Activity log entries"] == "5"
    assert cards["Activity log chain"] == "not checked yet"
    # For a viewer, nothing waits
    assert _cards(web_client_for("viewer").get(reverse("admin:index")))["Reviews waiting for you"] == "0"
    # And the figures are on the page, each card linking where it says
    html = reviewer.content.decode()
    assert html.count('data-testid="usher-card"') == len(reviewer.context["usher_cards"])
    assert f'href="{reverse("portal:inbox")}"' in html
    assert 'data-testid="dashboard-activity"' in html and "thing.done" in html


def test_dashboard_charts_are_chart_specs_drawn_by_the_portal_chart_helper(users, web_client_for, some_history):
    from django.contrib.staticfiles import finders

    response = web_client_for("operator").get(reverse("admin:index"))
    charts = response.context["usher_charts"]
    activity = next(c for c in charts if c["title"].startswith("Activity"))
    assert len(activity["labels"]) == 14 and activity["datasets"][0]["data"][-1] == 5
    assert activity["x"]["title"] and activity["y"]["title"] == "activity-log entries (per day)"
    html = response.content.decode()
    # every chart is one container of the helper, with its spec for portal/charts.js
    assert html.count("data-chart=") == len(charts)
    assert f'data-usher-chart="{activity["id"]}-spec"' in html and "portal/charts.js" in html
    # unfold's bundled Chart.js is what draws them: served locally, nothing from a CDN
    assert "unfold/js/chart/chart.js" in html and finders.find("unfold/js/chart/chart.js")
    assert not re.search(r'src="https?://', html)


def test_dashboard_shows_the_last_chain_check(users, web_client_for):
    from django_celery_results.models import TaskResult

    from portal.tasks import verify_activity_log

    activity_log_record(actor=users["admin"], action="x")
    TaskResult.objects.create(task_id="t1", task_name="portal.verify_activity_log", status="SUCCESS",
                              result=json.dumps(verify_activity_log()))
    cards = _cards(web_client_for("viewer").get(reverse("admin:index")))
    assert cards["Activity log chain"] == "intact"


def test_a_failing_app_contribution_shows_an_error_card(users, web_client_for, monkeypatch):
    import types

    from portal import dashboard

    broken = types.SimpleNamespace(__name__="brokenapp.dashboard", cards=lambda request: 1 / 0)
    monkeypatch.setattr(dashboard, "app_modules", lambda name: iter([broken]))
    response = web_client_for("viewer").get(reverse("admin:index"))
    assert response.status_code == 200
    assert 'data-error="1"' in response.content.decode()
    assert _cards(response)["brokenapp: figures unavailable"] == "error"


def test_sidebar_shows_the_pending_review_badge(users, web_client_for, some_history):
    from portal.navigation import pending_reviews_badge

    response = web_client_for("reviewer").get(reverse("portal:activity"))
    inbox_item = next(
        item for group in response.context["sidebar_navigation"] for item in group["items"]
        if item["title"] == "Review inbox"
    )
    assert inbox_item["badge"] == "2"
    html = response.content.decode()
    assert re.search(r"<span>Review inbox</span>\s*<span[^>]*>\s*2\s*</span>", html), "no badge beside the inbox link"
    viewer = web_client_for("viewer").get(reverse("portal:inbox"))
    assert pending_reviews_badge(viewer.wsgi_request) == ""
    viewer_inbox = next(
        item for group in viewer.context["sidebar_navigation"] for item in group["items"] if item["title"] == "Review inbox"
    )
    assert "badge" not in viewer_inbox  # no empty box when nothing waits


def test_every_sidebar_link_resolves_and_renders(users, web_client_for, some_history):
    client = web_client_for("admin")
    response = client.get(reverse("admin:index"))
    links = [str(item["link"]) for group in response.context["sidebar_navigation"] for item in group["items"]]
    assert links
    for link in links:
        assert client.get(link).status_code == 200, link


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        yield model, model_admin, info


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_admin_renders_every_model_for_every_role(users, web_client_for, some_history, role):
    # Every registered model's list (and add page and one object, where they exist) renders or
    # refuses cleanly: never a 500, whatever the role
    client = web_client_for(role)
    problems = []
    for model, _model_admin, (app, name) in _admin_urls():
        changelist = client.get(reverse(f"admin:{app}_{name}_changelist"))
        if changelist.status_code not in (200, 403):
            problems.append(f"{app}.{name} list → {changelist.status_code}")
        try:
            add = client.get(reverse(f"admin:{app}_{name}_add"))
            if add.status_code not in (200, 403):
                problems.append(f"{app}.{name} add → {add.status_code}")
        except NoReverseMatch:
            pass
        obj = model._default_manager.first()
        if obj is not None:
            change = client.get(reverse(f"admin:{app}_{name}_change", args=[obj.pk]))
            if change.status_code not in (200, 302, 403):
                problems.append(f"{app}.{name} change → {change.status_code}")
    assert not problems, problems


def test_viewer_gets_the_portal_not_the_admin(users, web_client_for, some_history):
    from portal.models import ReviewRequest

    client = web_client_for("viewer")
    review = ReviewRequest.objects.first()
    # The portal's own pages and the dashboard are open to every role
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("portal:review", args=[review.pk])).status_code == 200
    # The admin's model pages are for admins
    assert client.get(reverse("admin:portal_reviewrequest_changelist")).status_code == 403
    assert client.get(reverse("admin:portal_reviewrequest_change", args=[review.pk])).status_code == 403
    assert client.get(reverse("admin:auth_user_add")).status_code == 403
    assert client.get(reverse("admin:django_celery_beat_periodictask_add")).status_code == 403
