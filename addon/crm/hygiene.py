"""Duplicates: caught before they are made, listed in clusters, merged without losing anything."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.models import (
    AuditEntry,
    FieldValue,
    Folder,
    Member,
    MergedRecord,
    Note,
    RecentView,
    Record,
    RecordDomain,
    RecordEmail,
    RecordPhone,
    RecordRelation,
    ThreadLink,
)
from addon.crm.records import ValidationError, load_detail, reindex_record, write_value
from addon.crm.workspaces import folder_fields
from addon.gmail.addresses import registrable_domain
from addon.ledger.linking import merge_ledger_rows
from addon.ledger.stats import refresh_record_stats

MAX_MERGE = 10


@dataclass(frozen=True)
class DuplicateMatch:
    """An existing record that a new or imported one would duplicate, and why."""

    record: Record
    reason: str


# Runs of alphanumeric characters: `\w` is str.isalnum() plus "_", so "[^\W_]" is exactly
# isalnum(), in one C-level pass (the duplicate scan normalises every company's name).
_WORDS = re.compile(r"[^\W_]+")


def normalised_company_name(name: str) -> str:
    """A company name without case, punctuation or legal suffixes ("ACME, Inc." -> "acme")."""
    words = _WORDS.findall(name.casefold())
    suffixes = {"inc", "llc", "ltd", "gmbh", "ag", "sa", "sas", "srl", "bv", "plc", "co", "corp"}
    while len(words) > 1 and words[-1] in suffixes:
        words.pop()
    return " ".join(words)


def find_duplicates_for(
    session: Session,
    folder: Folder,
    *,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    domain: str | None = None,
    name: str | None = None,
    exclude_id: int | None = None,
) -> list[DuplicateMatch]:
    """Existing records of the folder matching any of these normalised values."""
    ws = folder.workspace_id
    found: dict[int, DuplicateMatch] = {}

    def collect(query: Any, reason: str) -> None:
        for record in session.execute(query.limit(10)).scalars():
            if record.id != exclude_id and record.folder_id == folder.id:
                found.setdefault(record.id, DuplicateMatch(record, reason))

    email_list = [e for e in dict.fromkeys(emails) if e]
    if email_list:
        collect(
            select(Record)
            .join(RecordEmail, RecordEmail.record_id == Record.id)
            .where(RecordEmail.workspace_id == ws, RecordEmail.email.in_(email_list)),
            "same email",
        )
    phone_list = [p for p in dict.fromkeys(phones) if p]
    if phone_list:
        collect(
            select(Record)
            .join(RecordPhone, RecordPhone.record_id == Record.id)
            .where(RecordPhone.workspace_id == ws, RecordPhone.phone.in_(phone_list)),
            "same phone",
        )
    registrable = registrable_domain(domain) if domain else None
    if registrable:
        collect(
            select(Record)
            .join(RecordDomain, RecordDomain.record_id == Record.id)
            .where(RecordDomain.workspace_id == ws, RecordDomain.domain == registrable),
            "same domain",
        )
    if name and folder.key == "companies":
        wanted = normalised_company_name(name)
        if wanted:
            # Prefix on the indexed search key, then the exact normalised comparison.
            first_word = wanted.split()[0]
            candidates = session.execute(
                select(Record)
                .where(
                    Record.workspace_id == ws,
                    Record.folder_id == folder.id,
                    Record.search_key >= first_word,
                    Record.search_key < first_word + "\uffff",
                )
                .limit(200)
            ).scalars()
            for record in candidates:
                if record.id != exclude_id and normalised_company_name(record.title) == wanted:
                    found.setdefault(record.id, DuplicateMatch(record, "same name"))
    return list(found.values())


# --------------------------------------------------------------------------- clusters


class _Clusters:
    """Union-find over record ids."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.reasons: dict[int, set[str]] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def join(self, ids: list[int], reason: str) -> None:
        first = self.find(ids[0])
        for other in ids[1:]:
            root = self.find(other)
            if root != first:
                self.parent[root] = first
                self.reasons.setdefault(first, set()).update(self.reasons.pop(root, set()))
        self.reasons.setdefault(first, set()).add(reason)


@dataclass
class DuplicateCluster:
    """Records that look like one: their ids (oldest first) and the matching keys."""

    record_ids: list[int]
    reasons: list[str]


