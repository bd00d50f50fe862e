"""Authentication of add-on requests, workspace resolution, tenant isolation, certs caching.

Every refused request must answer with a JSON reason and leave the database untouched.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.auth import tokens as tokens_module
from addon.auth.tokens import CertificateCache, TokenError, verify_id_token
from addon.crm.models import FieldDef, FieldValue, Folder, Member, Note, Record, ThreadLink
from addon.crm.models import Workspace as WorkspaceRow
from addon.gmail.fake_server import FakeGmail, FakeMessage
from tests.cardcheck import BASE_URL
from tests.dbstate import row_counts
from tests.google_fakes import (
    CLIENT_ID,
    SERVICE_ACCOUNT,
    AddonClient,
    SigningKey,
    TokenFactory,
)

# One trigger, one callback and the contextual trigger: all go through authenticate().
PATHS = ["/homepage", "/actions/search", "/gmail/message"]
GMAIL_EVENT = {"messageId": "msg-1", "threadId": "thread-1", "accessToken": "gmail-access"}
DROP = object()  # an override value meaning "leave this claim out"


# --- helpers -------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand, for algorithm-confusion and malformed-token cases."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(b64(p) for p in parts), b64(signature)])


def claims_for(audience: str, email: str, /, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "email": email,
        "email_verified": True,
        "sub": "1111",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


def system_claims(audience: str, **overrides: Any) -> dict[str, Any]:
    return claims_for(audience, SERVICE_ACCOUNT, **overrides)


def user_claims(**overrides: Any) -> dict[str, Any]:
    return claims_for(CLIENT_ID, "rep@acme.test", hd="acme.test", **overrides)


def impostor(tokens: TokenFactory) -> SigningKey:
    """A key that claims the published key id but signs with another private key."""
    return _impostor(tokens.key.kid, tokens.rogue_key.private_pem, tokens.rogue_key.cert_pem)


@functools.cache
def _impostor(kid: str, private_pem: str, cert_pem: str) -> SigningKey:
    # One instance per key pair, so its loaded signer is reused across tests.
    return SigningKey(kid, private_pem, cert_pem)


def event_for(client: AddonClient, path: str) -> dict[str, Any]:
    if path == "/gmail/message":
        return client.event(gmail=dict(GMAIL_EVENT))
    return client.event()


def add_message(gmail: FakeGmail) -> None:
    gmail.add(
        FakeMessage(
            id="msg-1",
            thread_id="thread-1",
            headers=[
                ("From", "Ann Lee <ann@x-corp.com>"),
                ("To", "rep@acme.test"),
                ("Subject", "Pricing"),
                ("Date", "Mon, 01 Jan 2024 10:00:00 +0000"),
            ],
        )
    )


def refused(
    client: AddonClient,
    db: Session,
    path: str,
    *,
    authorization: str | None,
    body: Any = None,
    data: str | None = None,
    status: int = 401,
) -> str:
    """POST without AddonClient's defaults; assert the refusal and that nothing changed."""
    before = row_counts(db)
    headers = {} if authorization is None else {"Authorization": authorization}
    if data is not None:
        response = client.client.post(
            path, data=data, headers=headers, content_type="application/json"
        )
    else:
        response = client.client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    assert isinstance(payload["error"], str) and payload["error"]
    assert row_counts(db) == before
    return str(payload["error"])


# --- the system ID token -------------------------------------------------------------------

SystemCase = Callable[[TokenFactory, str], str | None]


def _bearer(token: str) -> str:
    return f"Bearer {token}"


