"""The activity log: hash chain, tamper detection by `verify_activity_log`, and no writes
through the admin or the API."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from portal.models import ActivityLogEntry, ActivityLogHead
from portal.services import activity_log_head, activity_log_record, activity_log_verify
from portal.services.activity import GENESIS_HASH
from portal.tasks import verify_activity_log

pytestmark = pytest.mark.django_db


def _run_verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_activity_log", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def chain(users) -> list[ActivityLogEntry]:
    """Five entries by different actors and targets."""
    entries = [
        activity_log_record(actor=users["operator"], action="thing.created", target=("demo.thing", i, f"thing {i}"),
                            data={"n": i, "note": "ünïcode ✓", "nested": {"a": [1, 2]}})
        for i in range(1, 4)
    ]
    entries.append(activity_log_record(actor=None, system="beat:nightly", action="thing.checked"))
    entries.append(activity_log_record(actor=users["reviewer"], action="thing.approved", target=users["operator"]))
    return entries


def test_entries_are_chained_in_order(chain):
    # Given five recorded entries
    rows = list(ActivityLogEntry.objects.order_by("seq"))
    # Then each links to the previous one's hash, from the genesis hash, and the head is the last
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 5))
    head = ActivityLogHead.objects.get()
    assert (head.seq, head.hash) == (5, rows[-1].hash)
    assert rows[3].actor_label == "system:beat:nightly" and rows[3].actor is None
    assert rows[4].target_type == "auth.user"


def test_intact_chain_verifies_and_command_exits_zero(chain):
    # When the chain is verified
    checked, problem = activity_log_verify()
    code, out, err = _run_verify()
    # Then all five entries check out
    assert (checked, problem) == (5, None)
    assert code == 0
    assert "5 entries verified" in out and err == ""
    assert f"head 5:{chain[-1].hash}" in out


def test_empty_log_verifies():
    code, out, _ = _run_verify()
    assert code == 0 and "0 entries verified" in out


@pytest.mark.parametrize(
    "field, value",
    [
        ("action", "thing.deleted"),
        ("actor_label", "someone_else"),
        ("data", {"n": 999}),
        ("target_id", "42"),
    ],
)
def test_altered_row_is_named(chain, field, value):
    # Given entry #3 altered behind the service's back
    ActivityLogEntry.objects.filter(seq=3).update(**{field: value})
    # When verifying
    code, out, err = _run_verify()
    # Then the command fails and names entry #3
    assert code == 1
    assert "entry #3 was altered" in err
    assert "2 entries verified before it" in err


def test_altered_time_is_detected(chain):
    entry = chain[1]
    ActivityLogEntry.objects.filter(pk=entry.pk).update(created_at=entry.created_at - timedelta(seconds=1))
    code, _, err = _run_verify()
    assert code == 1 and "entry #2 was altered" in err


def test_rehashed_row_breaks_the_next_link(chain):
    # Given entry #2 altered and its own hash recomputed by a careful tamperer
    from portal.services.activity import _entry_hash

    e = ActivityLogEntry.objects.get(seq=2)
    e.action = "thing.forged"
    e.hash = _entry_hash(seq=e.seq, created_at=e.created_at, actor_label=e.actor_label, action=e.action,
                         target_type=e.target_type, target_id=e.target_id, target_repr=e.target_repr,
                         data=e.data, prev_hash=e.prev_hash)
    e.save()
    # Then entry #3 no longer links to it
    code, _, err = _run_verify()
    assert code == 1 and "entry #3 does not link to entry #2" in err


def test_removed_middle_row_is_named(chain):
    ActivityLogEntry.objects.filter(seq=3).delete()
    code, _, err = _run_verify()
    assert code == 1
    assert "entry #3 is missing" in err


def test_removed_last_row_is_detected_by_the_head(chain):
    # Given the newest entry removed (the chain itself still links up)
    ActivityLogEntry.objects.filter(seq=5).delete()
    # Then the head, which recorded #5, gives it away
    code, _, err = _run_verify()
    assert code == 1
    assert "entries were removed" in err and "#5" in err


def test_removed_last_row_with_head_rewound_is_caught_by_an_anchor(chain):
    # Given the head a verification saw, then the newest entry removed and the head rewound
    anchor = activity_log_head()
    ActivityLogEntry.objects.filter(seq=5).delete()
    prev = ActivityLogEntry.objects.get(seq=4)
    ActivityLogHead.objects.filter(id=1).update(seq=4, hash=prev.hash)
    # Then the chain alone looks intact, but the anchored check names entry #5
    assert activity_log_verify()[1] is None
    code, _, err = _run_verify("--anchor", f"{anchor[0]}:{anchor[1]}")
    assert code == 1 and "entry #5 is missing" in err and "head rewound" in err


def test_anchor_of_a_rewritten_entry_is_caught(chain, users):
    # Given the anchor at #5, then #5 removed, the head rewound and a different #5 appended
    anchor = activity_log_head()
    ActivityLogEntry.objects.filter(seq=5).delete()
    prev = ActivityLogEntry.objects.get(seq=4)
    ActivityLogHead.objects.filter(id=1).update(seq=4, hash=prev.hash)
    activity_log_record(actor=users["admin"], action="thing.replaced")
    code, _, err = _run_verify("--anchor", f"{anchor[0]}:{anchor[1]}")
    assert code == 1 and "entry #5 differs" in err


def test_anchor_option_is_validated(chain):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--anchor must look like"):
        call_command("verify_activity_log", "--anchor", "five:abc")


def test_row_appended_behind_the_logs_back_is_named(chain):
    five = ActivityLogEntry.objects.get(seq=5)
    ActivityLogEntry.objects.create(seq=6, created_at=five.created_at, actor_label="intruder",
                                    action="thing.forged", prev_hash=five.hash, hash="e" * 64)
    code, _, err = _run_verify()
    assert code == 1 and "entry #6 was added behind the log's back" in err


def test_row_inserted_out_of_order_is_named(chain):
    # Given a forged entry slipped in between #2 and #3 by renumbering the rest
    for seq in (5, 4, 3):
        ActivityLogEntry.objects.filter(seq=seq).update(seq=seq + 1)
    two = ActivityLogEntry.objects.get(seq=2)
    ActivityLogEntry.objects.create(
        seq=3, created_at=two.created_at, actor_label="intruder", action="thing.forged",
        prev_hash=two.hash, hash="f" * 64,
    )
    ActivityLogHead.objects.filter(id=1).update(seq=6)
    # Then the forged entry is the first broken one
    code, _, err = _run_verify()
    assert code == 1 and "entry #3 was altered" in err


def test_rows_swapped_are_named(chain):
    # Given entries #2 and #3 swapped
    ActivityLogEntry.objects.filter(seq=2).update(seq=1000)
    ActivityLogEntry.objects.filter(seq=3).update(seq=2)
    ActivityLogEntry.objects.filter(seq=1000).update(seq=3)
    code, _, err = _run_verify()
    assert code == 1 and "entry #2" in err


def test_verify_task_returns_the_result(chain):
    # Given an intact chain, the task says so; after tampering it names the entry
    head_seq, head_hash = activity_log_head()
    assert verify_activity_log() == {"ok": True, "checked": 5, "first_broken_seq": None, "problem": None,
                                     "head_seq": 5, "head_hash": head_hash}
    ActivityLogEntry.objects.filter(seq=4).update(action="x")
    result = verify_activity_log()
    assert result["ok"] is False and result["first_broken_seq"] == 4 and "#4" in result["problem"]


def test_data_is_stored_exactly_as_hashed(users):
    from datetime import date
    from decimal import Decimal

    entry = activity_log_record(actor=users["admin"], action="x", data={"when": date(2024, 1, 2), "amount": Decimal("1.5")})
    entry.refresh_from_db()
    assert entry.data == {"when": "2024-01-02", "amount": "1.5"}
    assert activity_log_verify() == (1, None)


# --- no writes through the admin --------------------------------------------------------------


def test_admin_offers_no_add_change_or_delete(chain, web_client_for):
    client = web_client_for("admin")
    entry = chain[0]
    # The list and the detail are readable
    assert client.get(reverse("admin:portal_activitylogentry_changelist")).status_code == 200
    detail = client.get(reverse("admin:portal_activitylogentry_change", args=[entry.pk]))
    assert detail.status_code == 200
    # Nothing can be added or deleted, and a change POST does not alter the row
    assert client.get(reverse("admin:portal_activitylogentry_add")).status_code == 403
    assert client.post(reverse("admin:portal_activitylogentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    client.post(reverse("admin:portal_activitylogentry_change", args=[entry.pk]), {"action": "forged"})
    bulk = client.post(reverse("admin:portal_activitylogentry_changelist"),
                       {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert ActivityLogEntry.objects.count() == 5
    assert ActivityLogEntry.objects.get(pk=entry.pk).action == "thing.created"
    assert activity_log_verify() == (5, None)


def test_admin_head_is_read_only_too(chain, web_client_for):
    client = web_client_for("admin")
    assert client.get(reverse("admin:portal_activityloghead_add")).status_code == 403
    assert client.post(reverse("admin:portal_activityloghead_delete", args=[1]), {"post": "yes"}).status_code == 403


# --- no writes through the API -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_api_refuses_writes_to_the_log(chain, client_for, method):
    response = getattr(client_for("admin"), method)("/api/v1/activity", {"action": "forged"}, format="json")
    assert response.status_code == 405
    assert set(response.json()) == {"error", "detail"}
    assert ActivityLogEntry.objects.count() == 5


def test_api_lists_the_log_with_filters(chain, client_for):
    client = client_for("viewer")
    body = client.get("/api/v1/activity").json()
    assert body["count"] == 5 and body["results"][0]["seq"] == 5
    assert [r["seq"] for r in client.get("/api/v1/activity", {"action": "thing.cre"}).json()["results"]] == [3, 2, 1]
    assert client.get("/api/v1/activity", {"actor": "system:"}).json()["count"] == 1
    assert client.get("/api/v1/activity", {"target_type": "demo.thing", "target_id": "2"}).json()["count"] == 1
    assert client.get("/api/v1/activity", {"ordering": "seq"}).json()["results"][0]["seq"] == 1
    bad = client.get("/api/v1/activity", {"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("invalid query parameter 'since'") and "since" in bad.json()["detail"]


def test_api_list_query_count_is_bounded(users, client_for, django_assert_max_num_queries):
    for i in range(30):
        activity_log_record(actor=users["operator"], action="bulk", target=("demo.thing", i))
    client = client_for("viewer")
    with django_assert_max_num_queries(6):
        assert client.get("/api/v1/activity").status_code == 200


def test_activity_page_filters(chain, web_client_for):
    client = web_client_for("viewer")
    page = client.get(reverse("portal:activity"), {"action": "thing.approved"})
    assert page.status_code == 200
    assert list(page.context["page_obj"]) == [chain[4]]
    bad = client.get(reverse("portal:activity"), {"since": "not a time"})
    assert bad.status_code == 200 and "since" in bad.context["filter_errors"]
