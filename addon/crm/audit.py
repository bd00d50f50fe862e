"""The audit log: every change to records and structure, with actor and before/after values."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from addon.crm.models import AuditEntry, Member, Record

# A tuple, built once: a `str | int | ...` union written in the call is rebuilt per value.
_JSON_TYPES = (str, int, float, bool, list, dict)


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    # Values are already JSON shapes (field values); anything else becomes text so an
    # audit entry can never fail to serialise and take the change down with it.
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or isinstance(value, _JSON_TYPES):
            clean[str(key)] = value
        else:
            clean[str(key)] = str(value)
    return clean


def record_audit(
    session: Session,
    actor: Member | None,
    action: str,
    *,
    workspace_id: int,
    record: Record | None = None,
    record_id: int | None = None,
    folder_id: int | None = None,
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit entry in the caller's transaction; flushes only."""
    entry = AuditEntry(
        workspace_id=workspace_id,
        actor_id=actor.id if actor is not None else None,
        action=action,
        record_id=record.id if record is not None else record_id,
        folder_id=record.folder_id if record is not None else folder_id,
        summary=summary[:500],
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    session.flush()
    return entry


def changed_values(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose value differs, as (before, after)."""
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record_history(
    session: Session,
    workspace_id: int,
    record_id: int,
    limit: int = 20,
    offset: int = 0,
    *,
    exclude: Collection[str] = (),
) -> list[AuditEntry]:
    """A record's audit entries, newest first, less those of the `exclude` actions."""
    return list(
        session.execute(
            select(AuditEntry)
            .where(
                AuditEntry.workspace_id == workspace_id,
                AuditEntry.record_id == record_id,
                AuditEntry.action.not_in(exclude) if exclude else true(),
            )
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
    )
