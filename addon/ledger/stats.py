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

Storage: `record_stats` is the source of truth (one row per record with at least one
attached thread link). Folders that have fields of the read-only type "stats" (option
`metric`) get the values projected into `field_values`, so saved views filter and sort on
them through the same indexes as every other field, merge templates and CSV export read
them by key, and cards show them; a "days since" field stores its reference date. Ingest
adds deltas in SQL (increments and later-of/earlier-of), so concurrent writers never lose
an update; link, unlink and merge refresh the touched records from the ledger with the
same code `recompute_stats` runs, which must (and, by test, does) give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, delete, or_, select, union
from sqlalchemy.orm import Session

from addon.crm.fields import field_type, validate_options
from addon.crm.fieldtypes_base import utc_iso
from addon.crm.models import FieldDef, FieldValue, Folder, Record, RecordEmail, ThreadLink
from addon.ledger.models import (
    RECEIVED,
    SENT,
    LedgerMessage,
    LedgerParticipant,
    RecordStats,
)
from addon.ledger.parse import as_utc
from addon.ledger.sql import IN_CHUNK, IN_VALUES, chunks, insert_many, rows_in

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


# ------------------------------------------------------------------ computing from the ledger


_CONVERSATION_MESSAGES = select(
    LedgerMessage.id, LedgerMessage.conversation_id, LedgerMessage.direction, LedgerMessage.sent_at
).where(LedgerMessage.conversation_id.in_(IN_VALUES))
_EMAILS_OF_RECORDS = select(RecordEmail.record_id, RecordEmail.email).where(
    RecordEmail.record_id.in_(IN_VALUES)
)
_PARTICIPATIONS = select(
    LedgerParticipant.message_id, LedgerParticipant.role, LedgerParticipant.email
).where(
    LedgerParticipant.workspace_id == bindparam("workspace_id"),
    LedgerParticipant.email.in_(IN_VALUES),
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


_STORED = select(
    RecordStats.record_id,
    RecordStats.emails_sent,
    RecordStats.emails_received,
    RecordStats.threads,
    RecordStats.first_email,
    RecordStats.last_email,
    RecordStats.last_sent,
    RecordStats.last_received,
).where(RecordStats.record_id.in_(IN_VALUES))


def _utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def _stored(session: Session, record_ids: Iterable[int]) -> dict[int, Stats]:
    """The stored stats of these records (those that have a row)."""
    return {
        row[0]: Stats(row[1], row[2], row[3], *(_utc(m) for m in row[4:]))
        for row in rows_in(session, _STORED, record_ids)
    }


def _write_stats(
    session: Session, workspace_id: int, record_ids: list[int], computed: Mapping[int, Stats]
) -> int:
    """Make the stored stats of these records equal the computed ones; how many changed."""
    stored = _stored(session, record_ids)
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
        project_fields(session, workspace_id, chunk)
        if progress is not None:
            progress(len(chunk))
    return changed


# ------------------------------------------------------------------------ stats fields


def metric_value(stats: Stats | None, metric: str) -> Any:
    """The stored field value of a metric: a count, an ISO moment, or None."""
    if stats is None:
        return None
    name = DAYS_SINCE.get(metric, metric)
    value = stats.last_contacted if name == "last_contacted" else getattr(stats, name, None)
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


def stats_fields(session: Session, workspace_id: int) -> dict[int, list[FieldDef]]:
    """Active stats fields of the workspace by folder id."""
    found: dict[int, list[FieldDef]] = {}
    for fdef in session.execute(
        select(FieldDef).where(
            FieldDef.workspace_id == workspace_id,
            FieldDef.type == "stats",
            FieldDef.active.is_(True),
        )
    ).scalars():
        found.setdefault(fdef.folder_id, []).append(fdef)
    return found


# Which stored columns each metric reads: a delta that leaves them alone changes nothing.
_METRIC_SOURCES = {
    "emails_sent": ("emails_sent",),
    "emails_received": ("emails_received",),
    "threads": ("threads",),
    "first_email": ("first_email",),
    "last_email": ("last_email",),
    "last_sent": ("last_sent",),
    "last_received": ("last_received",),
    "last_contacted": ("last_sent", "last_received"),
    "days_since_last_contact": ("last_sent", "last_received"),
    "days_since_last_reply": ("last_received",),
}
_COUNTS = ("emails_sent", "emails_received", "threads")
_MOMENTS = ("first_email", "last_email", "last_sent", "last_received")
# The record_stats columns of the rows apply_deltas writes, in the order it builds them.
_DELTA_COLUMNS = ("record_id", "workspace_id", *_COUNTS, *_MOMENTS, "last_contacted")


def _moved(stored: Stats, delta: Stats) -> set[str]:
    """The stored columns a delta just added (in SQL) changed, from the stats after it.

    Counts move when the delta counts something. A moment column holds the later (or
    earlier) of its old value and the delta's, so it moved only if it now equals the
    delta's: otherwise the old value won and the field already shows it. A new thread
    may be the record's first (its row is new): every count is written, zeros included.
    """
    counted = _COUNTS if delta.threads else [n for n in _COUNTS if getattr(delta, n)]
    moved = set(counted)
    for name in _MOMENTS:
        moment = getattr(delta, name)
        if moment is not None and getattr(stored, name) == moment:
            moved.add(name)
    return moved


def stats_value_keys(value: Any, options: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """The view keys of a stats value: what the stats field type's index_keys gives.

    Counts and ISO moments are the only shapes, so the keys are built directly (the
    generic path tries each value as a number first, which costs more than the rest of a
    batch's projection); anything else goes through the field type.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), float(value)
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and " " not in value:
        return value.lower(), None
    text, number = field_type("stats").index_keys(value, options)
    return (text[:255] if text else text), number


@dataclass(frozen=True, slots=True)
class _StatsField:
    """What projecting one stats field needs, read off its FieldDef once per call."""

    id: int
    column: str  # the metric whose value it stores ("days since" ones store a moment)
    sources: frozenset[str]
    options: Mapping[str, Any]


def project_fields(
    session: Session,
    workspace_id: int,
    record_ids: Iterable[int],
    fields_by_folder: Mapping[int, list[FieldDef]] | None = None,
    *,
    changed: Mapping[int, Stats] | None = None,
) -> None:
    """Write the stats fields of these records from their record_stats rows.

    With `changed` (the deltas ingest just added) only the fields of the columns those
    deltas moved are written, without reading the current values: on ingest stats only
    grow, so no value is ever cleared. Without it every field is compared and fixed.
    """
    by_folder = (
        fields_by_folder if fields_by_folder is not None else stats_fields(session, workspace_id)
    )
    if not by_folder:
        return
    fields = {
        folder_id: [
            _StatsField(
                f.id,
                DAYS_SINCE.get(metric := str(f.options.get("metric")), metric),
                frozenset(_METRIC_SOURCES.get(metric, ())),
                f.options,
            )
            for f in defs
        ]
        for folder_id, defs in by_folder.items()
    }
    field_ids = [f.id for defs in fields.values() for f in defs]
    upserts: list[tuple[int, int, int, Any, str | None, float | None]] = []
    removals: list[tuple[int, int]] = []
    for chunk in chunks(sorted(set(record_ids))):
        folders = dict(
            session.execute(
                select(Record.id, Record.folder_id).where(
                    Record.id.in_(chunk), Record.folder_id.in_(list(fields))
                )
            ).all()
        )
        if not folders:
            continue
        stored = _stored(session, folders)
        current: dict[tuple[int, int], Any] = {}
        if changed is None:
            current = {
                (rid, fid): value
                for rid, fid, value in session.execute(
                    select(FieldValue.record_id, FieldValue.field_id, FieldValue.value).where(
                        FieldValue.record_id.in_(list(folders)),
                        FieldValue.field_id.in_(field_ids),
                    )
                )
            }
        for rid, folder_id in folders.items():
            stats = stored.get(rid)
            delta = changed.get(rid) if changed is not None else None
            if delta is not None and stats is None:
                continue  # nothing stored: no value to write, none to clear on ingest
            moved = _moved(stats, delta) if stats is not None and delta is not None else None
            # A record's fields share their values (a moment feeds up to three fields).
            values: dict[str, tuple[Any, str | None, float | None]] = {}
            for fdef in fields[folder_id]:
                if moved is not None and moved.isdisjoint(fdef.sources):
                    continue
                key = (rid, fdef.id)
                found = values.get(fdef.column)
                if found is None:
                    value = metric_value(stats, fdef.column)
                    # A count or an ISO moment: their keys do not depend on the options.
                    text, number = (
                        stats_value_keys(value, fdef.options) if value is not None else (None, None)
                    )
                    found = values[fdef.column] = (value, text, number)
                value = found[0]
                if value is None:
                    if key in current:
                        removals.append(key)
                    continue
                if key in current and current[key] == value:
                    continue
                upserts.append((workspace_id, rid, fdef.id, *found))
    for rid, fid in removals:
        session.execute(
            delete(FieldValue).where(FieldValue.record_id == rid, FieldValue.field_id == fid)
        )
    insert_many(
        session,
        FieldValue,
        upserts,
        lambda stmt: stmt.on_conflict_do_update(
            index_elements=[FieldValue.record_id, FieldValue.field_id],
            set_={k: stmt.excluded[k] for k in ("value", "text_key", "num_key")},
        ),
        columns=("workspace_id", "record_id", "field_id", "value", "text_key", "num_key"),
    )
    # FieldValue rows the session holds are stale after the statements above.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, FieldValue) and obj.field_id in field_ids:
            session.expire(obj)


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
    if added:
        ids = session.execute(
            select(RecordStats.record_id)
            .join(Record, Record.id == RecordStats.record_id)
            .where(Record.folder_id == folder.id)
        ).scalars()
        project_fields(session, folder.workspace_id, list(ids), {folder.id: added})
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
    stored = _stored(session, owned)
    return {rid: EmailStats.of(stored.get(rid), now) for rid in ids if rid in owned}


def stored_stats(session: Session, workspace_id: int) -> dict[int, Stats]:
    """Every stored stats row of a workspace (for comparisons and exports)."""
    ids = session.execute(
        select(RecordStats.record_id).where(RecordStats.workspace_id == workspace_id)
    ).scalars()
    return _stored(session, list(ids))
