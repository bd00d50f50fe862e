"""Mail merge sends with the member's own Gmail grant, end to end against the fakes."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from addon.auth.fake_oauth import FakeOAuth
from addon.auth.grant_models import GoogleGrant
from addon.auth.grants import EXPIRED
from addon.crm.models import Member
from addon.crm.workspaces import resolve_member
from addon.gmail.fake_server import FakeGmail, FakeGmailServer
from addon.mailing.identity import connect_url, has_send_grant, sending_credentials
from addon.mailing.mime import build_message
from addon.mailing.sender import GrantRevoked, gmail_sender_factory
from addon.web.mailing_actions import GRANTS_EXTENSION
from tests.google_fakes import AddonClient
from tests.grants_support import (  # noqa: F401 (app_with_oauth, fake_oauth_server: fixtures)
    app_with_oauth,
    connect,
    fake_oauth_server,
    grants_app,
)


def _member(db: Session) -> Member:
    member = resolve_member(db, "acme.test", "rep@acme.test", is_consumer=False)
    db.flush()
    return member


def _message() -> bytes:
    return build_message(
        sender="rep@acme.test",
        to="ann@client.test",
        cc=[],
        bcc=[],
        subject="Hello",
        text="Hi Ann",
        html=None,
        message_id="<grant-test@acme.test>",
        unsubscribe_url="https://addon.test/u/x",
    )


def test_without_oauth_settings_mail_merge_has_no_sending_identity(
    session_factory: sessionmaker[Session], gmail_server: FakeGmailServer
) -> None:
    bare = grants_app(session_factory, gmail_server, OAUTH_CLIENT_SECRET="")
    assert GRANTS_EXTENSION not in bare.extensions


def test_a_granted_member_sends_with_refreshed_credentials_until_google_refuses(
    app: Flask, addon: AddonClient, db: Session, gmail: FakeGmail, fake_oauth: FakeOAuth
) -> None:
    addon.post("/homepage")
    member = _member(db)
    with app.test_request_context():
        assert not has_send_grant(db, member)
        assert "/oauth/start?state=" in (connect_url(member) or "")
        with pytest.raises(GrantRevoked, match="never granted"):
            sending_credentials(db, member)
    # The member connects Gmail for sending through the real OAuth flow.
    assert connect(addon, "send").status_code == 200
    make = gmail_sender_factory(app.config["GMAIL_API_URL"], sending_credentials, timeout=5)
    with app.test_request_context():
        assert has_send_grant(db, member)
        gmail_id = make(db, member).send(_message())
    # Sent with an access token the (fake) Google token endpoint issued for the grant.
    [sent] = gmail.sending.sent
    assert sent.to == "ann@client.test" and gmail_id
    # The user removes Inbox CRM from their Google account: sending stops and says why,
    # and the grant is marked so nothing retries it.
    fake_oauth.revoke_all()
    with app.test_request_context(), pytest.raises(GrantRevoked, match="refused the grant"):
        make(db, member).send(_message())
    grant = db.query(GoogleGrant).filter_by(member_id=member.id).one()
    assert grant.status == EXPIRED
    assert len(gmail.sending.sent) == 1
