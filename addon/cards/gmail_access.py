"""The Gmail access card: what the member granted, the sync status, connect and revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from addon.auth.grant_models import ACTIVE, GoogleGrant
from addon.auth.grants import BOTH, SEND, SYNC, allows
from addon.cards.widgets import (
    Actions,
    button,
    button_list,
    card,
    decorated,
    error_line,
    esc,
    paragraph,
    section,
)

Card = dict[str, Any]

_WHY = (
    "Inbox CRM works inside Gmail with the access Gmail gives every add-on, which covers the "
    "open message only. Two features need more, asked for once through Google's consent "
    "page and kept encrypted:"
)
_SEND_WHY = (
    "<b>Sending</b> (mail merge): permission to send mail as you (gmail.send). It cannot "
    "read your mailbox."
)
_SYNC_WHY = (
    "<b>Mailbox sync</b>: read-only access to your mail, so the messages of the last days "
    "and every new one count in your contacts' email stats and link to their records."
)


def _when(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _granted(grant: GoogleGrant | None, purpose: str) -> str:
    if allows(grant, purpose):
        return "Granted"
    if grant is not None and grant.status != ACTIVE:
        return f"Not usable ({grant.status})"
    return "Not granted"


def gmail_access_card(
    actions: Actions,
    grant: GoogleGrant | None,
    *,
    can_send: bool,
    can_sync: bool,
    role: str,
    tz: str = "UTC",
) -> Card:
    """The member's Gmail access: granted features, account, errors, sync status, buttons."""
    status: list[dict[str, Any]] = []
    connected = grant is not None and grant.refresh_token is not None
    if not connected:
        status += [paragraph(_WHY), paragraph(_SEND_WHY), paragraph(_SYNC_WHY)]
    if grant is not None and connected:
        status.append(decorated(esc(grant.google_email), top="Google account", icon="EMAIL"))
        status.append(decorated(_granted(grant, SEND), top="Sending", icon="EMAIL"))
        status.append(decorated(_granted(grant, SYNC), top="Mailbox sync", icon="CLOCK"))
        if grant.status != ACTIVE:
            status.append(paragraph("Google no longer accepts this access: connect again."))
    if grant is not None and grant.last_error:
        status.append(error_line(grant.last_error))

    sync: list[dict[str, Any]] = []
    if grant is not None and (grant.last_sync_at or grant.last_sync_error or allows(grant, SYNC)):
        sync.append(decorated(esc(_when(grant.last_sync_at, tz)), top="Last sync"))
        sync.append(decorated(f"{grant.messages_imported:,}", top="Messages imported"))
        if grant.last_sync_error:
            sync.append(error_line(f"Last sync failed: {grant.last_sync_error}"))

    buttons: list[dict[str, Any]] = []
    if can_send and can_sync and not (allows(grant, SEND) and allows(grant, SYNC)):
        buttons.append(
            button("Connect Gmail", actions.on_click("gmail_connect", purpose=BOTH), filled=True)
        )
    if can_send and not allows(grant, SEND):
        buttons.append(button("Sending only", actions.on_click("gmail_connect", purpose=SEND)))
    if can_sync and not allows(grant, SYNC):
        buttons.append(button("Sync only", actions.on_click("gmail_connect", purpose=SYNC)))
    if grant is not None and grant.refresh_token is not None:
        buttons.append(button("Revoke", actions.on_click("gmail_revoke")))
    notes: list[dict[str, Any]] = []
    if not can_send:
        notes.append(
            paragraph(f"Your role ({esc(role)}) does not allow sending mail from Inbox CRM.")
        )
    if not can_sync:
        notes.append(paragraph(f"Your role ({esc(role)}) does not allow mailbox sync."))
    if buttons:
        notes.append(button_list(*buttons))
    return card(
        "Gmail access",
        [section(status, "Access"), section(sync, "Mailbox sync"), section(notes)],
        name="gmail_access",
    )