SYSTEM_CASES: dict[str, tuple[SystemCase, str]] = {
    "no header": (lambda t, aud: None, "missing bearer token"),
    "empty header": (lambda t, aud: "", "missing bearer token"),
    "basic scheme": (lambda t, aud: "Basic cmVwOnB3", "missing bearer token"),
    "token without scheme": (lambda t, aud: t.system_token(aud), "missing bearer token"),
    "bearer nothing": (lambda t, aud: "Bearer ", "malformed"),
    "bearer garbage": (lambda t, aud: "Bearer garbage", "malformed"),
    "bearer three garbage parts": (lambda t, aud: "Bearer a.b.c", "malformed"),
    "header not an object": (
        lambda t, aud: _bearer(unsigned([], system_claims(aud))),  # type: ignore[arg-type]
        "malformed",
    ),
    "rogue key": (
        lambda t, aud: _bearer(t.rogue_key.sign(system_claims(aud))),
        "signature",
    ),
    "known kid, other key": (
        lambda t, aud: _bearer(impostor(t).sign(system_claims(aud))),
        "signature",
    ),
    "no kid, other key": (
        lambda t, aud: _bearer(
            unsigned({"alg": "RS256"}, system_claims(aud), os.urandom(256)),
        ),
        "signature",
    ),
    "alg none": (
        lambda t, aud: _bearer(unsigned({"alg": "none", "kid": t.key.kid}, system_claims(aud))),
        "signature",
    ),
    "alg HS256": (
        lambda t, aud: _bearer(
            unsigned({"alg": "HS256", "kid": t.key.kid}, system_claims(aud), os.urandom(32))
        ),
        "signature",
    ),
    "alg ES256 with an RSA cert": (
        lambda t, aud: _bearer(
            unsigned({"alg": "ES256", "kid": t.key.kid}, system_claims(aud), os.urandom(64))
        ),
        "signature",
    ),
    "tampered claims": (
        lambda t, aud: _bearer(
            ".".join(
                [
                    t.system_token(aud).split(".")[0],
                    b64(json.dumps(system_claims(aud, email="x@evil.test")).encode()),
                    t.system_token(aud).split(".")[2],
                ]
            )
        ),
        "signature",
    ),
    "expired": (
        lambda t, aud: _bearer(
            t.key.sign(system_claims(aud, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
        ),
        "expired",
    ),
    "not yet valid": (
        lambda t, aud: _bearer(
            t.key.sign(system_claims(aud, iat=int(time.time()) + 3600, exp=int(time.time()) + 7200))
        ),
        "not yet valid",
    ),
    "no exp": (lambda t, aud: _bearer(t.key.sign(system_claims(aud, exp=DROP))), "token"),
    "wrong issuer": (
        lambda t, aud: _bearer(t.system_token(aud, iss="https://evil.test")),
        "issuer",
    ),
    "lookalike issuer": (
        lambda t, aud: _bearer(t.system_token(aud, iss="accounts.google.com.evil.test")),
        "issuer",
    ),
    "no issuer": (lambda t, aud: _bearer(t.key.sign(system_claims(aud, iss=DROP))), "issuer"),
    "audience: other path": (
        lambda t, aud: _bearer(t.system_token(BASE_URL + "/gmail/compose")),
        "audience",
    ),
    "audience: other host": (
        lambda t, aud: _bearer(t.system_token(aud.replace(BASE_URL, "https://evil.test"))),
        "audience",
    ),
    "audience: http scheme": (
        lambda t, aud: _bearer(t.system_token(aud.replace("https://", "http://"))),
        "audience",
    ),
    "audience: trailing slash": (lambda t, aud: _bearer(t.system_token(aud + "/")), "audience"),
    "audience: extra query": (lambda t, aud: _bearer(t.system_token(aud + "?a=1")), "audience"),
    "audience: base URL only": (lambda t, aud: _bearer(t.system_token(BASE_URL)), "audience"),
    "audience: the OAuth client id": (
        lambda t, aud: _bearer(t.system_token(CLIENT_ID)),
        "audience",
    ),
    "audience: a list": (lambda t, aud: _bearer(t.system_token([aud])), "audience"),
    "another add-on's service account": (
        lambda t, aud: _bearer(
            t.system_token(aud, email="service-999@gcp-sa-gsuiteaddons.iam.gserviceaccount.com")
        ),
        "service account",
    ),
    "lookalike: suffix": (
        lambda t, aud: _bearer(t.system_token(aud, email=SERVICE_ACCOUNT + ".evil.test")),
        "service account",
    ),
    "lookalike: prefix": (
        lambda t, aud: _bearer(t.system_token(aud, email="x" + SERVICE_ACCOUNT)),
        "service account",
    ),
    "lookalike: upper case": (
        lambda t, aud: _bearer(t.system_token(aud, email=SERVICE_ACCOUNT.upper())),
        "service account",
    ),
    "lookalike: trailing space": (
        lambda t, aud: _bearer(t.system_token(aud, email=SERVICE_ACCOUNT + " ")),
        "service account",
    ),
    "some project's service account": (
        lambda t, aud: _bearer(
            t.system_token(aud, email="attacker@evil-project.iam.gserviceaccount.com")
        ),
        "service account",
    ),
    "a user's own ID token": (
        lambda t, aud: _bearer(t.user_token("rep@acme.test", "acme.test", aud=aud)),
        "service account",
    ),
    "no email": (lambda t, aud: _bearer(t.key.sign(system_claims(aud, email=DROP))), "email"),
    "email not verified": (
        lambda t, aud: _bearer(t.system_token(aud, email_verified=False)),
        "not verified",
    ),
    "email_verified missing": (
        lambda t, aud: _bearer(t.key.sign(system_claims(aud, email_verified=DROP))),
        "not verified",
    ),
    "email_verified as text": (
        lambda t, aud: _bearer(t.system_token(aud, email_verified="true")),
        "not verified",
    ),
}


@pytest.mark.parametrize("path", PATHS)
def test_valid_request_is_accepted(addon: AddonClient, gmail: FakeGmail, path: str) -> None:
    add_message(gmail)
    addon.post(path, event_for(addon, path))


@pytest.mark.parametrize("case", list(SYSTEM_CASES))
@pytest.mark.parametrize("path", PATHS)
def test_bad_system_token_is_refused(
    addon: AddonClient,
    tokens: TokenFactory,
    db: Session,
    gmail: FakeGmail,
    path: str,
    case: str,
) -> None:
    add_message(gmail)
    make, reason = SYSTEM_CASES[case]
    authorization = make(tokens, BASE_URL + path)
    error = refused(addon, db, path, authorization=authorization, body=event_for(addon, path))
    assert reason in error
    # The Gmail read starts early, but never before the system token is verified.
    assert not [r for r in gmail.requests if "/messages/" in r["path"]]


@pytest.mark.parametrize("path", PATHS)
def test_audience_includes_the_query_string(
    addon: AddonClient, tokens: TokenFactory, gmail: FakeGmail, db: Session, path: str
) -> None:
    add_message(gmail)
    called = path + "?deployment=1"
    # A token for the bare path does not open the URL with a query, and vice versa.
    bare = f"Bearer {tokens.system_token(BASE_URL + path)}"
    error = refused(addon, db, called, authorization=bare, body=event_for(addon, path))
    assert "audience" in error
    addon.post(called, event_for(addon, path), token=tokens.system_token(BASE_URL + called))


# --- the event body ------------------------------------------------------------------------

BODY_CASES: dict[str, dict[str, Any]] = {
    "not JSON": {"data": "{not json"},
    "empty body": {"data": ""},
    "a JSON list": {"body": [{"commonEventObject": {}}]},
    "a JSON string": {"body": "event"},
    "a JSON null": {"data": "null"},
    "commonEventObject not an object": {"body": {"commonEventObject": []}},
    "authorizationEventObject not an object": {"body": {"authorizationEventObject": "x"}},
    "gmail not an object": {"body": {"gmail": ["msg-1"]}},
    "parameters not strings": {"body": {"commonEventObject": {"parameters": {"record_id": 1}}}},
    "formInputs values not a list": {
        "body": {"commonEventObject": {"formInputs": {"query": {"stringInputs": {"value": "ann"}}}}}
    },
    "dateInput not a number": {
        "body": {
            "commonEventObject": {"formInputs": {"d": {"dateInput": {"msSinceEpoch": "soon"}}}}
        }
    },
}


@pytest.mark.parametrize("case", list(BODY_CASES))
@pytest.mark.parametrize("path", PATHS)
def test_malformed_body_is_refused(
    addon: AddonClient, tokens: TokenFactory, db: Session, path: str, case: str
) -> None:
    spec = BODY_CASES[case]
    authorization = f"Bearer {tokens.system_token(BASE_URL + path)}"
    refused(addon, db, path, authorization=authorization, status=400, **spec)


# --- the user ID token ---------------------------------------------------------------------

UserCase = Callable[[TokenFactory], Any]

USER_CASES: dict[str, tuple[UserCase, str]] = {
    "missing": (lambda t: DROP, "missing"),
    "empty": (lambda t: "", "missing"),
    "not a string": (lambda t: 12345, "missing"),
    "garbage": (lambda t: "garbage", "malformed"),
    "expired": (
        lambda t: t.key.sign(user_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "expired",
    ),
    "audience: the endpoint URL": (
        lambda t: t.user_token("rep@acme.test", "acme.test", aud=BASE_URL + "/homepage"),
        "audience",
    ),
    "audience: another client id": (
        lambda t: t.user_token(
            "rep@acme.test", "acme.test", aud="999-other.apps.googleusercontent.com"
        ),
        "audience",
    ),
    "email not verified": (
        lambda t: t.user_token("rep@acme.test", "acme.test", email_verified=False),
        "not verified",
    ),
    "email_verified missing": (
        lambda t: t.key.sign(user_claims(email_verified=DROP)),
        "not verified",
    ),
    "no email": (lambda t: t.key.sign(user_claims(email=DROP)), "email"),
    "unusable email": (
        lambda t: t.user_token("not an address", "acme.test"),
        "email",
    ),
    "rogue key": (lambda t: t.rogue_key.sign(user_claims()), "signature"),
    "known kid, other key": (lambda t: impostor(t).sign(user_claims()), "signature"),
    "wrong issuer": (
        lambda t: t.user_token("rep@acme.test", "acme.test", iss="https://evil.test"),
        "issuer",
    ),
}


@pytest.mark.parametrize("case", list(USER_CASES))
@pytest.mark.parametrize("path", PATHS)
def test_bad_user_token_is_refused(
    addon: AddonClient, tokens: TokenFactory, db: Session, path: str, case: str
) -> None:
    make, reason = USER_CASES[case]
    event = event_for(addon, path)
    user_token = make(tokens)
    if user_token is DROP:
        del event["authorizationEventObject"]["userIdToken"]
    else:
        event["authorizationEventObject"]["userIdToken"] = user_token
    authorization = f"Bearer {tokens.system_token(BASE_URL + path)}"
    error = refused(addon, db, path, authorization=authorization, body=event)
    assert error.startswith("user token: ") and reason in error


# --- workspaces and members ----------------------------------------------------------------


def member_row(db: Session, email: str) -> tuple[str, str, bool]:
    """(workspace domain, role, is_consumer) of the member with this address."""
    row = db.execute(
        select(WorkspaceRow.domain, Member.role, WorkspaceRow.is_consumer)
        .join(WorkspaceRow, WorkspaceRow.id == Member.workspace_id)
        .where(Member.email == email)
    ).one()
    return row[0], row[1], row[2]


def client_for(app: Flask, tokens: TokenFactory, user: str, hd: str | None) -> AddonClient:
    return AddonClient(app.test_client(), tokens, user=user, hd=hd)


def record_id(db: Session, title: str, workspace_domain: str = "acme.test") -> int:
    return db.execute(
        select(Record.id)
        .join(WorkspaceRow, WorkspaceRow.id == Record.workspace_id)
        .where(Record.title == title, WorkspaceRow.domain == workspace_domain)
    ).scalar_one()


def test_hd_claim_names_the_workspace_and_first_member_is_admin(
    app: Flask, tokens: TokenFactory, db: Session
) -> None:
    first = client_for(app, tokens, "Boss@Acme.test", "Acme.TEST")
    first.post("/homepage")
    assert member_row(db, "boss@acme.test") == ("acme.test", "admin", False)
    second = client_for(app, tokens, "rep@acme.test", "acme.test")
    second.post("/homepage")
    assert member_row(db, "rep@acme.test") == ("acme.test", "rep", False)
    # Seeing the same people again creates nothing.
    before = row_counts(db)
    first.post("/homepage")
    second.post("/homepage")
    assert row_counts(db) == before
    assert before["workspaces"] == 1 and before["members"] == 2


def test_consumer_accounts_get_a_workspace_of_their_own(
    app: Flask, tokens: TokenFactory, db: Session
) -> None:
    alice = client_for(app, tokens, "Alice@gmail.com", None)
    bob = client_for(app, tokens, "bob@gmail.com", None)
    alice.post("/homepage")
    bob.post("/homepage")
    assert member_row(db, "alice@gmail.com") == ("alice@gmail.com", "admin", True)
    assert member_row(db, "bob@gmail.com") == ("bob@gmail.com", "admin", True)
    alice.action("create_record", parameters={"folder": "contacts"}, form={"first_name": "Carol"})
    carol = record_id(db, "Carol", "alice@gmail.com")
    before = row_counts(db)
    data = bob.action("open_record", expect=403, parameters={"record_id": str(carol)})
    assert data["error"]
    assert row_counts(db) == before


def test_members_of_one_domain_share_records(app: Flask, tokens: TokenFactory, db: Session) -> None:
    rep = client_for(app, tokens, "rep@acme.test", "acme.test")
    boss = client_for(app, tokens, "boss@acme.test", "acme.test")
    rep.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={"first_name": "Ann", "emails": "ann@x-corp.com"},
    )
    ann = record_id(db, "Ann")
    data = boss.action("open_record", parameters={"record_id": str(ann)})
    assert data["renderActions"]["action"]["navigations"][0]["pushCard"]
    found = boss.action("search", form={"query": "ann"})
    assert "Ann" in json.dumps(found)
    boss.action("create_note", parameters={"record_id": str(ann)}, form={"body": "Met at expo"})
    assert db.execute(select(func.count()).select_from(Note)).scalar_one() == 1


# --- tenant isolation (IDOR) ---------------------------------------------------------------


def record_state(db: Session, rid: int) -> dict[str, Any]:
    """Everything stored about a record, read fresh from the database."""
    db.expire_all()
    title = db.execute(select(Record.title, Record.search_key).where(Record.id == rid)).one()
    values = db.execute(
        select(FieldDef.key, FieldValue.value)
        .join(FieldDef, FieldDef.id == FieldValue.field_id)
        .where(FieldValue.record_id == rid)
        .order_by(FieldDef.key)
    ).all()
    threads = db.execute(
        select(ThreadLink.thread_id).where(ThreadLink.record_id == rid).order_by(ThreadLink.id)
    ).all()
    notes = db.execute(select(Note.body).where(Note.record_id == rid).order_by(Note.id)).all()
    return {
        "title": tuple(title),
        "values": [tuple(v) for v in values],
        "threads": [t[0] for t in threads],
        "notes": [n[0] for n in notes],
    }


@pytest.fixture
def victim(addon: AddonClient, db: Session) -> dict[str, int]:
    """acme.test's records: a contact with a linked thread and a note, a company, a deal."""
    addon.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={"first_name": "Ann", "emails": "ann@x-corp.com"},
    )
    contact = record_id(db, "Ann")
    addon.action(
        "create_record",
        parameters={"folder": "companies"},
        form={"name": "X Corp", "domain": "x-corp.com"},
    )
    company = record_id(db, "X Corp")
    addon.action(
        "create_record",
        parameters={"folder": "deals"},
        form={"name": "Big deal", "company": f"#{company}", "contacts": f"#{contact}"},
    )
    deal = record_id(db, "Big deal")
    addon.action(
        "link_thread",
        parameters={"record_id": str(contact), "thread_id": "thread-1", "subject": "Pricing"},
    )
    addon.action("create_note", parameters={"record_id": str(contact)}, form={"body": "Secret"})
    state = record_state(db, contact)
    assert state["threads"] == ["thread-1"] and state["notes"] == ["Secret"]
    return {"contact": contact, "company": company, "deal": deal}


def snapshot(db: Session, ids: dict[str, int]) -> dict[str, Any]:
    return {"counts": row_counts(db), **{k: record_state(db, v) for k, v in ids.items()}}


# (action, parameters, form); "{id}" is replaced by the victim contact's id.
IDOR_CASES: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "open_record": ("open_record", {"record_id": "{id}"}, {}),
    "edit_record": ("edit_record", {"record_id": "{id}"}, {}),
    "update_record": ("update_record", {"record_id": "{id}"}, {"first_name": "Pwned"}),
    "link_thread": (
        "link_thread",
        {"record_id": "{id}", "thread_id": "thread-evil", "subject": "x"},
        {},
    ),
    "unlink_thread": ("unlink_thread", {"record_id": "{id}", "thread_id": "thread-1"}, {}),
    "new_note": ("new_note", {"record_id": "{id}"}, {}),
    "create_note": ("create_note", {"record_id": "{id}"}, {"body": "Injected"}),
    "new_record link_to": ("new_record", {"folder": "contacts", "link_to": "{id}"}, {}),
    "create_record link_to": (
        "create_record",
        {"folder": "contacts", "link_to": "{id}"},
        {"first_name": "Eve"},
    ),
    "create deal link_to": (
        "create_record",
        {"folder": "deals", "link_to": "{id}"},
        {"name": "Stolen deal"},
    ),
}


