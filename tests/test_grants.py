"""Offline Gmail grants: the OAuth web flow, encryption at rest, refresh, revoke, roles, tenants."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from addon import create_app
from addon.auth.fake_oauth import FakeOAuth
from addon.auth.grant_models import ACTIVE, EXPIRED, REVOKED, GoogleGrant
from addon.auth.grants import (
    READ_SCOPE,
    SEND_SCOPE,
    GrantError,
    OAuthSettings,
    credentials_for,
    fresh_credentials,
    get_grant,
    reencrypt_all,
)
from addon.auth.token_keys import TokenCipher, TokenKeyError, UnreadableToken
from addon.crm.models import Member
from addon.crm.workspaces import resolve_member
from addon.gmail.fake_server import FakeGmailServer
from addon.web.oauth import STATE_SECONDS, VERIFIER_COOKIE
from tests.cardcheck import BASE_URL
from tests.cardread import actions_in, card_of, texts
from tests.google_fakes import CLIENT_ID, AddonClient
from tests.grants_support import (  # noqa: F401 (app_with_oauth, fake_oauth_server: fixtures)
    app_with_oauth,
    connect,
    connect_link,
    consent,
    fake_oauth_server,
    grants_app,
    query_of,
)


def _member(db: Session, email: str = "rep@acme.test") -> Member:
    domain = email.partition("@")[2]
    member = resolve_member(db, domain, email, is_consumer=False)
    db.flush()
    return member


def _settings(app: Flask) -> OAuthSettings:
    return OAuthSettings.from_config(app.config)


def _grant(db: Session, email: str = "rep@acme.test") -> GoogleGrant:
    grant = get_grant(db, _member(db, email))
    assert grant is not None
    db.refresh(grant)
    return grant


def _access_card(addon: AddonClient) -> dict[str, Any]:
    return card_of(addon.action("gmail_access"))


# ------------------------------------------------------------------ the flow


def test_settings_links_to_the_gmail_access_card(addon: AddonClient) -> None:
    settings = card_of(addon.post("/actions/settings"))
    assert {"name": "gmail_access"} in actions_in(settings)
    shown = texts(_access_card(addon))
    assert "gmail.send" in shown and "read-only access" in shown
    assert {"name": "gmail_connect", "purpose": "both"} in actions_in(_access_card(addon))


def test_start_redirects_to_google_consent_with_offline_access(
    addon: AddonClient, app: Flask
) -> None:
    start = connect_link(addon, "both")
    assert start.startswith(f"{BASE_URL}/oauth/start?state=")
    answer = addon.client.get(start)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(app.config["OAUTH_AUTH_URL"] + "?")
    query = query_of(location)
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{BASE_URL}/oauth/callback"
    assert query["state"] == query_of(start)["state"]
    assert query["login_hint"] == "rep@acme.test"
    assert query["code_challenge_method"] == "S256"
    assert set(query["scope"].split()) == {
        SEND_SCOPE,
        READ_SCOPE,
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
    }
    send_only = query_of(addon.client.get(connect_link(addon, "send")).headers["Location"])
    assert SEND_SCOPE in send_only["scope"] and READ_SCOPE not in send_only["scope"]


def test_callback_stores_the_refresh_token_encrypted(
    addon: AddonClient, app: Flask, db: Session, fake_oauth: FakeOAuth
) -> None:
    page = connect(addon, "both")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert "You can close this window" in page.get_data(as_text=True)
    grant = _grant(db)
    assert grant.status == ACTIVE and grant.google_email == "rep@acme.test"
    assert {SEND_SCOPE, READ_SCOPE} <= grant.scope_set()
    (issued,) = fake_oauth.refresh_tokens
    raw = db.execute(text("SELECT refresh_token FROM google_grants")).scalar_one()
    assert issued not in raw
    assert _settings(app).cipher.decrypt(raw) == issued
    assert issued not in repr(grant)
    card = _access_card(addon)
    assert "rep@acme.test" in texts(card) and "Granted" in texts(card)
    assert issued not in json.dumps(addon.cards)
    assert {"name": "gmail_revoke"} in actions_in(card)


def test_tampered_state_is_refused(addon: AddonClient, db: Session) -> None:
    start = connect_link(addon)
    tampered = start[:-3] + ("AAA" if not start.endswith("AAA") else "BBB")
    answer = addon.client.get(tampered)
    assert answer.status_code == 400
    assert "not valid" in answer.get_data(as_text=True)
    callback = consent(addon, start).replace("state=", "state=x")
    refused = addon.client.get(callback)
    assert refused.status_code == 400 and "not valid" in refused.get_data(as_text=True)
    assert db.execute(select(GoogleGrant)).first() is None


class _PastSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - STATE_SECONDS - 60


def test_expired_state_is_refused(addon: AddonClient, db: Session) -> None:
    member = _member(db)
    old = URLSafeTimedSerializer("test-secret", salt="inbox-crm/oauth-state", signer=_PastSigner)
    state = old.dumps({"w": member.workspace_id, "m": member.id, "p": "send"})
    answer = addon.client.get(f"{BASE_URL}/oauth/start?state={state}")
    assert answer.status_code == 400
    assert "expired" in answer.get_data(as_text=True)
    callback = addon.client.get(f"{BASE_URL}/oauth/callback?state={state}&code=x")
    assert callback.status_code == 400 and "expired" in callback.get_data(as_text=True)


def test_callback_without_the_starting_browser_is_refused(addon: AddonClient, db: Session) -> None:
    callback = consent(addon, connect_link(addon))
    addon.client.delete_cookie(VERIFIER_COOKIE, domain="addon.test", path="/oauth/callback")
    answer = addon.client.get(callback)
    assert answer.status_code == 400
    assert "did not start" in answer.get_data(as_text=True)
    assert db.execute(select(GoogleGrant)).first() is None


def test_declined_consent_and_missing_refresh_token_store_nothing(
    addon: AddonClient, db: Session, fake_oauth: FakeOAuth
) -> None:
    state = query_of(connect_link(addon))["state"]
    declined = addon.client.get(f"{BASE_URL}/oauth/callback?state={state}&error=access_denied")
    assert declined.status_code == 400 and "you declined" in declined.get_data(as_text=True)
    fake_oauth.omit_refresh_token = True
    page = connect(addon)
    assert page.status_code == 400
    assert "no refresh token" in page.get_data(as_text=True)
    assert db.execute(select(GoogleGrant)).first() is None


def test_granting_another_google_account_is_refused(
    addon: AddonClient, db: Session, fake_oauth: FakeOAuth
) -> None:
    fake_oauth.account = "someone.else@acme.test"
    page = connect(addon)
    assert page.status_code == 400
    assert "someone.else@acme.test" in page.get_data(as_text=True)
    assert db.execute(select(GoogleGrant)).first() is None


def test_the_token_never_reaches_logs_or_cards(
    addon: AddonClient,
    app: Flask,
    db: Session,
    fake_oauth: FakeOAuth,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert connect(addon).status_code == 200
    credentials = fresh_credentials(db, _member(db), "send", _settings(app))
    addon.action("gmail_access")
    addon.action("gmail_revoke")
    (issued,) = fake_oauth.refresh_tokens
    assert caplog.text and issued not in caplog.text
    assert credentials.token is not None and credentials.token not in caplog.text
    assert issued not in json.dumps(addon.cards)


# ------------------------------------------------------------------ keys


def test_keys_rotate_first_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    stored = TokenCipher([old]).encrypt("refresh-secret")
    assert "refresh-secret" not in stored and "refresh-secret" not in repr(TokenCipher([old]))
    rotated_cipher = TokenCipher([new, old])
    assert rotated_cipher.decrypt(stored) == "refresh-secret"
    rewritten = rotated_cipher.rotate(stored)
    assert TokenCipher([new]).decrypt(rewritten) == "refresh-secret"
    with pytest.raises(UnreadableToken):
        TokenCipher([new]).decrypt(stored)


def test_a_grant_survives_key_rotation(
    addon: AddonClient,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = grants_app(session_factory, gmail_server, TOKEN_KEYS=old)
    client = AddonClient(first.test_client(), addon.tokens)
    assert connect(client).status_code == 200
    member = _member(db)
    rotated = grants_app(session_factory, gmail_server, TOKEN_KEYS=f"{new},{old}")
    assert credentials_for(db, member, "sync", _settings(rotated)) is not None
    assert reencrypt_all(db, _settings(rotated).cipher) == 1
    only_new = grants_app(session_factory, gmail_server, TOKEN_KEYS=new)
    credentials = credentials_for(db, member, "send", _settings(only_new))
    assert credentials is not None and credentials.refresh_token


def test_production_refuses_to_start_without_token_keys() -> None:
    public = {"BASE_URL": "https://crm.example.org", "DATABASE_URL": "sqlite://"}
    with pytest.raises(TokenKeyError, match="ADDON_TOKEN_KEYS is required"):
        create_app(public)
    with pytest.raises(TokenKeyError, match="key 2 is not a Fernet key"):
        create_app({**public, "TOKEN_KEYS": f"{Fernet.generate_key().decode()},short"})
    assert create_app({**public, "TOKEN_KEYS": Fernet.generate_key().decode()})


def test_an_unreadable_token_marks_the_grant(
    addon: AddonClient, db: Session, session_factory: sessionmaker[Session], gmail_server: Any
) -> None:
    assert connect(addon).status_code == 200
    stranger = grants_app(session_factory, gmail_server, TOKEN_KEYS=Fernet.generate_key().decode())
    assert credentials_for(db, _member(db), "sync", _settings(stranger)) is None
    grant = _grant(db)
    assert grant.status == EXPIRED and "no configured token key" in grant.last_error


# ------------------------------------------------------------------ refresh and failures


def test_credentials_refresh_against_the_token_endpoint(
    addon: AddonClient, app: Flask, db: Session, fake_oauth: FakeOAuth
) -> None:
    assert credentials_for(db, _member(db), "send", _settings(app)) is None
    assert connect(addon, "sync").status_code == 200
    member = _member(db)
    assert credentials_for(db, member, "send", _settings(app)) is None  # sync only
    credentials = fresh_credentials(db, member, "sync", _settings(app))
    assert credentials.token and fake_oauth.valid_access(credentials.token)
    assert credentials.token_uri == app.config["OAUTH_TOKEN_URL"]
    card = _access_card(addon)
    assert {"name": "gmail_connect", "purpose": "send"} in actions_in(card)
    assert "Not granted" in texts(card)


def test_invalid_grant_marks_the_grant_and_the_card_says_so(
    addon: AddonClient, app: Flask, db: Session, fake_oauth: FakeOAuth
) -> None:
    assert connect(addon).status_code == 200
    fake_oauth.revoke_all()  # the user removed Inbox CRM from their Google account
    member = _member(db)
    with pytest.raises(GrantError, match="refused the grant"):
        fresh_credentials(db, member, "sync", _settings(app))
    grant = _grant(db)
    assert grant.status == EXPIRED and "invalid_grant" in grant.last_error
    # Not retried: no credentials until the member connects again.
    calls = len(fake_oauth.requests)
    assert credentials_for(db, member, "sync", _settings(app)) is None
    with pytest.raises(GrantError, match="expired"):
        fresh_credentials(db, member, "sync", _settings(app))
    assert len(fake_oauth.requests) == calls
    shown = texts(_access_card(addon))
    assert "Not usable (expired)" in shown and "invalid_grant" in shown
    assert connect(addon).status_code == 200
    assert _grant(db).status == ACTIVE and _grant(db).last_error == ""


def test_revoke_calls_google_then_deletes_the_token(
    addon: AddonClient, db: Session, fake_oauth: FakeOAuth
) -> None:
    assert connect(addon).status_code == 200
    (issued,) = fake_oauth.refresh_tokens
    data = addon.action("gmail_revoke")
    assert data["renderActions"]["action"]["notification"]["text"] == "Gmail access revoked"
    assert fake_oauth.refresh_tokens[issued].revoked
    grant = _grant(db)
    assert grant.refresh_token is None and grant.status == REVOKED and grant.scopes == ""
    assert {"name": "gmail_connect", "purpose": "both"} in actions_in(card_of(data))
    again = addon.action("gmail_revoke")
    assert "no Gmail access to revoke" in again["renderActions"]["action"]["notification"]["text"]


def test_a_failed_revocation_still_deletes_locally_and_says_so(
    addon: AddonClient, db: Session, fake_oauth: FakeOAuth
) -> None:
    assert connect(addon).status_code == 200
    fake_oauth.revoke_fails_with = 503
    data = addon.action("gmail_revoke")
    note = data["renderActions"]["action"]["notification"]["text"]
    assert "revoking it at Google failed" in note and "503" in note
    assert _grant(db).refresh_token is None
    assert "revocation at Google failed" in texts(card_of(data))


# ------------------------------------------------------------------ roles and tenants


def test_viewers_cannot_grant_sending(addon: AddonClient, app: Flask, db: Session) -> None:
    _member(db)  # the admin
    viewer_member = _member(db, "vic@acme.test")
    viewer_member.role = "viewer"
    db.flush()
    viewer = AddonClient(app.test_client(), addon.tokens, user="vic@acme.test")
    refused = viewer.action("gmail_connect", parameters={"purpose": "send"})
    assert "does not allow you to send mail from your mailbox" in texts(card_of(refused))
    card = card_of(viewer.action("gmail_access"))
    assert not [a for a in actions_in(card) if a["name"] == "gmail_connect"]
    assert "does not allow sending" in texts(card)
    # A link minted while the member was a rep stops working once they are a viewer.
    rep_member = _member(db, "ray@acme.test")
    rep = AddonClient(app.test_client(), addon.tokens, user="ray@acme.test")
    start = connect_link(rep, "send")
    rep_member.role = "viewer"
    db.flush()
    answer = rep.client.get(start)
    assert answer.status_code == 400 and "does not allow" in answer.get_data(as_text=True)
    unknown = addon.action("gmail_connect", parameters={"purpose": "everything"})
    assert "Unknown purpose" in texts(card_of(unknown))


def test_another_workspace_never_sees_or_uses_the_grant(
    addon: AddonClient, other_tenant: AddonClient, app: Flask, db: Session
) -> None:
    assert connect(addon).status_code == 200
    spy_card = card_of(other_tenant.action("gmail_access"))
    assert "rep@acme.test" not in texts(spy_card)
    refused = other_tenant.action("gmail_revoke", parameters={"member_id": "1", "grant_id": "1"})
    assert "no Gmail access" in refused["renderActions"]["action"]["notification"]["text"]
    spy = _member(db, "spy@rival.test")
    assert credentials_for(db, spy, "sync", _settings(app)) is None
    assert _grant(db).refresh_token is not None
    # The spy's own state cannot be bent to name the acme member.
    state = query_of(connect_link(other_tenant))["state"]
    payload, _, signature = state.partition(".")
    forged = f"{payload}x.{signature}"
    assert other_tenant.client.get(f"{BASE_URL}/oauth/start?state={forged}").status_code == 400


def test_rotate_token_keys_command(
    addon: AddonClient,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = grants_app(session_factory, gmail_server, TOKEN_KEYS=old)
    assert connect(AddonClient(first.test_client(), addon.tokens)).status_code == 200
    stranger = grants_app(session_factory, gmail_server, TOKEN_KEYS=new)
    refused = stranger.test_cli_runner().invoke(args=["gmail", "rotate-token-keys"])
    assert refused.exit_code != 0 and "nothing was changed" in refused.output
    both = grants_app(session_factory, gmail_server, TOKEN_KEYS=f"{new},{old}")
    result = both.test_cli_runner().invoke(args=["gmail", "rotate-token-keys"])
    assert result.exit_code == 0 and "1 token(s) re-encrypted" in result.output
    raw = db.execute(text("SELECT refresh_token FROM google_grants")).scalar_one()
    assert TokenCipher([new.encode()]).decrypt(raw).startswith("refresh-")


def test_connect_explains_what_the_server_lacks(
    addon: AddonClient, session_factory: sessionmaker[Session], gmail_server: FakeGmailServer
) -> None:
    for missing in ({"OAUTH_CLIENT_SECRET": ""}, {"SECRET_KEY": ""}):
        app = grants_app(session_factory, gmail_server, **missing)
        client = AddonClient(app.test_client(), addon.tokens)
        shown = texts(card_of(client.action("gmail_connect", parameters={"purpose": "sync"})))
        assert "Gmail access unavailable" in shown
        assert f"ADDON_{next(iter(missing))}" in shown
