"""Thread links: automatic linking of conversations, and the ledger side of manual changes.

Automatic rules, applied to the participants of newly recorded messages (LinkPolicy says
who is linkable: outside the workspace, not excluded, not an automated sender):
- each record whose email (record_emails) is a participant -> matched_email;
- the company of each participant's registrable domain (never free mail, the workspace's
  own domain or an excluded domain; the oldest company with that domain) -> matched_domain;
- the company a matched contact belongs to (so companies roll up their contacts' mail,
  free-mail addresses included) -> matched_email;
- the one open deal of a matched contact or company -> single_open_deal; with several
  open deals they are returned as candidates for the card to suggest.
Conversations whose participants are all inside the workspace therefore link nothing.
Manual links and unlinks always win: an existing link is never touched, and an unlink
leaves a suppression that automatic linking respects forever (a manual link lifts it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, literal_column, or_, select
from sqlalchemy.orm import Session

from addon.crm.defaults import CLOSED_DEAL_STAGES
from addon.crm.models import (
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordDomain,
    RecordEmail,
    RecordRelation,
    ThreadLink,
)
from addon.ledger.models import (
    MANUAL,
    MATCHED_DOMAIN,
    MATCHED_EMAIL,
    SINGLE_OPEN_DEAL,
    Conversation,
    LinkSuppression,
    ThreadMap,
)
from addon.ledger.policy import LinkPolicy
from addon.ledger.sql import chunks, in_values, is_postgresql, rows_in
from addon.ledger.stats import refresh_record_stats


@dataclass(frozen=True)
class WorkspaceShape:
    """The folders and fields linking relies on, loaded once per ingest."""

    contacts_id: int | None
    companies_id: int | None
    deals_id: int | None
    contact_company_field: int | None
    deal_stage_field: int | None

    @classmethod
    def load(cls, session: Session, workspace_id: int) -> WorkspaceShape:
        """The shape of a workspace (two statements)."""
        folders = dict(
            session.execute(
                select(Folder.key, Folder.id).where(Folder.workspace_id == workspace_id)
            ).all()
        )
        fields = {
            (folder_id, key): fid
            for fid, folder_id, key in session.execute(
                select(FieldDef.id, FieldDef.folder_id, FieldDef.key).where(
                    FieldDef.workspace_id == workspace_id,
                    FieldDef.key.in_(["company", "stage"]),
                )
            )
        }
        contacts, deals = folders.get("contacts"), folders.get("deals")
        return cls(
            contacts_id=contacts,
            companies_id=folders.get("companies"),
            deals_id=deals,
            contact_company_field=fields.get((contacts, "company")) if contacts else None,
            deal_stage_field=fields.get((deals, "stage")) if deals else None,
        )


@dataclass
class LinkPlan:
    """Links to create per conversation (record id -> reason), deals to suggest, and the
    folder of each record planned or considered (stats count a contact's mail by its own
    addresses, other records' by the whole conversation)."""

    links: dict[int, dict[int, str]] = field(default_factory=dict)
    candidates: dict[int, list[int]] = field(default_factory=dict)
    folders: dict[int, int] = field(default_factory=dict)


# Only relations of the deals' own link fields: a company is also the target of each of
# its contacts' company field, and reading those (to drop them as not deals) cost more
# than the rest of planning the links. The (to_record_id, field_id) index answers both.
_DEAL_LINK_FIELDS = select(FieldDef.id).where(
    FieldDef.folder_id == bindparam("deals"), FieldDef.type == "link"
)
_OPEN_DEAL_CANDIDATES = (
    select(RecordRelation.to_record_id, Record.id, FieldValue.value)
    .join(Record, Record.id == RecordRelation.from_record_id)
    .outerjoin(
        FieldValue,
        (FieldValue.record_id == Record.id) & (FieldValue.field_id == bindparam("stage_field")),
    )
    .where(
        in_values(RecordRelation.to_record_id),
        RecordRelation.field_id.in_(_DEAL_LINK_FIELDS.scalar_subquery()),
        Record.folder_id == bindparam("deals"),
    )
    .order_by(Record.id)
)
_RECORDS_BY_EMAIL = (
    select(RecordEmail.email, RecordEmail.record_id, Record.folder_id)
    .join(Record, Record.id == RecordEmail.record_id)
    .where(RecordEmail.workspace_id == bindparam("workspace_id"), in_values(RecordEmail.email))
    .order_by(RecordEmail.record_id)
)
_COMPANIES_BY_DOMAIN = (
    select(RecordDomain.domain, RecordDomain.record_id)
    .join(Record, Record.id == RecordDomain.record_id)
    .where(
        RecordDomain.workspace_id == bindparam("workspace_id"),
        in_values(RecordDomain.domain),
        Record.folder_id == bindparam("companies"),
    )
    .order_by(RecordDomain.record_id)
)
_COMPANIES_OF_CONTACTS = (
    select(RecordRelation.from_record_id, RecordRelation.to_record_id, Record.folder_id)
    .join(Record, Record.id == RecordRelation.to_record_id)
    .where(
        RecordRelation.field_id == bindparam("company_field"),
        in_values(RecordRelation.from_record_id),
    )
)


def _open_deals(
    session: Session, shape: WorkspaceShape, record_ids: list[int]
) -> dict[int, list[int]]:
    """Open deals linked to each of these contacts or companies (by a deal's link field)."""
    if shape.deals_id is None or not record_ids:
        return {}
    found: dict[int, list[int]] = {}
    params = {"stage_field": shape.deal_stage_field or -1, "deals": shape.deals_id}
    for target, deal_id, stage in rows_in(session, _OPEN_DEAL_CANDIDATES, record_ids, **params):
        if stage in CLOSED_DEAL_STAGES:
            continue
        deals = found.setdefault(target, [])
        if deal_id not in deals:
            deals.append(deal_id)
    for deals in found.values():
        deals.sort()
    return found


def plan_links(
    session: Session,
    workspace_id: int,
    shape: WorkspaceShape,
    policy: LinkPolicy,
    people: Mapping[int, Iterable[str]],
    linked: set[tuple[int, int]],
    suppressed: set[tuple[int, int]],
) -> LinkPlan:
    """The automatic links for conversations, given the addresses of their new messages.

    `linked` and `suppressed` hold (conversation, record) pairs already linked or unlinked
    by hand: neither is planned. A suppressed record's deals are not considered either; a
    linked one's are, so a reply re-checks whether its contact now has one open deal.
    """
    plan = LinkPlan()
    emails_by_conv = {
        conv: [e for e in dict.fromkeys(emails) if policy.linkable_person(e)]
        for conv, emails in people.items()
    }
    all_emails = sorted({e for emails in emails_by_conv.values() for e in emails})
    if not all_emails:
        return plan
    records_by_email = _records_by_email(session, workspace_id, all_emails)
    domains = {e: policy.company_domain(e) for e in all_emails}
    company_by_domain = _companies_by_domain(
        session, workspace_id, shape, sorted({d for d in domains.values() if d})
    )
    contact_ids = sorted(
        {
            rid
            for found in records_by_email.values()
            for rid, folder_id in found
            if folder_id == shape.contacts_id
        }
    )
    company_of = _companies_of_contacts(session, shape, contact_ids)
    folders = plan.folders
    for found_records in (*records_by_email.values(), *company_of.values()):
        folders.update(found_records)
    if shape.companies_id is not None:
        folders.update((rid, shape.companies_id) for rid in company_by_domain.values())

    # Most conversations are new: nothing of theirs is linked or unlinked yet.
    with_links = {conv for conv, _rid in linked}
    with_unlinks = {conv for conv, _rid in suppressed}
    matched: dict[int, dict[int, str]] = {}
    for conv, emails in emails_by_conv.items():
        found: dict[int, str] = {}
        for email in emails:
            for record_id, _folder in records_by_email.get(email, ()):
                found.setdefault(record_id, MATCHED_EMAIL)
        for email in emails:
            domain = domains.get(email)
            if domain and domain in company_by_domain:
                found.setdefault(company_by_domain[domain], MATCHED_DOMAIN)
        unlinked = conv in with_unlinks
        if unlinked:
            # A contact unlinked by hand brings neither itself nor its company.
            found = {rid: why for rid, why in found.items() if (conv, rid) not in suppressed}
        for record_id in list(found):
            for company, _folder in company_of.get(record_id, ()):
                if not unlinked or (conv, company) not in suppressed:
                    found.setdefault(company, MATCHED_EMAIL)
        if found:
            matched[conv] = found

    deals_of = _open_deals(session, shape, sorted({r for found in matched.values() for r in found}))
    if shape.deals_id is not None:
        folders.update((deal, shape.deals_id) for deals in deals_of.values() for deal in deals)
    for conv, found in matched.items():
        suggestions: list[int] = []
        for record_id in list(found):
            deals = deals_of.get(record_id, [])
            if len(deals) == 1:
                if (conv, deals[0]) not in suppressed:
                    found.setdefault(deals[0], SINGLE_OPEN_DEAL)
            else:
                suggestions.extend(d for d in deals if d not in suggestions)
        links = (
            {rid: why for rid, why in found.items() if (conv, rid) not in linked}
            if conv in with_links
            else found
        )
        if links:
            plan.links[conv] = links
        remaining = [
            d
            for d in suggestions
            if d not in found and (conv, d) not in linked and (conv, d) not in suppressed
        ]
        if remaining:
            plan.candidates[conv] = remaining
    return plan


def _records_by_email(
    session: Session, workspace_id: int, emails: list[str]
) -> dict[str, list[tuple[int, int]]]:
    """(record id, folder id) of the records having each address, oldest first."""
    found: dict[str, list[tuple[int, int]]] = {}
    for email, record_id, folder_id in rows_in(
        session, _RECORDS_BY_EMAIL, emails, workspace_id=workspace_id
    ):
        found.setdefault(email, []).append((record_id, folder_id))
    return found


def _companies_by_domain(
    session: Session, workspace_id: int, shape: WorkspaceShape, domains: list[str]
) -> dict[str, int]:
    """The oldest company of each registrable domain (as the sidebar's suggestion picks)."""
    found: dict[str, int] = {}
    if shape.companies_id is None:
        return found
    for domain, record_id in rows_in(
        session,
        _COMPANIES_BY_DOMAIN,
        domains,
        workspace_id=workspace_id,
        companies=shape.companies_id,
    ):
        found.setdefault(domain, record_id)
    return found


def _companies_of_contacts(
    session: Session, shape: WorkspaceShape, contact_ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    """(record id, folder id) of the company each contact's company field points at."""
    found: dict[int, list[tuple[int, int]]] = {}
    if shape.contact_company_field is None:
        return found
    for contact, company, folder_id in rows_in(
        session, _COMPANIES_OF_CONTACTS, contact_ids, company_field=shape.contact_company_field
    ):
        found.setdefault(contact, []).append((company, folder_id))
    return found


# ------------------------------------------------------------------ threads and conversations

_LOCK_CONVERSATIONS = (
    select(Conversation.id)
    .where(in_values(Conversation.id))
    .order_by(Conversation.id)
    .with_for_update()
)


def lock_conversations(session: Session, conversation_ids: Iterable[int | None]) -> None:
    """Lock conversations (PostgreSQL row locks, in id order) until the transaction ends.

    Ingest takes these locks before it reads a conversation's links and counts its new
    messages; manual link, unlink and relinking take them before they change links and
    recompute stats from the ledger. So of two such transactions on one conversation the
    second waits for the first to commit and then sees its links and messages: a message
    is never missed by both, nor counted by both. SQLite has a single writer already.

    On PostgreSQL a new link or suppression row also takes a KEY SHARE lock on its
    conversation (the foreign key), which conflicts with ingest's FOR UPDATE; the explicit
    lock does not rely on that, covers an unlink that writes no row, and is taken before
    the link is written, so the two never wait on each other in opposite orders.
    """
    ids = [c for c in conversation_ids if c is not None]
    if ids and is_postgresql(session):
        for _row in rows_in(session, _LOCK_CONVERSATIONS, ids):
            pass


def conversation_for_thread(
    session: Session, workspace_id: int, thread_id: str, member: Member | None = None
) -> int | None:
    """The conversation a Gmail thread id stands for, or None while it is not recorded.

    The member's own mailbox decides first. Without it, any teammate's thread of that id:
    Gmail thread ids are per mailbox, but random 64-bit numbers, so two mailboxes of one
    workspace sharing an id for different conversations is not a practical concern.
    """
    if not thread_id:
        return None
    if member is not None:
        own = session.execute(
            select(ThreadMap.conversation_id).where(
                ThreadMap.member_id == member.id, ThreadMap.gmail_thread_id == thread_id
            )
        ).scalar_one_or_none()
        if own is not None:
            return own
    # Through the members: each probe is a primary-key lookup of the maps.
    members = select(Member.id).where(Member.workspace_id == workspace_id)
    mapped = session.execute(
        select(ThreadMap.conversation_id)
        .where(ThreadMap.member_id.in_(members), ThreadMap.gmail_thread_id == thread_id)
        .order_by(ThreadMap.member_id)
        .limit(1)
    ).scalar_one_or_none()
    if mapped is not None:
        return mapped
    return session.execute(
        select(ThreadLink.conversation_id)
        .where(
            ThreadLink.workspace_id == workspace_id,
            ThreadLink.thread_id == thread_id,
            ThreadLink.conversation_id.is_not(None),
        )
        .limit(1)
    ).scalar_one_or_none()


def manual_link_added(
    session: Session, record: Record, thread_id: str, conversation_id: int | None
) -> None:
    """After a manual link: it lifts earlier unlinks of the thread, and counts in the stats."""
    matches = LinkSuppression.thread_id == thread_id
    if conversation_id is not None:
        matches = or_(matches, LinkSuppression.conversation_id == conversation_id)
    session.execute(delete(LinkSuppression).where(LinkSuppression.record_id == record.id, matches))
    if conversation_id is not None:
        refresh_record_stats(session, record.workspace_id, [record.id])


def unlink_manually(
    session: Session, record: Record, thread_id: str, member: Member | None = None
) -> bool:
    """Remove a record's links to a thread (its conversation, for any teammate's thread id).

    Each removed link leaves a suppression, so automatic linking never re-creates it, and
    the record's stats drop the conversation. False when nothing was linked.
    """
    if not thread_id:
        return False
    conversation_id = conversation_for_thread(session, record.workspace_id, thread_id, member)
    lock_conversations(session, [conversation_id])
    matches = ThreadLink.thread_id == thread_id
    if conversation_id is not None:
        matches = or_(matches, ThreadLink.conversation_id == conversation_id)
    links = list(
        session.execute(
            select(ThreadLink).where(
                ThreadLink.workspace_id == record.workspace_id,
                ThreadLink.record_id == record.id,
                matches,
            )
        ).scalars()
    )
    if not links:
        return False
    existing = session.execute(
        select(LinkSuppression.thread_id, LinkSuppression.conversation_id).where(
            LinkSuppression.record_id == record.id
        )
    ).all()
    threads = {t for t, _ in existing}
    conversations = {c for _, c in existing if c is not None}
    for link in links:
        if link.thread_id not in threads and link.conversation_id not in conversations:
            session.add(
                LinkSuppression(
                    workspace_id=record.workspace_id,
                    record_id=record.id,
                    conversation_id=link.conversation_id,
                    thread_id=link.thread_id,
                    suppressed_by_id=member.id if member is not None else None,
                )
            )
            threads.add(link.thread_id)
            if link.conversation_id is not None:
                conversations.add(link.conversation_id)
        session.delete(link)
    session.flush()
    if any(link.conversation_id is not None for link in links):
        refresh_record_stats(session, record.workspace_id, [record.id])
    return True


# "+ 0": the workspace's unique index would otherwise look attractive to SQLite's planner
# and walk every link of the workspace; the few waiting links are found through the
# conversation index.
_WAITING_LINKS = (
    select(ThreadLink.thread_id)
    .where(
        ThreadLink.conversation_id.is_(None),
        ThreadLink.workspace_id + literal_column("0") == bindparam("workspace_id"),
    )
    .distinct()
)
_WAITING_UNLINKS = (
    select(LinkSuppression.thread_id)
    .where(
        LinkSuppression.conversation_id.is_(None),
        LinkSuppression.workspace_id == bindparam("workspace_id"),
    )
    .distinct()
)


def attach_threads(session: Session, workspace_id: int, maps: Mapping[str, int]) -> set[int]:
    """Give links and unlinks made before their thread was recorded its conversation.

    Returns the ids of the links attached (the caller counts them in the stats). A link
    whose conversation is already linked to the same record is a duplicate and goes.
    """
    if not maps:
        return set()
    # Few links and unlinks ever wait for their thread: their thread ids are read whole
    # (through the conversation index) rather than looking up each new thread.
    waiting = set(session.execute(_WAITING_LINKS, {"workspace_id": workspace_id}).scalars())
    waiting_unlinks = set(
        session.execute(_WAITING_UNLINKS, {"workspace_id": workspace_id}).scalars()
    )
    pending = [
        link
        for chunk in chunks(sorted(waiting & maps.keys()))
        for link in session.execute(
            select(ThreadLink).where(
                ThreadLink.workspace_id == workspace_id,
                ThreadLink.conversation_id.is_(None),
                ThreadLink.thread_id.in_(chunk),
            )
        ).scalars()
    ]
    attached: set[int] = set()
    if pending:
        wanted = {maps[link.thread_id] for link in pending}
        taken: set[tuple[int | None, int]] = set(
            session.execute(
                select(ThreadLink.conversation_id, ThreadLink.record_id).where(
                    ThreadLink.conversation_id.in_(wanted),
                    ThreadLink.record_id.in_({link.record_id for link in pending}),
                )
            ).all()
        )
        duplicates = []
        for link in pending:
            pair = (maps[link.thread_id], link.record_id)
            if pair in taken:
                duplicates.append(link)
                continue
            taken.add(pair)
            link.conversation_id = pair[0]
            attached.add(link.id)
        for link in duplicates:
            session.delete(link)
        session.flush()
    suppressions = [
        row
        for chunk in chunks(sorted(waiting_unlinks & maps.keys()))
        for row in session.execute(
            select(LinkSuppression).where(
                LinkSuppression.workspace_id == workspace_id,
                LinkSuppression.conversation_id.is_(None),
                LinkSuppression.thread_id.in_(chunk),
            )
        ).scalars()
    ]
    for row in suppressions:
        row.conversation_id = maps[row.thread_id]
    if suppressions:
        session.flush()
    return attached


# ------------------------------------------------------------------------------ merging


def merge_ledger_rows(session: Session, survivor: Record, other_ids: list[int]) -> None:
    """Before a merge moves thread links: one link per conversation, unlinks move too.

    Of links to the same conversation the earliest stays (the merge keeps the earliest link
    per thread too). Suppressions move to the survivor; where the survivor ends up both
    linked and unlinked, the manual decision wins: a manual link lifts the suppression, an
    automatic link gives way to it. Stats are refreshed by the merge after re-indexing.
    """
    everyone = [survivor.id, *other_ids]
    links = list(
        session.execute(
            select(ThreadLink)
            .where(ThreadLink.record_id.in_(everyone))
            .order_by(ThreadLink.linked_at, ThreadLink.id)
        ).scalars()
    )
    kept: dict[tuple[str, object], ThreadLink] = {}
    for link in links:
        keys: set[tuple[str, object]] = {("thread", link.thread_id)}
        if link.conversation_id is not None:
            keys.add(("conversation", link.conversation_id))
        if keys & kept.keys():
            session.delete(link)
            continue
        for key in keys:
            kept[key] = link
    suppressions = list(
        session.execute(
            select(LinkSuppression)
            .where(LinkSuppression.record_id.in_(everyone))
            .order_by(LinkSuppression.suppressed_at, LinkSuppression.id)
        ).scalars()
    )
    seen: set[tuple[str, object]] = set()
    moving: list[LinkSuppression] = []
    for row in suppressions:
        keys = {("thread", row.thread_id)}
        if row.conversation_id is not None:
            keys.add(("conversation", row.conversation_id))
        holder = next((kept[k] for k in keys if k in kept), None)
        if (keys & seen) or (holder is not None and holder.reason == MANUAL):
            session.delete(row)
            continue
        if holder is not None:
            # An automatic link of one record against a manual unlink of another.
            session.delete(holder)
            for key in [k for k, v in kept.items() if v is holder]:
                del kept[key]
        seen |= keys
        moving.append(row)
    session.flush()  # deletions first, for the unique constraints
    for row in moving:
        row.record_id = survivor.id
    session.flush()
