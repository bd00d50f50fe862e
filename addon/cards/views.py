"""Saved views in the sidebar: the homepage list, a view's paged records, the view editor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from addon.cards.records import FOLDER_ICONS
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
    text_input,
)
from addon.crm.models import FieldDef, Folder, Record, SavedView
from addon.crm.views import (
    BUILTIN_FIELDS,
    OPERATOR_LABELS,
    ViewDefinition,
    ViewError,
    parse_definition,
)

Card = dict[str, Any]


class ViewLine(NamedTuple):
    """A view listed with its folder and record count."""

    view: SavedView
    folder: Folder
    # None when the view no longer compiles (a field it uses was removed).
    total: int | None
    # Counting stops at views.COUNT_CAP: True when the view holds more than `total`.
    more: bool = False


# The editor offers this many condition rows; stored views may hold more (the API
# allows MAX_CONDITIONS) and are shown whole.
EDITOR_MAX_CONDITIONS = 8
_NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty"})


@dataclass
class ConditionRow:
    """One condition row of the editor as shown (possibly incomplete)."""

    field: str = ""
    op: str = ""
    value: str = ""

    def blank(self) -> bool:
        """Whether nothing was chosen or typed in the row."""
        return not (self.field or self.op or self.value.strip())


@dataclass
class ViewForm:
    """What the view editor shows: a stored view, or what the user typed."""

    name: str = ""
    folder_key: str = "contacts"
    match_any: bool = False
    rows: list[ConditionRow] = field(default_factory=list)
    sort_field: str = "_title"
    sort_desc: bool = False
    shared: bool = False

    def raw_definition(self) -> dict[str, Any]:
        """The definition the rows spell, in the stored shape (blank rows left out)."""
        return {
            "match": "any" if self.match_any else "all",
            "conditions": [
                {"field": r.field, "op": r.op, "value": r.value} for r in self.rows if not r.blank()
            ],
            "sort": {"field": self.sort_field or "_title", "desc": self.sort_desc},
        }


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


def _count_text(count: int | None, more: bool = False) -> str:
    if count is None:
        return "needs fixing"
    return f"{count:,}+ records" if more else _plural(count, "record", "records")


# ------------------------------------------------------------------------------ homepage


def view_line(actions: Actions, line: ViewLine) -> Widget:
    """One clickable line naming a view, with its record count."""
    view, folder = line.view, line.folder
    shared = "shared" if view.owner_id is None else "only you"
    return decorated(
        esc(view.name),
        bottom=f"{_count_text(line.total, line.more)} · {shared}",
        icon=FOLDER_ICONS.get(folder.key, "BOOKMARK"),
        on_click=actions.on_click("open_view", view_id=view.id),
    )


def homepage_views_sections(
    actions: Actions, views: Sequence[ViewLine], *, more: bool = False
) -> list[dict[str, Any]]:
    """The homepage's saved views, one section per folder, and the New view button."""
    sections: list[dict[str, Any]] = []
    by_folder: dict[int, tuple[Folder, list[Widget]]] = {}
    for line in views:
        by_folder.setdefault(line.folder.id, (line.folder, []))[1].append(view_line(actions, line))
    for folder, widgets in by_folder.values():
        sections.append(
            section(widgets, f"Views · {esc(folder.name)}", collapsible=True, visible=5)
        )
    buttons = [button("New view", actions.on_click("new_view"))]
    if more:
        buttons.append(button("More views…", actions.on_click("all_views")))
    tail: list[Widget] = []
    if not views:
        tail.append(paragraph("Save a filter as a view to find the same records in one click."))
    tail.append(button_list(*buttons))
    sections.append(section(tail, None if views else "Views"))
    return sections


