"""Admin actions for web forms: thin handlers over addon.crm.webforms.

Every action needs the "admin" permission. Form and folder ids in parameters are looked
up in the caller's workspace only; another workspace's id answers like a missing one.
A refused definition redraws the editor with the message and rolls back.
"""

from __future__ import annotations

from flask import current_app, g

from addon.cards import webforms as cards
from addon.cards.responses import push, update
from addon.crm.models import Folder
from addon.crm.structure import get_folder, list_folders
from addon.crm.webform_models import WebForm
from addon.crm.webforms import (
    WebFormError,
    eligible_fields,
    get_form,
    list_forms,
    save_form,
    set_form_enabled,
)
from addon.web.events import AddonRequest
from addon.web.registry import Result, action


def _forms_card(req: AddonRequest, *, error: str | None = None) -> cards.Card:
    folders = list_folders(req.session, req.member.workspace_id)
    forms = list_forms(req.session, req.member.workspace_id)
    return cards.forms_card(req.actions, forms, folders, error=error)


def _editor(
    req: AddonRequest, folder: Folder, form: WebForm | None, *, error: str | None = None
) -> cards.Card:
    return cards.editor_card(
        req.actions,
        folder,
        eligible_fields(req.session, folder),
        form,
        base_url=current_app.config["BASE_URL"],
        typed=req.form if error else None,
        error=error,
    )


@action("webforms", "admin")
def webforms(req: AddonRequest) -> Result:
    """The Web forms card: the workspace's forms and a New form picker."""
    return push(_forms_card(req))


@action("webform_new", "admin")
def webform_new(req: AddonRequest) -> Result:
    """The editor of a new form of the folder picked on the Web forms card."""
    folder = get_folder(req.session, req.member.workspace_id, req.text("folder_id"))
    if not folder.active:
        g.db_rollback = True
        return update(_forms_card(req, error=f"{folder.name} is inactive."))
    return push(_editor(req, folder, None))


@action("webform_edit", "admin")
def webform_edit(req: AddonRequest) -> Result:
    """The editor of an existing form."""
    form = get_form(req.session, req.member.workspace_id, req.param("form_id"))
    folder = get_folder(req.session, req.member.workspace_id, form.folder_id)
    return push(_editor(req, folder, form))


@action("webform_save", "admin")
def webform_save(req: AddonRequest) -> Result:
    """Save the editor's form; a refused definition shows the editor again with why."""
    form = None
    if req.param("form_id"):
        form = get_form(req.session, req.member.workspace_id, req.param("form_id"))
    folder = get_folder(req.session, req.member.workspace_id, req.param("folder_id"))
    field_ids = req.form.get("fields") or []
    labels = {
        key.removeprefix("label_"): (values or [""])[0]
        for key, values in req.form.items()
        if key.startswith("label_")
    }
    try:
        saved = save_form(
            req.session,
            req.member,
            folder,
            name=req.text("name"),
            field_ids=field_ids,
            required_ids=set(req.form.get("required") or []),
            labels=labels,
            thank_you=req.text("thank_you"),
            form=form,
        )
    except WebFormError as exc:
        g.db_rollback = True
        return update(_editor(req, folder, form, error=str(exc)))
    return update(_editor(req, folder, saved), state_changed=True, notify="Form saved")


@action("webform_toggle", "admin")
def webform_toggle(req: AddonRequest) -> Result:
    """Enable or disable a form."""
    form = get_form(req.session, req.member.workspace_id, req.param("form_id"))
    folder = get_folder(req.session, req.member.workspace_id, form.folder_id)
    enabled = req.param("enabled") == "true"
    set_form_enabled(req.session, req.member, form, enabled)
    notice = "Form enabled" if enabled else "Form disabled"
    return update(_editor(req, folder, form), state_changed=True, notify=notice)
