"""Mass update cards: choose a field, a mode and a value; preview the count; see the result."""

from __future__ import annotations

import json
from typing import Any

from addon.cards.records import form_inputs, input_widgets, member_choices
from addon.cards.widgets import (
    Actions,
    Widget,
    button,
    button_list,
    card,
    decorated,
    dropdown,
    error_line,
    esc,
    paragraph,
    radio_buttons,
    section,
    text_input,
)
from addon.crm.massupdate import (
    MODES,
    MassUpdatePreview,
    MassUpdateResult,
    modes_for,
    records_phrase,
)
from addon.crm.models import FieldDef, Folder, Member, SavedView

Card = dict[str, Any]
# Names of the form inputs; the value input(s) never clash with them.
FIELD_INPUT, MODE_INPUT, VALUE_INPUT = "field", "mode", "value"
_MODE_HINTS = {
    "set": "Replaces the field's value on every record.",
    "clear": "Empties the field on every record (the value below is ignored).",
    "add": "Adds the value to what each record already holds.",
}


def encode_inputs(inputs: list[str]) -> str:
    """Form strings as one action parameter (parameters carry text only)."""
    return json.dumps(inputs, ensure_ascii=False, separators=(",", ":"))


def decode_inputs(text: str) -> list[str]:
    """The form strings of `encode_inputs`; anything malformed reads as no value."""
    try:
        data = json.loads(text) if text else []
    except ValueError:
        return []
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        return []
    return data


def _value_widgets(
    fdef: FieldDef, inputs: list[str], members: list[Member], tz: str | None
) -> list[Widget]:
    """The value input for a field: the record form's widget, except where a mass update
    needs an explicit value (yes/no) or only accepts existing records (links)."""
    first = inputs[0] if inputs else None
    if fdef.type == "checkbox":
        return [dropdown(VALUE_INPUT, "Value", [("true", "Yes"), ("false", "No")], first)]
    if fdef.type == "link":
        return [
            text_input(
                VALUE_INPUT,
                "Value",
                ", ".join(inputs),
                hint="Name or #id of an existing record; separate several with commas",
            )
        ]
    if fdef.type == "user" and len(members) >= 99:
        # More members than a dropdown holds: the address is typed instead.
        return [text_input(VALUE_INPUT, "Value", first or "", hint="Member's email address")]
    if fdef.type == "user":
        return [dropdown(VALUE_INPUT, "Value", member_choices(members, first), first)]
    return input_widgets(fdef, VALUE_INPUT, "Value", inputs, members, tz=tz)


def mass_update_form(
    actions: Actions,
    view: SavedView,
    folder: Folder,
    count: int,
    fields: list[FieldDef],
    members: list[Member],
    *,
    field_key: str = "",
    mode: str = "set",
    inputs: list[str] | None = None,
    error: str | None = None,
    tz: str | None = None,
) -> Card:
    """The mass update form of a view: field, mode (set / clear / add to) and value.

    Changing the field redraws the form (mass_update_form with nav=update) so the value
    input fits the field: choices for dropdowns, members for user fields, pickers for dates.
    """
    fdef = next((f for f in fields if f.key == field_key), None)
    widgets: list[Widget] = [
        paragraph(
            f"Change one field on every record of “{esc(view.name)}”: "
            f"{records_phrase(count, folder)} now."
        )
    ]
    if error:
        widgets.append(error_line(error))
    widgets.append(
        dropdown(
            FIELD_INPUT,
            "Field",
            [(f.key, f.label) for f in fields],
            fdef.key if fdef is not None else None,
            on_change=actions.action("mass_update_form", view_id=view.id, nav="update"),
        )
    )
    if fdef is None:
        widgets.append(paragraph("<i>Choose the field to change.</i>"))
    else:
        allowed = modes_for(fdef)
        chosen = mode if mode in allowed else "set"
        widgets.append(
            radio_buttons(MODE_INPUT, "Action", [(m, MODES[m]) for m in allowed], chosen)
        )
        widgets.append(paragraph(f"<i>{' '.join(_MODE_HINTS[m] for m in allowed)}</i>"))
        widgets.extend(_value_widgets(fdef, inputs or [], members, tz))
    footer = button(
        "Preview", actions.on_click("mass_update_preview", view_id=view.id), filled=True
    )
    return card(
        "Mass update",
        [section(widgets)],
        subtitle=f"{view.name} · {folder.name}",
        name="mass-update",
        footer=footer if fdef is not None else None,
    )


def preview_inputs(preview: MassUpdatePreview) -> list[str]:
    """The previewed value as canonical form strings, which Apply sends back unchanged."""
    if preview.field is None or preview.mode == "clear":
        return []
    return form_inputs(preview.field, preview.value)


def mass_update_preview_card(actions: Actions, preview: MassUpdatePreview) -> Card:
    """ "This will set Owner to bob@acme.test on 1,000 contacts", with Apply and Back."""
    assert preview.field is not None
    view, fdef = preview.view, preview.field
    sentence = preview.sentence()
    widgets: list[Widget] = [paragraph(f"<b>This will {esc(sentence)}.</b>")]
    if preview.count == 0:
        widgets.append(paragraph("The view holds no records: there is nothing to update."))
    else:
        widgets.append(
            paragraph(
                "Every record is checked against the field rules (required fields too). "
                "If one of them is refused, nothing is changed. Each change is recorded in "
                "the audit log."
            )
        )
    inputs = encode_inputs(preview_inputs(preview))
    apply = actions.on_click(
        "mass_update_apply",
        view_id=view.id,
        field=fdef.key,
        mode=preview.mode,
        value=inputs,
        count=preview.count,
    )
    back = actions.on_click(
        "mass_update_form",
        view_id=view.id,
        field=fdef.key,
        mode=preview.mode,
        value=inputs,
        nav="update",
    )
    widgets.append(
        button_list(
            button("Apply", apply, filled=True, disabled=preview.count == 0),
            button("Back", back),
        )
    )
    return card(
        "Mass update: preview",
        [section(widgets)],
        subtitle=f"{view.name} · {preview.folder.name}",
        name="mass-update-preview",
    )


def mass_update_result_card(
    actions: Actions, view: SavedView, folder: Folder, result: MassUpdateResult, count_now: int
) -> Card:
    """What was done, and what the view holds now (an update can move records out of it)."""
    done = {"set": "Set", "clear": "Cleared", "add": "Added"}[result.mode]
    if result.mode == "clear":
        what = f"{done} {result.field.label}"
    elif result.mode == "add":
        what = f"{done} {result.value_text} to {result.field.label}"
    else:
        what = f"{done} {result.field.label} to {result.value_text}"
    unchanged = result.count - result.changed
    widgets: list[Widget] = [
        decorated(
            esc(what),
            top="Done",
            bottom=esc(
                f"{records_phrase(result.changed, folder)} changed"
                + (f", {unchanged:,} already had it" if unchanged else "")
            ),
            icon="DESCRIPTION",
        ),
        paragraph(f"“{esc(view.name)}” now holds {records_phrase(count_now, folder)}."),
        button_list(
            button(
                "Show the view",
                actions.on_click("open_view", view_id=view.id, nav="update"),
                filled=True,
            ),
            button(
                "Another update",
                actions.on_click("mass_update_form", view_id=view.id, nav="update"),
            ),
        ),
    ]
    return card(
        "Mass update done",
        [section(widgets)],
        subtitle=f"{view.name} · {folder.name}",
        name="mass-update-result",
    )
