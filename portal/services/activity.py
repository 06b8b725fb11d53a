"""The append-only, hash-chained activity log: the only way entries are written and verified."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
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
    seq: int | None
    entry_id: int | None
    reason: str


def activity_log_verify() -> tuple[int, ChainProblem | None]:
    """Walk the chain in order; return (entries checked, the first problem or None)."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    rows = ActivityLogEntry.objects.order_by("seq").values(
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
        prev_hash = row["hash"]
        expected_seq += 1
        checked += 1
    head = ActivityLogHead.objects.filter(id=1).first()
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return checked, ChainProblem(
            checked + 1, None,
            f"the chain ends at #{checked} but its head records #{head.seq}: entries were removed",
        )
    return checked, None
