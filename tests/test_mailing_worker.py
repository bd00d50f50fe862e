"""The mail-merge worker against the fake Gmail server, on a fake clock."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from addon.crm.models import Folder
from addon.gmail.fake_server import FakeGmailServer, FakeSending
from addon.mailing.clock import FakeClock
from addon.mailing.models import SENT, CampaignRecipient
from tests.crmdata import Crm
from tests.mailing_support import (
    START,
    make_template,
    make_worker,
    running_campaign,
    seed_contacts,
    sending,
)

__all__ = ["sending"]


def test_small_campaign_sends_each_recipient_once(
    app: Flask,
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    folder: Folder = crm.folders["contacts"]
    seed_contacts(db, crm.member, folder, 5)
    campaign = running_campaign(db, crm.member, folder, make_template(db, crm.member))
    db.commit()
    clock = FakeClock(START)
    sending.clock = clock.now
    sending.rate = 2.5
    report = make_worker(session_factory, gmail_server, clock).run(until_done=True)
    assert report.sent == 5
    assert sorted(s.to for s in sending.sent) == [f"person{i}@client.test" for i in range(5)]
    db.expire_all()
    states = db.execute(
        select(CampaignRecipient.state, func.count())
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(CampaignRecipient.state)
    ).all()
    assert states == [(SENT, 5)]