@pytest.mark.parametrize("case", list(IDOR_CASES))
def test_other_tenant_cannot_touch_records_by_id(
    victim: dict[str, int], other_tenant: AddonClient, db: Session, case: str
) -> None:
    name, parameters, form = IDOR_CASES[case]
    params = {k: v.replace("{id}", str(victim["contact"])) for k, v in parameters.items()}
    before = snapshot(db, victim)
    data = other_tenant.action(name, expect=403, parameters=params, form=form or None)
    assert data == {"error": "record not found in your workspace"}
    assert snapshot(db, victim) == before


HUGE_IDS = [
    str(2**31),
    "99999999999",
    str(2**63),
    "9" * 40,
]
BAD_IDS = ["abc", "", " ", "-1", "0", "1.5", "1e3", "0x1", "#1", str(2**31 - 1), *HUGE_IDS]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("name", ["open_record", "update_record", "create_note"])
def test_bad_record_ids_are_refused(
    victim: dict[str, int], addon: AddonClient, db: Session, name: str, bad_id: str
) -> None:
    before = snapshot(db, victim)
    params = {"record_id": bad_id}
    data = addon.action(name, expect=403, parameters=params, form={"body": "x", "first_name": "Z"})
    assert data["error"]
    assert snapshot(db, victim) == before


