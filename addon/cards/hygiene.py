"""Duplicate warnings on create, the duplicate finder of a record, and the merge card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from addon.cards.records import FOLDER_ICONS, display_value
from addon.cards.widgets import (
    Actions,
    Widget,
    button,
    button_list,
    card,
    decorated,
    error_line,
    esc,
    paragraph,
    section,
    text_input,
)
from addon.crm.models import FieldDef, Folder, Record
from addon.crm.records import RecordDetail

Card = dict[str, Any]
# Field types whose values a merge never asks about: lists are united, derived values
# and auto-numbers stay the kept record's own.
_UNITED_TYPES = frozenset({"email", "phone"})
_KEPT_TYPES = frozenset({"autonumber", "stats", "formula"})
MAX_CHOICE_ROWS = 60


@dataclass(frozen=True)
class Candidate:
    """An existing record that looks like the same one, and why in words."""

    record: Record
    why: str


def _record_text(record: Record) -> str:
    return record.title or "(no name)"


def _icon(record: Record) -> str:
    return FOLDER_ICONS.get(record.folder.key, "BOOKMARK")


# ------------------------------------------------------------------------------ on create


def duplicate_warning_card(
    actions: Actions,
    folder: Folder,
    candidates: Sequence[Candidate],
    params: Mapping[str, str],
) -> Card:
    """Creating would duplicate existing records: open one of them, or create anyway.

    `params` carry the submitted form (and its context) so "Create anyway" and "Edit
    details" resubmit exactly what was typed.
    """
    lines: list[Widget] = [
        paragraph(
            f"This {esc(folder.singular.lower())} looks like "
            + ("a record" if len(candidates) == 1 else "records")
            + " already in your CRM. Nothing was saved yet."
        )
    ]
    for candidate in candidates[:20]:
        lines.append(
            decorated(
                esc(_record_text(candidate.record)),
                bottom=esc(candidate.why[:1].upper() + candidate.why[1:]),
                icon=_icon(candidate.record),
                on_click=actions.on_click("open_record", record_id=candidate.record.id),
                side_button=button(
                    "Open existing",
                    actions.on_click("open_record", record_id=candidate.record.id),
                ),
            )
        )
    buttons = button_list(
        button("Edit details", actions.on_click("duplicate_edit", **params)),
        button("Create anyway", actions.on_click("create_record", force="1", **params)),
    )
    return card(
        "Possible duplicate",
        [section(lines, "Already in your CRM"), section([buttons])],
        subtitle=f"New {folder.singular.lower()}",
        name="duplicate-warning",
    )


# ------------------------------------------------------------------------------ finder


def duplicates_card(
    actions: Actions,
    record: Record,
    candidates: Sequence[Candidate],
    *,
    query: str = "",
    results: Sequence[Record] = (),
    ticked: Sequence[Record] = (),
    error: str | None = None,
) -> Card:
    """The records that may be the same as this one, to tick and merge with it."""
    offered: dict[int, str] = {}
    for candidate in candidates:
        offered.setdefault(
            candidate.record.id, f"{_record_text(candidate.record)} — {candidate.why}"
        )
    for other in [*ticked, *results]:
        offered.setdefault(other.id, f"{_record_text(other)} — #{other.id}")
    selected = {r.id for r in ticked}
    head: list[Widget] = []
    if error:
        head.append(error_line(error))
    head.append(
        decorated(
            esc(_record_text(record)),
            top=esc(record.folder.singular),
            bottom=f"Created {record.created_at:%Y-%m-%d}",
            icon=_icon(record),
        )
    )
    pick: list[Widget] = []
    if offered:
        pick.append(
            {
                "selectionInput": {
                    "name": "merge_ids",
                    "label": "Merge into one record with",
                    "type": "CHECK_BOX",
                    "items": [
                        {"text": text[:150], "value": str(rid), "selected": rid in selected}
                        for rid, text in list(offered.items())[:100]
                    ],
                }
            }
        )
    if not candidates:
        pick.append(
            paragraph(
                "No record shares an email, a phone, a domain or a company name with this one."
            )
        )
    if query and not results:
        pick.append(paragraph(f"No other {esc(record.folder.name.lower())} match “{esc(query)}”."))
    search = [
        text_input("merge_query", f"Find another {record.folder.singular.lower()}", query),
        button_list(
            button(
                "Search",
                actions.on_click("find_duplicates", record_id=record.id, nav="update"),
            )
        ),
    ]
    sections = [
        section(head, "This record"),
        section(pick, "Possible duplicates"),
        section(search, "Search"),
    ]
    footer = None
    if offered:
        footer = button(
            "Continue", actions.on_click("merge_form", record_id=record.id), filled=True
        )
    return card(
        "Find duplicates",
        sections,
        subtitle=_record_text(record),
        name="duplicates",
        footer=footer,
    )


# ------------------------------------------------------------------------------ merge


@dataclass
class MergeChoice:
    """A field whose value differs between the merged records: one option per value."""

    key: str
    label: str
    options: list[tuple[int, str]]
    selected: int


def _value_text(fdef: FieldDef, detail: RecordDetail, locale: str, tz: str) -> tuple[Any, str]:
    """A comparable form of a record's value and its text ((None, "") when empty)."""
    if fdef.type == "link":
        targets = detail.links.get(fdef.key) or []
        if not targets:
            return None, ""
        return tuple(sorted(t.id for t in targets)), ", ".join(_record_text(t) for t in targets)
    value = detail.values.get(fdef.key)
    if value is None or value == "" or value == []:
        return None, ""
    text = display_value(fdef, value, detail.members, locale=locale, tz=tz) or str(value)
    # Values are JSON shapes; their text form compares lists and objects too.
    return repr(value), text


