"""Helpers of the admin tests: more members of acme.test, audit entries, download links."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import AuditEntry, Member
from tests.cardcheck import BASE_URL
from tests.google_fakes import AddonClient


def member_with_role(addon: AddonClient, db: Session, email: str, role: str) -> AddonClient:
    """Another member of acme.test (signed in once) with the given role."""
    addon.post("/homepage")  # the first member is the admin: make sure it is addon's user
    client = AddonClient(addon.client, addon.tokens, user=email, hd="acme.test")
    client.post("/homepage")
    member = db.execute(select(Member).where(Member.email == email)).scalar_one()
    member.role = role
    db.flush()
    return client


def member(db: Session, email: str) -> Member:
    """A member by address."""
    return db.execute(
        select(Member).where(Member.email == email).execution_options(populate_existing=True)
    ).scalar_one()


def audits(db: Session, action: str) -> list[AuditEntry]:
    """Audit entries of one action, oldest first."""
    return list(
        db.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


def link_of(data: dict[str, Any]) -> str:
    """The URL an openLink answer opens, without the base URL."""
    action = data["renderActions"]["action"]
    url = str(action["link"]["url"])
    assert action["link"]["openAs"] == "FULL_SIZE" and url.startswith(
        BASE_URL + "/admin/downloads/"
    )
    return url.removeprefix(BASE_URL)


def download(client: FlaskClient, path: str, expect: int = 200) -> Any:
    """GET a download link; check the status."""
    response = client.get(path)
    assert response.status_code == expect, response.get_data(as_text=True)
    return response
