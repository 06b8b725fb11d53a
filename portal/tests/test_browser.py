"""In a real browser (Playwright driving Debian's chromium, headless) against the live server:
each role logs in and sees the dashboard with its figures; a wrong password is refused; a
reviewer decides a review from the inbox."""

from __future__ import annotations

import pytest

from portal.models import ReviewRequest
from portal.roles import ROLE_NAMES
from portal.services import activity_log_record, review_request_create

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def pending_review(users, review_kind) -> ReviewRequest:
    activity_log_record(actor=users["operator"], action="thing.created", target=("demo.thing", 1))
    return review_request_create(kind=review_kind.name, target=("demo.model", 3, "model v3"),
                                 title="Promote model v3", requester=users["data_scientist"],
                                 evidence={"ndcg@20": 0.42})


def _card_values(page) -> dict[str, str]:
    cards = page.locator('[data-testid="usher-card"]')
    return {
        cards.nth(i).locator('[data-testid="usher-card-title"]').inner_text().strip():
        cards.nth(i).locator('[data-testid="usher-card-value"]').inner_text().strip()
        for i in range(cards.count())
    }


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_each_role_logs_in_and_sees_the_dashboard(browser_login, users, pending_review, role):
    # When the role's user signs in through the login form
    page = browser_login(users[role])
    # Then the dashboard shows the database's figures
    page.wait_for_selector('[data-testid="usher-dashboard"]')
    values = _card_values(page)
    assert values["Pending reviews (everyone)"] == "1"
    assert values["Activity log entries"] == "2"  # the entry above and the review request
    assert values["Reviews waiting for you"] == ("1" if role in ("reviewer", "admin") else "0")
    # And every chart is drawn (unfold's bundled Chart.js, through portal/charts.js) or says why it is
    # empty, with nothing fetched from outside
    drawn = page.evaluate("""() => [...document.querySelectorAll('[data-chart]')].map((box) =>
        Chart.getChart(box.querySelector('canvas')) ? 'drawn' : (box.querySelector('[data-chart-empty]') ? 'empty' : 'blank'))""")
    assert "drawn" in drawn and "blank" not in drawn, drawn
    assert page.external_requests == []
    # And the sidebar shows the inbox link with the pending count for those who decide
    inbox_link = page.locator("a", has_text="Review inbox").first
    assert inbox_link.is_visible()
    if role in ("reviewer", "admin"):
        assert inbox_link.inner_text().split()[-1] == "1"


def test_wrong_password_is_refused(browser_login, users):
    page = browser_login(users["operator"], password="not-the-password")
    assert "/portal/login/" in page.url
    assert page.locator("text=Please enter the correct username and password").count() == 1
    assert page.locator('[data-testid="usher-dashboard"]').count() == 0


def test_reviewer_decides_a_review_from_the_inbox(browser_login, users, pending_review):
    # Given a reviewer signed in
    page = browser_login(users["reviewer"])
    # When they open the inbox and the pending review
    page.click("text=Review inbox")
    page.wait_for_selector('[data-testid="inbox-pending"]')
    page.locator('[data-testid="inbox-pending"]').get_by_role("link", name="Promote model v3").click()
    assert page.locator('[data-testid="review-status"]').inner_text() == "Pending"
    assert "0.42" in page.content()
    # And approve it with a comment
    page.fill("textarea[name=comment]", "metrics look right")
    page.click("button[value=approve]")
    # Then the page shows the decision and the database has it, with the log entry
    page.wait_for_selector("text=decision recorded")
    assert page.locator('[data-testid="review-status"]').inner_text() == "Approved"
    pending_review.refresh_from_db()
    assert pending_review.status == "approved" and pending_review.decided_by == users["reviewer"]
    assert "Review approved" in page.locator('[data-testid="review-history"]').inner_text()
    # And the inbox is empty again
    page.click("text=Review inbox")
    assert "Nothing waits for you." in page.locator('[data-testid="inbox-pending"]').inner_text()


def test_requester_sees_four_eyes_instead_of_the_form(browser_login, users, review_kind):
    # Given a review requested by the admin, who could otherwise decide it
    own = review_request_create(kind=review_kind.name, target=("demo.model", 4), title="Own request",
                                requester=users["admin"])
    page = browser_login(users["admin"])
    page.goto(f"/portal/inbox/{own.pk}/")
    assert page.locator('[data-testid="four-eyes-note"]').is_visible()
    assert page.locator('[data-testid="decide-form"]').count() == 0
