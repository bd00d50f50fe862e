"""Sending through a member's Gmail: the Sender interface and its Gmail API implementation.

Errors are sorted by what they mean for exactly-once delivery: RateLimited and
RecipientRejected say the message was NOT sent; OutcomeUnknown (5xx, timeouts, lost
connections) says it may have been, so the mailbox is searched before any resend;
GrantRevoked stops the sender's campaigns.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httplib2
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError, RefreshError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.errors import HttpError
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.gmail.client import _messages
from addon.ledger.parse import message_ids

# Bounce reports come from Gmail's mailer-daemon and cite the failed message.
BOUNCE_QUERY = "from:mailer-daemon"
BOUNCE_HEADERS = ("In-Reply-To", "References", "X-Failed-Recipients", "Date")


class SendError(Exception):
    """Sending failed; the message is safe to show to the user."""


class RateLimited(SendError):
    """Gmail refused for quota or rate (429 / 403 rate limits): not sent, try later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecipientRejected(SendError):
    """Gmail refused this message (400): not sent, and resending will not help."""


class OutcomeUnknown(SendError):
    """A 5xx, timeout or lost connection: the message may or may not have been sent."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GrantRevoked(SendError):
    """The member's sending permission is missing, revoked or expired."""


@dataclass(frozen=True)
class BounceReport:
    """A delivery-failure report in the sender's mailbox."""

    gmail_id: str
    cited_message_ids: tuple[str, ...]  # with angle brackets
    failed_recipients: tuple[str, ...]


class Sender(Protocol):
    """One member's mailbox, as the worker uses it."""

    def send(self, raw: bytes) -> str:
        """Send an RFC 822 message; the Gmail id of the sent message."""
        ...

    def find_by_message_id(self, message_id: str) -> str | None:
        """The Gmail id of the sent message with this Message-ID, if the mailbox holds it."""
        ...

    def bounce_reports(self, since: datetime) -> list[BounceReport]:
        """Delivery-failure reports received since an instant."""
        ...


class CredentialsFor(Protocol):
    """Supplies a member's credentials for a purpose; raises GrantRevoked without a grant."""

    def __call__(self, session: Session, member: Member, purpose: str = "send") -> Credentials:
        """The member's credentials."""
        ...


class _SingleAttemptHttp(httplib2.Http):
    """httplib2 without its silent resends.

    httplib2 re-sends a request when a kept-alive connection drops before the answer
    (BadStatusLine on the first try); for messages.send that is a duplicate email. Here
    every failure surfaces, and the worker reconciles through the mailbox instead.
    """

    def _conn_request(
        self, conn: Any, request_uri: str, method: str, body: Any, headers: dict[str, str]
    ) -> tuple[httplib2.Response, bytes]:
        # No compression: the answer is read as is, without httplib2's private helpers.
        headers["accept-encoding"] = "identity"
        try:
            if conn.sock is None:
                conn.connect()
            conn.request(method, request_uri, body, headers)
            answer = conn.getresponse()
            content: bytes = answer.read()
        except BaseException:
            conn.close()
            raise
        return httplib2.Response(answer), content


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after") if exc.resp is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, (parsed - datetime.now(UTC)).total_seconds())


def _reason(exc: HttpError) -> str:
    try:
        details = exc.error_details
        if isinstance(details, list) and details:
            return str(details[0].get("reason", ""))
    except AttributeError:
        pass
    return ""


