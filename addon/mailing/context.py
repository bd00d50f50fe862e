"""Merge values: what `{{name}}` means for each recipient record, for many records at once.

For a record the values are, as display text (dates readable, in the workspace's locale
and time zone; numbers, currencies and lists as the cards show them):
- every active field by key and by the slug of its label (`{{first_name}}`, and a field
  labelled "Favourite colour" also as `{{favourite_colour}}`); keys win over slugs;
- link fields as the linked records' titles (`{{company}}`), and for a link to one record
  (a contact's company) every field of that record under the link's key
  (`{{company.name}}`, `{{company.domain}}`);
- user fields as the member's name, or email when the name is empty;
- `email` (the first address) and `name` (the record's title) unless fields take them;
- the email stats of the record (`{{last_contacted}}`, `{{emails_sent}}`,
  `{{days_since_last_contact}}` ...) from addon.ledger.stats, where no field takes the key;
- the sender, as `owner.*` and `sender.*`: first_name, last_name, name, email.

A value that is empty is None, so the template's fallback (or a missing-value skip)
applies. Records of other workspaces are left out of the answer. The statements are
batched: a fixed handful per 900 records, whatever the number of fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from addon.crm.fields import field_type
from addon.crm.fieldtypes_base import (
    LocaleStyle,
    RenderContext,
    format_date,
    locale_style,
    zone,
)
from addon.crm.models import FieldDef, FieldValue, Member, Record, RecordRelation, Workspace
from addon.crm.structure import derive_key
from addon.ledger.sql import chunks
from addon.ledger.stats import (
    Clock,
    EmailStats,
    Stats,
    stats_field_value,
    stats_of_records,
    system_clock,
)

Values = dict[str, str | None]
Display = Callable[[Any], str]

_STATS_COUNTS = ("emails_sent", "emails_received", "threads")
_STATS_MOMENTS = (
    "first_email",
    "last_email",
    "last_sent",
    "last_received",
    "last_contacted",
)
_STATS_DAYS = ("days_since_last_contact", "days_since_last_reply")
STATS_NAMES = _STATS_COUNTS + _STATS_MOMENTS + _STATS_DAYS
SENDER_PREFIXES = ("owner", "sender")


def label_slug(label: str) -> str:
    """The merge name a field label gives ("Favourite colour" -> favourite_colour)."""
    return derive_key(label, (), "field")


@dataclass(frozen=True)
class _Field:
    id: int
    key: str
    slug: str
    type: str
    display: Display


def _displayer(fdef: FieldDef, style: LocaleStyle, ctx_zone: Any, today: str) -> Display:
    kind = field_type(fdef.type)
    options = {**fdef.options, "_today": today}
    ctx = RenderContext(style, ctx_zone, options)

    def display(value: Any) -> str:
        if value is None or value == "" or value == [] or value == {}:
            return ""
        try:
            return kind.renderer(value, ctx)
        except (ValueError, TypeError, KeyError, ArithmeticError, OverflowError):
            # A value of an older shape still merges as its text.
            return str(value)

    return display


def _text(value: str | None) -> str | None:
    return value if value and not value.isspace() else None


def sender_values(sender: Member) -> Values:
    """The sender's merge values: owner.* and sender.* (first_name, last_name, name, email)."""
    name = " ".join(sender.name.split())
    first, _, last = name.partition(" ")
    found: Values = {}
    for prefix in SENDER_PREFIXES:
        found[f"{prefix}.first_name"] = _text(first)
        found[f"{prefix}.last_name"] = _text(last)
        found[f"{prefix}.name"] = _text(name) or sender.email
        found[f"{prefix}.email"] = sender.email
    return found


def _stats_values(stats: EmailStats | None, style: LocaleStyle, tz: Any) -> Values:
    found: Values = dict.fromkeys(STATS_NAMES)
    if stats is None:
        return found
    for name in _STATS_COUNTS:
        found[name] = str(getattr(stats, name))
    for name in _STATS_MOMENTS:
        moment: datetime | None = getattr(stats, name)
        found[name] = format_date(moment.astimezone(tz).date(), style) if moment else None
    for name in _STATS_DAYS:
        days: int | None = getattr(stats, name)
        found[name] = None if days is None else str(days)
    return found


class _Loader:
    """The rows one merge needs, read chunk by chunk."""

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def records(self, ids: list[int]) -> dict[int, tuple[int, str]]:
        found: dict[int, tuple[int, str]] = {}
        for chunk in chunks(ids):
            for rid, folder_id, title in self.session.execute(
                select(Record.id, Record.folder_id, Record.title).where(
                    Record.workspace_id == self.workspace_id, Record.id.in_(chunk)
                )
            ):
                found[rid] = (folder_id, title)
        return found

    def values(
        self,
        records: Mapping[int, tuple[int, str]],
        stats_fields: Mapping[int, list[FieldDef]],
        stats: Mapping[int, Stats],
    ) -> dict[int, dict[int, Any]]:
        """Field values of these records (id -> (folder, title)), stats fields from `stats`."""
        found: dict[int, dict[int, Any]] = {}
        for chunk in chunks(sorted(records)):
            for rid, fid, value in self.session.execute(
                select(FieldValue.record_id, FieldValue.field_id, FieldValue.value).where(
                    FieldValue.workspace_id == self.workspace_id, FieldValue.record_id.in_(chunk)
                )
            ):
                found.setdefault(rid, {})[fid] = value
        for rid, (folder_id, _title) in records.items():
            for fdef in stats_fields.get(folder_id, ()):
                value = stats_field_value(fdef, stats.get(rid))
                if value is not None:
                    found.setdefault(rid, {})[fdef.id] = value
        return found

    def links(self, ids: list[int]) -> dict[int, dict[int, list[tuple[int, str]]]]:
        target = aliased(Record)
        found: dict[int, dict[int, list[tuple[int, str]]]] = {}
        for chunk in chunks(ids):
            for rid, fid, tid, title in self.session.execute(
                select(
                    RecordRelation.from_record_id,
                    RecordRelation.field_id,
                    target.id,
                    target.title,
                )
                .join(target, target.id == RecordRelation.to_record_id)
                .where(
                    RecordRelation.workspace_id == self.workspace_id,
                    target.workspace_id == self.workspace_id,
                    RecordRelation.from_record_id.in_(chunk),
                )
                .order_by(RecordRelation.from_record_id, target.title, target.id)
            ):
                found.setdefault(rid, {}).setdefault(fid, []).append((tid, title))
        return found


