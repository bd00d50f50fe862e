"""Homepage, contextual (open message) and compose triggers."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from flask import Blueprint

from addon.auth.roles import can, record_scope
from addon.cards.records import error_card
from addon.cards.responses import trigger_card
from addon.cards.sidebar import homepage_card, message_card
from addon.cards.widgets import card, decorated, esc, paragraph, section
from addon.crm.records import find_contacts_on_thread, recent_records, recently_created
from addon.crm.sidebar import build_message_context
from addon.deferred import defer
from addon.gmail.addresses import canonical_email
from addon.gmail.client import GmailError, MessageMeta, run_in_background
from addon.ledger.opens import check_open, record_open_later
from addon.web.events import AddonRequest, addon_endpoint, mailbox_for
from addon.web.view_actions import homepage_views

bp = Blueprint("triggers", __name__)


@bp.post("/homepage")
@addon_endpoint
def homepage(req: AddonRequest) -> dict[str, Any]:
    """The card shown when no message is open."""
    member = req.member
    if not can(member, "view"):
        return trigger_card(error_card("Inbox CRM", "Your role does not allow viewing records."))
    views, more_views = homepage_views(req.session, member)
    visible = record_scope(req.session, member)
    return trigger_card(
        homepage_card(
            req.actions,
            member,
            recent=recent_records(req.session, member, scope=visible),
            created=recently_created(req.session, member.workspace_id, scope=visible),
            views=views,
            more_views=more_views,
        )
    )


def _start_reading_message(event: dict[str, Any]) -> Future[MessageMeta] | None:
    # The Gmail round trip is the slowest step of the contextual trigger; it starts
    # while the user's token is verified and the member is loaded.
    message_id = str(event["gmail"].get("messageId") or "") if event.get("gmail") else ""
    if not message_id:
        return None
    return run_in_background(mailbox_for(event).get_message_metadata, message_id)


@bp.post("/gmail/message")
@addon_endpoint(prefetch=_start_reading_message)
def gmail_message(req: AddonRequest) -> dict[str, Any]:
    """The contextual card for the open message."""
    if req.prefetched is None:
        return trigger_card(error_card("Inbox CRM", "No message is open."))
    if not can(req.member, "view"):
        return trigger_card(error_card("Inbox CRM", "Your role does not allow viewing records."))
    try:
        meta: MessageMeta = req.prefetched.result()
    except GmailError as exc:
        return trigger_card(
            error_card("Could not read this message", f"{exc}. Try reopening the message.")
        )
    # The open message and its thread enter the email ledger (links, stats). When the
    # ledger has them already that is one statement; otherwise reading the thread and
    # recording it is deferred past the answer (it costs several times the whole card),
    # and the card shows the participants' records found by address meanwhile.
    opened = check_open(req.session, req.member, meta)
    if opened.needs_recording:
        reader = req.mailbox().get_thread_metadata
        defer(record_open_later(req.member.id, meta, reader), "record an opened thread")
    context = build_message_context(
        req.session,
        req.member,
        thread_id=meta.thread_id or req.thread_id(),
        headers=meta.headers,
        conversation_id=opened.conversation_id,
        scope=record_scope(req.session, req.member),
    )
    return trigger_card(message_card(req.actions, context, locale=req.locale, tz=req.timezone))


@bp.post("/gmail/compose")
@addon_endpoint
def gmail_compose(req: AddonRequest) -> dict[str, Any]:
    """The compose card: which recipients of the draft are already in the CRM."""
    recipients: list[str] = []
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        value = req.gmail.get(key) or []
        if isinstance(value, list):
            recipients += [e for e in (canonical_email(str(v)) for v in value) if e]
    if not can(req.member, "view"):
        return trigger_card(error_card("Inbox CRM", "Your role does not allow viewing records."))
    known, _linked = find_contacts_on_thread(
        req.session,
        req.member.workspace_id,
        recipients,
        "",
        scope=record_scope(req.session, req.member),
    )
    widgets = [
        decorated(
            esc(known[email].title if email in known else email),
            bottom=esc(email),
            icon="PERSON" if email in known else "EMAIL",
        )
        for email in dict.fromkeys(recipients)
    ] or [paragraph("Add recipients to the draft to see them in your CRM.")]
    return trigger_card(card("Recipients in Inbox CRM", [section(widgets[:90])], name="compose"))