@pytest.mark.parametrize("bad_id", ["abc", "-1", *HUGE_IDS])
def test_bad_link_to_ids_are_refused(
    victim: dict[str, int], addon: AddonClient, db: Session, bad_id: str
) -> None:
    before = snapshot(db, victim)
    addon.action(
        "create_record",
        expect=403,
        parameters={"folder": "contacts", "link_to": bad_id},
        form={"first_name": "Zed"},
    )
    assert snapshot(db, victim) == before


def _errors_shown(data: dict[str, Any]) -> str:
    navigations = data["renderActions"]["action"]["navigations"]
    assert list(navigations[0]) == ["updateCard"], "a rejected form is shown again in place"
    text = json.dumps(navigations[0]["updateCard"])
    assert "Nothing was saved" in text
    return text


# (folder, form); "{company}" / "{contact}" are replaced by the victim's ids.
LINK_FORM_CASES: dict[str, tuple[str, dict[str, str]]] = {
    "deal -> company": ("deals", {"name": "Stolen", "company": "#{company}"}),
    "deal -> contacts": ("deals", {"name": "Stolen", "contacts": "#{contact}"}),
    "contact -> company": ("contacts", {"first_name": "Eve", "company": "#{company}"}),
}


@pytest.mark.parametrize("case", list(LINK_FORM_CASES))
def test_other_tenant_cannot_link_to_records_by_id_in_forms(
    victim: dict[str, int], other_tenant: AddonClient, db: Session, case: str
) -> None:
    folder, form = LINK_FORM_CASES[case]
    filled = {
        k: v.replace("{company}", str(victim["company"])).replace(
            "{contact}", str(victim["contact"])
        )
        for k, v in form.items()
    }
    before = snapshot(db, victim)
    data = other_tenant.action("create_record", parameters={"folder": folder}, form=filled)
    assert "was not found" in _errors_shown(data)
    assert snapshot(db, victim) == before


