"""Email stats per record: derived from the ledger through the record's thread links.

What counts (one rule, `message_counts`, shared by the incremental and the recompute path):
- companies, deals and other non-person records: every message of every linked
  conversation; "sent" is a message sent by the workspace to the outside, "received" one
  received from outside; internal messages count for first/last email only;
- contacts: only the messages of their linked conversations they are on: "sent" when a
  member sent it to them (to, cc or bcc), "received" when they sent it; being copied on
  someone else's message counts for first/last email only;
- threads: linked conversations holding at least one recorded message (companies roll up
  their contacts because automatic linking links a matched contact's company too);
- last contacted: the later of last sent and last received;
- days since last contact / last reply: today minus last contacted / last received, in
  whole UTC days, computed when read (never stored as a number that goes stale).

Storage: `record_stats` is the one copy (one row per record with at least one attached
thread link). Fields of the read-only type "stats" (option `metric`) store nothing: cards,
CSV export, merge templates and formulas read their values from it (`stats_field_values`,
`stats_field_value`), and saved views filter and sort on its columns (`METRIC_COLUMNS`); a
"days since" field reads the moment it counts from, so it never goes stale. Ingest adds
deltas in SQL (increments and later-of/earlier-of), so concurrent writers never lose an
update; link, unlink and merge refresh the touched records from the ledger with the same
code `recompute_stats` runs, which must (and, by test, does) give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, delete, or_, select, union
from sqlalchemy.orm import Session

from addon.crm.fields import validate_options
from addon.crm.fieldtypes_base import utc_iso
from addon.crm.models import FieldDef, Folder, Record, RecordEmail, ThreadLink
from addon.ledger.models import (
    RECEIVED,
    SENT,
    LedgerMessage,
    LedgerParticipant,
    RecordStats,
)
from addon.ledger.parse import as_utc
from addon.ledger.sql import IN_CHUNK, chunks, in_values, insert_many, rows_in

Clock = Callable[[], datetime]
RECIPIENT_ROLES = frozenset({"to", "cc", "bcc"})
RECOMPUTE_CHUNK = 2000

METRIC_LABELS = {
    "emails_sent": "Emails sent",
    "emails_received": "Emails received",
    "threads": "Email threads",
    "first_email": "First email",
    "last_email": "Last email",
    "last_sent": "Last email sent",
    "last_received": "Last email received",
    "last_contacted": "Last contacted",
    "days_since_last_contact": "Days since last contact",
    "days_since_last_reply": "Days since last reply",
}
# "Days since" metrics are stored as the date they count from.
DAYS_SINCE = {"days_since_last_contact": "last_contacted", "days_since_last_reply": "last_received"}


def system_clock() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def message_counts(direction: str, roles: frozenset[str] | None) -> tuple[bool, bool] | None:
    """(counts as sent, counts as received) of a message for a record; None: not its message.

    `roles` is None for records that are not people (every message of their conversations
    is theirs), else the person's roles on the message (empty when not on it).
    """
    if roles is None:
        return direction == SENT, direction == RECEIVED
    if not roles:
        return None
    return (
        direction == SENT and not roles.isdisjoint(RECIPIENT_ROLES),
        direction == RECEIVED and "from" in roles,
    )


@dataclass(slots=True)
class Stats:
    """Email stats of one record, or a delta to add to them."""

    emails_sent: int = 0
    emails_received: int = 0
    threads: int = 0
    first_email: datetime | None = None
    last_email: datetime | None = None
    last_sent: datetime | None = None
    last_received: datetime | None = None

    @property
    def last_contacted(self) -> datetime | None:
        """The later of last sent and last received."""
        return _later(self.last_sent, self.last_received)

    def add_message(self, direction: str, sent_at: datetime, roles: frozenset[str] | None) -> None:
        """Count one message of a linked conversation, if it concerns the record."""
        counts = message_counts(direction, roles)
        if counts is None:
            return
        self.first_email = _earlier(self.first_email, sent_at)
        self.last_email = _later(self.last_email, sent_at)
        if counts[0]:
            self.emails_sent += 1
            self.last_sent = _later(self.last_sent, sent_at)
        if counts[1]:
            self.emails_received += 1
            self.last_received = _later(self.last_received, sent_at)

    def add(self, other: Stats) -> None:
        """Add another delta to this one."""
        self.emails_sent += other.emails_sent
        self.emails_received += other.emails_received
        self.threads += other.threads
        self.first_email = _earlier(self.first_email, other.first_email)
        self.last_email = _later(self.last_email, other.last_email)
        self.last_sent = _later(self.last_sent, other.last_sent)
        self.last_received = _later(self.last_received, other.last_received)

    def columns(self) -> dict[str, Any]:
        """The record_stats column values."""
        return {
            "emails_sent": self.emails_sent,
            "emails_received": self.emails_received,
            "threads": self.threads,
            "first_email": self.first_email,
            "last_email": self.last_email,
            "last_sent": self.last_sent,
            "last_received": self.last_received,
            "last_contacted": self.last_contacted,
        }


# The record_stats columns a Stats is read from, in the order of its fields.
STATS_COLUMNS = (
    RecordStats.emails_sent,
    RecordStats.emails_received,
    RecordStats.threads,
    RecordStats.first_email,
    RecordStats.last_email,
    RecordStats.last_sent,
    RecordStats.last_received,
)
# The column each metric is read from ("days since" ones count from a stored moment).
METRIC_COLUMNS = {
    metric: getattr(RecordStats, DAYS_SINCE.get(metric, metric)) for metric in METRIC_LABELS
}


def stats_of_row(values: Sequence[Any]) -> Stats | None:
    """The Stats of a row's STATS_COLUMNS values; None when the record has no stats row."""
    if values[0] is None:
        return None
    return Stats(values[0], values[1], values[2], *(_utc(m) for m in values[3:7]))


