"""Privacy requests about one person, named by their email address.

`export_person` gathers everything the workspace holds about the address as JSON: the
records carrying it, their field values, notes and thread links, the ledger messages it
took part in, and the audit entries naming it or its records.

`erase_person` deletes the person's contact records, removes the address from any other
record's email fields, replaces it by its hash in the email ledger, scrubs the audit
entries, runs the erasers other modules register (mail merge renders, for example), and
keeps only the sha256 of the address in `erased_people`, so `is_erased` can tell senders
never to mail it again. Both write an audit entry that names the hash, never the address.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.orm import Session

from addon.admin.auditlog import actor_emails, entry_row
from addon.admin.models import ErasedPerson
from addon.crm.audit import record_audit
from addon.crm.models import (
    AuditEntry,
    FieldDef,
    FieldValue,
    Member,
    Note,
    Record,
    RecordEmail,
    ThreadLink,
    Workspace,
    utcnow,
)
from addon.crm.records import every_value, reindex_record, write_value
from addon.gmail.addresses import canonical_email
from addon.ledger.models import LedgerMessage, LedgerParticipant
from addon.ledger.stats import refresh_record_stats

# Folders whose records are the person themself: erased whole. Other records (a company,
# a deal) only lose the address from their email fields.
PERSON_FOLDERS = frozenset({"contacts"})
ERASED_DOMAIN = "erased.invalid"

# Other modules register what they keep about people (rendered mail merge messages, …):
# eraser(session, workspace_id, email, email_hash) -> rows erased. Called inside the erase.
Eraser = Callable[[Session, int, str, str], int]
ERASERS: list[Eraser] = []


class PrivacyError(ValueError):
    """A request that cannot be run; the message says why."""


def email_hash(email: str) -> str:
    """sha256 hex of a canonical address: what is kept of an erased person."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


def erased_address(email: str) -> str:
    """The stand-in written where the address was (an address no one can receive mail at)."""
    return f"{email_hash(email)}@{ERASED_DOMAIN}"


def parse_email(text: str) -> str:
    """The canonical address typed by the admin; PrivacyError names a bad one."""
    raw = text.strip()
    if not raw:
        raise PrivacyError("enter the person's email address")
    email = canonical_email(raw)
    if email is None:
        raise PrivacyError(f"“{raw[:80]}” is not an email address")
    return email


def is_erased(session: Session, workspace_id: int, emails: Iterable[str]) -> set[str]:
    """Which of these addresses belong to people erased from the workspace (never mail them)."""
    by_hash: dict[str, str] = {}
    for email in emails:
        canonical = canonical_email(email)
        if canonical is not None:
            by_hash[email_hash(canonical)] = email
    if not by_hash:
        return set()
    found = session.execute(
        select(ErasedPerson.email_hash).where(
            ErasedPerson.workspace_id == workspace_id,
            ErasedPerson.email_hash.in_(list(by_hash)),
        )
    ).scalars()
    return {by_hash[h] for h in found}


def _person_records(session: Session, workspace_id: int, email: str) -> list[Record]:
    return list(
        session.execute(
            select(Record)
            .join(RecordEmail, RecordEmail.record_id == Record.id)
            .where(RecordEmail.workspace_id == workspace_id, RecordEmail.email == email)
            .order_by(Record.id)
        )
        .unique()
        .scalars()
    )


