"""The review inbox: four eyes, deciding roles, double decisions, the API and the pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.models import ActivityLogEntry, ReviewRequest
from portal.reviews import ReviewKind, register_review_kind
from portal.services import activity_log_verify, review_request_cancel, review_request_create, review_request_decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(users, review_kind) -> ReviewRequest:
    """A four-eyes review requested by the admin (who also holds the reviewer role)."""
    return review_request_create(
        kind=review_kind.name, target=("demo.model", 7, "model v7"), title="Promote model v7",
        requester=users["admin"], evidence={"ndcg@20": 0.31},
    )


@pytest.fixture
def extra_kind():
    """Register a kind for one test only."""
    from portal.reviews import _KINDS

    added: list[str] = []

    def _register(kind: ReviewKind) -> ReviewKind:
        register_review_kind(kind)
        added.append(kind.name)
        return kind

    yield _register
    for name in added:
        _KINDS.pop(name, None)


def _log_actions(review: ReviewRequest) -> list[str]:
    return list(
        ActivityLogEntry.objects.filter(target_type="portal.reviewrequest", target_id=str(review.pk))
        .order_by("seq").values_list("action", flat=True)
    )


def test_create_records_the_request(review, users):
    assert review.status == ReviewRequest.Status.PENDING
    assert review.assigned_role == "reviewer" and review.requester == users["admin"]
    assert review.due_at is not None
    assert _log_actions(review) == ["review.requested"]


def test_unknown_kind_is_refused(users):
    with pytest.raises(ValidationError, match="unknown review kind 'nope'"):
        review_request_create(kind="nope", target=("x", 1), title="t", requester=users["admin"])


def test_kind_with_viewer_as_decider_is_refused():
    with pytest.raises(ValueError, match="decider_role"):
        ReviewKind(name="bad", label="Bad", decider_role="viewer")


def test_four_eyes_requester_cannot_approve_own_request_and_attempt_is_logged(review, users):
    # Given a review requested by the admin, who holds every role
    # When the admin tries to approve it
    with pytest.raises(PermissionDenied, match="Four eyes"):
        review_request_decide(review=review, actor=users["admin"], decision="approve")
    # Then it stays pending and the refused attempt is in the log, with who tried
    review.refresh_from_db()
    assert review.status == ReviewRequest.Status.PENDING and review.decided_by is None
    refused = ActivityLogEntry.objects.get(action="review.refused")
    assert refused.actor == users["admin"] and "four eyes" in refused.data["reason"]
    assert activity_log_verify()[1] is None


def test_another_reviewer_approves(review, users):
    decided = review_request_decide(review=review, actor=users["reviewer"], decision="approve", comment="ok")
    assert decided.status == ReviewRequest.Status.APPROVED
    assert decided.decided_by == users["reviewer"] and decided.decided_at is not None
    assert _log_actions(review) == ["review.requested", "review.approve"]
    entry = ActivityLogEntry.objects.get(action="review.approve")
    assert entry.data == {"before": "pending", "after": "approved", "comment": "ok", "kind": "test.change"}


@pytest.mark.parametrize("role", ["viewer", "data_scientist", "operator"])
def test_wrong_role_is_refused_and_logged(review, users, role):
    with pytest.raises(PermissionDenied, match="assigned to the role 'reviewer'"):
        review_request_decide(review=review, actor=users[role], decision="approve")
    review.refresh_from_db()
    assert review.status == ReviewRequest.Status.PENDING
    assert ActivityLogEntry.objects.filter(action="review.refused", actor=users[role]).exists()


def test_named_person_decides_and_others_of_the_role_cannot(users, review_kind):
    from conftest import make_user

    other_reviewer = make_user("reviewer", "reviewer_two")
    review = review_request_create(kind=review_kind.name, target=("demo.model", 8), title="t",
                                   requester=users["operator"], assigned_to=other_reviewer)
    with pytest.raises(PermissionDenied, match="named person"):
        review_request_decide(review=review, actor=users["reviewer"], decision="approve")
    assert review_request_decide(review=review, actor=other_reviewer, decision="approve").status == "approved"


def test_double_decision_conflicts(review, users):
    review_request_decide(review=review, actor=users["reviewer"], decision="reject", comment="metrics too low")
    with pytest.raises(Conflict, match="already rejected"):
        review_request_decide(review=review, actor=users["reviewer"], decision="approve")
    assert _log_actions(review) == ["review.requested", "review.reject"]


def test_reject_needs_a_comment_and_unknown_decisions_are_refused(review, users):
    with pytest.raises(ValidationError, match="comment is required"):
        review_request_decide(review=review, actor=users["reviewer"], decision="reject", comment="  ")
    with pytest.raises(ValidationError, match="unknown decision 'maybe'"):
        review_request_decide(review=review, actor=users["reviewer"], decision="maybe")


def test_four_eyes_can_be_off_for_a_kind(users, extra_kind):
    extra_kind(ReviewKind(name="test.ack", label="Ack", decider_role="operator", four_eyes=False))
    review = review_request_create(kind="test.ack", target=("incident", 1), title="ack", requester=users["operator"])
    assert review_request_decide(review=review, actor=users["operator"], decision="approve").status == "approved"


def test_decision_handler_runs_in_the_same_transaction(users, extra_kind):
    # Given a kind whose handler fails, the decision is rolled back with it
    extra_kind(ReviewKind(name="test.failing", label="F", on_decision="portal.tests.test_reviews.failing_handler"))
    review = review_request_create(kind="test.failing", target=("x", 1), title="t", requester=users["operator"])
    with pytest.raises(RuntimeError):
        review_request_decide(review=review, actor=users["reviewer"], decision="approve")
    review.refresh_from_db()
    assert review.status == "pending"
    assert not ActivityLogEntry.objects.filter(action="review.approve").exists()


def failing_handler(*, review, actor) -> None:
    raise RuntimeError("the domain app refused")


def test_cancel(review, users):
    review_request_cancel(review=review, actor=users["admin"], reason="superseded by v8")
    review.refresh_from_db()
    assert review.status == "cancelled"
    with pytest.raises(Conflict):
        review_request_cancel(review=review, actor=users["admin"], reason="again")


def test_inbox_lists_what_each_user_may_decide(review, users):
    from portal.selectors import review_request_inbox

    assert list(review_request_inbox(user=users["reviewer"])) == [review]
    assert list(review_request_inbox(user=users["admin"])) == []  # their own request
    for role in ("viewer", "data_scientist", "operator"):
        assert list(review_request_inbox(user=users[role])) == []


# --- API ---------------------------------------------------------------------------------------


def test_api_inbox_detail_and_decide(review, client_for):
    client = client_for("reviewer")
    inbox = client.get("/api/v1/reviews/inbox").json()
    assert [r["id"] for r in inbox["results"]] == [review.pk]
    detail = client.get(f"/api/v1/reviews/{review.pk}").json()
    assert detail["evidence"] == {"ndcg@20": 0.31} and detail["status"] == "pending"
    response = client.post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "approve", "comment": "fine"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved" and response.json()["decided_by"] == "reviewer_user"


def test_api_four_eyes_refusal_is_403_with_the_error_shape(review, client_for):
    response = client_for("admin").post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "approve"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"error": "Four eyes: you requested this review, so someone else must decide it.",
                               "detail": None}
    assert ActivityLogEntry.objects.filter(action="review.refused").count() == 1


@pytest.mark.parametrize("role, status", [("viewer", 403), ("data_scientist", 403), ("operator", 403)])
def test_api_wrong_role_is_refused(review, client_for, role, status):
    response = client_for(role).post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "approve"}, format="json")
    assert response.status_code == status
    assert set(response.json()) == {"error", "detail"}
    review.refresh_from_db()
    assert review.status == "pending"


def test_api_double_decision_is_409(review, client_for):
    client = client_for("reviewer")
    assert client.post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "approve"}, format="json").status_code == 200
    again = client.post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "reject", "comment": "no"}, format="json")
    assert again.status_code == 409
    assert again.json() == {"error": f"review #{review.pk} is already approved", "detail": {"status": "approved"}}


def test_api_bad_input_is_400_naming_the_field(review, client_for):
    response = client_for("reviewer").post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "maybe"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid input" and "decision" in response.json()["detail"]


def test_api_unknown_review_is_404(client_for, users):
    response = client_for("reviewer").post("/api/v1/reviews/999999/decide", {"decision": "approve"}, format="json")
    assert response.status_code == 404 and set(response.json()) == {"error", "detail"}


def test_api_list_filters(review, client_for):
    client = client_for("viewer")
    assert client.get("/api/v1/reviews", {"status": "pending"}).json()["count"] == 1
    assert client.get("/api/v1/reviews", {"status": "approved"}).json()["count"] == 0
    assert client.get("/api/v1/reviews", {"status": "bogus"}).status_code == 400


# --- pages -------------------------------------------------------------------------------------


def test_page_decide_as_reviewer(review, web_client_for):
    client = web_client_for("reviewer")
    page = client.get(reverse("portal:review", args=[review.pk]))
    assert page.status_code == 200 and page.context["may_decide"] is True
    response = client.post(reverse("portal:review", args=[review.pk]), {"decision": "approve", "comment": "lgtm"}, follow=True)
    assert response.status_code == 200
    review.refresh_from_db()
    assert review.status == "approved"
    assert "decision recorded" in response.content.decode()


def test_page_hides_the_form_from_those_who_cannot_decide(review, web_client_for):
    for role in ("viewer", "operator"):
        page = web_client_for(role).get(reverse("portal:review", args=[review.pk]))
        assert page.status_code == 200 and b'data-testid="decide-form"' not in page.content
    own = web_client_for("admin").get(reverse("portal:review", args=[review.pk]))
    assert b'data-testid="four-eyes-note"' in own.content


def test_page_post_by_requester_shows_the_refusal(review, web_client_for):
    response = web_client_for("admin").post(reverse("portal:review", args=[review.pk]), {"decision": "approve"}, follow=True)
    assert "Four eyes" in response.content.decode()
    review.refresh_from_db()
    assert review.status == "pending"


def test_admin_action_decides_through_the_service(review_kind, web_client_for, users):
    # The admin is for admins: a reviewer decides in the inbox, an admin may also use the list action
    review = review_request_create(kind=review_kind.name, target=("demo.model", 8, "model v8"), title="Promote v8",
                                   requester=users["operator"])
    url = reverse("admin:portal_reviewrequest_changelist")
    payload = {"action": "approve_selected", "_selected_action": [review.pk]}
    assert web_client_for("reviewer").post(url, payload).status_code == 403
    review.refresh_from_db()
    assert review.status == "pending"
    response = web_client_for("admin").post(url, payload, follow=True)
    assert response.status_code == 200
    review.refresh_from_db()
    assert review.status == "approved" and review.decided_by == users["admin"]
    assert _log_actions(review)[-1] == "review.approve"
