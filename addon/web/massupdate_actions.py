"""Mass update actions: thin handlers over addon.crm.massupdate, all needing "bulk_edit".

Flow: a view card's "Mass update" button calls `mass_update_form` (parameter view_id),
which pushes the form; "Preview" (`mass_update_preview`) replaces it with the count and
the parsed value; "Apply" (`mass_update_apply`) checks the previewed count against the
view and changes every record in one go, or answers with the form and the reason.
Another workspace's view id answers exactly like an unknown one (403) and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import g

from addon.cards import massupdate as cards
from addon.cards.responses import push, update
from addon.crm.massupdate import (
    MassUpdateError,
    apply_mass_update,
    editable_fields,
    preview_mass_update,
)
from addon.crm.models import Folder, SavedView
from addon.crm.views import ViewError, count_view, load_definition
from addon.digits import bounded_int
from addon.web.events import AddonRequest
from addon.web.helpers import members_of, view_for
from addon.web.registry import Result, action

Card = dict[str, Any]


def _count(req: AddonRequest, view: SavedView, folder: Folder) -> int:
    try:
        return count_view(req.session, folder, load_definition(req.session, view))
    except ViewError:
        return 0  # the form says why when previewing


def _form(
    req: AddonRequest,
    view: SavedView,
    folder: Folder,
    *,
    field_key: str,
    mode: str,
    inputs: list[str] | None = None,
    error: str | None = None,
) -> Card:
    return cards.mass_update_form(
        req.actions,
        view,
        folder,
        _count(req, view, folder),
        editable_fields(req.session, folder, req.member),
        members_of(req),
        field_key=field_key,
        mode=mode,
        inputs=inputs,
        error=error,
        tz=req.timezone,
    )


@action("mass_update_form", "bulk_edit")
def mass_update_form(req: AddonRequest) -> Result:
    """The form (parameters view_id, and field, mode, value to fill it; nav=update redraws).

    The field dropdown submits the form when it changes: the value input then fits the
    newly chosen field, and the value typed for the previous field is dropped.
    """
    view, folder = view_for(req)
    redraw = req.param("nav") == "update"
    if redraw and "field" in req.form:
        built = _form(req, view, folder, field_key=req.text("field"), mode=req.text("mode"))
    else:
        built = _form(
            req,
            view,
            folder,
            field_key=req.param("field"),
            mode=req.param("mode", "set"),
            inputs=cards.decode_inputs(req.param("value")),
        )
    return update(built) if redraw else push(built)


@action("mass_update_preview", "bulk_edit")
def mass_update_preview(req: AddonRequest) -> Result:
    """How many records the update would change, with Apply and Back; or the form and why not."""
    view, folder = view_for(req)
    field_key, mode = req.text("field"), req.text("mode") or "set"
    raw = req.form.get("value", [])
    preview = preview_mass_update(
        req.session,
        req.member,
        view,
        field_key,
        mode,
        raw,
        locale=req.locale,
        tz=req.timezone,
    )
    if not preview.ok:
        g.db_rollback = True
        return update(
            _form(
                req, view, folder, field_key=field_key, mode=mode, inputs=raw, error=preview.error
            )
        )
    return update(cards.mass_update_preview_card(req.actions, preview))


@action("mass_update_apply", "bulk_edit")
def mass_update_apply(req: AddonRequest) -> Result:
    """Apply a previewed update (parameters view_id, field, mode, value, count)."""
    view, folder = view_for(req)
    field_key, mode = req.param("field"), req.param("mode")
    inputs = cards.decode_inputs(req.param("value"))
    count = bounded_int(req.param("count"), 9)
    try:
        if count is None:
            raise MassUpdateError("the preview is missing its record count; preview again")
        result = apply_mass_update(
            req.session,
            req.member,
            view,
            field_key,
            mode,
            inputs,
            count,
            locale=req.locale,
            tz=req.timezone,
        )
    except MassUpdateError as exc:
        # Nothing of a refused update may be committed (the service rolled back its
        # savepoint; this covers anything flushed before it).
        g.db_rollback = True
        message = str(exc)
        return update(
            _form(
                req,
                view,
                folder,
                field_key=field_key,
                mode=mode,
                inputs=inputs,
                error=message[:1].upper() + message[1:],
            )
        )
    count_now = _count(req, view, folder)
    built = cards.mass_update_result_card(req.actions, view, folder, result, count_now)
    noun = folder.singular.lower() if result.changed == 1 else folder.name.lower()
    return update(built, state_changed=True, notify=f"Updated {result.changed:,} {noun}")
