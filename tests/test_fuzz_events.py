"""Malformed event objects with valid tokens, to every endpoint: never a 500; a card that
passes the contract or a 4xx with a reason; nothing half-written.

Examples per endpoint: ADDON_FUZZ_EXAMPLES (default 12); raise it for a longer hunt.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from addon.web.registry import ACTIONS
from tests.authz_support import (  # noqa: F401 (app_with_fake_oauth, world_of_roles: fixtures)
    CASES,
    ROLE_USERS,
    World,
    app_with_fake_oauth,
    client_for,
    denied,
    snapshot,
    world_of_roles,
)
from tests.cardcheck import BASE_URL, check_response
from tests.cardread import card_of, texts
from tests.google_fakes import AddonClient, TokenFactory
from tests.mailing_authz_support import install_grants
from tests.mailing_support import FakeGrants

EXAMPLES = int(os.environ.get("ADDON_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TRIGGERS = ["/homepage", "/gmail/message", "/gmail/compose"]
# Parameter and input names the handlers read, so the fuzzer reaches past "missing".
PARAMETER_NAMES = [
    "record_id", "view_id", "folder", "folder_id", "field_id", "page", "nav", "rows", "add",
    "remove", "thread_id", "subject", "link_to", "force", "values", "merge_ids", "field",
    "mode", "value", "count", "direction", "active", "email", "name", "company_domain",
    "form_id", "enabled", "member_id", "invitation_id", "entry_id", "actor_id", "action",
    "fmt", "filter", "confirm", "purpose",
    # Mail merge
    "template_id", "campaign_id", "position",
]  # fmt: skip
INPUT_NAMES = [
    "query", "first_name", "last_name", "emails", "phones", "name", "domain", "body", "label",
    "type", "required", "choices", "target", "many", "new_type", "singular", "view_name",
    "view_folder", "match", "c0_field", "c0_op", "c0_value", "sort_field", "sort_dir",
    "shared", "merge_ids", "survivor", "choice_first_name", "field", "mode", "value",
    "close_date", "amount", "owner", "company", "contacts", "lifecycle_stage", "stage",
    "merge_query", "address.0", "address.1", "address.9", "folder_id", "fields", "required",
    "thank_you", "label_1", "role", "email", "actor", "record", "action", "plan",
    "daily_send_cap", "default_region", "excluded_addresses", "excluded_domains",
    "free_mail_domains",
    # Mail merge
    "tpl_name", "tpl_subject", "tpl_text", "tpl_html", "cmp_name", "cmp_view", "cmp_template",
    "cmp_cc", "cmp_bcc", "cmp_gaps", "cmp_start", "recipient",
]  # fmt: skip

# Text no input should break on: NUL, half a surrogate pair, bidi and combining marks,
# fullwidth letters, huge and negative numbers, JSON where text is expected, 5,000 chars.
NASTY = [
    "\x00", "a\x00b", "\ud800", "x\udfff", "\u202e\u0301\U0001f600", "\uff24\uff25\uff21\uff2c",
    "-1", "#-5", "99999999999999999999", "1e9", "NaN", "a" * 5000, "[]", '{"a": ["b"]}',
]  # fmt: skip
PLAIN = [
    "", "0", "1", "2", "3", "#1", "#2", "   ", "null", '["a"]', "contacts", "deals",
    "companies", "update", "pop", "set", "add", "clear", "true", "false", "yes", "any",
    "equals", "owner", "ada@acmeworks.test", "csv", "jsonl", "both", "send", "sync",
    "admin", "viewer", "US",
]  # fmt: skip
odd_text = st.one_of(st.sampled_from(NASTY), st.sampled_from(PLAIN), st.text(max_size=40))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), odd_text)
junk = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(odd_text, inner, max_size=3)
    ),
    max_leaves=6,
)


def _string_input(values: Any) -> dict[str, Any]:
    return {"stringInputs": {"value": values}}


# Inputs shaped as Google sends them (any text, dates as numbers) ...
good_entry = st.one_of(
    st.lists(odd_text, max_size=3).map(_string_input),
    st.integers(-(2**70), 2**70).map(lambda ms: {"dateInput": {"msSinceEpoch": str(ms)}}),
    st.integers(-(2**70), 2**70).map(lambda ms: {"dateTimeInput": {"msSinceEpoch": ms}}),
)
# ... and shapes it never sends.
bad_entry = st.one_of(
    junk.map(_string_input),
    st.builds(lambda ms: {"dateInput": {"msSinceEpoch": ms}}, junk),
    st.builds(lambda ms: {"dateTimeInput": {"msSinceEpoch": ms}}, junk),
    junk,
)
form_entry = st.one_of(good_entry, bad_entry)
named_inputs = st.dictionaries(st.sampled_from(INPUT_NAMES), good_entry, max_size=6)
named_parameters = st.dictionaries(st.sampled_from(PARAMETER_NAMES), odd_text, max_size=6)
gmail = st.fixed_dictionaries(
    {},
    optional={
        "messageId": odd_text,
        "threadId": odd_text,
        "accessToken": odd_text,
        "toRecipients": st.lists(odd_text, max_size=3),
        "ccRecipients": st.one_of(st.lists(odd_text, max_size=3), junk),
        "bccRecipients": junk,
    },
)


@st.composite
def events(draw: st.DrawFn, client: AddonClient, base: dict[str, Any]) -> dict[str, Any]:
    """A valid event (the action's own case as a start) with parts made malformed."""
    event = client.event(parameters=base.get("parameters"), form=base.get("form"))
    common = event["commonEventObject"]
    # Mostly the action's own inputs with odd values, so the handlers' code is reached;
    # sometimes a malformed part, which the event parsing layer must refuse. (Choices are
    # drawn from lists: hypothesis favours the ends of integer ranges.)
    shape = draw(st.sampled_from(["odd"] * 6 + ["bad params", "bad inputs", "bad values"]))
    if shape == "odd":
        params, inputs = common.get("parameters", {}), common.get("formInputs", {})
        if params:
            params = {**params, **draw(st.dictionaries(st.sampled_from(sorted(params)), odd_text))}
        if inputs:
            inputs = {
                **inputs,
                **draw(st.dictionaries(st.sampled_from(sorted(inputs)), good_entry)),
            }
        common["parameters"] = {**params, **draw(named_parameters)}
        common["formInputs"] = {**inputs, **draw(named_inputs)}
    elif shape == "bad params":
        common["parameters"] = draw(junk)
    elif shape == "bad inputs":
        common["formInputs"] = draw(st.one_of(junk, st.dictionaries(odd_text, bad_entry)))
    else:
        common["parameters"] = draw(st.dictionaries(st.sampled_from(PARAMETER_NAMES), junk))
    rare = st.sampled_from([False] * 5 + [True])
    if draw(rare):
        common["userLocale"] = draw(junk)
    if draw(rare):
        common["timeZone"] = draw(st.one_of(junk, st.builds(lambda z: {"id": z}, junk)))
    if draw(st.booleans()):
        event["gmail"] = draw(junk if draw(rare) else gmail)
    if draw(st.sampled_from([False] * 20 + [True])):
        event["commonEventObject"] = draw(junk)
    if draw(st.sampled_from([False] * 10 + [True])):
        event["authorizationEventObject"]["userOAuthToken"] = draw(junk)
    return event


def _check(path: str, response: Any) -> bool:
    """The answer's contract; True when it refused (a 4xx or the denial card)."""
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 200:
        data = response.get_json()
        check_response(path, data)
        return denied(data)
    assert 400 <= response.status_code < 500
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    return True


# Mail merge
@pytest.fixture(autouse=True)
def mail_merge_grants(app: Flask) -> FakeGrants:
    """Every member may send, so the sending actions' code is reached."""
    return install_grants(app)


@pytest.mark.parametrize("path", TRIGGERS + [f"/actions/{name}" for name in sorted(CASES)])
def test_malformed_events_never_break_an_endpoint(
    app: Flask,
    tokens: TokenFactory,
    world: World,
    connection: Connection,
    db: Session,
    path: str,
) -> None:
    """As the admin, who reaches every handler's code."""
    client = client_for(app, tokens, ROLE_USERS["admin"])
    name = path.removeprefix("/actions/")
    base = CASES[name](world) if name in CASES else {}
    bearer = tokens.system_token(BASE_URL + path)

    @FUZZ
    @given(event=events(client, base))
    def run(event: dict[str, Any]) -> None:
        savepoint = connection.begin_nested()
        try:
            before = snapshot(db)
            response = client.client.post(
                path, json=event, headers={"Authorization": f"Bearer {bearer}"}
            )
            if _check(path, response):
                assert snapshot(db) == before, "a refused event wrote something"
        finally:
            savepoint.rollback()

    run()


def test_every_action_is_fuzzed(app: Flask) -> None:
    """The parametrisation above covers every registered action."""
    assert set(ACTIONS) <= set(CASES)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        '"text"',
        "{",
        '{"commonEventObject": []}',
        "1" * 10000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"big": "' + "a" * 2_000_000 + '"}',
        '{"commonEventObject": {"parameters": {"record_id": "1\\u0000"}}}',
        '{"commonEventObject": {"formInputs": {"q": {"stringInputs": {"value": ["\\ud800"]}}}}}',
    ],
)
def test_bodies_that_are_not_event_objects(
    app: Flask, tokens: TokenFactory, world: World, body: str
) -> None:
    """Not a JSON object, nested too deeply, too large, or holding text no database can
    store (NUL, half a surrogate pair): 400 or 413 with a reason."""
    client = client_for(app, tokens, ROLE_USERS["admin"])
    for path in ["/homepage", "/actions/search"]:
        response = client.client.post(
            path,
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {tokens.system_token(BASE_URL + path)}"},
        )
        assert response.status_code in (400, 413), response.get_data(as_text=True)
        assert response.get_json()["error"]


@pytest.mark.parametrize("token", ["Ā", "tok\nen", "tok en", "\u202e", "\\", "a\\1", 'tok"en'])
def test_a_gmail_token_no_header_can_carry_is_refused_with_a_card(
    app: Flask, tokens: TokenFactory, world: World, token: str
) -> None:
    """The contextual trigger names the refusal instead of failing to send the header.

    Printable ASCII is not enough: httplib2 reads a header value with a backslash as a
    regex replacement template and fails on it."""
    client = client_for(app, tokens, ROLE_USERS["rep"])
    data = client.post(
        "/gmail/message", gmail={"messageId": "msg-1", "threadId": "thr-1", "accessToken": token}
    )
    assert "Gmail refused the user's credentials" in texts(card_of(data))
