"""Web forms: admins define a lead-capture form of a folder; the public submits it.

A submission goes through save_record like every other way in, so the folder's field
rules hold; it updates the folder's record with the same email instead of creating a
second one, and never clears what the CRM already knows. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.fields import FieldError, field_type
from addon.crm.models import FieldDef, Folder, Member, Record, RecordEmail, Workspace
from addon.crm.records import (
    RecordNotFound,
    ValidationError,
    load_values,
    prepare_form,
    save_record,
)
from addon.crm.webform_models import WebForm, WebFormHit
from addon.crm.workspaces import folder_fields
from addon.digits import bounded_int

# Types a plain HTML input can carry; links, members and computed values are not asked
# of the public.
FORM_TYPES = frozenset(
    {
        "text",
        "multiline",
        "number",
        "percent",
        "currency",
        "date",
        "checkbox",
        "dropdown",
        "multidropdown",
        "email",
        "phone",
        "url",
        "address",
        "skype",
    }
)
# On a duplicate, what the visitor typed is added to these lists instead of replacing them.
MERGED_TYPES = frozenset({"email", "phone", "multidropdown"})
MULTILINE_TYPES = frozenset({"multiline", "address"})
# Characters one input may carry before any parsing (the field type has its own limit).
LINE_LIMIT = 1000
TEXT_LIMIT = 10000
MAX_FIELDS = 40
NAME_LIMIT = 100
LABEL_LIMIT = 100
THANK_YOU_LIMIT = 2000
DEFAULT_THANK_YOU = "Thank you! We will be in touch."
SOURCE = "web form"


class WebFormError(ValueError):
    """A form definition that is refused; the message is meant for the admin."""


@dataclass(frozen=True)
class FormField:
    """One field as the public form shows it."""

    fdef: FieldDef
    label: str
    required: bool

    @property
    def key(self) -> str:
        """The folder field's key."""
        return self.fdef.key

    @property
    def limit(self) -> int:
        """Characters one input of this field may carry."""
        return TEXT_LIMIT if self.fdef.type in MULTILINE_TYPES else LINE_LIMIT


@dataclass(frozen=True)
class Submission:
    """The record a submission created or updated."""

    record: Record
    created: bool


# -------------------------------------------------------------------------- definitions


def eligible_fields(session: Session, folder: Folder) -> list[FieldDef]:
    """The folder's active fields a public form can ask for, in display order."""
    return [f for f in folder_fields(session, folder.id) if f.type in FORM_TYPES]


def list_forms(session: Session, workspace_id: int) -> list[WebForm]:
    """The workspace's web forms, by name."""
    return list(
        session.execute(
            select(WebForm)
            .where(WebForm.workspace_id == workspace_id)
            .order_by(WebForm.name, WebForm.id)
            .limit(100)
        ).scalars()
    )


def get_form(session: Session, workspace_id: int, form_id: int | str) -> WebForm:
    """The workspace's form with this id, or RecordNotFound (another workspace's too)."""
    text = str(form_id)
    number = bounded_int(text, 9)
    form = session.get(WebForm, number) if number is not None else None
    if form is None or form.workspace_id != workspace_id:
        raise RecordNotFound(form_id)
    return form


