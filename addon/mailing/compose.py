"""Building the message of one campaign recipient: render the template, then the RFC 822 bytes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr

from addon.crm.models import Member
from addon.gmail.addresses import canonical_email
from addon.mailing.mime import build_message
from addon.mailing.models import Campaign, CampaignRecipient, MailTemplate
from addon.mailing.quota import MAX_RECIPIENTS_PER_MESSAGE
from addon.mailing.templates import CompiledTemplate, MissingValues, Rendered, compile_template
from addon.mailing.unsubscribe import unsubscribe_url

_SPLIT_RE = re.compile(r"[,;\s]+")


class CampaignError(ValueError):
    """A campaign that cannot be created, started or sent as asked; the message says why."""


def parse_copies(raw: str, what: str) -> list[str]:
    """Canonical addresses of a cc or bcc field (commas, semicolons or spaces between)."""
    found: list[str] = []
    for part in _SPLIT_RE.split(raw or ""):
        if not part:
            continue
        email = canonical_email(part)
        if email is None:
            raise CampaignError(f"“{part}” in {what} is not an email address")
        if email not in found:
            found.append(email)
    return found


def recipients_per_message(campaign: Campaign) -> int:
    """To + cc + bcc of each message of the campaign (what the quota counts)."""
    count = 1 + len(parse_copies(campaign.cc, "Cc")) + len(parse_copies(campaign.bcc, "Bcc"))
    if count > MAX_RECIPIENTS_PER_MESSAGE:
        raise CampaignError(
            f"each message would have {count} recipients; Gmail allows at most "
            f"{MAX_RECIPIENTS_PER_MESSAGE} (to + cc + bcc)"
        )
    return count


def new_message_id(campaign_id: int, sender_email: str) -> str:
    """A fresh RFC 822 Message-ID in the sender's domain."""
    domain = sender_email.rpartition("@")[2] or "inbox-crm.invalid"
    return f"<mm.{campaign_id}.{secrets.token_hex(12)}@{domain}>"


def sender_header(member: Member) -> str:
    """The From header of the member's mail."""
    return formataddr((member.name, member.email)) if member.name else member.email


@dataclass
class Composer:
    """Renders and builds campaign messages, compiling each template once."""

    base_url: str
    secret: str
    _compiled: dict[int, CompiledTemplate] = field(default_factory=dict)

    def compiled(self, template: MailTemplate) -> CompiledTemplate:
        """The template, compiled (cached by id)."""
        found = self._compiled.get(template.id)
        if found is None:
            found = compile_template(template.subject, template.body_text, template.body_html)
            self._compiled[template.id] = found
        return found

    def render(
        self, template: MailTemplate, values: Mapping[str, str | None]
    ) -> Rendered | MissingValues:
        """The template rendered with one recipient's values."""
        return self.compiled(template).render(values)

    def build(
        self,
        *,
        member: Member,
        campaign: Campaign,
        recipient: CampaignRecipient,
        rendered: Rendered,
        date: datetime,
        to: str | None = None,
        subject_prefix: str = "",
    ) -> bytes:
        """The raw message of one recipient (or of a test copy sent `to` someone else)."""
        test = to is not None
        # A test copy's link names no recipient, so following it unsubscribes no one.
        link = unsubscribe_url(
            self.base_url, self.secret, recipient.workspace_id, 0 if test else recipient.id
        )
        return build_message(
            sender=sender_header(member),
            to=to or recipient.email,
            cc=[] if test else parse_copies(campaign.cc, "Cc"),
            bcc=[] if test else parse_copies(campaign.bcc, "Bcc"),
            subject=subject_prefix + rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(campaign.id, member.email) if test else recipient.message_id,
            unsubscribe_url=link,
            date=date,
        )