# ------------------------------------------------------------------ computing from the ledger


_CONVERSATION_MESSAGES = select(
    LedgerMessage.id, LedgerMessage.conversation_id, LedgerMessage.direction, LedgerMessage.sent_at
).where(in_values(LedgerMessage.conversation_id))
_EMAILS_OF_RECORDS = select(RecordEmail.record_id, RecordEmail.email).where(
    in_values(RecordEmail.record_id)
)
_PARTICIPATIONS = select(
    LedgerParticipant.message_id, LedgerParticipant.role, LedgerParticipant.email
).where(
    LedgerParticipant.workspace_id == bindparam("workspace_id"),
    in_values(LedgerParticipant.email),
)


def contacts_folder_id(session: Session, workspace_id: int) -> int | None:
    """The id of the workspace's contacts folder: its records count as people."""
    return session.execute(
        select(Folder.id).where(Folder.workspace_id == workspace_id, Folder.key == "contacts")
    ).scalar_one_or_none()


def link_stats(
    session: Session, workspace_id: int, link_filter: ColumnElement[bool]
) -> dict[int, Stats]:
    """Stats per record over the attached thread links matching the filter, from the ledger.

    Every message of each link's conversation is weighed by `message_counts`; people's
    roles come from the participants matching any of their emails. Each statement reads
    one table through one of its indexes (the joins happen here), which keeps the plans
    the same on both databases however large the ledger grows.
    """
    people = contacts_folder_id(session, workspace_id)
    links = session.execute(
        select(ThreadLink.record_id, ThreadLink.conversation_id, Record.folder_id)
        .join(Record, Record.id == ThreadLink.record_id)
        .where(
            ThreadLink.workspace_id == workspace_id,
            ThreadLink.conversation_id.is_not(None),
            link_filter,
        )
    ).all()
    if not links:
        return {}
    messages: dict[int, list[tuple[int, str, datetime]]] = {}
    convs = {c for _r, c, _f in links if c is not None}
    for message_id, conv_id, direction, sent_at in rows_in(session, _CONVERSATION_MESSAGES, convs):
        messages.setdefault(conv_id, []).append((message_id, direction, as_utc(sent_at)))
    persons = {rid for rid, _c, folder in links if folder == people}
    emails_of: dict[int, set[str]] = {}
    for record_id, email in rows_in(session, _EMAILS_OF_RECORDS, persons):
        emails_of.setdefault(record_id, set()).add(email)
    # Roles of each address on each message, for the people's addresses only.
    roles_of: dict[tuple[int, str], set[str]] = {}
    addresses = {e for found in emails_of.values() for e in found}
    for message_id, role, email in rows_in(
        session, _PARTICIPATIONS, addresses, workspace_id=workspace_id
    ):
        roles_of.setdefault((message_id, email), set()).add(role)
    result: dict[int, Stats] = {}
    for record_id, conv, folder_id in links:
        stats = result.get(record_id)
        if stats is None:
            stats = result[record_id] = Stats()
        found = messages.get(conv or 0)
        if not found:
            continue
        stats.threads += 1
        person = folder_id == people
        mine = emails_of.get(record_id, set())
        for message_id, direction, sent_at in found:
            roles: frozenset[str] | None = None
            if person:
                roles = frozenset(
                    role for email in mine for role in roles_of.get((message_id, email), ())
                )
            stats.add_message(direction, sent_at, roles)
    return {rid: stats for rid, stats in result.items() if stats != Stats()}


