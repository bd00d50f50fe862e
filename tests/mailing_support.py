"""Mail-merge test helpers: seeded contacts, templates, campaigns, fake credentials, a worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from addon.crm.models import FieldDef, FieldValue, Folder, Member, Record, RecordEmail
from addon.gmail.fake_server import FakeGmail, FakeGmailServer, FakeSending
from addon.mailing.campaigns import create_campaign, start_campaign
from addon.mailing.clock import FakeClock
from addon.mailing.models import Campaign, MailTemplate
from addon.mailing.sender import GrantRevoked, gmail_sender_factory
from addon.mailing.worker import Worker, WorkerSettings

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BASE_URL = "https://crm.example.test"
SECRET = "test-secret"


class FakeGrants:
    """Credentials per member, as the OAuth grant store hands them out; revocable."""

    def __init__(self) -> None:
        self.revoked: set[int] = set()

    def __call__(self, session: Session, member: Member, purpose: str = "send") -> Credentials:
        """A bearer token naming the member (the fake Gmail server accepts any token)."""
        if member.id in self.revoked:
            raise GrantRevoked("no sending permission was granted")
        return Credentials(token=f"token-{member.email}")


@pytest.fixture
def sending(gmail: FakeGmail) -> Iterator[FakeSending]:
    """The fake server's sending side, clean for each test."""
    gmail.sending.reset()
    yield gmail.sending
    gmail.sending.reset()


def seed_contacts(
    db: Session, member: Member, folder: Folder, count: int, *, domain: str = "client.test"
) -> list[int]:
    """Contacts with a first name and one address each, written in bulk."""
    fields = {
        f.key: f.id for f in db.scalars(select(FieldDef).where(FieldDef.folder_id == folder.id))
    }
    now = START - timedelta(days=30)
    ids = list(
        db.scalars(
            insert(Record).returning(Record.id, sort_by_parameter_order=True),
            [
                {
                    "workspace_id": member.workspace_id,
                    "folder_id": folder.id,
                    "title": f"Person {i}",
                    "search_key": f"person {i}",
                    "created_by_id": member.id,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
    )
    values = []
    emails = []
    for i, rid in enumerate(ids):
        address = f"person{i}@{domain}"
        values.append(
            {
                "workspace_id": member.workspace_id,
                "record_id": rid,
                "field_id": fields["first_name"],
                "value": f"Person{i}",
                "text_key": f"person{i}",
            }
        )
        values.append(
            {
                "workspace_id": member.workspace_id,
                "record_id": rid,
                "field_id": fields["emails"],
                "value": [address],
                "text_key": f"|{address}|",
            }
        )
        emails.append({"workspace_id": member.workspace_id, "record_id": rid, "email": address})
    db.execute(insert(FieldValue), values)
    db.execute(insert(RecordEmail), emails)
    db.flush()
    return ids


def make_template(
    db: Session,
    member: Member,
    subject: str = "Hello {{first_name|there}}",
    text: str = "Hi {{first_name|there}},\n\nA note from {{sender.name}}.",
    html: str | None = None,
) -> MailTemplate:
    """A template of the member's."""
    template = MailTemplate(
        workspace_id=member.workspace_id,
        owner_member_id=member.id,
        name="Intro",
        subject=subject,
        body_text=text,
        body_html=html,
    )
    db.add(template)
    db.flush()
    return template


def running_campaign(
    db: Session,
    member: Member,
    folder: Folder,
    template: MailTemplate,
    now: datetime = START,
    **options: Any,
) -> Campaign:
    """A campaign over the folder, started (resolved) at `now`."""
    campaign = create_campaign(
        db,
        member,
        name="Spring outreach",
        template_id=template.id,
        folder_id=folder.id,
        **options,
    )
    start_campaign(db, campaign, now)
    db.flush()
    return campaign


def make_worker(
    sessions: sessionmaker[Session],
    server: FakeGmailServer,
    clock: FakeClock,
    grants: FakeGrants | None = None,
    **settings: Any,
) -> Worker:
    """A worker on the fake clock, talking to the fake Gmail server."""
    options = WorkerSettings(base_url=BASE_URL, secret=SECRET, **settings)
    factory = gmail_sender_factory(server.url, grants or FakeGrants(), timeout=5)
    return Worker(sessions, factory, clock, options)
