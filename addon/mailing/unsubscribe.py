"""Signed per-recipient unsubscribe links and what following one does.

A link names the workspace and the campaign recipient, signed with the app's SECRET_KEY
(itsdangerous, its own salt). It never expires: RFC 8058 one-click links are followed
whenever the reader presses "Unsubscribe", months later too. Unsubscribing suppresses the
recipient's address in the recipient's workspace at once (campaigns resolved later skip
it) and takes the recipient out of its campaign if it is still waiting in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from addon.mailing.models import QUEUED, SKIPPED, UNSUBSCRIBED, CampaignRecipient, suppress

_SALT = "inbox-crm/unsubscribe"
MAX_TOKEN_CHARS = 200


class UnsubscribeRefused(ValueError):
    """A link that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class Unsubscribed:
    """The outcome of an unsubscribe: the address, and whether its queued mail was dropped."""

    email: str
    dropped_from_queue: bool


def _serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise UnsubscribeRefused("unsubscribe links need the SECRET_KEY setting")
    return URLSafeSerializer(secret, salt=_SALT)


def unsubscribe_token(secret: str, workspace_id: int, recipient_id: int) -> str:
    """The signed token naming one campaign recipient of a workspace."""
    return str(_serializer(secret).dumps([workspace_id, recipient_id]))


def unsubscribe_url(base_url: str, secret: str, workspace_id: int, recipient_id: int) -> str:
    """The public one-click unsubscribe link of one campaign recipient."""
    token = unsubscribe_token(secret, workspace_id, recipient_id)
    return f"{base_url.rstrip('/')}/u/{token}"


def read_token(secret: str, token: str) -> tuple[int, int]:
    """(workspace id, recipient id) of a genuine token, or UnsubscribeRefused."""
    if len(token) > MAX_TOKEN_CHARS:
        raise UnsubscribeRefused("this unsubscribe link is not valid")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise UnsubscribeRefused(
            "this unsubscribe link is not valid (it may have been cut or changed)"
        ) from None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in data)
    ):
        raise UnsubscribeRefused("this unsubscribe link is not valid")
    return data[0], data[1]


def find_recipient(session: Session, workspace_id: int, recipient_id: int) -> CampaignRecipient:
    """The recipient a token names, in the token's workspace only."""
    recipient = session.get(CampaignRecipient, recipient_id) if 0 < recipient_id < 2**31 else None
    if recipient is None or recipient.workspace_id != workspace_id:
        # A recipient of another workspace is answered exactly like a missing one.
        raise UnsubscribeRefused("this unsubscribe link no longer points at a message we sent")
    return recipient


def unsubscribe(session: Session, workspace_id: int, recipient_id: int) -> Unsubscribed:
    """Suppress the recipient's address and drop its queued message; flushes only."""
    recipient = find_recipient(session, workspace_id, recipient_id)
    suppress(session, workspace_id, recipient.email, UNSUBSCRIBED, recipient.campaign_id)
    # Conditional on the state in the database: a worker that claimed the message first
    # sends it; one that has not yet can no longer claim it.
    result = session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.id == recipient.id, CampaignRecipient.state == QUEUED)
        .values(state=SKIPPED, skip_reason="unsubscribed")
        .execution_options(synchronize_session="fetch")
    )
    dropped = bool(getattr(result, "rowcount", 0))
    return Unsubscribed(recipient.email, dropped)


def masked(email: str) -> str:
    """An address shown on a public page without spelling it out (a•••@client.test)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"
