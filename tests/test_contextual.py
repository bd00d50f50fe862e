"""The contextual trigger (an open email) and the compose trigger, end to end.

Every request goes through the real google-api-python-client to the fake Gmail server,
and every card through the strict card check of AddonClient.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from addon.crm.models import (
    Note,
    Record,
    RecordDomain,
    RecordEmail,
    RecordRelation,
    ThreadLink,
)
from addon.gmail.fake_server import FakeGmail, FakeMessage
from tests.cardcheck import walk
from tests.crmdata import Crm
from tests.dbstate import StatementCounter, row_counts
from tests.google_fakes import AddonClient

ACCESS_TOKEN = "gmail-access-token-1"

# --------------------------------------------------------------------------- helpers


def add_message(
    gmail: FakeGmail, headers: list[tuple[str, str]], msg_id: str = "msg-1", thread: str = "thr-1"
) -> FakeMessage:
    return gmail.add(FakeMessage(msg_id, thread, headers=headers))


def open_message(addon: AddonClient, msg_id: str = "msg-1", thread: str = "thr-1") -> Any:
    """POST the contextual trigger and return the pushed card."""
    data = addon.post(
        "/gmail/message",
        gmail={"messageId": msg_id, "threadId": thread, "accessToken": ACCESS_TOKEN},
    )
    return pushed(data)


def pushed(data: dict[str, Any]) -> dict[str, Any]:
    """The card of a trigger or callback answer (the last card navigated to)."""
    action = data["renderActions"]["action"] if "renderActions" in data else data["action"]
    cards = [n.get("pushCard") or n.get("updateCard") for n in action["navigations"]]
    found = [c for c in cards if c]
    assert found, data
    result: dict[str, Any] = found[-1]
    return result


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button on the card: button lists, side buttons and the footer."""
    found: list[dict[str, Any]] = []
    for key, value in walk(card):
        if key == "buttonList":
            found.extend(value["buttons"])
        elif key == "decoratedText" and "button" in value:
            found.append(value["button"])
        elif key == "fixedFooter":
            found.extend(v for k, v in value.items() if k.endswith("Button"))
    return found


def lines(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every decoratedText body on the card."""
    return [value for key, value in walk(card) if key == "decoratedText"]


def line(card: dict[str, Any], text: str) -> dict[str, Any]:
    matches = [d for d in lines(card) if d["text"] == text]
    assert len(matches) == 1, (text, [d["text"] for d in lines(card)])
    return matches[0]


def all_text(card: dict[str, Any]) -> str:
    return "\n".join(
        str(value)
        for key, value in walk(card)
        if key in {"text", "topLabel", "bottomLabel", "title", "subtitle", "header"}
        and isinstance(value, str)
    )


def action_of(clickable: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The action name and parameters behind a button or clickable line."""
    act = clickable["onClick"]["action"]
    params = {p["key"]: p["value"] for p in act.get("parameters", [])}
    for value in params.values():
        assert isinstance(value, str)
    return act["function"].rsplit("/", 1)[1], params


def button_named(card: dict[str, Any], text: str) -> dict[str, Any]:
    matches = [b for b in buttons(card) if b["text"] == text]
    assert len(matches) == 1, (text, [b["text"] for b in buttons(card)])
    return matches[0]


def button_texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in buttons(card)]


def add_buttons_for(card: dict[str, Any], email: str) -> list[dict[str, Any]]:
    """Buttons that would add this address as a contact."""
    return [
        b
        for b in buttons(card)
        if action_of(b)[0] == "new_contact" and action_of(b)[1].get("email") == email
    ]


def inputs(card: dict[str, Any]) -> dict[str, str]:
    """Text input values of a form by name."""
    return {v["name"]: v.get("value", "") for k, v in walk(card) if k == "textInput"}


def form_of(card: dict[str, Any]) -> dict[str, list[str]]:
    """What the user submits when saving the form unchanged."""
    form: dict[str, list[str]] = {}
    for key, value in walk(card):
        if key == "textInput" and value.get("value"):
            form[value["name"]] = [value["value"]]
        elif key == "selectionInput":
            chosen = [i["value"] for i in value["items"] if i.get("selected") and i["value"]]
            if chosen:
                form[value["name"]] = chosen
    return form


def message_requests(gmail: FakeGmail) -> list[dict[str, Any]]:
    return [r for r in gmail.requests if "/messages/" in r["path"]]