def all_views_card(
    actions: Actions, views: Sequence[ViewLine], *, page: int, has_next: bool
) -> Card:
    """Every view the member can see, a page at a time."""
    widgets: list[Widget] = [view_line(actions, line) for line in views]
    if not widgets:
        widgets.append(paragraph("No views on this page."))
    nav: list[Widget] = []
    if page > 0:
        nav.append(button("Previous", actions.on_click("all_views", page=page - 1, nav="update")))
    if has_next:
        nav.append(button("Next", actions.on_click("all_views", page=page + 1, nav="update")))
    nav.append(button("New view", actions.on_click("new_view")))
    return card(
        "Views",
        [section(widgets), section([button_list(*nav)])],
        subtitle=f"Page {page + 1}",
        name="views",
    )


# ------------------------------------------------------------------------------ view card


def field_labels(fields: Sequence[FieldDef]) -> dict[str, str]:
    """Labels of the built-in columns and the folder's fields, by key."""
    labels = {key: label for key, (label, _kind) in BUILTIN_FIELDS.items()}
    labels.update({f.key: f.label for f in fields})
    return labels


def describe_definition(definition: ViewDefinition, labels: dict[str, str]) -> str:
    """The view's conditions and sort in words (escaped for a card)."""
    parts: list[str] = []
    for condition in definition.conditions:
        label = esc(labels.get(condition.field_key, condition.field_key))
        op = condition.op
        if op in _NO_VALUE_OPS:
            parts.append(f"<b>{label}</b> {OPERATOR_LABELS[op]}")
        elif op == "last_n_days":
            days = _plural(int(condition.value), "day", "days")
            parts.append(f"<b>{label}</b> in the last {days}")
        elif op == "in_list":
            items = ", ".join(
                f"“{esc(v.strip())}”" for v in condition.value.split(",") if v.strip()
            )
            parts.append(f"<b>{label}</b> is one of {items}")
        else:
            parts.append(f"<b>{label}</b> {OPERATOR_LABELS[op]} “{esc(condition.value)}”")
    joiner = " <i>or</i> " if definition.match_any else " <i>and</i> "
    text = joiner.join(parts) if parts else "All records of the folder"
    direction = "descending" if definition.sort_desc else "ascending"
    sort_label = esc(labels.get(definition.sort_field, definition.sort_field))
    return f"{text}.<br>Sorted by {sort_label}, {direction}."


@dataclass
class ViewPage:
    """One page of a view's records, as the view card shows it."""

    records: list[Record]
    count: int
    page: int
    page_size: int
    # The view holds more records than `count` (counting stops at views.COUNT_CAP).
    more: bool = False


@dataclass
class ViewPermissions:
    """Which of the view card's buttons the member may use."""

    manage: bool = False
    export: bool = False
    bulk_edit: bool = False


def view_card(
    actions: Actions,
    view: SavedView,
    folder: Folder,
    description: str,
    listing: ViewPage | None,
    allowed: ViewPermissions,
    *,
    error: str | None = None,
) -> Card:
    """A saved view: its filter in words, its records a page at a time, and its actions.

    `listing` is None when the view cannot run any more (a field it uses was removed or
    its value no longer parses); `error` then says why and the card offers Edit.
    """
    filter_widgets: list[Widget] = [paragraph(description)]
    if error:
        filter_widgets.append(error_line(error))
    sections = [section(filter_widgets, "Filter")]
    subtitle = [folder.name, "shared" if view.owner_id is None else "only you"]
    if listing is not None:
        subtitle.insert(1, _count_text(listing.count, listing.more))
        icon = FOLDER_ICONS.get(folder.key, "BOOKMARK")
        record_widgets: list[Widget] = [
            decorated(
                esc(r.title or "(no name)"),
                icon=icon,
                on_click=actions.on_click("open_record", record_id=r.id),
            )
            for r in listing.records
        ]
        if not listing.records:
            record_widgets.append(
                paragraph(
                    "No records match this view."
                    if listing.count == 0
                    else "No records on this page."
                )
            )
        else:
            first = listing.page * listing.page_size + 1
            last = first + len(listing.records) - 1
            record_widgets.append(
                paragraph(
                    f"<i>Showing {first:,} to {last:,} of {max(listing.count, last):,}"
                    f"{'+' if listing.more else ''}.</i>"
                )
            )
        paging: list[Widget] = []
        if listing.page > 0:
            paging.append(
                button(
                    "Previous",
                    actions.on_click(
                        "open_view", view_id=view.id, page=listing.page - 1, nav="update"
                    ),
                )
            )
        full_page = len(listing.records) == listing.page_size
        if (listing.more and full_page) or (listing.page + 1) * listing.page_size < listing.count:
            paging.append(
                button(
                    "Next",
                    actions.on_click(
                        "open_view", view_id=view.id, page=listing.page + 1, nav="update"
                    ),
                )
            )
        if paging:
            record_widgets.append(button_list(*paging))
        sections.append(section(record_widgets, folder.name))
    buttons: list[Widget] = []
    if allowed.manage:
        buttons.append(button("Edit view", actions.on_click("edit_view", view_id=view.id)))
        buttons.append(
            button("Delete view", actions.on_click("confirm_delete_view", view_id=view.id))
        )
    if listing is not None and allowed.export:
        buttons.append(button("Export CSV", actions.on_click("export_view", view_id=view.id)))
    if listing is not None and allowed.bulk_edit:
        buttons.append(button("Mass update", actions.on_click("mass_update_form", view_id=view.id)))
    if buttons:
        sections.append(section([button_list(*buttons)], "Actions"))
    return card(view.name, sections, subtitle=" · ".join(subtitle), name=f"view-{view.id}")


