"""Record cards, record forms, note form and the thread-link picker."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from addon.cards.widgets import (
    Actions,
    Widget,
    button,
    button_list,
    card,
    date_picker,
    decorated,
    dropdown,
    error_line,
    esc,
    paragraph,
    section,
    text_input,
)
from addon.crm.fields import field_type
from addon.crm.models import FieldDef, Folder, Member, Record
from addon.crm.records import RecordDetail

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


def display_value(fdef: FieldDef, value: Any, members: dict[int, Member]) -> str:
    """A stored value as text for a card."""
    if value is None or value == "" or value == []:
        return ""
    if fdef.type == "user":
        member = members.get(int(value))
        return member.email if member else ""
    # The field's options carry display details: an auto-number prefix, decimals.
    return field_type(fdef.type).display(value, options=fdef.options)


def record_card(
    actions: Actions, detail: RecordDetail, *, thread_id: str | None = None, subject: str = ""
) -> dict[str, Any]:
    """The full card of a contact, company, deal or custom record."""
    record = detail.record
    field_widgets: list[Widget] = []
    for fdef in detail.fields:
        if fdef.type == "link":
            targets = detail.links.get(fdef.key, [])
            for target in targets:
                field_widgets.append(record_line(actions, target, bottom=esc(fdef.label)))
            continue
        text = display_value(fdef, detail.values.get(fdef.key), detail.members)
        if text:
            field_widgets.append(decorated(esc(text), top=esc(fdef.label)))
    if not field_widgets:
        field_widgets.append(paragraph("<i>No details yet.</i>"))

    buttons = [button("Edit", actions.on_click("edit_record", record_id=record.id))]
    linked_here = thread_id is not None and any(t.thread_id == thread_id for t in detail.threads)
    if thread_id and not linked_here:
        buttons.append(
            button(
                "Link this thread",
                actions.on_click(
                    "link_thread", record_id=record.id, thread_id=thread_id, subject=subject
                ),
                filled=True,
            )
        )
    buttons.append(button("Add note", actions.on_click("new_note", record_id=record.id)))
    if record.folder.key in ("contacts", "companies"):
        buttons.append(
            button("New deal", actions.on_click("new_record", folder="deals", link_to=record.id))
        )

    related_widgets = [
        record_line(actions, other)
        for key in ("contacts", "deals", "companies")
        for other in detail.related.get(key, [])
    ]
    thread_widgets = [
        decorated(
            esc(link.subject or "(no subject)"),
            bottom=f"Linked {link.linked_at:%Y-%m-%d} · {esc(link.reason)}",
            icon="EMAIL",
            side_button=button(
                "Unlink",
                actions.on_click("unlink_thread", record_id=record.id, thread_id=link.thread_id),
            ),
        )
        for link in detail.threads
    ]
    note_widgets = [
        decorated(
            esc(note.body[:500]), bottom=f"{note.created_at:%Y-%m-%d %H:%M}", icon="DESCRIPTION"
        )
        for note in detail.notes
    ]
    sections = [
        section([button_list(*buttons)]),
        section(field_widgets, "Details", collapsible=True, visible=8),
        section(related_widgets[:20], "Related", collapsible=True),
        section(thread_widgets, "Linked threads", collapsible=True),
        section(note_widgets, "Notes", collapsible=True),
    ]
    return card(
        record.title or "(no name)",
        sections,
        subtitle=record.folder.singular,
        name=f"record-{record.id}",
    )


def _date_ms(value: Any) -> int | None:
    if not value:
        return None
    if str(value).lstrip("-").isdigit():
        return int(value)
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _form_text(fdef: FieldDef, value: Any, detail: RecordDetail | None) -> str:
    if isinstance(value, str):
        return value  # what the user typed, shown again after a validation error
    if fdef.type == "link" and detail is not None:
        return ", ".join(r.title for r in detail.links.get(fdef.key, []))
    if fdef.type in ("email", "phone"):
        return ", ".join(value or [])
    if fdef.type == "currency" and value:
        return f"{value['amount']} {value['currency']}"
    return "" if value is None else str(value)


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
) -> dict[str, Any]:
    """The create or edit form of a record, with any validation errors shown in place."""
    values = values or {}
    errors = errors or {}
    widgets: list[Widget] = []
    if errors:
        widgets.append(error_line("Please correct the fields below. Nothing was saved."))
    for fdef in fields:
        label = fdef.label + (" *" if fdef.required else "")
        value = values.get(fdef.key)
        if fdef.type == "link" and fdef.options.get("many"):
            # Many-links are managed from the linked records' cards, but a refused
            # value must still be explained.
            if fdef.key in errors:
                widgets.append(error_line(f"{fdef.label} {errors[fdef.key]}"))
            continue
        if fdef.type == "dropdown":
            choices = [(str(c), str(c).capitalize()) for c in fdef.options.get("choices", [])]
            widgets.append(dropdown(fdef.key, label, choices, str(value) if value else None))
        elif fdef.type == "user":
            choices = [(f"#{m.id}", m.email) for m in members[:99]]
            widgets.append(dropdown(fdef.key, label, choices, f"#{value}" if value else None))
        elif fdef.type == "date":
            widgets.append(date_picker(fdef.key, label, _date_ms(value)))
        else:
            hint = {
                "email": "Separate several with commas",
                "phone": "Separate several with commas",
            }.get(fdef.type)
            if fdef.type == "link":
                hint = "Type a name; a new one is created if none matches"
            widgets.append(
                text_input(
                    fdef.key,
                    label,
                    _form_text(fdef, value, detail),
                    hint=hint,
                    multiline=fdef.type == "multiline",
                )
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