def _like(email: str) -> str:
    escaped = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _audit_naming(
    session: Session, workspace_id: int, email: str, record_ids: list[int]
) -> list[AuditEntry]:
    pattern = _like(email)
    conditions = [
        AuditEntry.summary.ilike(pattern, escape="\\"),
        cast(AuditEntry.before, String).ilike(pattern, escape="\\"),
        cast(AuditEntry.after, String).ilike(pattern, escape="\\"),
    ]
    if record_ids:
        conditions.append(AuditEntry.record_id.in_(record_ids))
    return list(
        session.execute(
            select(AuditEntry)
            .where(AuditEntry.workspace_id == workspace_id, or_(*conditions))
            .order_by(AuditEntry.created_at, AuditEntry.id)
        ).scalars()
    )


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _record_export(session: Session, record: Record, authors: dict[int, str]) -> dict[str, Any]:
    values = every_value(session, record)
    notes = session.execute(
        select(Note).where(Note.record_id == record.id).order_by(Note.created_at, Note.id)
    ).scalars()
    links = session.execute(
        select(ThreadLink).where(ThreadLink.record_id == record.id).order_by(ThreadLink.linked_at)
    ).scalars()
    return {
        "id": record.id,
        "folder": record.folder.key,
        "title": record.title,
        "created_at": _when(record.created_at),
        "updated_at": _when(record.updated_at),
        "values": values,
        "notes": [
            {
                "created_at": _when(n.created_at),
                "author": authors.get(n.author_id, "") if n.author_id else "",
                "body": n.body,
            }
            for n in notes
        ],
        "thread_links": [
            {
                "thread_id": link.thread_id,
                "subject": link.subject,
                "reason": link.reason,
                "linked_at": _when(link.linked_at),
            }
            for link in links
        ],
    }


def _ledger_export(session: Session, workspace_id: int, email: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(LedgerParticipant.role, LedgerMessage)
        .join(LedgerMessage, LedgerMessage.id == LedgerParticipant.message_id)
        .where(LedgerParticipant.workspace_id == workspace_id, LedgerParticipant.email == email)
        .order_by(LedgerMessage.sent_at, LedgerMessage.id)
    ).all()
    return [
        {
            "role": role,
            "message_id": message.message_key,
            "sent_at": _when(message.sent_at),
            "direction": message.direction,
            "subject": message.subject,
            "from": message.from_email,
        }
        for role, message in rows
    ]


def export_person(session: Session, actor: Member, email_text: str) -> dict[str, Any]:
    """Everything the workspace holds about an address, as JSON-ready data; audit-logged."""
    email = parse_email(email_text)
    workspace_id = actor.workspace_id
    workspace = session.get(Workspace, workspace_id)
    assert workspace is not None
    members = actor_emails(session, workspace_id)
    records = _person_records(session, workspace_id, email)
    entries = _audit_naming(session, workspace_id, email, [r.id for r in records])
    data = {
        "email": email,
        "workspace": workspace.domain,
        "exported_at": utcnow().isoformat(),
        "erased": bool(is_erased(session, workspace_id, [email])),
        "records": [_record_export(session, r, members) for r in records],
        "ledger": _ledger_export(session, workspace_id, email),
        "audit_entries": [entry_row(e, members) for e in entries],
    }
    record_audit(
        session,
        actor,
        "privacy_export",
        workspace_id=workspace_id,
        summary="Exported the data held about one person",
        after={"email_hash": email_hash(email), "records": len(records)},
    )
    return data


@dataclass
class ErasePlan:
    """What erasing an address would do, for the confirmation card."""

    email: str
    delete: list[Record] = field(default_factory=list)
    scrub: list[Record] = field(default_factory=list)
    ledger_rows: int = 0
    audit_entries: int = 0
    already_erased: bool = False


def plan_erase(session: Session, workspace_id: int, email_text: str) -> ErasePlan:
    """What an erase of this address would delete and scrub; changes nothing."""
    email = parse_email(email_text)
    is_member = session.execute(
        select(Member.id).where(Member.workspace_id == workspace_id, Member.email == email)
    ).first()
    if is_member is not None:
        # A member's address decides which mail is internal; erasing it would rewrite
        # the workspace's own history. Members leave through the Google Admin console.
        raise PrivacyError(f"{email} belongs to a member of this workspace, not to the CRM")
    plan = ErasePlan(email)
    for record in _person_records(session, workspace_id, email):
        (plan.delete if record.folder.key in PERSON_FOLDERS else plan.scrub).append(record)
    plan.ledger_rows = len(_ledger_export(session, workspace_id, email))
    plan.audit_entries = len(
        _audit_naming(session, workspace_id, email, [r.id for r in plan.delete])
    )
    plan.already_erased = bool(is_erased(session, workspace_id, [email]))
    return plan


