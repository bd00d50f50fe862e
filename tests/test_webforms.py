"""Public web forms: the page, submissions, duplicates, spam defences and tenant safety."""

from __future__ import annotations

import re
import time

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import AuditEntry, Record, RecordEmail
from addon.crm.webforms import set_form_enabled
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.web.forms import form_token
from tests.crmdata import Crm
from tests.webforms_support import (
    make_form,
    page_token,
    post_form,
    records_in,
    stored_counts,
    token_of,
    value_of,
)

VALID = {
    "first_name": "  Ada ",
    "last_name": "Lovelace",
    "emails": "Ada@Example.COM",
    "phones": "+44 20 7946 0958",
    "job_title": "Analyst",
}


def _contact(db: Session, workspace_id: int, email: str) -> Record:
    return db.execute(
        select(Record)
        .join(RecordEmail, RecordEmail.record_id == Record.id)
        .where(RecordEmail.workspace_id == workspace_id, RecordEmail.email == email)
    ).scalar_one()


def _client(app: Flask) -> FlaskClient:
    return app.test_client()


# ------------------------------------------------------------------------------ the page


def test_page_is_plain_accessible_html(app: Flask, crm: Crm) -> None:
    form = make_form(crm)
    response = _client(app).get(f"/forms/{form.public_id}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "<script" not in html.lower()
    # Every visible input has a label bound to it, required ones say so in text.
    assert '<label for="field-first_name">Your first name (required)</label>' in html
    assert '<label for="field-emails">Work email (required)</label>' in html
    assert '<label for="field-last_name">Last name</label>' in html
    assert re.search(r'<input class="box" type="email" id="field-emails" name="field-emails"', html)
    assert 'autocomplete="email"' in html
    for input_id in re.findall(r'<input class="box" [^>]*id="([^"]+)"', html):
        assert f'<label for="{input_id}">' in html
    # Hints are tied to their inputs; the honeypot is hidden from people and screen readers.
    assert 'aria-describedby="field-emails-hint"' in html
    assert '<div class="trap" aria-hidden="true">' in html
    assert 'name="website"' in html and 'tabindex="-1"' in html
    assert token_of(html)


def test_page_escapes_admin_text(app: Flask, crm: Crm) -> None:
    form = make_form(crm, name="<b>Hi</b>", spec=[("emails", '"><script>x</script>', True)])
    html = _client(app).get(f"/forms/{form.public_id}").get_data(as_text=True)
    assert "<script>x" not in html and "<b>Hi</b>" not in html
    assert "&lt;b&gt;Hi&lt;/b&gt;" in html


def test_unknown_and_disabled_forms_are_404(app: Flask, crm: Crm, db: Session) -> None:
    client = _client(app)
    assert client.get("/forms/no-such-form").status_code == 404
    form = make_form(crm)
    token = page_token(client, form)
    set_form_enabled(db, crm.member, form, False)
    db.flush()
    assert client.get(f"/forms/{form.public_id}").status_code == 404
    before = stored_counts(db)
    assert post_form(client, form, VALID, token=token).status_code == 404
    assert stored_counts(db) == before


# ------------------------------------------------------------------------------ submitting


def test_valid_submission_creates_contact_normalised_with_source_and_audit(
    app: Flask, crm: Crm, db: Session
) -> None:
    form = make_form(crm)
    response = post_form(_client(app), form, VALID)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Thanks, we will call you back." in html and "<form" not in html

    record = _contact(db, crm.member.workspace_id, "ada@example.com")
    assert record.title == "Ada Lovelace"
    assert record.created_by_id is None
    assert value_of(db, record, "emails") == ["ada@example.com"]
    assert value_of(db, record, "phones") == ["+442079460958"]
    assert value_of(db, record, "lead_source") == "web form"
    entries = db.execute(
        select(AuditEntry).where(AuditEntry.record_id == record.id).order_by(AuditEntry.id)
    ).scalars()
    actions = [(e.action, e.actor_id, e.summary) for e in entries]
    assert actions == [
        ("create", None, "Created Ada Lovelace (web form)"),
        ("web_form_submit", None, "Created from web form “Contact us”"),
    ]


def test_each_invalid_input_shows_the_form_again_and_writes_nothing(
    app: Flask, crm: Crm, db: Session
) -> None:
    form = make_form(crm)
    client = _client(app)
    before = stored_counts(db)
    cases = {
        "missing required": (
            {**VALID, "first_name": " "},
            "first_name",
            "Your first name is required.",
        ),
        "bad email": ({**VALID, "emails": "ada@"}, "emails", "ada@"),
        "bad phone": ({**VALID, "phones": "call me"}, "phones", "call me"),
        "field too long": (
            {**VALID, "job_title": "x" * 1001},
            "job_title",
            "Job title is longer than 1000 characters",
        ),
        "type's own limit": ({**VALID, "job_title": "x" * 400}, "job_title", "300 characters"),
    }
    for case, (values, key, message) in cases.items():
        response = post_form(client, form, values)
        assert response.status_code == 422, case
        html = response.get_data(as_text=True)
        # The message is next to its input, linked to it, and listed at the top.
        error_id = f"field-{key}-error"
        assert f'<p class="error" id="{error_id}">' in html, case
        assert message in html, case
        assert re.search(rf'id="field-{key}"[^>]*aria-describedby="[^"]*{error_id}"', html), case
        assert re.search(rf'id="field-{key}"[^>]*aria-invalid="true"', html), case
        assert f'<a href="#field-{key}">' in html, case
        # What the visitor typed is kept.
        assert 'value="Lovelace"' in html, case
        assert stored_counts(db) == before, case


def test_folder_rules_apply_to_fields_of_every_type(app: Flask, crm: Crm, db: Session) -> None:
    form = make_form(
        crm,
        "deals",
        [("name", "Project", True), ("amount", "", False), ("stage", "", False)],
    )
    client = _client(app)
    refused = post_form(client, form, {"name": "Site", "amount": "ten", "stage": "bogus"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="field-amount-error"' in html and 'id="field-stage-error"' in html
    assert '<option value="">—</option>' in html
    saved = post_form(client, form, {"name": "Site", "amount": "1,200.5 EUR", "stage": "new"})
    assert saved.status_code == 200
    deal = db.execute(select(Record).where(Record.title == "Site")).scalar_one()
    assert value_of(db, deal, "amount") == {"amount": "1200.50", "currency": "EUR"}
    assert value_of(db, deal, "stage") == "new"


def test_duplicate_email_updates_the_existing_contact(app: Flask, crm: Crm, db: Session) -> None:
    existing = crm.save(
        "contacts",
        first_name="Ada",
        emails=["ada@example.com", "ada@home.example"],
        job_title="Engineer",
        lead_source="referral",
    )
    form = make_form(crm)
    before = records_in(db, crm.member.workspace_id)
    values = {"first_name": "Ada", "emails": "ADA@example.com", "phones": "+1 415 555 0100"}
    response = post_form(_client(app), form, values)
    assert response.status_code == 200
    db.expire_all()
    assert records_in(db, crm.member.workspace_id) == before
    # Added to, never cleared: other addresses, the job title and the lead source stay.
    assert value_of(db, existing, "emails") == ["ada@example.com", "ada@home.example"]
    assert value_of(db, existing, "phones") == ["+14155550100"]
    assert value_of(db, existing, "job_title") == "Engineer"
    assert value_of(db, existing, "lead_source") == "referral"
    last = db.execute(
        select(AuditEntry).where(AuditEntry.record_id == existing.id).order_by(AuditEntry.id.desc())
    ).scalars()
    assert next(iter(last)).summary == "Updated from web form “Contact us”"


# ------------------------------------------------------------------------------ defences


def test_honeypot_is_thanked_and_nothing_is_written(app: Flask, crm: Crm, db: Session) -> None:
    form = make_form(crm)
    before = stored_counts(db)
    response = post_form(_client(app), form, VALID, extra={"website": "http://spam.example"})
    assert response.status_code == 200
    assert "Thanks, we will call you back." in response.get_data(as_text=True)
    assert stored_counts(db) == before


def test_rate_limit_per_client_answers_429(app: Flask, crm: Crm, db: Session) -> None:
    app.config["FORMS_RATE_LIMIT"] = 2
    form = make_form(crm)
    client = _client(app)
    token = page_token(client, form)
    for n in range(2):
        values = {**VALID, "emails": f"lead{n}@example.com"}
        assert post_form(client, form, values, token=token).status_code == 200
    before = stored_counts(db)
    refused = post_form(client, form, {**VALID, "emails": "lead9@example.com"}, token=token)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many submissions" in refused.get_data(as_text=True)
    assert stored_counts(db) == before
    # Another client address has its own budget.
    other = post_form(
        client,
        form,
        {**VALID, "emails": "lead9@example.com"},
        token=token,
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other.status_code == 200


def test_rate_limit_reads_only_the_trusted_proxy_hop(app: Flask, crm: Crm) -> None:
    app.config.update(FORMS_RATE_LIMIT=1, FORMS_PROXY_HOPS=1)
    form = make_form(crm)
    client = _client(app)
    token = page_token(client, form)

    def send(forwarded: str, email: str) -> int:
        values = {**VALID, "emails": email}
        headers = {"X-Forwarded-For": forwarded}
        return int(post_form(client, form, values, token=token, headers=headers).status_code)

    assert send("198.51.100.1, 203.0.113.9", "a@example.com") == 200
    # A forged left-hand entry does not give the same client a fresh budget.
    assert send("198.51.100.2, 203.0.113.9", "b@example.com") == 429
    assert send("203.0.113.10", "c@example.com") == 200


def test_form_token_is_required_signed_fresh_and_tied_to_the_form(
    app: Flask, crm: Crm, db: Session
) -> None:
    form = make_form(crm)
    other = make_form(crm, name="Newsletter", spec=[("emails", "", True)])
    client = _client(app)
    with app.test_request_context():
        other_token = form_token(other.public_id)
        good = form_token(form.public_id)
    before = stored_counts(db)
    for token in ["", "forged", good[:-2] + "xx", other_token]:
        response = post_form(client, form, VALID, token=token)
        assert response.status_code == 403, token
        html = response.get_data(as_text=True)
        assert "send the form again" in html
        # Shown again with the visitor's values and a fresh token.
        assert 'value="Lovelace"' in html and token_of(html) != token
        assert stored_counts(db) == before
    app.config["FORMS_TOKEN_MAX_AGE_SECONDS"] = 1
    time.sleep(2.1)
    assert post_form(client, form, VALID, token=good).status_code == 403
    assert stored_counts(db) == before


def test_oversized_body_is_413_and_writes_nothing(app: Flask, crm: Crm, db: Session) -> None:
    app.config["FORMS_MAX_BODY_BYTES"] = 4096
    form = make_form(crm)
    client = _client(app)
    before = stored_counts(db)
    response = post_form(client, form, {**VALID, "job_title": "x" * 5000})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert stored_counts(db) == before


def test_missing_secret_key_makes_forms_unavailable(app: Flask, crm: Crm) -> None:
    form = make_form(crm)
    app.config["SECRET_KEY"] = None
    assert _client(app).get(f"/forms/{form.public_id}").status_code == 503


# ------------------------------------------------------------------------------ tenants


def test_a_form_of_one_workspace_never_writes_into_another(
    app: Flask, crm: Crm, db: Session
) -> None:
    rival = resolve_member(db, "rival.test", "boss@rival.test", is_consumer=False)
    db.flush()
    rival_crm = Crm(db, rival, folders_by_key(db, rival.workspace_id))
    rival_contact = rival_crm.save("contacts", first_name="Ada", emails="ada@example.com")
    rival_before = records_in(db, rival.workspace_id)
    form = make_form(crm)
    assert post_form(_client(app), form, {**VALID, "job_title": "Spy"}).status_code == 200
    db.expire_all()
    # Same address in the rival workspace: a new contact here, nothing touched there.
    mine = _contact(db, crm.member.workspace_id, "ada@example.com")
    assert mine.id != rival_contact.id
    assert records_in(db, rival.workspace_id) == rival_before
    assert value_of(db, rival_contact, "job_title") is None
    rival_audit = db.execute(
        select(AuditEntry).where(
            AuditEntry.workspace_id == rival.workspace_id, AuditEntry.action == "web_form_submit"
        )
    ).all()
    assert rival_audit == []