def test_other_tenant_cannot_link_its_own_record_to_a_victim_record(
    victim: dict[str, int], other_tenant: AddonClient, db: Session
) -> None:
    other_tenant.action(
        "create_record", parameters={"folder": "contacts"}, form={"first_name": "Eve"}
    )
    eve = record_id(db, "Eve", "rival.test")
    ids = {**victim, "eve": eve}
    before = snapshot(db, ids)
    data = other_tenant.action(
        "update_record",
        parameters={"record_id": str(eve)},
        form={"company": f"#{victim['company']}"},
    )
    assert "was not found" in _errors_shown(data)
    assert snapshot(db, ids) == before


@pytest.mark.parametrize("bad_id", ["abc", "-1", *HUGE_IDS])
def test_bad_ids_in_link_fields_are_rejected(
    victim: dict[str, int], addon: AddonClient, db: Session, bad_id: str
) -> None:
    before = snapshot(db, victim)
    data = addon.action(
        "create_record",
        parameters={"folder": "deals"},
        form={"name": "Odd", "company": f"#{bad_id}"},
    )
    assert "was not found" in _errors_shown(data)
    assert snapshot(db, victim) == before


def test_other_tenant_sees_nothing_of_the_victim_in_its_own_views(
    victim: dict[str, int], other_tenant: AddonClient, db: Session
) -> None:
    pages = [
        other_tenant.post("/homepage"),
        other_tenant.action("search", form={"query": "ann"}),
        other_tenant.action("search", form={"query": "x-corp.com"}),
    ]
    text = json.dumps(pages)
    for secret in ("Ann", "X Corp", "Big deal", "Secret", f'"record_id": "{victim["contact"]}"'):
        assert secret not in text
    folders = db.execute(
        select(func.count())
        .select_from(Folder)
        .join(WorkspaceRow, WorkspaceRow.id == Folder.workspace_id)
        .where(WorkspaceRow.domain == "rival.test")
    ).scalar_one()
    assert folders == 3