# --------------------------------------------------------------------------- the Gmail edge


def test_message_is_read_with_metadata_format_and_both_tokens(
    addon: AddonClient, gmail: FakeGmail
) -> None:
    add_message(
        gmail,
        [("From", "Ada <ada@globex.com>"), ("To", "rep@acme.test"), ("Subject", "Hi")],
        msg_id="18c2f0a9b1",
    )
    open_message(addon, msg_id="18c2f0a9b1")
    [request] = message_requests(gmail)
    assert request["method"] == "GET"
    assert request["path"] == "/gmail/v1/users/me/messages/18c2f0a9b1"
    assert request["query"]["format"] == ["metadata"]
    assert {"From", "To", "Cc", "Subject"} <= set(request["query"]["metadataHeaders"])
    assert request["authorization"] == "Bearer user-oauth-token"
    assert request["access_token"] == ACCESS_TOKEN


# --------------------------------------------------------------------------- known sender


@pytest.fixture
def ada(crm: Crm) -> dict[str, Record]:
    """A contact at Globex with open and closed deals."""
    globex = crm.save("companies", name="Globex", domain="globex.com")
    contact = crm.save(
        "contacts",
        first_name="Ada",
        last_name="Lovelace",
        emails="ada@globex.com",
        phones="+1 650 253 0000",
        job_title="CTO",
        company=f"#{globex.id}",
        lifecycle_stage="qualified",
    )
    renewal = crm.save(
        "deals",
        name="Globex renewal",
        stage="proposal",
        amount="12000 USD",
        contacts=f"#{contact.id}",
    )
    company_deal = crm.save(
        "deals", name="Globex expansion", stage="negotiation", company=f"#{globex.id}"
    )
    won = crm.save("deals", name="Won last year", stage="won", contacts=f"#{contact.id}")
    lost = crm.save("deals", name="Lost pilot", stage="lost", company=f"#{globex.id}")
    return {
        "company": globex,
        "contact": contact,
        "renewal": renewal,
        "company_deal": company_deal,
        "won": won,
        "lost": lost,
    }


def test_known_sender_card_shows_contact_company_and_open_deals(
    addon: AddonClient, gmail: FakeGmail, ada: dict[str, Record]
) -> None:
    add_message(
        gmail,
        [
            ("From", '"Ada Lovelace" <Ada@Globex.COM>'),
            ("To", "Rep <rep@acme.test>"),
            ("Subject", "Renewal"),
        ],
    )
    open_message(addon)
    # The second open: the first one's ledger recording (after its answer) linked the deal.
    card = open_message(addon)
    contact, company = ada["contact"], ada["company"]
    assert card["header"]["title"] == "Ada Lovelace"
    assert card["header"]["subtitle"] == "Renewal"

    assert line(card, "CTO")["topLabel"] == "Job title"
    assert line(card, "+1 650-253-0000")["topLabel"] == "Phones"
    assert line(card, "qualified")["topLabel"] == "Lifecycle stage"
    company_line = line(card, "Globex")
    assert action_of(company_line) == ("open_record", {"record_id": str(company.id)})

    renewal = line(card, "Globex renewal")
    assert renewal["topLabel"] == "Proposal"
    # Opening the message recorded it: Ada's one open deal was linked automatically.
    assert renewal["bottomLabel"] == "12,000.00 USD · Linked to this thread"
    assert "button" not in renewal
    assert action_of(renewal) == (
        "open_record",
        {"record_id": str(ada["renewal"].id), "thread_id": "thr-1"},
    )
    # A deal of the contact's company counts too (the company's one open deal, linked as
    # well); closed deals never show.
    expansion = line(card, "Globex expansion")
    assert expansion["topLabel"] == "Negotiation"
    assert expansion["bottomLabel"] == "Linked to this thread"
    text = all_text(card)
    assert "Won last year" not in text
    assert "Lost pilot" not in text

    rid = str(contact.id)
    assert action_of(button_named(card, "Open")) == (
        "open_record",
        {"record_id": rid, "thread_id": "thr-1"},
    )
    assert action_of(button_named(card, "Edit")) == ("edit_record", {"record_id": rid})
    # Ada is a participant: the thread was linked to her automatically.
    assert action_of(button_named(card, "Unlink thread")) == (
        "unlink_thread",
        {"record_id": rid, "thread_id": "thr-1"},
    )
    assert action_of(button_named(card, "Add note")) == ("new_note", {"record_id": rid})
    assert "Link thread" not in button_texts(card)
    # The rep is on the message but never listed or offered.
    assert "rep@acme.test" not in text
    assert add_buttons_for(card, "ada@globex.com") == []


