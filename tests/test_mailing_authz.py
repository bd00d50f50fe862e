"""Who may act on a campaign a manager sends: the sender does everything, an admin may see
its progress, pause and cancel it but never edits, tests, starts or resumes it (that sends
from the manager's Gmail), and the contacts folder must be readable to mail merge it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from addon.crm.models import ROLES
from addon.gmail.fake_server import FakeSending
from addon.mailing.models import Campaign
from tests.authz_support import ROLE_USERS, World, build_world, client_for, denied, snapshot
from tests.cardread import card_of, texts
from tests.google_fakes import TokenFactory
from tests.mailing_authz_support import campaign_form, campaign_of, install_grants
from tests.mailing_support import sending

__all__ = ["sending"]

SENDER_ONLY = frozenset({"manager"})
SENDER_OR_ADMIN = frozenset({"manager", "admin"})

# Per action: the campaign state it needs, extra parameters, and who may do it.
ACTIONS: dict[str, tuple[str, dict[str, str], frozenset[str]]] = {
    "mailing_edit_campaign": ("draft", {}, SENDER_ONLY),
    "mailing_preview": ("draft", {"position": "1"}, SENDER_ONLY),
    "mailing_send_test": ("draft", {}, SENDER_ONLY),
    "mailing_start": ("draft", {}, SENDER_ONLY),
    "mailing_resume": ("paused", {}, SENDER_ONLY),
    "mailing_progress": ("running", {}, SENDER_OR_ADMIN),
    "mailing_pause": ("running", {}, SENDER_OR_ADMIN),
    "mailing_confirm_cancel": ("running", {}, SENDER_OR_ADMIN),
    "mailing_cancel": ("running", {}, SENDER_OR_ADMIN),
}


@pytest.fixture
def world(app: Flask, db: Session) -> World:
    """acme.test and rival.test; every member may send."""
    install_grants(app)
    return build_world(db)


def _post(
    app: Flask, tokens: TokenFactory, role: str, name: str, parameters: dict[str, str], form: Any
) -> Any:
    client = client_for(app, tokens, ROLE_USERS[role])
    return client.action(name, parameters=parameters, form=form)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_managers_campaign_by_role(
    app: Flask,
    tokens: TokenFactory,
    world: World,
    connection: Connection,
    sending: FakeSending,
    name: str,
) -> None:
    """Each role gets the action exactly as the sender rule says; a refusal writes nothing."""
    state, extra, allowed = ACTIONS[name]
    campaign = campaign_of(world.db, world.members["manager"], world.acme.view, state)
    parameters = {"campaign_id": str(campaign.id), **extra}
    for role in ROLES:
        savepoint = connection.begin_nested()
        try:
            before = snapshot(world.db)
            data = _post(app, tokens, role, name, parameters, None)
            shown = texts(card_of(data))
            if role in allowed:
                assert not denied(data), (role, shown)
            else:
                assert denied(data), (role, shown)
                assert f"Your role ({role}) does not allow you to" in shown
                if role == "admin":
                    assert "only the member who sends it can." in shown
                assert snapshot(world.db) == before, role
        finally:
            savepoint.rollback()


def test_an_admin_pauses_and_cancels_but_cannot_resume_a_managers_campaign(
    app: Flask, tokens: TokenFactory, world: World, sending: FakeSending
) -> None:
    """Resuming sends from the sender's Gmail again: it is the sender's decision."""
    campaign = campaign_of(world.db, world.members["manager"], world.acme.view, "running")
    cid = {"campaign_id": str(campaign.id)}
    _post(app, tokens, "admin", "mailing_pause", cid, None)
    world.db.refresh(campaign)
    assert campaign.status == "paused"
    refused = _post(app, tokens, "admin", "mailing_resume", cid, None)
    assert denied(refused)
    world.db.refresh(campaign)
    assert campaign.status == "paused"
    _post(app, tokens, "manager", "mailing_resume", cid, None)
    world.db.refresh(campaign)
    assert campaign.status == "running"
    _post(app, tokens, "admin", "mailing_cancel", cid, None)
    world.db.refresh(campaign)
    assert campaign.status == "cancelled"


def test_the_test_message_goes_to_the_sender_only(
    app: Flask, tokens: TokenFactory, world: World, sending: FakeSending
) -> None:
    """The admin's own draft: the test is sent from and to the admin's mailbox."""
    cid = {"campaign_id": str(world.mail.draft.id)}
    data = _post(app, tokens, "admin", "mailing_send_test", cid, None)
    notice = data["renderActions"]["action"]["notification"]["text"]
    assert notice == f"Test sent to {ROLE_USERS['admin']}"
    assert [(m.to, m.user) for m in sending.sent] == [(ROLE_USERS["admin"],) * 2]


def test_mail_merge_needs_the_contacts_folder_readable(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    """A manager the contacts folder is hidden from neither sees its views nor sends to one."""
    contacts = world.folder("contacts")
    contacts.permissions = {"view": ["admin"]}
    db.flush()
    form = card_of(_post(app, tokens, "manager", "mailing_new_campaign", {}, None))
    assert world.acme.view.name not in texts(form)
    before = db.query(Campaign).count()
    data = _post(app, tokens, "manager", "mailing_save_campaign", {}, campaign_form(world))
    assert denied(data)
    assert "does not allow you to view records in Contacts" in texts(card_of(data))
    assert db.query(Campaign).count() == before
    refused = _post(
        app, tokens, "manager", "mailing_new_campaign", {"view_id": str(world.acme.view.id)}, None
    )
    assert denied(refused)