# ------------------------------------------------------------------------------ writing


def apply_deltas(session: Session, workspace_id: int, deltas: Mapping[int, Stats]) -> None:
    """Add deltas to the stored stats in SQL, so concurrent ingests never lose an update."""
    if not deltas:
        return

    def upsert(stmt: Any) -> Any:
        new, table = stmt.excluded, RecordStats.__table__.c

        def later(name: str) -> Any:
            return case(
                (or_(table[name].is_(None), new[name] > table[name]), new[name]),
                else_=table[name],
            )

        def earlier(name: str) -> Any:
            return case(
                (or_(table[name].is_(None), new[name] < table[name]), new[name]),
                else_=table[name],
            )

        return stmt.on_conflict_do_update(
            index_elements=[table.record_id],
            set_={
                "emails_sent": table.emails_sent + new.emails_sent,
                "emails_received": table.emails_received + new.emails_received,
                "threads": table.threads + new.threads,
                "first_email": earlier("first_email"),
                "last_email": later("last_email"),
                "last_sent": later("last_sent"),
                "last_received": later("last_received"),
                "last_contacted": later("last_contacted"),
            },
        )

    # In record id order: concurrent ingests lock the rows in the same order.
    rows = [
        (
            rid,
            workspace_id,
            d.emails_sent,
            d.emails_received,
            d.threads,
            d.first_email,
            d.last_email,
            d.last_sent,
            d.last_received,
            d.last_contacted,
        )
        for rid, d in sorted(deltas.items())
    ]
    insert_many(session, RecordStats, rows, upsert, columns=_DELTA_COLUMNS)


_STORED = select(RecordStats.record_id, *STATS_COLUMNS).where(in_values(RecordStats.record_id))


def _utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def stats_of_records(session: Session, record_ids: Iterable[int]) -> dict[int, Stats]:
    """The stored stats of these records (those that have a row; ids are not checked
    against a workspace)."""
    found: dict[int, Stats] = {}
    for record_id, *columns in rows_in(session, _STORED, record_ids):
        stats = stats_of_row(columns)
        if stats is not None:
            found[record_id] = stats
    return found


