"""Signed unsubscribe links: confirmation page, one-click POST, tampered tokens, tenants."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.crm.workspaces import resolve_member
from addon.mailing.mime import build_message
from addon.mailing.models import (
    QUEUED,
    SENT,
    SKIPPED,
    Campaign,
    CampaignRecipient,
    MailSuppression,
    MailTemplate,
    email_hash,
    is_suppressed,
)
from addon.mailing.unsubscribe import (
    UnsubscribeRefused,
    masked,
    read_token,
    unsubscribe_token,
    unsubscribe_url,
)
from tests.cardcheck import BASE_URL
from tests.crmdata import Crm

SECRET = "test-secret"


@dataclass
class Sent:
    """A campaign of one member with some recipients."""

    member: Member
    campaign: Campaign
    recipients: dict[str, CampaignRecipient]


def make_campaign(db: Session, member: Member, emails: dict[str, str]) -> Sent:
    template = MailTemplate(
        workspace_id=member.workspace_id,
        owner_member_id=member.id,
        name="Hello",
        subject="Hi {{first_name|there}}",
        body_text="Hello",
    )
    db.add(template)
    db.flush()
    campaign = Campaign(
        workspace_id=member.workspace_id,
        sender_member_id=member.id,
        template_id=template.id,
        name="Spring",
        status="running",
    )
    db.add(campaign)
    db.flush()
    recipients = {}
    for email, state in emails.items():
        recipient = CampaignRecipient(
            workspace_id=member.workspace_id,
            campaign_id=campaign.id,
            email=email,
            state=state,
            message_id=f"<{email.replace('@', '.')}.{campaign.id}@{member.workspace.domain}>",
        )
        db.add(recipient)
        recipients[email] = recipient
    db.flush()
    return Sent(member, campaign, recipients)


@pytest.fixture
def sent(crm: Crm, db: Session) -> Sent:
    return make_campaign(db, crm.member, {"ada@client.test": QUEUED, "bo@client.test": SENT})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def link_path(recipient: CampaignRecipient) -> str:
    url = unsubscribe_url(BASE_URL, SECRET, recipient.workspace_id, recipient.id)
    assert url.startswith(f"{BASE_URL}/u/")
    return url.removeprefix(BASE_URL)


def suppressions(db: Session, workspace_id: int) -> list[MailSuppression]:
    db.expire_all()
    return list(
        db.scalars(select(MailSuppression).where(MailSuppression.workspace_id == workspace_id))
    )


def test_token_round_trip_and_tampering() -> None:
    token = unsubscribe_token(SECRET, 3, 41)
    assert read_token(SECRET, token) == (3, 41)
    payload, _, signature = token.rpartition(".")
    for bad in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        unsubscribe_token(SECRET, 3, 42).rpartition(".")[0] + "." + signature,
        unsubscribe_token("another-secret", 3, 41),
        "x" * 300,
        "",
    ):
        with pytest.raises(UnsubscribeRefused):
            read_token(SECRET, bad)
    assert payload


def test_get_shows_a_confirmation_and_changes_nothing(
    client: FlaskClient, sent: Sent, db: Session
) -> None:
    recipient = sent.recipients["ada@client.test"]
    response = client.get(link_path(recipient))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "a•••@client.test" in page and "ada@client.test" not in page
    assert '<form method="post">' in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert suppressions(db, sent.member.workspace_id) == []
    db.refresh(recipient)
    assert recipient.state == QUEUED


def test_one_click_post_suppresses_at_once_and_drops_the_queued_message(
    client: FlaskClient, sent: Sent, db: Session
) -> None:
    recipient = sent.recipients["ada@client.test"]
    response = client.post(
        link_path(recipient),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    rows = suppressions(db, sent.member.workspace_id)
    assert [(r.email, r.reason, r.campaign_id) for r in rows] == [
        ("ada@client.test", "unsubscribed", sent.campaign.id)
    ]
    assert rows[0].email_hash == email_hash("ada@client.test")
    db.refresh(recipient)
    assert (recipient.state, recipient.skip_reason) == (SKIPPED, "unsubscribed")
    assert is_suppressed(db, sent.member.workspace_id, ["ADA@client.test", "x@y.test"]) == {
        "ADA@client.test"
    }
    # Pressing again (or a client retrying) is harmless.
    again = client.post(link_path(recipient))
    assert again.status_code == 200
    assert len(suppressions(db, sent.member.workspace_id)) == 1


def test_unsubscribing_after_the_send_keeps_the_sent_state(
    client: FlaskClient, sent: Sent, db: Session
) -> None:
    recipient = sent.recipients["bo@client.test"]
    assert client.post(link_path(recipient)).status_code == 200
    db.refresh(recipient)
    assert recipient.state == SENT
    assert [r.email for r in suppressions(db, sent.member.workspace_id)] == ["bo@client.test"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_token_answers_400_with_a_reason(
    client: FlaskClient, sent: Sent, db: Session, method: str
) -> None:
    path = link_path(sent.recipients["ada@client.test"])
    tampered = path[:-2] + ("xy" if not path.endswith("xy") else "zz")
    response = getattr(client, method)(tampered)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Link not valid" in page and "cut or changed" in page
    forged = "/u/" + unsubscribe_token("not-our-secret", sent.member.workspace_id, 1)
    assert getattr(client, method)(forged).status_code == 400
    assert suppressions(db, sent.member.workspace_id) == []


def test_a_token_naming_another_workspaces_recipient_is_refused(
    client: FlaskClient, sent: Sent, db: Session
) -> None:
    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    theirs = make_campaign(db, spy, {"target@client.test": QUEUED})
    victim = theirs.recipients["target@client.test"]
    # A genuine signature, but over (our workspace, their recipient): as if mixed up.
    token = unsubscribe_token(SECRET, sent.member.workspace_id, victim.id)
    for method in ("get", "post"):
        response = getattr(client, method)(f"/u/{token}")
        assert response.status_code == 404
        assert "target" not in response.get_data(as_text=True)
    assert suppressions(db, spy.workspace_id) == []
    assert suppressions(db, sent.member.workspace_id) == []
    db.refresh(victim)
    assert victim.state == QUEUED


def test_suppression_belongs_to_the_recipients_workspace_only(
    client: FlaskClient, sent: Sent, db: Session
) -> None:
    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    theirs = make_campaign(db, spy, {"ada@client.test": QUEUED})
    assert client.post(link_path(theirs.recipients["ada@client.test"])).status_code == 200
    assert [r.email for r in suppressions(db, spy.workspace_id)] == ["ada@client.test"]
    assert suppressions(db, sent.member.workspace_id) == []
    db.refresh(sent.recipients["ada@client.test"])
    assert sent.recipients["ada@client.test"].state == QUEUED


def test_unknown_recipient_answers_404(client: FlaskClient, sent: Sent) -> None:
    token = unsubscribe_token(SECRET, sent.member.workspace_id, 2**31 + 5)
    assert client.post(f"/u/{token}").status_code == 404


def test_the_message_carries_the_link_in_its_headers(sent: Sent) -> None:
    recipient = sent.recipients["ada@client.test"]
    url = unsubscribe_url(BASE_URL, SECRET, recipient.workspace_id, recipient.id)
    raw = build_message(
        sender=sent.member.email,
        to=recipient.email,
        cc=[],
        bcc=[],
        subject="Hi",
        text="Hello",
        html=None,
        message_id=recipient.message_id,
        unsubscribe_url=url,
    )
    assert f"List-Unsubscribe: <{url}>".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_masked_addresses() -> None:
    assert masked("ada@client.test") == "a•••@client.test"
    assert masked("nobody") == "•••"
