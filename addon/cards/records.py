"""Record cards, record forms, note form and the thread-link picker."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any

from addon.cards.timeline import reason_text, timeline_section
from addon.cards.widgets import (
    MAX_ITEMS,
    Actions,
    Widget,
    button,
    button_list,
    card,
    checkbox,
    date_picker,
    date_time_picker,
    decorated,
    dropdown,
    error_line,
    esc,
    multi_select,
    paragraph,
    section,
    text_input,
)
from addon.crm.fields import ADDRESS_PARTS, FieldError, field_type
from addon.crm.fieldtypes_base import utc_iso, zone
from addon.crm.models import FieldDef, Folder, Member, Record
from addon.crm.records import RecordDetail
from addon.crm.timeline import TimelinePage

FOLDER_ICONS = {"contacts": "PERSON", "companies": "MEMBERSHIP", "deals": "DOLLAR"}


def record_line(actions: Actions, record: Record, *, bottom: str | None = None) -> Widget:
    """One clickable line naming a record."""
    return decorated(
        esc(record.title or "(no name)"),
        top=esc(record.folder.singular),
        bottom=bottom,
        icon=FOLDER_ICONS.get(record.folder.key, "BOOKMARK"),
        on_click=actions.on_click("open_record", record_id=record.id),
    )


def display_value(
    fdef: FieldDef,
    value: Any,
    members: dict[int, Member],
    *,
    locale: str = "en",
    tz: str = "UTC",
) -> str:
    """A stored value as text for a card, in the viewer's locale and time zone."""
    if value is None or value == "" or value == []:
        return ""
    if fdef.type == "user":
        member = members.get(value) if isinstance(value, int) else None
        return member.email if member else ""
    # The field's options carry display details: an auto-number prefix, decimals.
    return field_type(fdef.type).display_for(value, locale, tz, fdef.options)


def moment_text(moment: datetime, locale: str = "en", tz: str = "UTC") -> str:
    """A timestamp (note, link) in the viewer's locale and time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC datetimes
    return field_type("datetime").display_for(utc_iso(moment), locale, tz)


def day_text(moment: datetime, locale: str = "en", tz: str = "UTC") -> str:
    """The calendar day of a timestamp in the viewer's zone, written per locale."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local_day = moment.astimezone(zone(tz)).date()
    return field_type("date").display_for(local_day.isoformat(), locale, tz)


def record_card(
    actions: Actions,
    detail: RecordDetail,
    *,
    thread_id: str | None = None,
    subject: str = "",
    can_merge: bool = False,
    can_delete: bool = False,
    locale: str = "en",
    tz: str = "UTC",
    timeline: TimelinePage | None = None,
    allowed: Collection[str] | None = None,
) -> dict[str, Any]:
    """The full card of a contact, company, deal or custom record, in the viewer's locale.

    With a `timeline` page, the timeline (threads, notes, changes) replaces the notes list.
    `allowed` names what the viewer may do here ("edit", "link", "note", "create_deal");
    None offers everything. Buttons for anything else are left out.
    """

    def may(what: str) -> bool:
        return allowed is None or what in allowed

    record = detail.record
    field_widgets: list[Widget] = []
    for fdef in detail.fields:
        if fdef.type == "link":
            targets = detail.links.get(fdef.key, [])
            for target in targets:
                field_widgets.append(record_line(actions, target, bottom=esc(fdef.label)))
            continue
        text = display_value(
            fdef, detail.values.get(fdef.key), detail.members, locale=locale, tz=tz
        )
        if text:
            field_widgets.append(decorated(esc(text), top=esc(fdef.label)))
    owner = detail.members.get(record.owner_member_id or 0)
    owner_shown = any(f.key == "owner" and detail.values.get("owner") for f in detail.fields)
    if owner is not None and not owner_shown:
        field_widgets.append(decorated(esc(owner.email), top="Owner"))
    if not field_widgets:
        field_widgets.append(paragraph("<i>No details yet.</i>"))

    buttons = []
    if may("edit"):
        buttons.append(button("Edit", actions.on_click("edit_record", record_id=record.id)))
    linked_here = thread_id is not None and any(t.thread_id == thread_id for t in detail.threads)
    if thread_id and not linked_here and may("link"):
        buttons.append(
            button(
                "Link this thread",
                actions.on_click(
                    "link_thread", record_id=record.id, thread_id=thread_id, subject=subject
                ),
                filled=True,
            )
        )
    if may("note"):
        buttons.append(button("Add note", actions.on_click("new_note", record_id=record.id)))
    if record.folder.key in ("contacts", "companies") and may("create_deal"):
        buttons.append(
            button("New deal", actions.on_click("new_record", folder="deals", link_to=record.id))
        )
    if can_merge:
        buttons.append(
            button("Find duplicates", actions.on_click("find_duplicates", record_id=record.id))
        )
    if can_delete:
        buttons.append(
            button("Delete…", actions.on_click("confirm_delete_record", record_id=record.id))
        )

    related_widgets = [
        record_line(actions, other)
        for key in ("contacts", "deals", "companies")
        for other in detail.related.get(key, [])
    ]
    thread_widgets = [
        decorated(
            esc(link.subject or "(no subject)"),
            bottom=(
                f"Linked {day_text(link.linked_at, locale, tz)} · {esc(reason_text(link.reason))}"
            ),
            icon="EMAIL",
            side_button=button(
                "Unlink",
                actions.on_click("unlink_thread", record_id=record.id, thread_id=link.thread_id),
            )
            if may("link")
            else None,
        )
        for link in detail.threads
    ]
    note_widgets = [
        decorated(
            esc(note.body[:500]),
            bottom=moment_text(note.created_at, locale, tz),
            icon="DESCRIPTION",
        )
        for note in detail.notes
    ]
    sections = [
        section([button_list(*buttons)] if buttons else []),
        section(field_widgets, "Details", collapsible=True, visible=8),
        section(related_widgets[:20], "Related", collapsible=True),
        section(thread_widgets, "Linked threads", collapsible=True),
        timeline_section(actions, timeline, locale=locale, tz=tz)
        if timeline is not None
        else section(note_widgets, "Notes", collapsible=True),
    ]
    return card(
        record.title or "(no name)",
        sections,
        subtitle=record.folder.singular,
        name=f"record-{record.id}",
    )