def _write_stats(
    session: Session, workspace_id: int, record_ids: list[int], computed: Mapping[int, Stats]
) -> int:
    """Make the stored stats of these records equal the computed ones; how many changed."""
    stored = stats_of_records(session, record_ids)
    gone = [rid for rid in record_ids if rid in stored and rid not in computed]
    for chunk in chunks(gone):
        session.execute(delete(RecordStats).where(RecordStats.record_id.in_(chunk)))
    writes = [
        {"record_id": rid, "workspace_id": workspace_id, **stats.columns()}
        for rid, stats in ((rid, computed.get(rid)) for rid in record_ids)
        if stats is not None and stored.get(rid) != stats
    ]

    def replace(stmt: Any) -> Any:
        return stmt.on_conflict_do_update(
            index_elements=[RecordStats.record_id],
            set_={k: stmt.excluded[k] for k in writes[0] if k != "record_id"},
        )

    insert_many(session, RecordStats, writes, replace)
    # Rows the session holds are stale after these statements.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, RecordStats):
            session.expire(obj)
    return len(gone) + len(writes)


def refresh_record_stats(session: Session, workspace_id: int, record_ids: Iterable[int]) -> int:
    """Rebuild the stats (and stats fields) of these records from the ledger; flushes only."""
    ids = list(record_ids)
    return recompute_stats(session, workspace_id, ids) if ids else 0


