"""What each role sees on the portal's pages: only the actions it may take (the rest answer 403 or a
refusal), a note saying who acts where it may not, evidence linked, and no template text leaking."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.roles import ROLE_NAMES

pytestmark = pytest.mark.django_db

CONFIG_ROLES = {"operator", "admin"}


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize(("page", "admin_url"), [
    ("monitoring:slos", "admin:monitoring_slo_changelist"),
    ("monitoring:rules", "admin:monitoring_alertrule_changelist"),
    ("monitoring:drift", "admin:monitoring_driftfeature_changelist"),
])
def test_admin_links_of_monitoring_pages_only_for_roles_that_may_open_them(users, web_client_for, role, page,
                                                                          admin_url):
    client = web_client_for(role)
    html = client.get(reverse(page)).content.decode()
    link = reverse(admin_url)
    if role in CONFIG_ROLES:
        assert f'href="{link}"' in html
        assert client.get(link).status_code == 200
        assert 'data-testid="read-only-note"' not in html
    else:
        assert f'href="{link}"' not in html  # the admin would answer 403
        assert client.get(link).status_code == 403
        assert "operators and admins" in html  # who changes it instead


def test_alert_rule_settings_are_words_not_a_python_dict(users, web_client_for):
    html = web_client_for("viewer").get(reverse("monitoring:rules")).content.decode()
    assert "slo: availability; tier: fast" in html
    assert "{&#x27;slo&#x27;" not in html


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_schedules_pages_say_who_changes_them(users, web_client_for, role):
    from django_celery_beat.models import PeriodicTask

    schedule = PeriodicTask.objects.order_by("pk").first()
    client = web_client_for(role)
    listing = client.get(reverse("portal:schedules")).content.decode()
    detail = client.get(reverse("portal:schedule", args=[schedule.pk])).content.decode()
    manages = role in ("operator", "admin")
    for html in (listing, detail):
        assert ('data-testid="schedule-form"' in html) is manages
        assert ('data-testid="read-only-note"' in html) is not manages
    assert ('value="run"' in listing) is manages


@pytest.mark.parametrize("name", ["portal:schedules", "portal:inbox", "portal:activity", "portal:api-token"])
def test_no_template_comment_leaks_onto_a_page(users, web_client_for, name):
    # A {# #} comment is one line only; a longer one is printed as text on every page
    html = web_client_for("viewer").get(reverse(name)).content.decode()
    assert "{#" not in html and "#}" not in html


def test_training_pages_leak_no_template_comment(users, web_client_for):
    html = web_client_for("viewer").get(reverse("recommender:training_runs")).content.decode()
    assert "{#" not in html and "#}" not in html


@pytest.fixture
def failed_promotion(users):
    from releases.models import PromotionRequest
    from releases.tests.factories import version_with_artifact

    version = version_with_artifact()
    return PromotionRequest.objects.create(version=version, reason="try it", requested_by=users["data_scientist"],
                                           requested_label="data_scientist", status="gate_failed", gate_attempt=1,
                                           gate_passed=False)


@pytest.mark.parametrize(("role", "rerun", "cancel"), [
    ("viewer", False, False),
    ("data_scientist", True, True),  # the requester
    ("operator", True, True),  # release.operate withdraws anyone's request
    ("reviewer", False, False),
    ("admin", False, True),
])
def test_promotion_page_shows_only_the_actions_the_role_may_take(users, web_client_for, failed_promotion, role,
                                                                 rerun, cancel):
    html = web_client_for(role).get(reverse("releases:promotion", args=[failed_promotion.pk])).content.decode()
    assert ('value="rerun_gate"' in html) is rerun
    assert ('value="cancel"' in html) is cancel
    assert ('data-testid="read-only-note"' in html) is not cancel
    assert reverse("recommender:registry_version", args=[failed_promotion.version_id]) in html


def test_promotion_actions_hidden_from_the_viewer_are_the_ones_it_is_refused(users, web_client_for,
                                                                            failed_promotion):
    from releases.models import PromotionRequest

    client = web_client_for("viewer")
    url = reverse("releases:promotion", args=[failed_promotion.pk])
    for action in ("rerun_gate", "cancel"):
        client.post(url, {"action": action, "reason": "because"})
    assert PromotionRequest.objects.get(pk=failed_promotion.pk).status == "gate_failed"


def test_promotion_withdraw_hidden_from_another_data_scientist(users, failed_promotion):
    from django.test import Client

    from conftest import make_user

    client = Client()
    client.force_login(make_user("data_scientist", username="other_ds"))
    html = client.get(reverse("releases:promotion", args=[failed_promotion.pk])).content.decode()
    assert 'value="rerun_gate"' in html
    assert 'value="cancel"' not in html  # promotion_cancel: the requester or release.operate


@pytest.fixture
def proposed_resolution(users):
    from audits.services.findings import finding_resolution_propose
    from audits.tests.factories import AuditFindingFactory

    finding = AuditFindingFactory(severity="medium")
    finding_resolution_propose(finding=finding, actor=users["data_scientist"], comment="Client blocked at the edge.")
    finding.refresh_from_db()
    return finding


def test_review_links_its_target_and_shows_evidence_as_rows(users, web_client_for, proposed_resolution):
    from portal.models import ReviewRequest

    review = ReviewRequest.objects.get(kind="audits.finding_resolution")
    html = web_client_for("viewer").get(reverse("portal:review", args=[review.pk])).content.decode()
    assert f'href="{reverse("audits:finding", args=[proposed_resolution.pk])}"' in html
    assert 'data-testid="review-evidence"' in html
    assert "Client blocked at the edge." in html
    assert "{&#x27;" not in html.split('data-testid="review-evidence"')[1].split("</table>")[0]  # no Python repr


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_finding_page_says_who_acts_to_read_only_roles(users, web_client_for, proposed_resolution, role):
    html = web_client_for(role).get(reverse("audits:finding", args=[proposed_resolution.pk])).content.decode()
    assert ('data-testid="read-only-note"' in html) is (role == "viewer")
    assert ('data-testid="acknowledge-form"' in html) is (role != "viewer")


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_sidebar_link_opens_for_every_role(users, web_client_for, role):
    client = web_client_for(role)
    response = client.get(reverse("admin:index"))
    links = [str(item["link"]) for group in response.context["sidebar_navigation"] for item in group["items"]]
    assert reverse("portal:schedules") in links
    refused = {link: status for link in links if (status := client.get(link).status_code) != 200}
    assert not refused, refused


def test_activity_log_shows_entry_data_in_words(users, web_client_for):
    from portal.services import activity_log_record

    activity_log_record(actor=users["operator"], action="thing.done",
                        data={"reason": "because", "took_seconds": 0.2852751630000512, "more": {"ratio": 0.6325110689437059}})
    html = web_client_for("viewer").get(reverse("portal:activity")).content.decode()
    assert "more: (ratio: 0.6325); reason: because; took_seconds: 285 ms" in html  # keys sorted by the log
    assert "{&#x27;reason&#x27;" not in html and "{&quot;reason" not in html
    assert "Thing done" in html  # the verb in words


def test_dashboard_labels_an_exploratory_latest_audit(users, web_client_for):
    from audits.tests.factories import AuditRunFactory

    AuditRunFactory(kind="security", exploratory=True, passed=True)
    html = web_client_for("viewer").get(reverse("admin:index")).content.decode()
    assert "exploratory (the gate ignores it)" in html


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_releases_page_tells_read_only_roles_who_acts(users, web_client_for, role):
    html = web_client_for(role).get(reverse("releases:overview")).content.decode()
    acts = role in ("data_scientist", "operator", "admin")
    assert ('data-testid="read-only-note"' in html) is not acts


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_version_page_offers_a_promotion_only_to_requesters_and_not_for_production(users, web_client_for, role):
    from releases.tests.factories import in_production, version_with_artifact

    candidate = version_with_artifact()
    live = in_production(version_with_artifact(seed=1))
    client = web_client_for(role)
    candidate_html = client.get(reverse("recommender:registry_version", args=[candidate.pk])).content.decode()
    live_html = client.get(reverse("recommender:registry_version", args=[live.pk])).content.decode()
    requests = role in ("data_scientist", "operator")
    assert ('data-testid="request-promotion"' in candidate_html) is requests
    assert 'data-testid="request-promotion"' not in live_html  # already in production: a 409
    assert ('data-testid="read-only-note"' in candidate_html) is (role in ("viewer", "reviewer"))


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_audits_overview_offers_to_change_schedules_only_to_who_may(users, web_client_for, role):
    html = web_client_for(role).get(reverse("audits:overview")).content.decode()
    assert ("Change the audit schedules" in html) is (role in ("operator", "admin"))


def test_queued_run_page_explains_its_empty_parts_and_shows_settings_in_words(users, web_client_for):
    from recommender.tests.factories_training import RunFactory

    run = RunFactory(status="queued", environment={}, log="")
    html = web_client_for("viewer").get(reverse("recommender:training_run", args=[run.pk])).content.decode()
    # each setting in words (PostgreSQL's jsonb keeps keys in its own order, so no order is asserted)
    assert all(part in html for part in ("n_factors: 10", "kind: random", "test_fraction: 0.2", "seed: 0"))
    assert "{&#x27;" not in html
    assert "Recorded when a worker starts the run" in html
    assert "Nothing yet: the worker writes its log here" in html


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_deployments_page_tells_who_changes_it(users, web_client_for, role):
    html = web_client_for(role).get(reverse("recommender:serving_deployments")).content.decode()
    operates = role in ("operator", "admin")
    assert ('value="rollback"' in html) is operates
    assert ('data-testid="read-only-note"' in html) is not operates


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_an_empty_inbox_tells_roles_that_decide_nothing_who_does(users, web_client_for, role):
    html = web_client_for(role).get(reverse("portal:inbox")).content.decode()
    assert "Nothing waits for you." in html
    assert ("Reviews are decided by reviewers and admins" in html) is (role in ("viewer", "data_scientist"))


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize(("page", "button"), [
    ("monitoring:drift", "Make a drift report now"),
    ("monitoring:data_quality", "Make a data-quality report now"),
    ("monitoring:feedback", "Recompute the last 7 buckets"),
])
def test_on_demand_monitoring_reports_offered_only_to_config_roles(users, web_client_for, role, page, button):
    # the services behind these buttons require config.manage
    html = web_client_for(role).get(reverse(page)).content.decode()
    assert (button in html) is (role in CONFIG_ROLES)
    assert ('data-testid="read-only-note"' in html) is (role not in CONFIG_ROLES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_training_runs_page_tells_who_starts_runs(users, web_client_for, role):
    html = web_client_for(role).get(reverse("recommender:training_runs")).content.decode()
    builds = role in ("data_scientist", "admin")
    assert ('data-testid="new-run"' in html) is builds
    assert ('data-testid="read-only-note"' in html) is not builds