def test_unlink_then_link_thread_buttons_and_the_unlink_survives_reopening(
    addon: AddonClient, gmail: FakeGmail, ada: dict[str, Record], db: Session
) -> None:
    add_message(gmail, [("From", "Ada Lovelace <ada@globex.com>"), ("Subject", "Renewal")])
    contact = ada["contact"]

    def reason() -> str | None:
        return db.execute(
            select(ThreadLink.reason).where(
                ThreadLink.thread_id == "thr-1", ThreadLink.record_id == contact.id
            )
        ).scalar_one_or_none()

    open_message(addon)
    assert reason() == "matched_email"
    # Recorded after the first answer; the next open shows the automatic link.
    card = open_message(addon)
    name, params = action_of(button_named(card, "Unlink thread"))
    addon.action(name, parameters=params)
    assert reason() is None
    # Reopening never links it again: the manual unlink wins over automatic linking.
    card = open_message(addon)
    assert reason() is None
    name, params = action_of(button_named(card, "Link thread"))
    assert params == {"record_id": str(contact.id), "thread_id": "thr-1", "subject": "Renewal"}
    addon.action(name, parameters=params)
    assert reason() == "manual"

    card = open_message(addon)
    assert "Link thread" not in button_texts(card)
    assert action_of(button_named(card, "Unlink thread")) == (
        "unlink_thread",
        {"record_id": str(contact.id), "thread_id": "thr-1"},
    )


def test_already_linked_thread_shows_unlink(
    addon: AddonClient, gmail: FakeGmail, ada: dict[str, Record], crm: Crm
) -> None:
    crm.link(ada["contact"], "thr-1", "Earlier")
    # A link of another thread does not count.
    crm.link(ada["contact"], "thr-other", "Other")
    add_message(gmail, [("From", "ada@globex.com"), ("Subject", "Renewal")])
    card = open_message(addon)
    assert "Unlink thread" in button_texts(card)
    assert "Link thread" not in button_texts(card)

    # Mail of Ada on another thread is linked to her automatically once opened (the
    # recording follows the first answer, so the next open shows it).
    add_message(gmail, [("From", "ada@globex.com")], msg_id="msg-2", thread="thr-2")
    card = open_message(addon, msg_id="msg-2", thread="thr-2")
    assert "Link thread" in button_texts(card)
    card = open_message(addon, msg_id="msg-2", thread="thr-2")
    assert "Unlink thread" in button_texts(card)
    assert "Link thread" not in button_texts(card)