def delete_view_card(actions: Actions, view: SavedView, folder: Folder) -> Card:
    """Ask before deleting a view (its records are not touched)."""
    shared = view.owner_id is None
    warning = (
        "It is shared: it disappears for every member of the workspace."
        if shared
        else "Only you can see it."
    )
    widgets: list[Widget] = [
        paragraph(
            f"Delete the view <b>{esc(view.name)}</b> of {esc(folder.name)}? {warning} "
            "The records themselves are not deleted."
        ),
        button_list(
            button(
                "Delete view",
                actions.on_click("delete_view", view_id=view.id),
                filled=True,
            ),
            button("Cancel", actions.on_click("open_view", view_id=view.id, nav="update")),
        ),
    ]
    return card("Delete view?", [section(widgets)], subtitle=view.name, name="delete-view")


# ------------------------------------------------------------------------------ editor


def operators_for_field(fields: Sequence[FieldDef], key: str) -> list[str]:
    """The operators the view service accepts for a field, in display order."""
    # Asking the service's own validation keeps the dropdown and the save in step.
    allowed: list[str] = []
    for op in OPERATOR_LABELS:
        try:
            parse_definition(list(fields), {"conditions": [{"field": key, "op": op, "value": "1"}]})
        except ViewError:
            continue
        allowed.append(op)
    return allowed


def _value_hint(fdef: FieldDef | None, key: str, op: str) -> str | None:
    if op in _NO_VALUE_OPS:
        return "No value needed"
    if op == "last_n_days":
        return "A number of days, e.g. 30"
    kind = fdef.type if fdef is not None else BUILTIN_FIELDS.get(key, ("", ""))[1]
    hint: str | None = None
    if kind in ("date", "datetime", "builtin_datetime") or (
        fdef is not None
        and fdef.type == "stats"
        and str(fdef.options.get("metric", "")).startswith(("first_", "last_"))
    ):
        hint = "A date: YYYY-MM-DD"
    elif kind in ("dropdown", "multidropdown") and fdef is not None:
        choices = ", ".join(str(c) for c in fdef.options.get("choices") or [])
        hint = f"One of: {choices}"[:150] if choices else None
    elif kind == "user":
        hint = "A member's email address"
    elif kind == "checkbox":
        hint = "yes or no"
    elif kind == "link":
        hint = "The linked record's name"
    if op == "in_list":
        hint = "Separate the values with commas" + (f" ({hint})" if hint else "")
    return hint


