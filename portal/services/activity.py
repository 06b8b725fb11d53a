"""The append-only, hash-chained activity log: the only way entries are written and verified."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portal.models import ActivityLogEntry, ActivityLogHead

GENESIS_HASH = "0" * 64


def _canonical(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


def _entry_hash(*, seq: int, created_at, actor_label: str, action: str, target_type: str,
                target_id: str, target_repr: str, data: Any, prev_hash: str) -> str:
    payload = _canonical(
        {
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor": actor_label,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "target_repr": target_repr,
            "data": data,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _target_parts(target: Any) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, tuple):
        kind, ident, *rest = target
        return str(kind), str(ident), str(rest[0] if rest else "")[:255]
    meta = getattr(target, "_meta", None)
    kind = meta.label_lower if meta else type(target).__name__
    return kind, str(getattr(target, "pk", "")), str(target)[:255]


def activity_log_record(
    *,
    actor: Any | None,
    action: str,
    target: Any | None = None,
    data: dict | None = None,
    system: str | None = None,
) -> ActivityLogEntry:
    """Append one entry. ``actor`` is a user; for schedules pass ``system='<task name>'``.

    ``target`` is a model instance or a ``(type, id[, repr])`` tuple. Runs inside the caller's
    transaction, so the entry exists exactly when the change it records does.
    """
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_user, actor_label = actor, actor.get_username()
    else:
        actor_user, actor_label = None, f"system:{system or 'usher'}"
    target_type, target_id, target_repr = _target_parts(target)
    # Round-trip through JSON so the stored data is exactly what the hash covers.
    clean_data = json.loads(_canonical(data or {}))
    with transaction.atomic():
        head, _ = ActivityLogHead.objects.select_for_update().get_or_create(id=1)
        seq = head.seq + 1
        created_at = timezone.now()
        digest = _entry_hash(
            seq=seq, created_at=created_at, actor_label=actor_label, action=action,
            target_type=target_type, target_id=target_id, target_repr=target_repr,
            data=clean_data, prev_hash=head.hash,
        )
        entry = ActivityLogEntry.objects.create(
            seq=seq, created_at=created_at, actor=actor_user, actor_label=actor_label,
            action=action, target_type=target_type, target_id=target_id,
            target_repr=target_repr, data=clean_data, prev_hash=head.hash, hash=digest,
        )
        ActivityLogHead.objects.filter(id=1).update(seq=seq, hash=digest)
    return entry


@dataclass(frozen=True)
class ChainProblem:
    """The first broken place in the chain: the entry's position (and row id when it exists)."""

    seq: int | None
    entry_id: int | None
    reason: str


def activity_log_head() -> tuple[int, str]:
    """The chain's head ``(seq, hash)``: record it elsewhere to anchor a later verification."""
    head = ActivityLogHead.objects.filter(id=1).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


def activity_log_verify(*, anchor: tuple[int, str] | None = None) -> tuple[int, ChainProblem | None]:
    """Walk the chain in order; return (entries checked, the first problem or None).

    Detects an altered entry (its hash), a removed one (a gap in ``seq``, or a chain shorter than
    its head row records), and one inserted out of order (the next entry's link). ``anchor`` is a
    ``(seq, hash)`` seen by an earlier verification: removing the newest entries *and* rewinding
    the head is only detectable against such an anchor.
    """
    # The head is read first and the walk stops there, so entries appended while we walk (with
    # their head update, in one transaction) are not mistaken for forgeries; they are checked
    # next time.
    head_seq, head_hash = activity_log_head()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    anchor_hash_found: str | None = None
    rows = ActivityLogEntry.objects.filter(seq__lte=head_seq).order_by("seq").values(
        "id", "seq", "created_at", "actor_label", "action", "target_type", "target_id",
        "target_repr", "data", "prev_hash", "hash",
    )
    for row in rows.iterator(chunk_size=2000):
        if row["seq"] != expected_seq:
            return checked, ChainProblem(
                expected_seq, None, f"entry #{expected_seq} is missing (next found is #{row['seq']})"
            )
        if row["prev_hash"] != prev_hash:
            return checked, ChainProblem(
                row["seq"], row["id"], f"entry #{row['seq']} does not link to entry #{row['seq'] - 1}"
            )
        digest = _entry_hash(
            seq=row["seq"], created_at=row["created_at"], actor_label=row["actor_label"],
            action=row["action"], target_type=row["target_type"], target_id=row["target_id"],
            target_repr=row["target_repr"], data=row["data"], prev_hash=row["prev_hash"],
        )
        if digest != row["hash"]:
            return checked, ChainProblem(
                row["seq"], row["id"], f"entry #{row['seq']} was altered (its hash does not match)"
            )
        if anchor is not None and row["seq"] == anchor[0]:
            anchor_hash_found = row["hash"]
        prev_hash = row["hash"]
        expected_seq += 1
        checked += 1
    if head_seq > checked:
        return checked, ChainProblem(
            checked + 1, None,
            f"entry #{checked + 1} is missing: the chain ends at #{checked} but its head records "
            f"#{head_seq} (entries were removed)",
        )
    if head_hash != prev_hash:
        return checked, ChainProblem(
            checked, None, f"entry #{checked} is not the one the chain's head records (it was replaced)"
        )
    # A committed append always moves the head with it: a row beyond the (re-read) head was
    # written behind the log's back.
    last_seq = ActivityLogEntry.objects.aggregate(last=Max("seq"))["last"] or 0
    head_now, _ = activity_log_head()
    if last_seq > head_now:
        return checked, ChainProblem(
            head_now + 1, None,
            f"entry #{head_now + 1} was added behind the log's back (the head records #{head_now}, "
            f"the table holds #{last_seq})",
        )
    if anchor is not None and anchor[0] > 0:
        if checked < anchor[0]:
            return checked, ChainProblem(
                checked + 1, None,
                f"entry #{checked + 1} is missing: an earlier verification saw the chain reach "
                f"#{anchor[0]} (entries were removed and the head rewound)",
            )
        if anchor_hash_found != anchor[1]:
            return checked, ChainProblem(
                anchor[0], None, f"entry #{anchor[0]} differs from the one an earlier verification saw"
            )
    return checked, None
