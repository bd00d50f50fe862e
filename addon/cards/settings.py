"""Admin cards for folders and fields: pure functions of domain objects, no database access.

Action parameters: `folder_id`, `field_id`, `page` (fields page of a folder), `active`
("true"/"false"), `direction` ("-1"/"1") and `nav`: "pop" when a button on a form should
close the form and refresh the card underneath, "update" to redraw the current card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    section,
    showing,
    text_input,
)
from addon.crm.fields import FIELD_TYPES, field_type
from addon.crm.models import FieldDef, Folder
from addon.crm.structure import (
    CHOICE_TYPES,
    REFERENCE_TYPES,
    TypeChangeReport,
    is_protected,
)

Card = dict[str, Any]
FormValues = Mapping[str, str]

TYPE_LABELS: dict[str, str] = {
    "text": "Text",
    "multiline": "Multi-line text",
    "number": "Number",
    "autonumber": "Auto-number",
    "percent": "Percent",
    "currency": "Currency",
    "date": "Date",
    "datetime": "Date and time",
    "checkbox": "Checkbox",
    "dropdown": "Dropdown",
    "multidropdown": "Dropdown (several choices)",
    "email": "Email addresses",
    "phone": "Phone numbers",
    "url": "Web address",
    "address": "Postal address",
    "skype": "Skype",
    "social": "Social profiles",
    "user": "Workspace member",
    "link": "Link to records",
    "formula": "Formula",
    "stats": "Email statistics",
}
# Stats fields come with the email statistics; admins add every other type.
ADDABLE_TYPES: tuple[str, ...] = tuple(t for t in FIELD_TYPES if t != "stats")
FIELDS_PER_PAGE = 25
MAX_FOLDER_LINES = 80
MAX_KEPT_LINES = 60


def type_label(type_name: str) -> str:
    """The human name of a field type."""
    return TYPE_LABELS.get(type_name, type_name)


def _required_select(selected: bool) -> Widget:
    return dropdown(
        "required",
        "Required",
        [("no", "Optional"), ("yes", "Required")],
        "yes" if selected else "no",
        blank=False,
    )


# ------------------------------------------------------------------------------ folders


def structure_card(
    actions: Actions,
    folders: Sequence[Folder],
    field_counts: Mapping[int, int],
    *,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """All folders of the workspace, each opening its fields, and the Add folder form."""
    values = values or {}
    lines: list[Widget] = []
    for folder in folders[:MAX_FOLDER_LINES]:
        count = field_counts.get(folder.id, 0)
        state = "" if folder.active else " · inactive"
        lines.append(
            decorated(
                esc(folder.name),
                bottom=f"{count} field{'s' if count != 1 else ''}{state}",
                icon="BOOKMARK" if folder.active else "INVITE",
                on_click=actions.on_click("admin_folder", folder_id=folder.id),
            )
        )
    if len(folders) > MAX_FOLDER_LINES:
        lines.append(showing(MAX_FOLDER_LINES, len(folders), "folders"))
    form: list[Widget] = []
    if error:
        form.append(error_line(error))
    form += [
        text_input("name", "Folder name", values.get("name", ""), hint="e.g. Support tickets"),
        text_input(
            "singular",
            "One record is a …",
            values.get("singular", ""),
            hint="e.g. Support ticket (optional)",
        ),
        button_list(button("Add folder", actions.on_click("admin_add_folder"), filled=True)),
    ]
    return card(
        "Folders and fields",
        [section(lines, "Folders"), section(form, "Add a folder")],
        subtitle="Admin settings",
        name="admin-structure",
    )


def _field_line(actions: Actions, folder: Folder, fdef: FieldDef, page: int) -> list[Widget]:
    flags = [type_label(fdef.type)]
    if fdef.required:
        flags.append("required")
    if not fdef.active:
        flags.append("inactive")
    params = {"field_id": fdef.id, "page": page}
    toggle = "Activate" if not fdef.active else "Deactivate"
    buttons = [
        button("↑", actions.on_click("admin_move_field", direction=-1, **params)),
        button("↓", actions.on_click("admin_move_field", direction=1, **params)),
        button("Edit", actions.on_click("admin_edit_field", **params)),
    ]
    if not is_protected(folder, fdef):
        active = "false" if fdef.active else "true"
        buttons.append(
            button(toggle, actions.on_click("admin_toggle_field", active=active, **params))
        )
    return [
        decorated(
            esc(fdef.label),
            top=" · ".join(flags),
            bottom=esc(fdef.key),
            on_click=actions.on_click("admin_edit_field", **params),
        ),
        button_list(*buttons),
    ]


def folder_card(
    actions: Actions,
    folder: Folder,
    fields: Sequence[FieldDef],
    *,
    page: int = 0,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """A folder's name and status, and its fields (a page at a time) with their controls."""
    values = values or {}
    pages = max(1, -(-len(fields) // FIELDS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = fields[page * FIELDS_PER_PAGE : (page + 1) * FIELDS_PER_PAGE]
    ids = {"folder_id": folder.id}
    head: list[Widget] = []
    if error:
        head.append(error_line(error))
    head += [
        text_input("name", "Folder name", values.get("name", folder.name)),
        text_input("singular", "One record is a …", values.get("singular", folder.singular)),
    ]
    head_buttons = [
        button("Rename", actions.on_click("admin_rename_folder", **ids)),
        button("↑", actions.on_click("admin_move_folder", direction=-1, **ids)),
        button("↓", actions.on_click("admin_move_folder", direction=1, **ids)),
    ]
    if folder.key not in ("contacts", "companies", "deals"):
        active = "false" if folder.active else "true"
        label = "Deactivate folder" if folder.active else "Activate folder"
        head_buttons.append(
            button(label, actions.on_click("admin_toggle_folder", active=active, **ids))
        )
    head.append(button_list(*head_buttons))

    lines: list[Widget] = []
    for fdef in shown:
        lines += _field_line(actions, folder, fdef, page)
    if len(fields) > len(shown):
        lines.append(showing(len(shown), len(fields), "fields"))
        nav: list[Widget] = []
        if page > 0:
            nav.append(
                button(
                    "Previous", actions.on_click("admin_folder", page=page - 1, nav="update", **ids)
                )
            )
        if page < pages - 1:
            nav.append(
                button("Next", actions.on_click("admin_folder", page=page + 1, nav="update", **ids))
            )
        lines.append(button_list(*nav))
    lines.append(
        button_list(
            button("Add field", actions.on_click("admin_new_field", **ids), filled=True),
            # Read-only fields counted from the email ledger (ensure_stats_fields).
            button("Add email stats fields", actions.on_click("admin_add_stats_fields", **ids)),
        )
    )
    state = "" if folder.active else " · inactive"
    return card(
        folder.name,
        [section(head, "Folder"), section(lines, "Fields")],
        subtitle=f"{len(fields)} field{'s' if len(fields) != 1 else ''}{state}",
        name=f"admin-folder-{folder.id}",
    )


# ------------------------------------------------------------------------------- fields


def _option_inputs(
    values: FormValues, prefix: str, targets: Sequence[Folder] | None
) -> list[Widget]:
    """Inputs of the type-specific options; each label says which types read it.

    Cards cannot show inputs depending on another input's value, so all are shown and
    the action keeps those of the chosen type. Links and formulas are only offered when
    adding a field (`targets` given), as no other type converts to them.
    """
    widgets: list[Widget] = [
        text_input(
            prefix + "choices",
            "Choices (dropdowns)",
            values.get(prefix + "choices", ""),
            hint="One choice per line",
            multiline=True,
        )
    ]
    if targets is not None:
        widgets += [
            dropdown(
                "target",
                "Links point to (links)",
                [(f.key, f.name) for f in targets],
                values.get("target") or None,
            ),
            dropdown(
                "many",
                "How many linked records (links)",
                [("false", "One"), ("true", "Several")],
                values.get("many", "false"),
                blank=False,
            ),
            text_input(
                "expression",
                "Expression (formula)",
                values.get("expression", ""),
                hint="Field keys, numbers, + - * / ( ), round min max abs coalesce",
            ),
        ]
    widgets += [
        text_input(
            prefix + "currency",
            "Default currency (currency)",
            values.get(prefix + "currency", ""),
            hint="ISO 4217 code, e.g. EUR",
        ),
        text_input(
            prefix + "decimals",
            "Decimals shown (number, percent, formula)",
            values.get(prefix + "decimals", ""),
            hint="0 to 10, optional",
        ),
    ]
    return widgets


def new_field_card(
    actions: Actions,
    folder: Folder,
    targets: Sequence[Folder],
    *,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """The Add field form: label, type, required, and the options of the chosen type."""
    values = values or {}
    widgets: list[Widget] = []
    if error:
        widgets.append(error_line(error))
    widgets += [
        text_input("label", "Label", values.get("label", "")),
        dropdown(
            "type",
            "Type",
            [(t, type_label(t)) for t in ADDABLE_TYPES],
            values.get("type", "text"),
            blank=False,
        ),
        _required_select(values.get("required") == "yes"),
    ]
    options = _option_inputs(values, "", targets)
    return card(
        f"New field in {folder.name}",
        [section(widgets), section(options, "Options of the type")],
        name="admin-new-field",
        footer=button(
            "Add field", actions.on_click("admin_add_field", folder_id=folder.id), filled=True
        ),
    )


def _describe(fdef: FieldDef) -> str:
    options = fdef.options
    if fdef.type == "link":
        many = "several records" if options.get("many") else "one record"
        return f"Links to {many} of “{esc(options.get('folder', ''))}”"
    if fdef.type == "formula":
        return f"= {esc(options.get('expression', ''))}"
    if fdef.type in CHOICE_TYPES:
        return esc(", ".join(str(c) for c in options.get("choices", [])))[:1000]
    if fdef.type == "currency" and options.get("default_currency"):
        return f"Default currency {esc(options['default_currency'])}"
    return ""


def convertible_types(fdef: FieldDef) -> list[str]:
    """The types a field may change to (links, users and computed types are excluded)."""
    if fdef.type in REFERENCE_TYPES or field_type(fdef.type).read_only:
        return []
    return [
        t
        for t in ADDABLE_TYPES
        if t != fdef.type and t not in REFERENCE_TYPES and not FIELD_TYPES[t].read_only
    ]


def edit_field_card(
    actions: Actions,
    folder: Folder,
    fdef: FieldDef,
    *,
    values_count: int,
    page: int = 0,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """Edit one field: label, required, choices; move, (de)activate; change its type."""
    values = values or {}
    ids = {"field_id": fdef.id, "page": page}
    info: list[Widget] = []
    if error:
        info.append(error_line(error))
    status = "active" if fdef.active else "inactive (values kept)"
    info.append(
        decorated(
            esc(type_label(fdef.type)),
            top=f"Key {esc(fdef.key)} · {status}",
            bottom=f"{values_count} record{'s' if values_count != 1 else ''} hold a value",
        )
    )
    described = _describe(fdef)
    if described:
        info.append(paragraph(described))
    form: list[Widget] = [text_input("label", "Label", values.get("label", fdef.label))]
    if not field_type(fdef.type).read_only:
        form.append(
            _required_select(values.get("required", "yes" if fdef.required else "no") == "yes")
        )
    if fdef.type in CHOICE_TYPES:
        current = "\n".join(str(c) for c in fdef.options.get("choices", []))
        form.append(
            text_input(
                "choices",
                "Choices",
                values.get("choices", current),
                hint="One per line; values of removed choices are kept",
                multiline=True,
            )
        )
    form.append(
        button_list(button("Save", actions.on_click("admin_update_field", **ids), filled=True))
    )
    order = [
        button("Move up", actions.on_click("admin_move_field", direction=-1, nav="pop", **ids)),
        button("Move down", actions.on_click("admin_move_field", direction=1, nav="pop", **ids)),
    ]
    protected = is_protected(folder, fdef)
    if not protected:
        active = "false" if fdef.active else "true"
        order.append(
            button(
                "Deactivate" if fdef.active else "Activate",
                actions.on_click("admin_toggle_field", active=active, nav="pop", **ids),
            )
        )
    sections = [section(info), section(form, "Field"), section([button_list(*order)], "Order")]
    targets = convertible_types(fdef)
    if protected:
        note = "The CRM relies on this field: it can be renamed but not retyped or deactivated."
        sections.append(section([paragraph(f"<i>{note}</i>")], "Type"))
    elif not targets:
        note = "Links, members and computed fields keep their type; add a new field instead."
        sections.append(section([paragraph(f"<i>{note}</i>")], "Type"))
    else:
        change: list[Widget] = [
            dropdown(
                "new_type",
                "New type",
                [(t, type_label(t)) for t in targets],
                values.get("new_type", targets[0]),
                blank=False,
            ),
            *_option_inputs(values, "type_", None),
            paragraph(
                "Every value is converted now. Values the new type cannot read are kept "
                "unchanged and listed, so nothing is lost. A dropdown without choices "
                "offers the values in use."
            ),
            button_list(button("Change type", actions.on_click("admin_change_type", **ids))),
        ]
        sections.append(section(change, "Change type"))
    return card(
        fdef.label,
        sections,
        subtitle=f"{type_label(fdef.type)} field of {folder.name}",
        name=f"admin-field-{fdef.id}",
    )


def type_change_card(
    actions: Actions, folder: Folder, fdef: FieldDef, report: TypeChangeReport, *, page: int = 0
) -> Card:
    """What a type change did: counts, and each value kept unconverted with the reason."""
    summary: list[Widget] = [paragraph(esc(report.summary) + ".")]
    if report.kept:
        summary.append(
            paragraph(
                "Kept values show as they were stored and must be corrected when the "
                "record is next edited."
            )
        )
    kept: list[Widget] = []
    for item in report.kept[:MAX_KEPT_LINES]:
        raw = item.value if isinstance(item.value, str) else repr(item.value)
        kept.append(
            decorated(
                esc(item.title or f"Record #{item.record_id}"),
                top=esc(raw[:200]),
                bottom=esc(item.reason[:300]),
                on_click=actions.on_click("open_record", record_id=item.record_id),
            )
        )
    if len(report.kept) > MAX_KEPT_LINES:
        kept.append(showing(MAX_KEPT_LINES, len(report.kept), "kept values"))
    back = button_list(
        button(
            f"Back to {folder.name}",
            actions.on_click("admin_folder", folder_id=folder.id, page=page, nav="pop"),
            filled=True,
        )
    )
    return card(
        "Type changed",
        [
            section(summary),
            section(kept, f"Kept unconverted ({len(report.kept)})"),
            section([back]),
        ],
        subtitle=f"{fdef.label}: {type_label(report.from_type)} → {type_label(report.to_type)}",
        name="admin-type-report",
    )