def view_editor(
    actions: Actions,
    form: ViewForm,
    folders: Sequence[Folder],
    fields: Sequence[FieldDef],
    *,
    view_id: int | None = None,
    can_share: bool = False,
    error: str | None = None,
) -> Card:
    """The create/edit form of a view; every button re-renders it keeping what was typed."""
    rows = len(form.rows)
    keep: dict[str, object] = {"rows": rows}
    if view_id is not None:
        keep["view_id"] = view_id
    rerender = actions.action("view_form", **keep)
    by_key = {f.key: f for f in fields}
    field_items = [("", "—")]
    field_items += [(key, label) for key, (label, _kind) in BUILTIN_FIELDS.items()]
    field_items += [(f.key, f.label) for f in fields]

    head: list[Widget] = []
    if error:
        head.append(error_line(f"{error[:1].upper()}{error[1:]}. Nothing was saved."))
    head.append(text_input("view_name", "View name", form.name))
    folder_by_key = {f.key: f for f in folders}
    if view_id is None and not folders:
        head.append(paragraph("No folder is active; ask an admin to turn one on."))
    elif view_id is None:
        head.append(
            dropdown(
                "view_folder",
                "Folder",
                [(f.key, f.name) for f in folders],
                form.folder_key,
                on_change=rerender,
                blank=False,
            )
        )
    else:
        current = folder_by_key.get(form.folder_key)
        head.append(decorated(esc(current.name if current else form.folder_key), top="Folder"))
    head.append(
        dropdown(
            "match",
            "Records must match",
            [("all", "All of the conditions"), ("any", "Any of the conditions")],
            "any" if form.match_any else "all",
            blank=False,
        )
    )
    sections = [section(head, "New view" if view_id is None else "Edit view")]

    for number, row in enumerate(form.rows):
        widgets: list[Widget] = [
            dropdown(
                f"c{number}_field", "Field", field_items, row.field, on_change=rerender, blank=False
            )
        ]
        ops = operators_for_field(fields, row.field) if row.field else list(OPERATOR_LABELS)
        widgets.append(
            dropdown(
                f"c{number}_op",
                "Operator",
                [("", "—"), *((op, OPERATOR_LABELS[op]) for op in ops)],
                row.op if row.op in ops else "",
                on_change=rerender,
                blank=False,
            )
        )
        if row.op not in _NO_VALUE_OPS:
            widgets.append(
                text_input(
                    f"c{number}_value",
                    "Value",
                    row.value,
                    hint=_value_hint(by_key.get(row.field), row.field, row.op),
                )
            )
        widgets.append(
            button_list(button("Remove", actions.on_click("view_form", remove=number, **keep)))
        )
        sections.append(section(widgets, f"Condition {number + 1}"))

    tail: list[Widget] = []
    if rows < EDITOR_MAX_CONDITIONS:
        tail.append(
            button_list(button("Add condition", actions.on_click("view_form", add=1, **keep)))
        )
    else:
        tail.append(
            paragraph(f"<i>A view takes up to {EDITOR_MAX_CONDITIONS} conditions here.</i>")
        )
    sort_items = [(key, label) for key, (label, _kind) in BUILTIN_FIELDS.items()]
    sort_items += [(f.key, f.label) for f in fields if f.type != "link"]
    tail.append(
        dropdown("sort_field", "Sort by", sort_items, form.sort_field or "_title", blank=False)
    )
    tail.append(
        dropdown(
            "sort_dir",
            "Order",
            [("asc", "Ascending (A→Z, oldest first)"), ("desc", "Descending (Z→A, newest first)")],
            "desc" if form.sort_desc else "asc",
            blank=False,
        )
    )
    if can_share:
        tail.append(
            {
                "selectionInput": {
                    "name": "shared",
                    "label": "Visibility",
                    "type": "CHECK_BOX",
                    "items": [
                        {
                            "text": "Shared with the workspace",
                            "value": "yes",
                            "selected": form.shared,
                        }
                    ],
                }
            }
        )
    else:
        tail.append(paragraph("<i>Only you will see this view.</i>"))
    sections.append(section(tail, "Sort and visibility"))
    save = actions.on_click("save_view", **keep)
    title = "New view" if view_id is None else f"Edit {form.name or 'view'}"
    return card(
        title,
        sections,
        name="view-editor",
        footer=button("Save view", save, filled=True),
    )