def _date_ms(value: Any) -> int | None:
    """A date input (ISO day or picker milliseconds) as the picker's midnight-UTC milliseconds."""
    if not value:
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _moment_ms(value: Any) -> int | None:
    """A date-time input (ISO text or picker milliseconds) as milliseconds since the epoch."""
    if not value:
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def zone_offset_minutes(tz: str | None, at_ms: int | None = None) -> int | None:
    """The UTC offset (minutes) of a time zone at a moment (now when None); None without a zone.

    The offset is taken at the value shown, so a July date-time picked in January still
    shows summer time.
    """
    if not tz:
        return None
    moment = (
        datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        if at_ms is not None and abs(at_ms) < 253402300799000
        else datetime.now(UTC)
    )
    offset = moment.astimezone(zone(tz)).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


_HINTS = {
    "number": "A number, e.g. 1250.50",
    "percent": "A percentage, e.g. 12.5",
    "email": "Separate several with commas",
    "phone": "Separate several with commas; e.g. +49 30 1234567",
    "url": "A web address, e.g. https://example.com",
    "skype": "A Skype name or live: id",
    "social": "Profile links (LinkedIn, X, Facebook, GitHub, Instagram), separated by commas",
    "link": "Type a name; a new one is created if none matches",
}
_ADDRESS_LABELS = ("Street", "City", "Region or state", "Postal code", "Country")
_COMPUTED_NOTES = {
    "autonumber": ("Assigned when saved", "Assigned automatically"),
    "formula": ("Calculated when saved", "Calculated from a formula"),
    "stats": ("No email activity yet", "Counted from email activity"),
}


def _hint(fdef: FieldDef) -> str | None:
    if fdef.type == "currency":
        code = str(fdef.options.get("default_currency") or "USD")
        return f"Amount and currency, e.g. 1250.50 {code}"
    return _HINTS.get(fdef.type)


def _checked(inputs: list[str]) -> bool:
    try:
        return field_type("checkbox").parse(inputs) is True
    except FieldError:
        return False


def _address_parts(inputs: list[str]) -> list[str]:
    """Street, city, region, postal code and country from an address input."""
    if len(inputs) == 1 and inputs[0].strip().startswith("{"):
        try:
            stored = json.loads(inputs[0])
        except ValueError:
            stored = None
        if isinstance(stored, dict):
            return [str(stored.get(part) or "") for part in ADDRESS_PARTS]
    parts = list(inputs[: len(ADDRESS_PARTS)])
    return parts + [""] * (len(ADDRESS_PARTS) - len(parts))