class GmailSender:
    """A member's Gmail through google-api-python-client, with the member's credentials."""

    def __init__(self, api_url: str, credentials: Credentials, timeout: int = 30) -> None:
        self.api_url = api_url
        self.credentials = credentials
        self.timeout = timeout
        self._http = _SingleAttemptHttp(timeout=timeout)

    def _authorized(self) -> AuthorizedHttp:
        return AuthorizedHttp(self.credentials, http=self._http)

    def _execute(self, request: Any, *, sending: bool) -> Any:
        try:
            return request.execute(http=self._authorized(), num_retries=0)
        except HttpError as exc:
            status = int(getattr(exc.resp, "status", 0) or 0)
            reason = _reason(exc)
            text = f"Gmail answered {status}{f' ({reason})' if reason else ''}"
            if status == 429 or (status == 403 and "ratelimit" in reason.lower()):
                raise RateLimited(text, _retry_after(exc)) from exc
            if status == 403 and "dailylimit" in reason.lower():
                raise RateLimited(text, _retry_after(exc)) from exc
            if status == 401 or status == 403:
                raise GrantRevoked(f"Gmail refused the sending permission ({status})") from exc
            if 400 <= status < 500:
                raise RecipientRejected(text) from exc
            raise OutcomeUnknown(text, _retry_after(exc)) from exc
        except RefreshError as exc:
            raise GrantRevoked("the sending permission was revoked or has expired") from exc
        except GoogleAuthError as exc:
            raise GrantRevoked("Gmail refused the sending credentials") from exc
        except (OSError, httplib2.HttpLib2Error, http.client.HTTPException) as exc:
            # Connection lost or timed out: a send may have gone through.
            kind = "the answer was lost" if sending else "Gmail could not be reached"
            raise OutcomeUnknown(f"{kind} ({type(exc).__name__})") from exc

    def send(self, raw: bytes) -> str:
        """users.messages.send with the raw message, base64url-encoded."""
        body = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        data = self._execute(_messages(self.api_url).send(userId="me", body=body), sending=True)
        return str(data["id"])

    def find_by_message_id(self, message_id: str) -> str | None:
        """messages.list with q=rfc822msgid:<id>."""
        query = f"rfc822msgid:{message_id.strip().strip('<>')}"
        data = self._execute(
            _messages(self.api_url).list(userId="me", q=query, maxResults=5), sending=False
        )
        found = data.get("messages") or []
        return str(found[0]["id"]) if found else None

    def bounce_reports(self, since: datetime) -> list[BounceReport]:
        """Mailer-daemon reports since an instant, with the Message-IDs they cite."""
        query = f"{BOUNCE_QUERY} after:{int(since.timestamp())}"
        reports: list[BounceReport] = []
        page: str | None = None
        while True:
            data = self._execute(
                _messages(self.api_url).list(userId="me", q=query, pageToken=page, maxResults=100),
                sending=False,
            )
            for item in data.get("messages") or []:
                meta = self._execute(
                    _messages(self.api_url).get(
                        userId="me",
                        id=item["id"],
                        format="metadata",
                        metadataHeaders=list(BOUNCE_HEADERS),
                    ),
                    sending=False,
                )
                headers: dict[str, str] = {}
                for header in meta.get("payload", {}).get("headers", []):
                    headers.setdefault(str(header.get("name", "")).lower(), str(header["value"]))
                cited = message_ids(headers.get("in-reply-to", "")) + message_ids(
                    headers.get("references", "")
                )
                failed = [
                    a.strip().lower()
                    for a in headers.get("x-failed-recipients", "").split(",")
                    if a.strip()
                ]
                reports.append(
                    BounceReport(
                        gmail_id=str(item["id"]),
                        cited_message_ids=tuple(dict.fromkeys(f"<{c}>" for c in cited)),
                        failed_recipients=tuple(failed),
                    )
                )
            page = data.get("nextPageToken")
            if not page:
                return reports


SenderFactory = Callable[[Session, Member], Sender]


def gmail_sender_factory(
    api_url: str, credentials_for: CredentialsFor, timeout: int = 30
) -> SenderFactory:
    """Builds GmailSenders from a credentials provider (GrantRevoked without a grant)."""

    def make(session: Session, member: Member) -> Sender:
        return GmailSender(api_url, credentials_for(session, member, purpose="send"), timeout)

    return make