def _replace(value: Any, email: str, stand_in: str) -> Any:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False)
    if email not in text.lower():
        return value
    # Case-insensitively: the address may have been typed with capitals.
    lowered = text.lower()
    out, start = [], 0
    while (index := lowered.find(email, start)) >= 0:
        out.append(text[start:index] + stand_in)
        start = index + len(email)
    out.append(text[start:])
    return json.loads("".join(out))


def _scrub_record(session: Session, record: Record, email: str) -> None:
    fields = session.execute(
        select(FieldDef).where(FieldDef.folder_id == record.folder_id, FieldDef.type == "email")
    ).scalars()
    for fdef in fields:
        row = session.execute(
            select(FieldValue).where(
                FieldValue.record_id == record.id, FieldValue.field_id == fdef.id
            )
        ).scalar_one_or_none()
        if row is None:
            continue
        values = row.value if isinstance(row.value, list) else [row.value]
        kept = [v for v in values if canonical_email(str(v)) != email]
        if len(kept) != len(values):
            write_value(session, record, fdef, kept or None)
    session.flush()
    reindex_record(session, record)


def erase_person(session: Session, actor: Member, email_text: str) -> ErasePlan:
    """Erase a person from the workspace, keeping only their address's hash. Flushes only."""
    workspace_id = actor.workspace_id
    plan = plan_erase(session, workspace_id, email_text)
    email, hashed = plan.email, email_hash(plan.email)
    stand_in = erased_address(email)
    deleted_ids = [r.id for r in plan.delete]
    # Audit entries first: the deleted records' entries are found by their ids.
    for entry in _audit_naming(session, workspace_id, email, deleted_ids):
        if entry.record_id in deleted_ids:
            entry.summary = f"{entry.action} (record of an erased person)"
            entry.before = entry.after = None
        else:
            entry.summary = _replace(entry.summary, email, stand_in)
            entry.before = _replace(entry.before, email, stand_in)
            entry.after = _replace(entry.after, email, stand_in)
    for record in plan.delete:
        session.delete(record)
    session.flush()
    for record in plan.scrub:
        _scrub_record(session, record, email)
    # The email history changed under these records: their stats follow it.
    refresh_record_stats(session, workspace_id, [r.id for r in plan.scrub])
    session.execute(
        update(LedgerParticipant)
        .where(LedgerParticipant.workspace_id == workspace_id, LedgerParticipant.email == email)
        .values(email=stand_in)
    )
    session.execute(
        update(LedgerMessage)
        .where(LedgerMessage.workspace_id == workspace_id, LedgerMessage.from_email == email)
        .values(from_email=stand_in)
    )
    erased_rows = sum(eraser(session, workspace_id, email, hashed) for eraser in ERASERS)
    known = session.execute(
        select(ErasedPerson).where(
            ErasedPerson.workspace_id == workspace_id, ErasedPerson.email_hash == hashed
        )
    ).scalar_one_or_none()
    if known is None:
        session.add(ErasedPerson(workspace_id=workspace_id, email_hash=hashed, actor_id=actor.id))
    else:
        known.erased_at, known.actor_id = utcnow(), actor.id
    session.flush()
    record_audit(
        session,
        actor,
        "erase",
        workspace_id=workspace_id,
        summary=f"Erased one person ({len(deleted_ids)} records deleted)",
        after={
            "email_hash": hashed,
            "records_deleted": deleted_ids,
            "records_scrubbed": [r.id for r in plan.scrub],
            "ledger_rows": plan.ledger_rows,
            "other_rows": erased_rows,
        },
    )
    return plan