def member_choices(
    members: list[Member], selected: str | None, known: dict[int, Member] | None = None
) -> list[tuple[str, str]]:
    """("#id", email) choices for a user field, always including the selected member."""
    choices = [(f"#{m.id}", m.email) for m in members]
    if selected and selected not in dict(choices):
        # The selected member may be beyond the first page of members: keep them, or
        # saving the form unchanged would clear the field.
        member_id = selected[1:]
        found = (known or {}).get(int(member_id)) if member_id.isdigit() else None
        choices = [*choices[: MAX_ITEMS - 2], (selected, found.email if found else selected)]
    return choices[: MAX_ITEMS - 1]


def input_widgets(
    fdef: FieldDef,
    name: str,
    label: str,
    inputs: list[str],
    members: list[Member],
    *,
    known_members: dict[int, Member] | None = None,
    tz: str | None = None,
) -> list[Widget]:
    """The input widget(s) of one editable field, showing `inputs` (form strings).

    `inputs` is what the form would submit for the value: a stored value through its
    type's `to_input`, or what the user typed. Submitting the widgets unchanged gives the
    same strings back, so saving an untouched form changes nothing. `tz` is the user's
    zone for date-time pickers (None lets Google use the user's own setting).
    """
    first = inputs[0] if inputs else None
    if fdef.type == "dropdown":
        choices = [(c, c.capitalize()) for c in map(str, fdef.options.get("choices", []))]
        if first and first not in dict(choices):
            # A value that is no longer a choice is shown, not silently dropped on save.
            choices.append((first, f"{first} (no longer a choice)"))
        return [dropdown(name, label, choices, first)]
    if fdef.type == "multidropdown":
        choices = [(c, c) for c in map(str, fdef.options.get("choices", []))]
        known = dict(choices)
        choices += [(v, f"{v} (no longer a choice)") for v in inputs if v and v not in known]
        return [multi_select(name, label, choices, set(inputs))]
    if fdef.type == "user":
        return [dropdown(name, label, member_choices(members, first, known_members), first)]
    if fdef.type == "checkbox":
        return [checkbox(name, esc(label), _checked(inputs))]
    if fdef.type == "date":
        return [date_picker(name, label, _date_ms(first))]
    if fdef.type == "datetime":
        ms = _moment_ms(first)
        return [date_time_picker(name, label, ms, zone_offset_minutes(tz, ms))]
    if fdef.type == "address":
        # Five inputs named name.0 … name.4: the event reader gathers them into one list,
        # which the address type reads part by part.
        return [
            text_input(
                f"{name}.{index}",
                f"{label} · {part}",
                value,
                hint="Two-letter code (DE, US) or name" if part == "Country" else None,
            )
            for index, (part, value) in enumerate(
                zip(_ADDRESS_LABELS, _address_parts(inputs), strict=True)
            )
        ]
    if fdef.type == "multiline":
        return [text_input(name, label, "\n".join(inputs), multiline=True)]
    return [text_input(name, label, ", ".join(inputs), hint=_hint(fdef))]


def form_inputs(
    fdef: FieldDef, value: Any, links: dict[str, list[Record]] | None = None
) -> list[str]:
    """The form strings showing a stored (or pre-filled) value in the record form."""
    if fdef.type == "link":
        if links is not None and fdef.key in links:
            titles = ", ".join(r.title for r in links[fdef.key])
            return [titles] if titles else []
        if isinstance(value, str):
            return [value]  # a pre-filled name ("Acme" for a new contact's company)
        return field_type("link").to_input(value) if value else []
    if fdef.type == "user":
        if isinstance(value, int) and not isinstance(value, bool):
            return [f"#{value}"]
        return [str(value)] if value else []
    if value is None:
        return []
    if isinstance(value, str) and fdef.type == "multidropdown":
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, str):
        return [value]  # stored text, or typed text passed back as it is
    try:
        return field_type(fdef.type).to_input(value)
    except (TypeError, ValueError, KeyError):
        return [str(value)]


def _read_only_line(fdef: FieldDef, value: Any, locale: str, tz: str) -> Widget:
    empty, note = _COMPUTED_NOTES.get(fdef.type, ("—", "Read only"))
    text = display_value(fdef, value, {}, locale=locale, tz=tz)
    return decorated(esc(text or empty), top=esc(fdef.label), bottom=note)