def merge_values(
    session: Session,
    workspace_id: int,
    record_ids: Iterable[int],
    sender: Member,
    *,
    clock: Clock = system_clock,
) -> dict[int, Values]:
    """Merge values of each record of the workspace, by record id (others are left out)."""
    if sender.workspace_id != workspace_id:
        raise ValueError("the sender is not a member of this workspace")
    workspace = session.get(Workspace, workspace_id)
    settings = (workspace.settings if workspace is not None else None) or {}
    style, tz = locale_style(str(settings.get("locale") or "en")), zone(settings.get("timezone"))
    now = clock()
    today = now.date().isoformat()
    ids = sorted({int(rid) for rid in record_ids})
    loader = _Loader(session, workspace_id)
    records = loader.records(ids)
    if not records:
        return {}
    by_folder: dict[int, list[_Field]] = {}
    fields_by_id: dict[int, _Field] = {}
    single_link: set[int] = set()
    fdefs = list(
        session.execute(
            select(FieldDef)
            .where(FieldDef.workspace_id == workspace_id, FieldDef.active.is_(True))
            .order_by(FieldDef.folder_id, FieldDef.position, FieldDef.id)
        ).scalars()
    )
    for fdef in fdefs:
        entry = _Field(
            fdef.id, fdef.key, label_slug(fdef.label), fdef.type, _displayer(fdef, style, tz, today)
        )
        by_folder.setdefault(fdef.folder_id, []).append(entry)
        fields_by_id[fdef.id] = entry
        if fdef.type == "link" and not fdef.options.get("many"):
            single_link.add(fdef.id)
    # The first email field of each folder gives `{{email}}`.
    email_field: dict[int, int] = {}
    for folder_id, entries in by_folder.items():
        for entry in entries:
            if entry.type == "email":
                email_field.setdefault(folder_id, entry.id)
    members = {
        mid: (" ".join(name.split()) or email)
        for mid, name, email in session.execute(
            select(Member.id, Member.name, Member.email).where(Member.workspace_id == workspace_id)
        )
    }
    ordered = sorted(records)
    links = loader.links(ordered)
    # The one record a single link points at (the contact's company) lends its fields.
    targets = {
        pairs[0][0] for per in links.values() for fid, pairs in per.items() if fid in single_link
    }
    target_records = loader.records(sorted(targets - records.keys()))
    target_records.update({t: records[t] for t in targets & records.keys()})
    # Both records and link targets are the workspace's (loader.records): their email
    # stats are read once, for the stats fields and the stats names alike.
    stored = stats_of_records(session, records.keys() | target_records.keys())
    stats_fields: dict[int, list[FieldDef]] = {}
    for fdef in fdefs:
        if fdef.type == "stats":
            stats_fields.setdefault(fdef.folder_id, []).append(fdef)
    values = loader.values(records, stats_fields, stored)
    target_values = loader.values(target_records, stats_fields, stored)
    stats = {rid: EmailStats.of(stored.get(rid), now) for rid in ordered}
    sender_part = sender_values(sender)

    def own_values(rid: int, folder_id: int, title: str, stored: Mapping[int, Any]) -> Values:
        found: Values = {}
        slugs: Values = {}
        record_links = links.get(rid, {})
        for field in by_folder.get(folder_id, ()):
            if field.type == "link":
                text = ", ".join(t for _, t in record_links.get(field.id, ())) or None
            elif field.type == "user":
                value = stored.get(field.id)
                text = members.get(value) if isinstance(value, int) else None
            else:
                text = _text(field.display(stored.get(field.id)))
            found[field.key] = text
            slugs.setdefault(field.slug, text)
        for slug, text in slugs.items():
            found.setdefault(slug, text)
        if "email" not in found:
            emails_id = email_field.get(folder_id)
            first = stored.get(emails_id) if emails_id is not None else None
            found["email"] = str(first[0]) if isinstance(first, list) and first else None
        found.setdefault("name", _text(title))
        return found

    merged: dict[int, Values] = {}
    target_cache: dict[int, Values] = {}
    for rid in ordered:
        folder_id, title = records[rid]
        found = own_values(rid, folder_id, title, values.get(rid, {}))
        for fid, pairs in links.get(rid, {}).items():
            if fid not in single_link or fid not in fields_by_id:
                continue
            tid = pairs[0][0]
            if tid not in target_cache and tid in target_records:
                t_folder, t_title = target_records[tid]
                target_cache[tid] = own_values(tid, t_folder, t_title, target_values.get(tid, {}))
            prefix = fields_by_id[fid].key
            for name, text in target_cache.get(tid, {}).items():
                found[f"{prefix}.{name}"] = text
        for name, text in _stats_values(stats.get(rid), style, tz).items():
            found.setdefault(name, text)
        found.update(sender_part)
        merged[rid] = found
    return merged
