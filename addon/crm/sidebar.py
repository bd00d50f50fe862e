"""What the sidebar shows beside an open message: who is in it and what the CRM knows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from addon.crm.models import Member, Record
from addon.crm.records import (
    RecordDetail,
    find_company_by_domain,
    find_contacts_by_email,
    find_contacts_on_thread,
    load_summary,
    open_deals_on_thread,
)
from addon.gmail.addresses import (
    Address,
    canonical_email,
    decode_header_text,
    email_domain,
    is_automated_sender,
    is_free_mail,
    is_mailing_list,
    parse_address_list,
    registrable_domain,
    split_display_name,
)


@dataclass
class Participant:
    """One address on the message and what the CRM knows of it."""

    address: Address
    role: str  # "from", "to" or "cc"
    contact: Record | None = None
    automated: bool = False

    @property
    def suggestible(self) -> bool:
        """Whether the sidebar may offer to add this person as a contact."""
        return self.contact is None and not self.automated and bool(self.address.email)


@dataclass
class CompanySuggestion:
    """The company for a new contact: an existing record or a name and domain to create."""

    domain: str
    existing: Record | None = None
    suggested_name: str = ""


@dataclass
class MessageContext:
    """Everything the contextual card needs, gathered in a fixed number of statements."""

    thread_id: str
    subject: str
    user_is_sender: bool
    focus: list[Participant]
    others: list[Participant]
    detail: RecordDetail | None = None
    open_deals: list[tuple[Record, Any, Any]] = field(default_factory=list)
    company: CompanySuggestion | None = None
    linked_ids: set[int] = field(default_factory=set)
    mailing_list: bool = False
    # The ledger conversation of the thread (None while it is not recorded).
    conversation_id: int | None = None
    # Open deals (of open_deals) linked to this thread.
    linked_deal_ids: set[int] = field(default_factory=set)

    @property
    def deal_suggestions(self) -> bool:
        """Whether to ask which deal the thread is about: several open, none linked.

        Automatic linking links a record's only open deal; with several it links none and
        the card offers them instead.
        """
        return len(self.open_deals) > 1 and not self.linked_deal_ids

    @property
    def primary(self) -> Participant | None:
        """The person the card is about."""
        return self.focus[0] if self.focus else None


def _company_name_from_domain(domain: str) -> str:
    label = domain.split(".", 1)[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)


def build_message_context(
    session: Session,
    member: Member,
    *,
    thread_id: str,
    headers: Mapping[str, str],
    free_mail_extra: frozenset[str] = frozenset(),
    conversation_id: int | None = None,
    scope: ColumnElement[bool] | None = None,
) -> MessageContext:
    """Match the message's participants to CRM records and choose whom the card is about.

    `conversation_id` is the thread's ledger conversation, so links made from a
    teammate's copy of the thread count as links of this one. `scope`
    (addon.auth.roles.record_scope) leaves out contacts and deals the member may not see.
    """
    own_domain = member.workspace.domain if not member.workspace.is_consumer else ""
    mailing_list = is_mailing_list(headers)
    senders = parse_address_list(headers.get("from"))
    participants: list[Participant] = []
    seen: set[str] = set()
    for role, header in (("from", "from"), ("to", "to"), ("cc", "cc")):
        for address in senders if role == "from" else parse_address_list(headers.get(header)):
            if not address.email or address.email in seen:
                continue
            seen.add(address.email)
            automated = is_automated_sender(address.email) or (role == "from" and mailing_list)
            participants.append(Participant(address, role, automated=automated))
    contacts, linked_ids = find_contacts_on_thread(
        session,
        member.workspace_id,
        [p.address.email for p in participants],
        thread_id,
        conversation_id,
        scope=scope,
    )
    for person in participants:
        person.contact = contacts.get(person.address.email)

    user_is_sender = bool(senders) and senders[0].email == member.email

    # The card is about the people on the other side of the conversation; teammates and
    # the user are listed but not focused on.
    def external(person: Participant) -> bool:
        return person.address.email != member.email and not (
            own_domain and email_domain(person.address.email) == own_domain
        )

    if user_is_sender:
        focus = [p for p in participants if p.role != "from" and external(p)]
    else:
        focus = [p for p in participants if p.role == "from"]
    others = [p for p in participants if p not in focus and p.address.email != member.email]

    context = MessageContext(
        thread_id=thread_id,
        subject=decode_header_text(headers.get("subject", "")),
        user_is_sender=user_is_sender,
        focus=focus,
        others=others,
        mailing_list=mailing_list,
        linked_ids=linked_ids,
        conversation_id=conversation_id,
    )
    primary = context.primary
    if primary is None:
        return context
    if primary.contact is not None:
        context.detail = load_summary(session, primary.contact)
        company_ids = [r.id for r in context.detail.links.get("company", [])]
        context.open_deals, context.linked_deal_ids = open_deals_on_thread(
            session, [primary.contact.id, *company_ids], thread_id, conversation_id, scope=scope
        )
    elif primary.suggestible:
        context.company = suggest_company(session, member, primary.address.email, free_mail_extra)
    return context


def suggest_company(
    session: Session, member: Member, email: str, free_mail_extra: frozenset[str] = frozenset()
) -> CompanySuggestion | None:
    """The company of a business address: matched by registrable domain, else a name to create.

    None for free-mail providers and the workspace's own domain.
    """
    own_domain = member.workspace.domain if not member.workspace.is_consumer else ""
    domain = registrable_domain(email_domain(email))
    if (
        domain is None
        or is_free_mail(email, free_mail_extra)
        or domain == registrable_domain(own_domain or "")
    ):
        return None
    existing = find_company_by_domain(session, member.workspace_id, domain)
    return CompanySuggestion(domain, existing, _company_name_from_domain(domain))


def contact_prefill(
    session: Session, member: Member, email: str, name: str
) -> tuple[dict[str, Any], str | None]:
    """Add-contact form values for an address, and the company domain to create with it."""
    if not email:
        return {}, None
    address = canonical_email(email) or email
    first, last = split_display_name(name, address)
    values: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "emails": [address],
        "lead_source": "email",
    }
    # No company for the user's own address, automated senders, or known contacts.
    if (
        address != canonical_email(email)
        or address == member.email
        or is_automated_sender(address)
        or find_contacts_by_email(session, member.workspace_id, [address])
    ):
        return values, None
    company = suggest_company(session, member, address)
    if company is None:
        return values, None
    values["company"] = company.existing.title if company.existing else company.suggested_name
    return values, None if company.existing else company.domain