def save_form(
    session: Session,
    member: Member,
    folder: Folder,
    *,
    name: str,
    field_ids: Sequence[str],
    required_ids: Collection[str],
    labels: Mapping[str, str],
    thank_you: str,
    form: WebForm | None = None,
) -> WebForm:
    """Create (form None) or change a form of the folder; WebFormError says what is wrong.

    Field ids are checked against the folder's eligible fields, so ids from another folder
    or workspace are refused. Every field the folder requires must be on the form and
    required there, or no submission could ever be saved.
    """
    if folder.workspace_id != member.workspace_id or (
        form is not None and form.folder_id != folder.id
    ):
        raise RecordNotFound(folder.id)
    name = " ".join(name.split())
    if not name:
        raise WebFormError("Give the form a name.")
    if len(name) > NAME_LIMIT:
        raise WebFormError(f"The name is longer than {NAME_LIMIT} characters.")
    thank_you = thank_you.strip()
    if len(thank_you) > THANK_YOU_LIMIT:
        raise WebFormError(f"The thank-you message is longer than {THANK_YOU_LIMIT} characters.")
    eligible = {str(f.id): f for f in eligible_fields(session, folder)}
    chosen = list(dict.fromkeys(field_ids))
    if not chosen:
        raise WebFormError("Pick at least one field.")
    if len(chosen) > MAX_FIELDS:
        raise WebFormError(f"A form has at most {MAX_FIELDS} fields.")
    unknown = [i for i in chosen if i not in eligible]
    if unknown:
        raise WebFormError("A chosen field is not a field of this folder a form can ask for.")
    stray = [i for i in required_ids if i not in chosen]
    if stray:
        raise WebFormError(
            f"“{eligible[stray[0]].label}” is required but not on the form."
            if stray[0] in eligible
            else "A required field is not on the form."
        )
    for fdef in folder_fields(session, folder.id):
        if fdef.required and str(fdef.id) not in required_ids:
            raise WebFormError(
                f"“{fdef.label}” is required in {folder.name}: put it on the form as required."
            )
    specs: list[dict[str, Any]] = []
    for field_id in chosen:
        fdef = eligible[field_id]
        label = " ".join(labels.get(field_id, "").split()) or fdef.label
        if len(label) > LABEL_LIMIT:
            raise WebFormError(
                f"The label of “{fdef.label}” is longer than {LABEL_LIMIT} characters."
            )
        specs.append({"field_id": fdef.id, "label": label, "required": field_id in required_ids})
    created = form is None
    before = None if form is None else _definition(form)
    if form is None:
        form = WebForm(
            workspace_id=member.workspace_id,
            folder_id=folder.id,
            public_id=secrets.token_urlsafe(24),
            created_by_id=member.id,
            enabled=True,
        )
        session.add(form)
    form.name = name
    form.fields = specs
    form.thank_you = thank_you
    session.flush()
    record_audit(
        session,
        member,
        "web_form",
        workspace_id=member.workspace_id,
        folder_id=folder.id,
        summary=f"{'Created' if created else 'Changed'} web form “{name}”",
        before=before,
        after=_definition(form),
    )
    return form


def _definition(form: WebForm) -> dict[str, Any]:
    return {
        "name": form.name,
        "fields": [dict(spec) for spec in form.fields],
        "thank_you": form.thank_you,
        "enabled": form.enabled,
    }


def set_form_enabled(session: Session, member: Member, form: WebForm, enabled: bool) -> None:
    """Publish or withdraw a form (a withdrawn form's page answers 404)."""
    if form.workspace_id != member.workspace_id:
        raise RecordNotFound(form.id)
    if form.enabled == enabled:
        return
    form.enabled = enabled
    session.flush()
    record_audit(
        session,
        member,
        "web_form",
        workspace_id=member.workspace_id,
        folder_id=form.folder_id,
        summary=f"{'Enabled' if enabled else 'Disabled'} web form “{form.name}”",
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )


# ------------------------------------------------------------------------- public side


def published_form(session: Session, public_id: str) -> WebForm | None:
    """The enabled form with this public id whose folder is active, else None."""
    if not public_id or len(public_id) > 64:
        return None
    form = session.execute(
        select(WebForm).where(WebForm.public_id == public_id)
    ).scalar_one_or_none()
    if form is None or not form.enabled:
        return None
    folder = session.get(Folder, form.folder_id)
    if folder is None or not folder.active or folder.workspace_id != form.workspace_id:
        return None
    return form


def form_fields(session: Session, form: WebForm) -> list[FormField]:
    """The form's fields in order; fields since deactivated or retyped are left out."""
    by_id = {f.id: f for f in eligible_fields(session, _folder_of(session, form))}
    shown: list[FormField] = []
    for spec in form.fields:
        fdef = by_id.get(int(spec.get("field_id", 0)))
        if fdef is not None:
            shown.append(
                FormField(fdef, str(spec.get("label") or fdef.label), bool(spec.get("required")))
            )
    return shown


def _folder_of(session: Session, form: WebForm) -> Folder:
    folder = session.get(Folder, form.folder_id)
    if folder is None or folder.workspace_id != form.workspace_id:
        raise RecordNotFound(form.folder_id)
    return folder


def _public_actor(workspace: Workspace) -> Member:
    # Submissions come from the public, not from a member. This unsaved stand-in carries
    # the workspace through the records service; records and audit entries get no actor.
    actor = Member(workspace_id=workspace.id, email="", name="Web form", role="rep")
    actor.workspace = workspace
    return actor


def _blank(values: Sequence[str]) -> bool:
    return not any(v.strip() for v in values)