def test_open_deal_shows_behind_many_newer_closed_deals(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    contact = crm.save("contacts", first_name="Ada", emails="ada@globex.com")
    crm.save("deals", name="Still open", stage="qualified", contacts=f"#{contact.id}")
    for i in range(25):
        crm.save("deals", name=f"Won {i}", stage="won", contacts=f"#{contact.id}")
    add_message(gmail, [("From", "ada@globex.com")])
    card = open_message(addon)
    assert line(card, "Still open")["topLabel"] == "Qualified"


# --------------------------------------------------------------------------- unknown sender


JUERGEN = "=?utf-8?q?J=C3=BCrgen_Wei=C3=9F?= <Juergen.Weiss@Initech.DE>"


def test_unknown_business_sender_is_offered_with_suggested_company(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    add_message(gmail, [("From", JUERGEN), ("To", "rep@acme.test"), ("Subject", "Angebot")])
    card = open_message(addon)
    assert card["header"]["title"] == "Jürgen Weiß"
    suggested = line(card, "Initech")
    assert suggested["topLabel"] == "Suggested company"
    assert suggested["bottomLabel"] == "initech.de"

    add = button_named(card, "Add contact")
    name, params = action_of(add)
    assert name == "new_contact"
    assert params["email"] == "juergen.weiss@initech.de"
    assert params["name"] == "Jürgen Weiß"
    assert params["thread_id"] == "thr-1"

    form = pushed(addon.action(name, parameters=params))
    values = inputs(form)
    assert values["first_name"] == "Jürgen"
    assert values["last_name"] == "Weiß"
    assert values["emails"] == "juergen.weiss@initech.de"
    assert values["company"] == "Initech"
    save_name, save_params = action_of(form["fixedFooter"]["primaryButton"])
    assert save_name == "create_record"
    assert save_params["folder"] == "contacts"
    assert save_params["company_domain"] == "initech.de"
    assert save_params["thread_id"] == "thr-1"

    before = row_counts(db)
    saved = pushed(addon.action(save_name, parameters=save_params, form=form_of(form)))
    assert saved["header"]["title"] == "Jürgen Weiß"
    after = row_counts(db)
    assert after["records"] == before["records"] + 2

    contact = db.execute(
        select(Record).join(RecordEmail).where(RecordEmail.email == "juergen.weiss@initech.de")
    ).scalar_one()
    company = db.execute(
        select(Record).join(RecordDomain).where(RecordDomain.domain == "initech.de")
    ).scalar_one()
    assert company.title == "Initech"
    assert db.execute(
        select(RecordRelation).where(
            RecordRelation.from_record_id == contact.id, RecordRelation.to_record_id == company.id
        )
    ).scalar_one()
    # Opening the message recorded it in the email ledger, so the new contact picks up
    # its conversation (and the new company, by its domain); the card says why.
    links = dict(
        db.execute(
            select(ThreadLink.record_id, ThreadLink.reason).where(ThreadLink.thread_id == "thr-1")
        ).all()
    )
    assert links == {contact.id: "matched_email", company.id: "matched_domain"}
    assert "Link this thread" not in button_texts(saved)
    assert "Matched by email address" in all_text(saved)

    # Opening the message again now shows the contact.
    card = open_message(addon)
    assert card["header"]["title"] == "Jürgen Weiß"
    assert "Unlink thread" in button_texts(card)
    assert line(card, "Initech")["topLabel"] == "Company"


def test_unknown_sender_matches_existing_company_by_domain(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    initech = crm.save("companies", name="Initech GmbH", domain="https://www.initech.de/")
    add_message(gmail, [("From", JUERGEN), ("Subject", "Angebot")])
    card = open_message(addon)
    matched = line(card, "Initech GmbH")
    assert matched["bottomLabel"] == "Matched by domain"
    assert action_of(matched) == ("open_record", {"record_id": str(initech.id)})
    assert "Suggested company" not in all_text(card)

    form = pushed(
        addon.action("new_contact", parameters=action_of(button_named(card, "Add contact"))[1])
    )
    assert inputs(form)["company"] == "Initech GmbH"
    save_name, save_params = action_of(form["fixedFooter"]["primaryButton"])
    assert "company_domain" not in save_params

    before = row_counts(db)
    addon.action(save_name, parameters=save_params, form=form_of(form))
    assert row_counts(db)["records"] == before["records"] + 1  # no second company
    contact = db.execute(
        select(Record).join(RecordEmail).where(RecordEmail.email == "juergen.weiss@initech.de")
    ).scalar_one()
    assert (
        db.execute(
            select(RecordRelation.to_record_id).where(RecordRelation.from_record_id == contact.id)
        ).scalar_one()
        == initech.id
    )


def test_free_mail_sender_gets_no_company_suggestion(addon: AddonClient, gmail: FakeGmail) -> None:
    add_message(gmail, [("From", "Bob Stone <Bob.Stone@GMail.com>"), ("Subject", "hey")])
    card = open_message(addon)
    assert "Suggested company" not in all_text(card)
    assert "Matched by domain" not in all_text(card)
    name, params = action_of(button_named(card, "Add contact"))
    assert params["email"] == "bob.stone@gmail.com"
    form = pushed(addon.action(name, parameters=params))
    values = inputs(form)
    assert (values["first_name"], values["last_name"]) == ("Bob", "Stone")
    assert values.get("company", "") == ""
    assert "company_domain" not in action_of(form["fixedFooter"]["primaryButton"])[1]


@pytest.mark.parametrize(
    "headers",
    [
        [("From", "Stripe <no-reply@stripe.com>"), ("To", "rep@acme.test")],
        [("From", "MAILER-DAEMON@mail.globex.com"), ("To", "rep@acme.test")],
        [
            ("From", "Weekly News <news@globex.com>"),
            ("To", "rep@acme.test"),
            ("List-Id", "Globex news <news.globex.com>"),
        ],
        [
            ("From", "Weekly News <news@globex.com>"),
            ("To", "rep@acme.test"),
            ("List-Unsubscribe", "<mailto:unsubscribe@globex.com>"),
        ],
    ],
    ids=["no-reply", "mailer-daemon", "list-id", "list-unsubscribe"],
)
def test_automated_and_list_senders_are_shown_but_never_offered(
    addon: AddonClient, gmail: FakeGmail, headers: list[tuple[str, str]]
) -> None:
    add_message(gmail, [*headers, ("Subject", "Your receipt")])
    card = open_message(addon)
    sender = headers[0][1]
    address = sender.rsplit("<", 1)[-1].rstrip(">").lower()
    assert address in all_text(card)
    assert add_buttons_for(card, address) == []
    assert "Add contact" not in button_texts(card)
    assert "not suggested as a contact" in all_text(card)


def test_list_message_still_offers_other_people(addon: AddonClient, gmail: FakeGmail) -> None:
    add_message(
        gmail,
        [
            ("From", "Weekly News <news@globex.com>"),
            ("To", "rep@acme.test"),
            ("Cc", "Carol Chen <carol@hooli.com>"),
            ("List-Id", "<news.globex.com>"),
        ],
    )
    card = open_message(addon)
    assert add_buttons_for(card, "news@globex.com") == []
    assert len(add_buttons_for(card, "carol@hooli.com")) == 1


# --------------------------------------------------------------------------- participants


def test_user_as_sender_focuses_on_external_recipients(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    known = crm.save("contacts", first_name="Dana", last_name="Diaz", emails="dana@hooli.com")
    add_message(
        gmail,
        [
            ("From", "Rep <REP@acme.test>"),
            ("To", "Carol Chen <carol@globex.com>, Boss <boss@acme.test>"),
            ("Cc", "dana@hooli.com"),
            ("Subject", "Proposal"),
        ],
    )
    card = open_message(addon)
    # Carol, the first external recipient, is what the card is about.
    assert card["header"]["title"] == "Carol Chen"
    assert any(s.get("header") == "Recipient" for s in card["sections"])
    assert action_of(button_named(card, "Add contact"))[0] == "new_contact"
    add_params = action_of(button_named(card, "Add contact"))[1]
    assert add_params["email"] == "carol@globex.com"
    assert line(card, "Globex")["topLabel"] == "Suggested company"
    # The teammate is listed, not focused on; the user is not listed at all.
    boss = line(card, "Boss")
    assert boss["topLabel"] == "TO"
    assert boss["bottomLabel"] == "boss@acme.test"
    assert "rep@acme.test" not in all_text(card)
    # A known recipient is listed as an openable contact.
    dana = line(card, "Dana Diaz")
    assert dana["topLabel"] == "CC"
    assert action_of(dana) == ("open_record", {"record_id": str(known.id), "thread_id": "thr-1"})
    # The teammate can still be added by hand, prefilled without a company.
    form = pushed(addon.action("new_contact", parameters=action_of(boss["button"])[1]))
    assert inputs(form)["emails"] == "boss@acme.test"
    assert inputs(form).get("company", "") == ""


def test_user_writing_only_to_teammates(addon: AddonClient, gmail: FakeGmail) -> None:
    add_message(
        gmail,
        [("From", "rep@acme.test"), ("To", "boss@acme.test"), ("Subject", "Internal")],
    )
    card = open_message(addon)
    assert "No one outside your team" in all_text(card)
    assert line(card, "boss@acme.test")["topLabel"] == "TO"


def test_other_participants_are_listed_with_add_or_open(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    known = crm.save("contacts", first_name="Dana", last_name="Diaz", emails="dana@hooli.com")
    add_message(
        gmail,
        [
            ("From", "Carol Chen <carol@globex.com>"),
            ("To", 'rep@acme.test, "Diaz, Dana" <Dana@Hooli.com>, Eve <eve@initech.de>'),
            ("Cc", "Frank <frank@gmail.com>, noreply@globex.com, carol@globex.com"),
            ("Subject", "Intro"),
        ],
    )
    card = open_message(addon)
    assert card["header"]["title"] == "Carol Chen"
    also = next(s for s in card["sections"] if s.get("header") == "Also on this thread")
    listed = [w["decoratedText"] for w in also["widgets"]]
    assert [(d["text"], d["topLabel"]) for d in listed] == [
        ("Dana Diaz", "TO"),
        ("Eve", "TO"),
        ("Frank", "CC"),
        ("noreply@globex.com", "CC"),
    ]
    assert action_of(listed[0]) == (
        "open_record",
        {"record_id": str(known.id), "thread_id": "thr-1"},
    )
    assert "button" not in listed[0]
    for person, email in ((listed[1], "eve@initech.de"), (listed[2], "frank@gmail.com")):
        name, params = action_of(person["button"])
        assert (name, params["email"]) == ("new_contact", email)
    assert add_buttons_for(card, "noreply@globex.com") == []
    assert "automated" in listed[3]["bottomLabel"]

    # Following a participant's Add gives that person's form.
    form = pushed(addon.action("new_contact", parameters=action_of(listed[1]["button"])[1]))
    values = inputs(form)
    assert (values["first_name"], values["emails"], values["company"]) == (
        "Eve",
        "eve@initech.de",
        "Initech",
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("To", "rep@acme.test"), ("Subject", "No sender")],
        [("From", ""), ("To", "rep@acme.test")],
        [("From", "not an address at all"), ("To", "rep@acme.test")],
        [("From", "<<@@>>"), ("To", "rep@acme.test")],
        [("From", "Broken <broken@>"), ("To", "rep@acme.test")],
        [("From", "undisclosed-recipients:;"), ("To", "undisclosed-recipients:;")],
        [("From", "Team: a@globex.com, b@globex.com;"), ("To", "rep@acme.test")],
        [("From", "=?x-unknown?q?=FF=FE?= <x@globex.com>"), ("To", "rep@acme.test")],
        [("From", "\u00e9\u00e8 <\u00fc@m\u00fcnchen.de>"), ("To", "rep@acme.test")],
    ],
    ids=[
        "missing",
        "empty",
        "no-address",
        "garbage",
        "no-domain",
        "undisclosed",
        "group",
        "unknown-charset",
        "non-ascii-local",
    ],
)
def test_odd_from_headers_do_not_crash(
    addon: AddonClient, gmail: FakeGmail, headers: list[tuple[str, str]]
) -> None:
    add_message(gmail, headers)
    card = open_message(addon)
    assert card["header"]["title"]


def test_group_syntax_sender_members_are_used(addon: AddonClient, gmail: FakeGmail) -> None:
    add_message(gmail, [("From", "Team: Ann <ann@globex.com>;"), ("To", "rep@acme.test")])
    card = open_message(addon)
    assert card["header"]["title"] == "Ann"
    assert action_of(button_named(card, "Add contact"))[1]["email"] == "ann@globex.com"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("status", [404, 500, 403, 401])
def test_gmail_errors_answer_with_an_error_card_and_write_nothing(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session, status: int
) -> None:
    add_message(gmail, [("From", "Ada <ada@globex.com>")])
    if status == 404:
        msg_id = "no-such-message"
    else:
        msg_id = "msg-1"
        gmail.fail_with = status
    before = row_counts(db)
    card = open_message(addon, msg_id=msg_id)
    assert card["name"] == "error"
    assert card["header"]["title"] == "Could not read this message"
    assert str(status) in all_text(card)
    assert message_requests(gmail)
    assert row_counts(db) == before


def test_rejected_message_access_token_gives_error_card(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    add_message(gmail, [("From", "Ada <ada@globex.com>")])
    gmail.valid_tokens = {"some-other-token"}
    try:
        before = row_counts(db)
        card = open_message(addon)
    finally:
        gmail.valid_tokens = set()
    assert card["name"] == "error"
    assert "403" in all_text(card)
    assert row_counts(db) == before


def test_unreachable_gmail_gives_error_card(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    addon.client.application.config["GMAIL_API_URL"] = "http://127.0.0.1:9/"
    before = row_counts(db)
    card = open_message(addon)
    assert card["name"] == "error"
    assert "could not be reached" in all_text(card)
    assert row_counts(db) == before


@pytest.mark.parametrize(
    "gmail_object",
    [{}, {"threadId": "thr-1", "accessToken": ACCESS_TOKEN}, {"messageId": ""}, None],
    ids=["empty", "no-message-id", "blank-message-id", "no-gmail-object"],
)
def test_missing_message_id_gives_error_card(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session, gmail_object: Any
) -> None:
    before = row_counts(db)
    data = addon.post("/gmail/message", gmail=gmail_object)
    card = pushed(data)
    assert card["name"] == "error"
    assert "No message is open" in all_text(card)
    assert message_requests(gmail) == []
    assert row_counts(db) == before


# --------------------------------------------------------------------------- compose


def test_compose_lists_known_and_unknown_recipients(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    crm.save("contacts", first_name="Ada", last_name="Lovelace", emails="ada@globex.com")
    data = addon.post(
        "/gmail/compose",
        gmail={
            "toRecipients": ["Ada@Globex.com", "new.person@hooli.com"],
            "ccRecipients": ["ada@globex.com"],
            "accessToken": ACCESS_TOKEN,
        },
    )
    card = pushed(data)
    listed = [(d["text"], d.get("bottomLabel")) for d in lines(card)]
    assert listed == [
        ("Ada Lovelace", "ada@globex.com"),
        ("new.person@hooli.com", "new.person@hooli.com"),
    ]
    assert line(card, "Ada Lovelace")["startIcon"] == {"knownIcon": "PERSON"}
    assert line(card, "new.person@hooli.com")["startIcon"] == {"knownIcon": "EMAIL"}


def test_compose_without_recipients(addon: AddonClient, gmail: FakeGmail) -> None:
    card = pushed(addon.post("/gmail/compose", gmail={"accessToken": ACCESS_TOKEN}))
    assert "Add recipients" in all_text(card)


# --------------------------------------------------------------------------- statements


def test_statement_count_does_not_grow_with_data(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, ada: dict[str, Record], connection: Connection
) -> None:
    crm.link(ada["contact"], "thr-1", "Renewal")
    add_message(
        gmail,
        [
            ("From", "Ada Lovelace <ada@globex.com>"),
            ("To", "rep@acme.test, Eve <eve@initech.de>"),
            ("Cc", "Dana <dana@hooli.com>"),
            ("Subject", "Renewal"),
        ],
    )
    open_message(addon)  # warm-up: certificates, discovery document
    with StatementCounter(connection) as small:
        open_message(addon)

    contact, company = ada["contact"], ada["company"]
    for i in range(50):
        other = crm.save(
            "contacts",
            first_name=f"Person{i}",
            emails=f"person{i}@globex.com",
            company=f"#{company.id}",
        )
        crm.save(
            "deals",
            name=f"Deal {i}",
            stage="proposal",
            amount=f"{1000 + i} EUR",
            contacts=[f"#{contact.id}", f"#{other.id}"],
            company=f"#{company.id}",
        )
        crm.link(contact, f"thr-extra-{i}", f"Thread {i}")
        crm.link(other, "thr-1", "Renewal")
        crm.db.add(
            Note(
                workspace_id=crm.member.workspace_id,
                record_id=contact.id,
                author_id=crm.member.id,
                body=f"note {i}",
            )
        )
    crm.db.flush()

    with StatementCounter(connection) as large:
        card = open_message(addon)
    assert card["header"]["title"] == "Ada Lovelace"
    assert "Deal 49" in all_text(card)
    assert len(small.statements) > 0
    assert len(large.statements) == len(small.statements), (small.statements, large.statements)


def test_encoded_subject_is_decoded(addon: AddonClient, gmail: FakeGmail) -> None:
    add_message(
        gmail,
        [
            ("From", JUERGEN),
            ("Subject", "=?utf-8?q?Angebot_f=C3=BCr?=\r\n =?utf-8?q?_M=C3=BCnchen?="),
        ],
    )
    card = open_message(addon)
    assert card["header"]["subtitle"] == "Angebot für München"
    assert action_of(button_named(card, "Add contact"))[1]["subject"] == "Angebot für München"


def test_missing_user_oauth_token_gives_error_card(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    add_message(gmail, [("From", "Ada <ada@globex.com>")])
    body = addon.event(gmail={"messageId": "msg-1", "threadId": "thr-1", "accessToken": "x"})
    del body["authorizationEventObject"]["userOAuthToken"]
    before = row_counts(db)
    card = pushed(addon.post("/gmail/message", body))
    assert card["name"] == "error"
    assert row_counts(db) == before