def duplicate_clusters(
    session: Session, workspace_id: int, folder: Folder | None = None
) -> list[DuplicateCluster]:
    """Every group of records sharing an email, a phone, a company domain or a company name."""
    clusters = _Clusters()
    folder_filter = [Record.folder_id == folder.id] if folder is not None else []

    def group(model: Any, column: Any, reason: str) -> None:
        # One pass over the workspace's (workspace, key, record) unique index: a count per
        # key in the same pass keeps the rows of keys two or more records share, and only
        # those meet `records`. The triple is unique, so count(*) counts records.
        keyed = (
            select(
                column.label("key"),
                model.record_id.label("record_id"),
                func.count().over(partition_by=column).label("records"),
            )
            .where(model.workspace_id == workspace_id)
            .subquery()
        )
        rows = session.execute(
            select(keyed.c.key, keyed.c.record_id, Record.folder_id)
            .join(Record, Record.id == keyed.c.record_id)
            .where(keyed.c.records > 1, *folder_filter)
            .order_by(keyed.c.key, keyed.c.record_id)
        )
        by_key: dict[tuple[Any, int], list[int]] = {}
        for key, record_id, folder_id in rows:
            by_key.setdefault((key, folder_id), []).append(record_id)
        for ids in by_key.values():
            if len(ids) > 1:
                clusters.join(ids, reason)

    group(RecordEmail, RecordEmail.email, "same email")
    group(RecordPhone, RecordPhone.phone, "same phone")
    group(RecordDomain, RecordDomain.domain, "same domain")

    companies = session.execute(
        select(Record.id, Record.title)
        .join(Folder, Folder.id == Record.folder_id)
        .where(Record.workspace_id == workspace_id, Folder.key == "companies", *folder_filter)
    )
    by_name: dict[str, list[int]] = {}
    for record_id, title in companies:
        key = normalised_company_name(title)
        if key:
            by_name.setdefault(key, []).append(record_id)
    for ids in by_name.values():
        if len(ids) > 1:
            clusters.join(ids, "same name")

    members: dict[int, list[int]] = {}
    for record_id in list(clusters.parent):
        members.setdefault(clusters.find(record_id), []).append(record_id)
    return [
        DuplicateCluster(sorted(ids), sorted(clusters.reasons.get(root, set())))
        for root, ids in sorted(members.items(), key=lambda item: min(item[1]))
        if len(ids) > 1
    ]


# --------------------------------------------------------------------------- merging


def resolve_merged(session: Session, workspace_id: int, record_id: int) -> int | None:
    """The survivor a merged-away record id now stands for, or None."""
    row = session.get(MergedRecord, record_id)
    if row is None or row.workspace_id != workspace_id:
        return None
    return row.survivor_id


def _list_union(values: Iterable[Any]) -> list[Any] | None:
    merged: list[Any] = []
    for value in values:
        for item in value or []:
            if item not in merged:
                merged.append(item)
    return merged or None


def merge_records(
    session: Session,
    member: Member,
    survivor: Record,
    others: list[Record],
    choices: Mapping[str, int] | None = None,
) -> Record:
    """Merge records into the survivor; everything attached to them moves to it.

    `choices` maps a field key to the id of the record whose value the survivor keeps;
    unchosen fields keep the survivor's value, or the first other record's when the
    survivor has none. Emails, phones and multi-record links are united. Flushes only.
    """
    others = [r for r in dict.fromkeys(others) if r.id != survivor.id]
    if not others:
        raise ValidationError({"records": "pick at least two records to merge"})
    if len(others) + 1 > MAX_MERGE:
        raise ValidationError({"records": f"merge at most {MAX_MERGE} records at once"})
    for other in others:
        if other.workspace_id != survivor.workspace_id or other.folder_id != survivor.folder_id:
            raise ValidationError({"records": "only records of the same folder can be merged"})
    everyone = [survivor, *others]
    by_id = {r.id: r for r in everyone}
    choices = dict(choices or {})
    for key, chosen in choices.items():
        if chosen not in by_id:
            raise ValidationError({key: "choose the value of one of the merged records"})

    details = {r.id: load_detail(session, r, full=False) for r in everyone}
    fields = folder_fields(session, survivor.folder_id)
    before = {r.id: dict(details[r.id].values) for r in everyone}
    for fdef in fields:
        if fdef.type == "link":
            continue
        values = [details[r.id].values.get(fdef.key) for r in everyone]
        if fdef.type in ("email", "phone"):
            value = _list_union(values)
        elif fdef.key in choices:
            value = details[choices[fdef.key]].values.get(fdef.key)
        else:
            value = next((v for v in values if v not in (None, "", [])), None)
        if fdef.type in ("autonumber", "stats", "formula"):
            continue  # derived or assigned once: the survivor's own stays
        if value != details[survivor.id].values.get(fdef.key):
            write_value(session, survivor, fdef, value)

    # For one-record links: the chosen record's target, else the survivor's, else the first.
    single_targets: dict[int, int] = {}
    for fdef in fields:
        if fdef.type != "link" or fdef.options.get("many"):
            continue
        order = [choices.get(fdef.key, survivor.id), *by_id]
        for rid in order:
            targets = details[rid].links.get(fdef.key) or []
            if targets:
                single_targets[fdef.id] = targets[0].id
                break
    other_ids = [r.id for r in others]
    _move_relations(session, survivor, other_ids, single_targets)
    _move_attached(session, survivor, other_ids)

    # Earlier merges into the merged-away records now resolve to the survivor too.
    session.execute(
        update(MergedRecord)
        .where(MergedRecord.survivor_id.in_(other_ids))
        .values(survivor_id=survivor.id)
    )
    for other in others:
        session.add(
            MergedRecord(
                merged_id=other.id,
                workspace_id=survivor.workspace_id,
                survivor_id=survivor.id,
                merged_by_id=member.id,
            )
        )
    titles = [r.title for r in others]
    for other in others:
        session.delete(other)
    session.flush()
    reindex_record(session, survivor)
    # After re-indexing: a merged contact's stats count the mail of all its addresses.
    refresh_record_stats(session, survivor.workspace_id, [survivor.id])
    record_audit(
        session,
        member,
        "merge",
        workspace_id=survivor.workspace_id,
        record=survivor,
        summary=f"Merged {', '.join(titles)} into {survivor.title}"[:500],
        before={"records": {str(k): v for k, v in before.items()}},
        after={"survivor": survivor.id, "merged": other_ids},
    )
    return survivor