def merge_choices(
    details: Sequence[RecordDetail], survivor_id: int, *, locale: str = "en", tz: str = "UTC"
) -> list[MergeChoice]:
    """The fields whose filled-in values differ, with the kept record's value preselected.

    Values are shown in the user's locale and time zone.
    """
    if not details:
        return []
    by_id = {d.record.id: d for d in details}
    order = [by_id[survivor_id], *(d for d in details if d.record.id != survivor_id)]
    choices: list[MergeChoice] = []
    for fdef in details[0].fields:
        if fdef.type in _UNITED_TYPES or fdef.type in _KEPT_TYPES:
            continue
        if fdef.type == "link" and fdef.options.get("many"):
            continue
        options: list[tuple[int, str]] = []
        seen: set[Any] = set()
        for detail in order:
            comparable, text = _value_text(fdef, detail, locale, tz)
            if comparable is None or comparable in seen:
                continue
            seen.add(comparable)
            options.append((detail.record.id, text[:120]))
        if len(options) > 1:
            choices.append(MergeChoice(fdef.key, fdef.label, options, options[0][0]))
    return choices


def _radio(name: str, label: str, options: Sequence[tuple[int, str]], selected: int) -> Widget:
    return {
        "selectionInput": {
            "name": name,
            "label": label,
            "type": "RADIO_BUTTON",
            "items": [
                {"text": text or "—", "value": str(rid), "selected": rid == selected}
                for rid, text in options[:100]
            ],
        }
    }


def merge_card(
    actions: Actions,
    details: Sequence[RecordDetail],
    choices: Sequence[MergeChoice],
    *,
    start_id: int,
    survivor_id: int,
    error: str | None = None,
) -> Card:
    """Pick the record to keep and, for each differing field, the value to keep."""
    records = [d.record for d in details]
    others = ",".join(str(r.id) for r in records if r.id != start_id)
    head: list[Widget] = []
    if error:
        head.append(error_line(error))
    head.append(
        _radio(
            "survivor",
            "Keep this record (its id, auto-numbers and history stay)",
            [
                (r.id, f"{_record_text(r)} · #{r.id} · created {r.created_at:%Y-%m-%d}")
                for r in records
            ],
            survivor_id,
        )
    )
    rows: list[Widget] = [
        _radio(f"choice_{c.key}", c.label, c.options, c.selected) for c in choices[:MAX_CHOICE_ROWS]
    ]
    if len(choices) > MAX_CHOICE_ROWS:
        rows.append(
            paragraph(
                f"<i>{len(choices) - MAX_CHOICE_ROWS} more fields keep the kept record's value.</i>"
            )
        )
    if not rows:
        rows.append(paragraph("The records do not disagree on any field."))

    united: list[Widget] = []
    fields = details[0].fields if details else []
    for fdef in fields:
        if fdef.type not in _UNITED_TYPES:
            continue
        every: list[str] = []
        for detail in details:
            for item in detail.values.get(fdef.key) or []:
                if item not in every:
                    every.append(str(item))
        if every:
            united.append(decorated(esc(", ".join(every)[:1000]), top=esc(fdef.label)))
    united.append(
        paragraph(
            "Emails and phones of every record are kept. Linked threads, notes, deals and "
            "other links move to the kept record; the other records' ids open the kept one."
        )
    )
    sections = [
        section(head, f"Merge {len(records)} records"),
        section(rows, "Values to keep"),
        section(united, "Combined"),
    ]
    merge = actions.on_click("merge_records", record_id=start_id, merge_ids=others)
    return card(
        "Merge records",
        sections,
        subtitle=", ".join(_record_text(r) for r in records)[:200],
        name="merge",
        footer=button("Merge", merge, filled=True),
    )