# --- certificate caching -------------------------------------------------------------------


def certs_fetches(gmail: FakeGmail) -> int:
    return sum(1 for r in gmail.requests if r["path"] == "/oauth2/v1/certs")


def test_certificates_are_fetched_once_for_many_requests(
    app: Flask, addon: AddonClient, gmail: FakeGmail
) -> None:
    for _ in range(3):
        addon.post("/homepage")
        addon.action("search", form={"query": "a"})
    assert certs_fetches(gmail) == 1
    assert isinstance(app.extensions["addon.certs"], CertificateCache)


def test_unknown_key_id_triggers_one_refetch(
    addon: AddonClient, tokens: TokenFactory, gmail: FakeGmail, db: Session
) -> None:
    addon.post("/homepage")
    assert certs_fetches(gmail) == 1
    rogue = f"Bearer {tokens.rogue_key.sign(system_claims(BASE_URL + '/homepage'))}"
    refused(addon, db, "/homepage", authorization=rogue, body=addon.event())
    assert certs_fetches(gmail) == 2
    # A known key id with a bad signature is refused without fetching again.
    bad = f"Bearer {impostor(tokens).sign(system_claims(BASE_URL + '/homepage'))}"
    refused(addon, db, "/homepage", authorization=bad, body=addon.event())
    assert certs_fetches(gmail) == 2
    addon.post("/homepage")
    assert certs_fetches(gmail) == 2


