"""Reading a member's mailbox for sync with their offline grant, behind a small interface.

The real implementation is google-api-python-client against ADDON_GMAIL_API_URL with the
member's refreshable Credentials; tests run it against the fake Gmail server. Metadata is
fetched through Gmail's batch endpoint, up to BATCH_LIMIT messages per HTTP request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from addon.gmail.client import GmailError, MessageMeta, _service
from addon.ledger.parse import LedgerInput

# The headers the ledger reads (and the automation markers its policy may use).
SYNC_HEADERS = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "Precedence",
    "Auto-Submitted",
)
BATCH_LIMIT = 50  # Gmail allows 100 per batch but advises 50 against rate limiting
PAGE_SIZE = 500


class HistoryExpired(GmailError):
    """Gmail no longer has history from this id (404): the mailbox must be re-imported."""


class GrantRefused(GmailError):
    """Google refused the grant while syncing (invalid_grant): stop until reconnected."""


@dataclass(frozen=True)
class HistoryPage:
    """Messages added since a history id, and the mailbox's history id now."""

    message_ids: list[str]
    history_id: str


class SyncMailbox(Protocol):
    """The Gmail operations mailbox sync uses."""

    def history_id(self) -> str:
        """The mailbox's current history id."""
        ...

    def list_ids(self, query: str) -> Iterator[list[str]]:
        """Pages of message ids matching a search, newest first."""
        ...

    def added_since(self, history_id: str) -> HistoryPage:
        """Message ids added since a history id; HistoryExpired when too old."""
        ...

    def metadata(self, message_ids: list[str]) -> list[LedgerInput]:
        """The ledger inputs of these messages (gone ones are left out)."""
        ...


# Builds the mailbox of a member from their refreshed credentials.
MailboxOpener = Callable[[Credentials], SyncMailbox]


def ledger_input(data: dict[str, Any]) -> LedgerInput:
    """The ledger input of a messages.get answer with format=metadata."""
    headers: dict[str, str] = {}
    for header in data.get("payload", {}).get("headers", []):
        headers.setdefault(str(header.get("name", "")).lower(), str(header.get("value", "")))
    meta = MessageMeta(
        id=str(data.get("id", "")),
        thread_id=str(data.get("threadId", "")),
        headers=headers,
        label_ids=tuple(data.get("labelIds", [])),
    )
    internal: datetime | None = None
    raw = str(data.get("internalDate") or "")
    if raw.isdigit():
        internal = datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    return LedgerInput.from_meta(meta, internal)


class GoogleSyncMailbox:
    """A member's mailbox through google-api-python-client with their offline credentials."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        timeout: int = 30,
        *,
        page_size: int = PAGE_SIZE,
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        self.api_url = api_url
        self.page_size = page_size
        self.batch_limit = batch_limit
        self._http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))

    def __repr__(self) -> str:
        return f"GoogleSyncMailbox({self.api_url!r})"

    def _users(self) -> Any:
        return _service(self.api_url).users()

    def _execute(self, request: Any) -> Any:
        try:
            if isinstance(request, BatchHttpRequest):
                # The outer request's authorization covers every request inside.
                return request.execute(http=self._http)
            return request.execute(http=self._http, num_retries=2)
        except HttpError as exc:
            raise _gmail_error(exc) from None
        except RefreshError as exc:
            raise _refresh_error(exc) from None
        except (TransportError, OSError, httplib2.HttpLib2Error):
            raise GmailError("Gmail could not be reached") from None

    def history_id(self) -> str:
        """The mailbox's current history id (users.getProfile)."""
        return str(self._execute(self._users().getProfile(userId="me"))["historyId"])

    def list_ids(self, query: str) -> Iterator[list[str]]:
        """Pages of message ids matching a search (messages.list), newest first."""
        token: str | None = None
        while True:
            answer = self._execute(
                self._users()
                .messages()
                .list(userId="me", q=query, pageToken=token, maxResults=self.page_size)
            )
            yield [str(m["id"]) for m in answer.get("messages", [])]
            token = answer.get("nextPageToken")
            if not token:
                return

    def added_since(self, history_id: str) -> HistoryPage:
        """Every message added since a history id (history.list, all pages)."""
        ids: dict[str, None] = {}
        token: str | None = None
        latest = history_id
        while True:
            try:
                answer = (
                    self._users()
                    .history()
                    .list(
                        userId="me",
                        startHistoryId=history_id,
                        historyTypes="messageAdded",
                        pageToken=token,
                        maxResults=self.page_size,
                    )
                )
                answer = answer.execute(http=self._http, num_retries=2)
            except HttpError as exc:
                if getattr(exc.resp, "status", 0) == 404:
                    raise HistoryExpired(f"Gmail has no history since {history_id}") from None
                raise _gmail_error(exc) from None
            except RefreshError as exc:
                raise _refresh_error(exc) from None
            except (TransportError, OSError, httplib2.HttpLib2Error):
                raise GmailError("Gmail could not be reached") from None
            for record in answer.get("history", []):
                for added in record.get("messagesAdded", []):
                    ids[str(added["message"]["id"])] = None
            latest = str(answer.get("historyId") or latest)
            token = answer.get("nextPageToken")
            if not token:
                return HistoryPage(list(ids), latest)

    def metadata(self, message_ids: list[str]) -> list[LedgerInput]:
        """Metadata of messages, BATCH_LIMIT per batch request; deleted ones are skipped."""
        found: dict[str, LedgerInput] = {}
        errors: list[HttpError] = []

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            if exception is None:
                found[request_id] = ledger_input(response)
            elif isinstance(exception, HttpError) and exception.resp.status == 404:
                return  # deleted since it was listed
            elif isinstance(exception, HttpError):
                errors.append(exception)
            else:
                raise exception

        messages = self._users().messages()
        for start in range(0, len(message_ids), self.batch_limit):
            batch = BatchHttpRequest(callback=collect, batch_uri=f"{self.api_url}batch/gmail/v1")
            for message_id in message_ids[start : start + self.batch_limit]:
                batch.add(
                    messages.get(
                        userId="me",
                        id=message_id,
                        format="metadata",
                        metadataHeaders=list(SYNC_HEADERS),
                    ),
                    request_id=message_id,
                )
            self._execute(batch)
            if errors:
                raise _gmail_error(errors[0])
        return [found[i] for i in message_ids if i in found]


def _gmail_error(exc: HttpError) -> GmailError:
    status = getattr(exc.resp, "status", 0)
    return GmailError(f"Gmail answered {status}")


def _refresh_error(exc: RefreshError) -> GmailError:
    text = str(exc.args[0]) if exc.args else "refresh failed"
    if "invalid_grant" in text:
        return GrantRefused(f"Google refused the grant ({text[:200]})")
    return GmailError(f"Google refused to refresh the access ({text[:200]})")