def _precheck(fields: Sequence[FormField], raw: Mapping[str, Sequence[str]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for ff in fields:
        values = raw.get(ff.key, [])
        if any(len(v) > ff.limit for v in values):
            errors[ff.key] = f"is longer than {ff.limit} characters"
        elif ff.required and _blank(values):
            errors[ff.key] = "is required"
    return errors


def _emails(fields: Sequence[FormField], raw: Mapping[str, Sequence[str]]) -> list[str]:
    found: list[str] = []
    for ff in fields:
        if ff.fdef.type != "email":
            continue
        try:
            found += field_type("email").parse(list(raw.get(ff.key, [])), ff.fdef.options) or []
        except FieldError:
            continue  # reported by the records service's own check
    return found


def _existing(session: Session, form: WebForm, emails: list[str]) -> Record | None:
    if not emails:
        return None
    return session.execute(
        select(Record)
        .join(RecordEmail, RecordEmail.record_id == Record.id)
        .where(
            RecordEmail.workspace_id == form.workspace_id,
            RecordEmail.email.in_(emails),
            Record.folder_id == form.folder_id,
        )
        .order_by(Record.id)
        .limit(1)
    ).scalar_one_or_none()


def _source_field(session: Session, folder: Folder, fields: Sequence[FormField]) -> FieldDef | None:
    # Contacts have a "Lead source" dropdown with a "web form" choice: fill it in.
    for fdef in folder_fields(session, folder.id):
        if (
            fdef.key == "lead_source"
            and fdef.type == "dropdown"
            and SOURCE in (fdef.options.get("choices") or [])
            and all(ff.key != fdef.key for ff in fields)
        ):
            return fdef
    return None


def submit(session: Session, form: WebForm, raw: Mapping[str, Sequence[str]]) -> Submission:
    """Validate a submission and create or update the record; ValidationError lists all.

    `raw` maps field keys to the strings the browser sent. Nothing is written when any
    value is refused.
    """
    folder = _folder_of(session, form)
    workspace = session.get(Workspace, form.workspace_id)
    if workspace is None:
        raise RecordNotFound(form.workspace_id)
    actor = _public_actor(workspace)
    fields = form_fields(session, form)
    errors = _precheck(fields, raw)
    existing = _existing(session, form, _emails(fields, raw))
    data: dict[str, list[str]] = {}
    current = load_values(session, existing, [f.fdef for f in fields]) if existing else {}
    for ff in fields:
        values = [v for v in raw.get(ff.key, []) if ff.fdef.type != "checkbox" or v.strip()]
        if existing is None:
            data[ff.key] = values
        elif not _blank(values):
            # A visitor sending the form again adds to what is known, never clears it.
            merge = ff.fdef.type in MERGED_TYPES and ff.key in current
            kept = field_type(ff.fdef.type).to_input(current[ff.key]) if merge else []
            data[ff.key] = kept + values
    source = _source_field(session, folder, fields)
    if source is not None and (existing is None or not load_values(session, existing, [source])):
        data[source.key] = [SOURCE]
    try:
        prepare_form(session, actor, folder, data, existing)
    except ValidationError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise ValidationError(errors)
    record = save_record(session, actor, folder, data, existing, source=SOURCE)
    record_audit(
        session,
        None,
        "web_form_submit",
        workspace_id=form.workspace_id,
        record=record,
        summary=f"{'Created' if existing is None else 'Updated'} from web form “{form.name}”",
        after={"form_id": form.id, "form": form.name, "created": existing is None},
    )
    return Submission(record, existing is None)


# ---------------------------------------------------------------------------- counting


def client_key(secret: str, address: str) -> str:
    """A keyed hash of a client address: rate limits count it without storing the IP."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()


def count_hit(session: Session, workspace_id: int, key: str, window: int) -> int:
    """Count one submission of a client in a window; the number so far, this one included."""
    where = (
        WebFormHit.workspace_id == workspace_id,
        WebFormHit.client_key == key,
        WebFormHit.window == window,
    )
    found = session.execute(
        select(WebFormHit.count).where(*where).with_for_update()
    ).scalar_one_or_none()
    if found is None:
        try:
            with session.begin_nested():
                session.execute(
                    insert(WebFormHit).values(
                        workspace_id=workspace_id, client_key=key, window=window, count=1
                    )
                )
        except IntegrityError:
            pass  # another request of this client made the row first: count on it
        else:
            # A new window starts: earlier windows of the workspace are of no more use.
            session.execute(
                delete(WebFormHit).where(
                    WebFormHit.workspace_id == workspace_id, WebFormHit.window < window - 1
                )
            )
            return 1
    session.execute(update(WebFormHit).where(*where).values(count=WebFormHit.count + 1))
    return int(session.execute(select(WebFormHit.count).where(*where)).scalar_one())
