"""Admin cards for web forms: pure functions of domain objects, no database access.

Action parameters: `form_id`, `folder_id`, `enabled` ("true"/"false"). Form inputs of
the editor: `name`, `fields` and `required` (field ids), `label_<field id>`, `thank_you`.
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
    multi_select,
    paragraph,
    section,
    text_input,
)
from addon.crm.models import FieldDef, Folder
from addon.crm.webform_models import WebForm
from addon.crm.webforms import DEFAULT_THANK_YOU

Card = dict[str, Any]
# What the editor shows: the saved form, or what the admin typed when it was refused.
EditorValues = Mapping[str, list[str]]
# Keeps the editor under the card's limit of 100 widgets.
MAX_LABEL_INPUTS = 80


def public_url(base_url: str, form: WebForm) -> str:
    """The address of a form's public page."""
    return f"{base_url}/forms/{form.public_id}"


def forms_card(
    actions: Actions,
    forms: Sequence[WebForm],
    folders: Sequence[Folder],
    *,
    error: str | None = None,
) -> Card:
    """The workspace's web forms, each opening its editor, and a New form picker."""
    names = {f.id: f.name for f in folders}
    lines: list[Widget] = []
    for form in forms:
        state = "published" if form.enabled else "disabled"
        lines.append(
            decorated(
                esc(form.name),
                bottom=f"{esc(names.get(form.folder_id, '?'))} · {state}",
                icon="DESCRIPTION" if form.enabled else "INVITE",
                on_click=actions.on_click("webform_edit", form_id=form.id),
            )
        )
    if not lines:
        lines.append(paragraph("No web forms yet."))
    new: list[Widget] = [error_line(error)] if error else []
    new += [
        dropdown(
            "folder_id",
            "Folder the form adds records to",
            [(str(f.id), f.name) for f in folders if f.active],
            None,
            blank=False,
        ),
        button_list(button("New form", actions.on_click("webform_new"), filled=True)),
    ]
    return card(
        "Web forms",
        [
            section(lines, "Forms"),
            section(new, "Add a lead-capture form"),
        ],
        subtitle="Admin settings",
        name="webforms",
    )


def _saved_values(form: WebForm | None) -> dict[str, list[str]]:
    if form is None:
        return {}
    values: dict[str, list[str]] = {
        "name": [form.name],
        "thank_you": [form.thank_you],
        "fields": [str(spec["field_id"]) for spec in form.fields],
        "required": [str(spec["field_id"]) for spec in form.fields if spec.get("required")],
    }
    for spec in form.fields:
        values[f"label_{spec['field_id']}"] = [str(spec.get("label", ""))]
    return values


def _first(values: EditorValues, name: str) -> str:
    found = values.get(name) or [""]
    return found[0]


def editor_card(
    actions: Actions,
    folder: Folder,
    fields: Sequence[FieldDef],
    form: WebForm | None,
    *,
    base_url: str,
    typed: EditorValues | None = None,
    error: str | None = None,
) -> Card:
    """Create or edit a form: name, fields, required ones, labels, thank-you text."""
    values = typed if typed is not None else _saved_values(form)
    choices = [(str(f.id), f.label) for f in fields]
    chosen = values.get("fields") or []
    params: dict[str, object] = {"folder_id": folder.id, "form_id": form.id if form else None}
    top: list[Widget] = [error_line(error)] if error else []
    top += [
        text_input("name", "Form name", _first(values, "name"), hint="e.g. Contact us"),
        multi_select("fields", "Fields on the form (in the folder's order)", choices, chosen),
        multi_select("required", "Required fields", choices, values.get("required") or []),
        text_input(
            "thank_you",
            "Thank-you message",
            _first(values, "thank_you"),
            hint=f"Shown after sending; empty: “{DEFAULT_THANK_YOU}”",
            multiline=True,
        ),
    ]
    labels = [
        text_input(f"label_{f.id}", f"Label of {f.label}", _first(values, f"label_{f.id}"))
        for f in fields[:MAX_LABEL_INPUTS]
    ]
    sections = [
        section(top, f"Form of {esc(folder.name)}"),
        section(labels, "Labels the public sees (empty: the field's name)", collapsible=True),
        section(
            [
                button_list(
                    button("Save form", actions.on_click("webform_save", **params), filled=True)
                )
            ]
        ),
    ]
    if form is not None:
        url = public_url(base_url, form)
        toggle = "Disable" if form.enabled else "Enable"
        sections.append(
            section(
                [
                    decorated(
                        esc(url),
                        top="Public address (select to copy)",
                        bottom="Published" if form.enabled else "Disabled: the address shows 404",
                        icon="DESCRIPTION",
                    ),
                    button_list(
                        button("Open form", {"openLink": {"url": url}}),
                        button(
                            toggle,
                            actions.on_click(
                                "webform_toggle",
                                form_id=form.id,
                                enabled="false" if form.enabled else "true",
                            ),
                        ),
                    ),
                ],
                "Publishing",
            )
        )
    return card(
        form.name if form else "New web form",
        sections,
        subtitle=f"Web form · {folder.name}",
        name="webform-editor",
    )
