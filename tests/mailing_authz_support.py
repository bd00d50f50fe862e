"""Mail merge things for the authorization tests: templates and campaigns in both workspaces,
and sending grants for everyone, so each mail merge action can be carried out in full.

The acme.test campaigns are sent by its admin (the member the IDOR and fuzz tests post
as), so those tests reach every handler's code; tests/test_mailing_authz.py covers a
campaign sent by a manager. They are built with the world, since the role matrix compares
the database before and after each call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy.orm import Session

from addon.crm.models import Member, SavedView
from addon.mailing.campaigns import create_campaign, pause_campaign, start_campaign
from addon.mailing.models import Campaign, MailTemplate
from addon.web.mailing_actions import GRANTS_EXTENSION, GrantHooks
from tests.mailing_support import FakeGrants

if TYPE_CHECKING:
    from tests.authz_support import World

SECRET = "rivalsecret"  # as tests.authz_support.SECRET: rival names must never leak


def install_grants(app: Flask) -> FakeGrants:
    """Every member has allowed sending; sends go to the fake Gmail server."""
    store = FakeGrants()
    app.extensions[GRANTS_EXTENSION] = GrantHooks(
        has_send_grant=lambda session, member: member.id not in store.revoked,
        connect_url=lambda member: "https://addon.test/oauth/send/start",
        credentials_for=store,
    )
    return store


def template_of(db: Session, member: Member, name: str = "Intro") -> MailTemplate:
    """A template of the member's workspace that renders for every contact."""
    template = MailTemplate(
        workspace_id=member.workspace_id,
        owner_member_id=member.id,
        name=name,
        subject="Hello {{first_name|there}}",
        body_text="Hi {{first_name|there}},\nfrom {{sender.email}}",
    )
    db.add(template)
    db.flush()
    return template


def campaign_of(
    db: Session, sender: Member, view: SavedView, status: str = "draft", name: str = "Spring"
) -> Campaign:
    """A campaign of the sender's over a contacts view: a draft, running or paused."""
    template = template_of(db, sender, f"{name} template")
    campaign = create_campaign(db, sender, name=name, template_id=template.id, view_id=view.id)
    now = datetime.now(UTC)
    if status in ("running", "paused"):
        start_campaign(db, campaign, now)
    if status == "paused":
        pause_campaign(db, campaign, now, "paused by the sender")
    db.flush()
    return campaign


@dataclass
class MailMerge:
    """acme.test's template and its admin's campaigns in each state; rival.test's."""

    template: MailTemplate
    draft: Campaign
    running: Campaign
    paused: Campaign
    rival_template: MailTemplate
    rival_campaign: Campaign


def build_mail_merge(
    db: Session, admin: Member, view: SavedView, rival_admin: Member, rival_view: SavedView
) -> MailMerge:
    """Mail merge things of both workspaces; rival.test's names contain SECRET."""
    rival = campaign_of(db, rival_admin, rival_view, name=f"{SECRET} run")
    return MailMerge(
        template=template_of(db, admin),
        draft=campaign_of(db, admin, view),
        running=campaign_of(db, admin, view, "running", "Running"),
        paused=campaign_of(db, admin, view, "paused", "Paused"),
        rival_template=db.get_one(MailTemplate, rival.template_id),
        rival_campaign=rival,
    )


def campaign_form(w: World) -> dict[str, str]:
    """The campaign form as an acme.test admin fills it in."""
    return {
        "cmp_name": "Spring",
        "cmp_view": str(w.acme.view.id),
        "cmp_template": str(w.mail.template.id),
    }


def template_form() -> dict[str, str]:
    """The template editor's inputs."""
    return {"tpl_name": "Intro", "tpl_subject": "Hi {{first_name|there}}", "tpl_text": "Hello"}
