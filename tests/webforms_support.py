"""Arranging web forms and posting them as a browser would, for the web form tests."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.crm.models import FieldValue, Folder, Record
from addon.crm.webform_models import WebForm
from addon.crm.webforms import save_form
from addon.crm.workspaces import folder_fields
from tests.crmdata import Crm
from tests.dbstate import row_counts

# The lead form most tests use: (field key, label shown, required).
LEAD_FIELDS = [
    ("first_name", "Your first name", True),
    ("last_name", "", False),
    ("emails", "Work email", True),
    ("phones", "", False),
    ("job_title", "", False),
]


def make_form(
    crm: Crm,
    folder: str = "contacts",
    spec: list[tuple[str, str, bool]] | None = None,
    *,
    name: str = "Contact us",
    thank_you: str = "Thanks, we will call you back.",
) -> WebForm:
    """A web form of a folder, saved through the service as the workspace admin."""
    target: Folder = crm.folders[folder]
    by_key = {f.key: f for f in folder_fields(crm.db, target.id)}
    spec = LEAD_FIELDS if spec is None else spec
    form = save_form(
        crm.db,
        crm.member,
        target,
        name=name,
        field_ids=[str(by_key[key].id) for key, _, _ in spec],
        required_ids={str(by_key[key].id) for key, _, required in spec if required},
        labels={str(by_key[key].id): label for key, label, _ in spec if label},
        thank_you=thank_you,
    )
    crm.db.flush()
    return form


_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(html: str) -> str:
    """The form token of a rendered form page."""
    found = _TOKEN_RE.search(html)
    assert found is not None, html
    return found[1]


def page_token(client: FlaskClient, form: WebForm) -> str:
    """GET the public page and read its form token."""
    response = client.get(f"/forms/{form.public_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return token_of(response.get_data(as_text=True))


def post_form(
    client: FlaskClient,
    form: WebForm,
    values: dict[str, Any],
    *,
    token: str | None = None,
    extra: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """POST the public form with field values by key (a page token is fetched first)."""
    data: dict[str, Any] = {f"field-{key}": value for key, value in values.items()}
    data["csrf_token"] = page_token(client, form) if token is None else token
    data["website"] = ""
    data.update(extra or {})
    return client.post(f"/forms/{form.public_id}", data=data, **kwargs)


def stored_counts(db: Session) -> dict[str, int]:
    """Row counts of every table but the submission counters (which count refusals too)."""
    counts = row_counts(db)
    counts.pop("web_form_hits")
    return counts


def records_in(db: Session, workspace_id: int) -> int:
    """How many records a workspace holds."""
    return db.execute(
        select(func.count()).select_from(Record).where(Record.workspace_id == workspace_id)
    ).scalar_one()


def value_of(db: Session, record: Record, key: str) -> Any:
    """A record's stored value of one field."""
    fdef = {f.key: f for f in folder_fields(db, record.folder_id)}[key]
    return db.execute(
        select(FieldValue.value).where(
            FieldValue.record_id == record.id, FieldValue.field_id == fdef.id
        )
    ).scalar_one_or_none()