def test_unknown_key_id_in_the_user_token_triggers_one_refetch(
    addon: AddonClient, tokens: TokenFactory, gmail: FakeGmail, db: Session
) -> None:
    event = addon.event()
    event["authorizationEventObject"]["userIdToken"] = tokens.rogue_key.sign(user_claims())
    authorization = f"Bearer {tokens.system_token(BASE_URL + '/homepage')}"
    refused(addon, db, "/homepage", authorization=authorization, body=event)
    assert certs_fetches(gmail) == 2


def test_rotated_key_is_picked_up_by_refetching(
    addon: AddonClient, tokens: TokenFactory, gmail: FakeGmail, monkeypatch: pytest.MonkeyPatch
) -> None:
    addon.post("/homepage")
    rotated = SigningKey.generate("rotated-key")
    monkeypatch.setitem(gmail.certs, rotated.kid, rotated.cert_pem)
    addon.post("/homepage", token=rotated.sign(system_claims(BASE_URL + "/homepage")))
    assert certs_fetches(gmail) == 2
    addon.post("/homepage", token=rotated.sign(system_claims(BASE_URL + "/homepage")))
    assert certs_fetches(gmail) == 2


def test_stale_certificates_are_refetched(app: Flask, addon: AddonClient, gmail: FakeGmail) -> None:
    addon.post("/homepage")
    cache: CertificateCache = app.extensions["addon.certs"]
    cache._fetched_at -= cache.max_age + 1
    addon.post("/homepage")
    assert certs_fetches(gmail) == 2