def _move_relations(
    session: Session, survivor: Record, other_ids: list[int], single_targets: dict[int, int]
) -> None:
    everyone = [survivor.id, *other_ids]
    rows = session.execute(
        select(RecordRelation)
        .where(
            (RecordRelation.from_record_id.in_(everyone))
            | (RecordRelation.to_record_id.in_(everyone))
        )
        .order_by(RecordRelation.id)
    ).scalars()
    kept: set[tuple[int, int, int]] = set()
    moves: list[tuple[RecordRelation, int, int]] = []
    for relation in rows:
        source = survivor.id if relation.from_record_id in everyone else relation.from_record_id
        target = survivor.id if relation.to_record_id in everyone else relation.to_record_id
        key = (relation.field_id, source, target)
        # A one-record link (a contact's company) keeps only the chosen target.
        wrong_single = (
            source == survivor.id
            and relation.field_id in single_targets
            and target != single_targets[relation.field_id]
        )
        if source == target or key in kept or wrong_single:
            session.delete(relation)
            continue
        kept.add(key)
        moves.append((relation, source, target))
    # Deletions first: the flush would otherwise run the moves before them and trip
    # the unique constraints the deletions exist to respect.
    session.flush()
    for relation, source, target in moves:
        relation.from_record_id, relation.to_record_id = source, target
    session.flush()


def _move_attached(session: Session, survivor: Record, other_ids: list[int]) -> None:
    # One link per ledger conversation too, and manual unlinks move with the records.
    merge_ledger_rows(session, survivor, other_ids)
    # Thread links: one per thread; the earliest link (and its reason) is kept.
    threads = session.execute(
        select(ThreadLink)
        .where(ThreadLink.record_id.in_([survivor.id, *other_ids]))
        .order_by(ThreadLink.linked_at, ThreadLink.id)
    ).scalars()
    seen_threads: set[str] = set()
    moving: list[ThreadLink | RecentView] = []
    for link in threads:
        if link.thread_id in seen_threads:
            session.delete(link)
        else:
            seen_threads.add(link.thread_id)
            moving.append(link)
    views = session.execute(
        select(RecentView)
        .where(RecentView.record_id.in_([survivor.id, *other_ids]))
        .order_by(RecentView.viewed_at.desc())
    ).scalars()
    seen_members: set[int] = set()
    for view in views:
        if view.member_id in seen_members:
            session.delete(view)
        else:
            seen_members.add(view.member_id)
            moving.append(view)
    session.flush()  # deletions before moves, for the unique constraints
    for row in moving:
        row.record_id = survivor.id
    session.flush()
    session.execute(update(Note).where(Note.record_id.in_(other_ids)).values(record_id=survivor.id))
    session.execute(
        update(AuditEntry).where(AuditEntry.record_id.in_(other_ids)).values(record_id=survivor.id)
    )
    # Values, emails, phones and domains of the merged records go with them; the
    # survivor's were rewritten above and are re-indexed by the caller.
    for model in (FieldValue, RecordEmail, RecordPhone, RecordDomain):
        session.execute(delete(model).where(model.record_id.in_(other_ids)))
    session.flush()