def recompute_stats(
    session: Session,
    workspace_id: int,
    record_ids: Iterable[int] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild stats from the ledger (all of the workspace's records by default).

    Returns how many records' stored stats changed: 0 when the incremental updates were
    right. `progress` is called with the number of records done after each chunk.
    """
    if record_ids is not None:
        ids = sorted(set(record_ids))
    else:
        linked = select(ThreadLink.record_id).where(
            ThreadLink.workspace_id == workspace_id, ThreadLink.conversation_id.is_not(None)
        )
        stored = select(RecordStats.record_id).where(RecordStats.workspace_id == workspace_id)
        ids = sorted(session.execute(union(linked, stored)).scalars())
    session.flush()
    changed = 0
    size = IN_CHUNK if record_ids is not None else RECOMPUTE_CHUNK
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        # The whole workspace goes by ranges of the indexed record id instead of long IN
        # lists (other records in a range are computed too, but only the chunk's written).
        wanted = (
            ThreadLink.record_id.in_(chunk)
            if record_ids is not None
            else ThreadLink.record_id.between(chunk[0], chunk[-1])
        )
        computed = link_stats(session, workspace_id, wanted)
        changed += _write_stats(session, workspace_id, chunk, computed)
        if progress is not None:
            progress(len(chunk))
    return changed


# ------------------------------------------------------------------------ stats fields


def metric_value(stats: Stats | None, metric: str) -> Any:
    """The value of a metric: a count, an ISO moment, or None."""
    if stats is None:
        return None
    name = DAYS_SINCE.get(metric, metric)
    value = stats.last_contacted if name == "last_contacted" else getattr(stats, name, None)
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


_COUNTS = ("emails_sent", "emails_received", "threads")
_MOMENTS = ("first_email", "last_email", "last_sent", "last_received")
# The record_stats columns of the rows apply_deltas writes, in the order it builds them.
_DELTA_COLUMNS = ("record_id", "workspace_id", *_COUNTS, *_MOMENTS, "last_contacted")


def stats_field_value(fdef: FieldDef, stats: Stats | None) -> Any:
    """A stats field's value: a count, an ISO moment ("days since" ones: the moment they
    count from, so it never goes stale), or None."""
    return metric_value(stats, str(fdef.options.get("metric", "")))


_FOLDER_STATS = (
    select(Record.id, Record.folder_id, *STATS_COLUMNS)
    .join(RecordStats, RecordStats.record_id == Record.id)
    .where(in_values(Record.id))
)


def stats_field_values(
    session: Session, fields: Iterable[FieldDef], record_ids: Iterable[int]
) -> dict[int, dict[int, Any]]:
    """The values of the stats fields among `fields`, by record id and field id.

    Stats fields store nothing: their values are read from record_stats, the one copy
    ingest keeps up to date. Each record gets the fields of its own folder; records and
    fields without a value are left out.
    """
    by_folder: dict[int, list[FieldDef]] = {}
    for fdef in fields:
        if fdef.type == "stats":
            by_folder.setdefault(fdef.folder_id, []).append(fdef)
    if not by_folder:
        return {}
    found: dict[int, dict[int, Any]] = {}
    for record_id, folder_id, *columns in rows_in(session, _FOLDER_STATS, record_ids):
        defs = by_folder.get(folder_id)
        if not defs:
            continue
        stats = stats_of_row(columns)
        values = {f.id: v for f in defs if (v := stats_field_value(f, stats)) is not None}
        if values:
            found[record_id] = values
    return found


def ensure_stats_fields(
    session: Session, folder: Folder, metrics: Iterable[str] = tuple(METRIC_LABELS)
) -> list[FieldDef]:
    """Add a stats field per metric the folder lacks (keys `email_<metric>`), filled in."""
    existing = {
        str(f.options.get("metric"))
        for f in session.execute(
            select(FieldDef).where(FieldDef.folder_id == folder.id, FieldDef.type == "stats")
        ).scalars()
    }
    position = (
        session.execute(
            select(FieldDef.position)
            .where(FieldDef.folder_id == folder.id)
            .order_by(FieldDef.position.desc())
            .limit(1)
        ).scalar_one_or_none()
        or 0
    )
    taken = set(
        session.execute(select(FieldDef.key).where(FieldDef.folder_id == folder.id)).scalars()
    )
    added: list[FieldDef] = []
    for metric in metrics:
        if metric in existing:
            continue
        options = validate_options("stats", {"metric": metric})
        key = f"email_{metric}"
        while key in taken:
            key += "_"
        taken.add(key)
        position += 1
        fdef = FieldDef(
            workspace_id=folder.workspace_id,
            folder_id=folder.id,
            key=key,
            label=METRIC_LABELS[metric],
            type="stats",
            options=options,
            position=position,
        )
        session.add(fdef)
        added.append(fdef)
    session.flush()
    return added


# ----------------------------------------------------------------------------- reading


def days_since(moment: datetime | None, today: date) -> int | None:
    """Whole UTC calendar days from a moment to today (0 on the same day)."""
    if moment is None:
        return None
    return (today - as_utc(moment).date()).days


@dataclass(frozen=True)
class EmailStats:
    """Every stats metric of a record as shown; "days since" derived from the clock."""

    emails_sent: int
    emails_received: int
    threads: int
    first_email: datetime | None
    last_email: datetime | None
    last_sent: datetime | None
    last_received: datetime | None
    last_contacted: datetime | None
    days_since_last_contact: int | None
    days_since_last_reply: int | None

    @classmethod
    def of(cls, stats: Stats | None, now: datetime) -> EmailStats:
        """The shown stats of stored ones (all zero and empty for no row)."""
        stats = stats or Stats()
        today = as_utc(now).date()
        return cls(
            stats.emails_sent,
            stats.emails_received,
            stats.threads,
            stats.first_email,
            stats.last_email,
            stats.last_sent,
            stats.last_received,
            stats.last_contacted,
            days_since(stats.last_contacted, today),
            days_since(stats.last_received, today),
        )


def email_stats(
    session: Session,
    workspace_id: int,
    record_ids: Iterable[int],
    *,
    clock: Clock = system_clock,
) -> dict[int, EmailStats]:
    """Stats of these records of the workspace (other workspaces' ids get nothing)."""
    now = clock()
    ids = sorted(set(record_ids))
    owned = {
        rid
        for chunk in chunks(ids)
        for rid in session.execute(
            select(Record.id).where(Record.workspace_id == workspace_id, Record.id.in_(chunk))
        ).scalars()
    }
    stored = stats_of_records(session, owned)
    return {rid: EmailStats.of(stored.get(rid), now) for rid in ids if rid in owned}


def stored_stats(session: Session, workspace_id: int) -> dict[int, Stats]:
    """Every stored stats row of a workspace (for comparisons and exports)."""
    ids = session.execute(
        select(RecordStats.record_id).where(RecordStats.workspace_id == workspace_id)
    ).scalars()
    return stats_of_records(session, list(ids))