def test_unavailable_certificates_refuse_the_request(
    addon: AddonClient, gmail: FakeGmail, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gmail, "certs", [])  # served as a JSON list: malformed
    error = refused(
        addon,
        db,
        "/homepage",
        authorization=f"Bearer {addon.tokens.system_token(BASE_URL + '/homepage')}",
        body=addon.event(),
    )
    assert "certificates" in error


def test_forced_refetches_are_spaced_out(gmail: FakeGmail, gmail_server: Any) -> None:
    cache = CertificateCache(gmail_server.certs_url, max_age=3600, min_refresh_gap=30)
    cache.get()
    for _ in range(5):
        cache.get(refresh=True)
    assert certs_fetches(gmail) == 1, "unknown key ids cannot make us hammer the certs URL"
    cache._fetched_at -= 31
    cache.get(refresh=True)
    assert certs_fetches(gmail) == 2


# --- remembered tokens ---------------------------------------------------------------------


def _decode_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = tokens_module.jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return original(token, *args, **kwargs)

    monkeypatch.setattr(tokens_module.jwt, "decode", counting)
    return calls


def test_a_verified_token_is_remembered_for_its_audience_only(
    gmail: FakeGmail, gmail_server: Any, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CertificateCache(gmail_server.certs_url, max_age=3600)
    calls = _decode_counter(monkeypatch)
    token = tokens.system_token(BASE_URL + "/homepage")
    first = verify_id_token(token, BASE_URL + "/homepage", cache)
    assert verify_id_token(token, BASE_URL + "/homepage", cache) == first
    assert len(calls) == 1, "the second use is answered from memory"
    with pytest.raises(TokenError, match="audience"):
        verify_id_token(token, BASE_URL + "/gmail/message", cache)


def test_a_remembered_token_still_expires(
    gmail: FakeGmail, gmail_server: Any, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CertificateCache(gmail_server.certs_url, max_age=3600)
    token = tokens.system_token(BASE_URL + "/homepage")
    claims = verify_id_token(token, BASE_URL + "/homepage", cache)
    calls = _decode_counter(monkeypatch)
    # One second past expiry the memory no longer answers; the full check decides again
    # (and refuses: expired tokens are covered with the other token cases above).
    later = float(claims["exp"]) + 1
    monkeypatch.setattr(tokens_module.time, "time", lambda: later)
    assert cache.verified(token, BASE_URL + "/homepage") is None
    verify_id_token(token, BASE_URL + "/homepage", cache)
    assert calls == [token]


def test_remembered_tokens_are_forgotten_when_keys_change_or_certs_go_stale(
    gmail: FakeGmail, gmail_server: Any, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CertificateCache(gmail_server.certs_url, max_age=3600, min_refresh_gap=0)
    token = tokens.system_token(BASE_URL + "/homepage")
    verify_id_token(token, BASE_URL + "/homepage", cache)
    # Stale certificates: the memory is not trusted past the certificates' own lifetime.
    cache._fetched_at -= cache.max_age + 1
    assert cache.verified(token, BASE_URL + "/homepage") is None
    verify_id_token(token, BASE_URL + "/homepage", cache)
    # Google withdraws the key: a refetch with a different key set forgets everything.
    rotated = SigningKey.generate("rotated-key")
    monkeypatch.setattr(gmail, "certs", {rotated.kid: rotated.cert_pem})
    cache.get(refresh=True)
    assert cache.verified(token, BASE_URL + "/homepage") is None
    with pytest.raises(TokenError):
        verify_id_token(token, BASE_URL + "/homepage", cache)
