"""Campaign services: creation checks, resolving recipients with exclusions, the life cycle,
and progress with the quota forecast."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import RecordEmail
from addon.mailing.campaigns import (
    DUPLICATE,
    NO_EMAIL,
    SUPPRESSED,
    CampaignError,
    campaign_progress,
    cancel_campaign,
    create_campaign,
    pause_campaign,
    resume_campaign,
    start_campaign,
    start_due,
)
from addon.mailing.models import (
    CANCELLED,
    COMPLETED,
    PAUSED,
    QUEUED,
    RUNNING,
    SCHEDULED,
    SKIPPED,
    Campaign,
    CampaignRecipient,
    suppress,
)
from addon.mailing.quota import MIN_SEND_INTERVAL, WINDOW
from tests.crmdata import Crm
from tests.mailing_support import START, make_template, seed_contacts


def _campaign(
    db: Session, crm: Crm, subject: str = "Hi {{first_name}}", **options: Any
) -> Campaign:
    template = make_template(db, crm.member, subject=subject, text="Hello {{first_name|there}}")
    return create_campaign(
        db,
        crm.member,
        name="Launch",
        template_id=template.id,
        folder_id=crm.folders["contacts"].id,
        **options,
    )


def test_creation_refuses_bad_input_with_a_reason(db: Session, crm: Crm) -> None:
    template = make_template(db, crm.member)
    folder = crm.folders["contacts"].id
    with pytest.raises(CampaignError, match="not an email address"):
        create_campaign(
            db, crm.member, name="x", template_id=template.id, folder_id=folder, cc="boss@"
        )
    many = ", ".join(f"b{i}@acme.test" for i in range(100))
    with pytest.raises(CampaignError, match="at most 100"):
        create_campaign(
            db, crm.member, name="x", template_id=template.id, folder_id=folder, bcc=many
        )
    with pytest.raises(CampaignError, match="choose the view"):
        create_campaign(db, crm.member, name="x", template_id=template.id)
    with pytest.raises(CampaignError, match="template does not exist"):
        create_campaign(db, crm.member, name="x", template_id=template.id + 999, folder_id=folder)
    with pytest.raises(CampaignError, match="name"):
        create_campaign(db, crm.member, name="  ", template_id=template.id, folder_id=folder)


def test_resolving_excludes_no_email_suppressed_duplicates_and_missing_values(
    db: Session, crm: Crm
) -> None:
    seed_contacts(db, crm.member, crm.folders["contacts"], 3)
    no_mail = crm.save("contacts", first_name="Nomail")
    nameless = crm.save("contacts", last_name="Nameless", emails="nameless@client.test")
    twin = crm.save("contacts", first_name="Twin")
    # A second record with person0's address (written directly: forms warn about it).
    db.add(
        RecordEmail(
            workspace_id=crm.member.workspace_id, record_id=twin.id, email="person0@client.test"
        )
    )
    suppress(db, crm.member.workspace_id, "Person1@Client.test", "unsubscribed")
    campaign = _campaign(db, crm, cc="boss@acme.test")
    plan = start_campaign(db, campaign, START)
    assert plan is not None
    assert sorted(p.email for p in plan.recipients) == [
        "person0@client.test",
        "person2@client.test",
    ]
    reasons = {(e.record_id, e.reason) for e in plan.excluded}
    assert (no_mail.id, NO_EMAIL) in reasons
    assert (twin.id, DUPLICATE) in reasons
    assert (nameless.id, "missing merge value: first_name") in reasons
    assert any(e.reason == SUPPRESSED and e.email == "person1@client.test" for e in plan.excluded)
    rows = list(
        db.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id))
    )
    queued = [r for r in rows if r.state == QUEUED]
    skipped = {r.email: r.skip_reason for r in rows if r.state == SKIPPED}
    assert skipped == {
        "person1@client.test": SUPPRESSED,
        "nameless@client.test": "missing merge value: first_name",
    }
    # Each message goes to one person plus the cc: two recipients for the quota.
    assert {r.recipients_count for r in queued} == {2}
    assert all(
        r.message_id.startswith("<mm.") and r.message_id.endswith("@acme.test>") for r in rows
    )
    assert len({r.message_id for r in rows}) == len(rows)
    assert {r.rendered_subject for r in queued} == {"Hi Person0", "Hi Person2"}
    assert campaign.status == RUNNING
    with pytest.raises(CampaignError, match="already resolved"):
        campaign.status = "draft"
        start_campaign(db, campaign, START)


def test_progress_forecasts_with_the_cap(db: Session, crm: Crm) -> None:
    workspace = crm.member.workspace
    workspace.settings = {**(workspace.settings or {}), "daily_send_cap": 2}
    seed_contacts(db, crm.member, crm.folders["contacts"], 3)
    campaign = _campaign(db, crm)
    start_campaign(db, campaign, START)
    progress = campaign_progress(db, campaign, START)
    assert (progress.sent, progress.queued, progress.failed, progress.skipped) == (0, 3, 0, 0)
    assert progress.next_send_at == START
    # Two fit today (0.4 s apart); the third waits for the first to leave the window.
    assert progress.forecast_finish_at == START + WINDOW
    assert (progress.quota_used, progress.quota_cap) == (0, 2)
    assert MIN_SEND_INTERVAL < WINDOW


def test_schedule_pause_resume_and_cancel(db: Session, crm: Crm) -> None:
    seed_contacts(db, crm.member, crm.folders["contacts"], 2)
    campaign = _campaign(db, crm)
    later = START + timedelta(hours=3)
    assert start_campaign(db, campaign, START, scheduled_at=later) is None
    assert campaign.status == SCHEDULED
    assert start_due(db, START + timedelta(hours=1)) == []
    pause_campaign(db, campaign, START, "paused by rep@acme.test")
    assert campaign.status == PAUSED
    resume_campaign(db, campaign, START)
    assert campaign.status == SCHEDULED
    assert start_due(db, later) == [campaign]
    assert campaign.status == RUNNING and campaign.started_at == later
    pause_campaign(db, campaign, later)
    with pytest.raises(CampaignError, match="cannot be paused"):
        pause_campaign(db, campaign, later)
    resume_campaign(db, campaign, later)
    cancel_campaign(db, campaign, later)
    assert campaign.status == CANCELLED
    states = set(
        db.scalars(
            select(CampaignRecipient.skip_reason).where(
                CampaignRecipient.campaign_id == campaign.id
            )
        )
    )
    assert states == {"campaign cancelled"}
    with pytest.raises(CampaignError, match="cannot be cancelled"):
        cancel_campaign(db, campaign, later)


def test_a_campaign_without_recipients_completes_at_once(db: Session, crm: Crm) -> None:
    campaign = _campaign(db, crm)
    start_campaign(db, campaign, START)
    assert campaign.status == COMPLETED
    assert campaign.status_reason == "no recipient to send to"