def record_form(
    actions: Actions,
    folder: Folder,
    fields: list[FieldDef],
    members: list[Member],
    *,
    values: dict[str, Any] | None = None,
    detail: RecordDetail | None = None,
    errors: dict[str, str] | None = None,
    hidden: dict[str, str] | None = None,
    typed: Mapping[str, list[str]] | None = None,
    locale: str = "en",
    tz: str | None = None,
    edit_locked: bool = False,
) -> dict[str, Any]:
    """The create or edit form of a record, with any validation errors shown in place.

    `values` are stored (or pre-filled) values; `typed` is the submitted form, shown
    instead after a validation error so the user can correct what they typed. Computed
    fields are shown as text, and so are locked fields unless `edit_locked` (admins);
    `locale` and `tz` are the user's, from the event.
    """
    values = values or {}
    errors = errors or {}
    widgets: list[Widget] = []
    if errors:
        widgets.append(error_line("Please correct the fields below. Nothing was saved."))
    known = detail.members if detail is not None else {}
    for fdef in fields:
        label = fdef.label + (" *" if fdef.required else "")
        if fdef.type == "link" and fdef.options.get("many"):
            # Many-links are managed from the linked records' cards, but a refused
            # value must still be explained.
            if fdef.key in errors:
                widgets.append(error_line(f"{fdef.label} {errors[fdef.key]}"))
            continue
        if fdef.locked and not edit_locked:
            text = display_value(fdef, values.get(fdef.key), known, locale=locale, tz=tz or "UTC")
            widgets.append(
                decorated(esc(text or "—"), top=esc(fdef.label), bottom="Locked: admins only")
            )
            if fdef.key in errors:
                widgets.append(error_line(f"{fdef.label} {errors[fdef.key]}"))
            continue
        if field_type(fdef.type).read_only:
            if detail is not None or fdef.type == "autonumber":
                widgets.append(_read_only_line(fdef, values.get(fdef.key), locale, tz or "UTC"))
            continue
        if typed is not None:
            inputs = list(typed.get(fdef.key, []))
        else:
            links = detail.links if detail is not None else None
            inputs = form_inputs(fdef, values.get(fdef.key), links)
        widgets.extend(
            input_widgets(fdef, fdef.key, label, inputs, members, known_members=known, tz=tz)
        )
        if fdef.key in errors:
            widgets.append(error_line(f"{fdef.label} {errors[fdef.key]}"))
    for key in errors.keys() - {f.key for f in fields}:
        widgets.append(error_line(errors[key]))
    params = dict(hidden or {})
    if detail is not None:
        save = actions.on_click("update_record", record_id=detail.record.id, **params)
        title = f"Edit {detail.record.title or folder.singular.lower()}"
    else:
        save = actions.on_click("create_record", folder=folder.key, **params)
        title = f"New {folder.singular.lower()}"
    return card(
        title, [section(widgets)], name="record-form", footer=button("Save", save, filled=True)
    )


def note_form(
    actions: Actions, record: Record, *, body: str = "", error: str | None = None
) -> dict[str, Any]:
    """The form to add a note to a record."""
    widgets: list[Widget] = [text_input("body", "Note", body, multiline=True)]
    if error:
        widgets.append(error_line(error))
    return card(
        f"Note on {record.title}",
        [section(widgets)],
        name="note-form",
        footer=button(
            "Save note", actions.on_click("create_note", record_id=record.id), filled=True
        ),
    )


def link_picker(
    actions: Actions, thread_id: str, subject: str, query: str, results: list[Record]
) -> dict[str, Any]:
    """Search for any record to link the open thread to."""
    widgets: list[Widget] = [
        text_input("query", "Find a contact, company or deal", query),
        button_list(
            button("Search", actions.on_click("link_search", thread_id=thread_id, subject=subject))
        ),
    ]
    if query and not results:
        widgets.append(paragraph(f"No records match “{esc(query)}”."))
    for record in results:
        widgets.append(
            decorated(
                esc(record.title or "(no name)"),
                top=esc(record.folder.singular),
                icon=FOLDER_ICONS.get(record.folder.key, "BOOKMARK"),
                side_button=button(
                    "Link",
                    actions.on_click(
                        "link_thread", record_id=record.id, thread_id=thread_id, subject=subject
                    ),
                ),
            )
        )
    return card(
        "Link this thread", [section(widgets)], subtitle=subject or None, name="link-picker"
    )


def error_card(title: str, message: str) -> dict[str, Any]:
    """A card explaining why something could not be done."""
    return card(title, [section([error_line(message)])], name="error")
