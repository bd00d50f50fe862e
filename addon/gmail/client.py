"""Reading the open message through the real Gmail API client, behind a small interface."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httplib2
from google.auth.exceptions import GoogleAuthError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest
from httplib2.iri2uri import iri2uri as _httplib2_iri2uri

T = TypeVar("T")


def ascii_fast_iri2uri(uri: Any) -> Any:
    """httplib2's IRI-to-URI conversion without its per-character pass on ASCII URIs."""
    # httplib2 converts every request URI character by character, about a fifth of the
    # CPU of a metadata read (its URL repeats metadataHeaders ten times). That pass only
    # rewrites characters above U+00A0, so an ASCII URI gets the rest of the conversion
    # (split, IDNA host, unsplit) and nothing else; other URIs take httplib2's own path.
    if isinstance(uri, str) and uri.isascii():
        scheme, authority, path, query, fragment = urlsplit(uri)
        return urlunsplit((scheme, authority.encode("idna").decode(), path, query, fragment))
    return _httplib2_iri2uri(uri)


# Http.request looks the function up in its module at each call.
httplib2.iri2uri = ascii_fast_iri2uri

# The headers the sidebar needs (the email ledger records the open message from them
# too); metadata format returns only these.
METADATA_HEADERS = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "Precedence",
)
# The headers the email ledger reads from the other messages of a thread.
THREAD_HEADERS = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
)


class GmailError(Exception):
    """The Gmail API refused or failed; the message is safe to show."""


@dataclass(frozen=True)
class MessageMeta:
    """The metadata of one Gmail message."""

    id: str
    thread_id: str
    headers: dict[str, str] = field(default_factory=dict)
    label_ids: tuple[str, ...] = ()
    # Gmail's internalDate (when the mailbox received it), if it was given.
    internal_date: datetime | None = None

    def header(self, name: str) -> str:
        """A header's value by case-insensitive name, or ""."""
        return self.headers.get(name.lower(), "")


class Mailbox(Protocol):
    """The Gmail operations the sidebar uses."""

    def get_message_metadata(self, message_id: str) -> MessageMeta:
        """Fetch one message's metadata."""
        ...

    def get_thread_metadata(self, thread_id: str) -> list[MessageMeta]:
        """Fetch the metadata of every message of a thread, oldest first."""
        ...


@functools.lru_cache(maxsize=8)
def _service(api_url: str) -> Resource:
    # Building the client parses the discovery document (tens of milliseconds), so the
    # Resource is built once per API URL; each call supplies its own authorised http.
    return build(
        "gmail",
        "v1",
        http=httplib2.Http(),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": api_url},
    )


@functools.lru_cache(maxsize=8)
def _messages(api_url: str) -> Any:
    # users().messages() builds resource objects from the discovery document on each
    # call (about a millisecond); the result is immutable, so it is shared.
    return _service(api_url).users().messages()


# Stands for the id in a prepared request's URI; ids are percent-encoded, so it cannot
# occur in one.
_ID_SLOT = "{{ID}}"


@functools.lru_cache(maxsize=16)
def _prepared_get(api_url: str, collection: str, headers: tuple[str, ...]) -> HttpRequest:
    # The discovery method validates and encodes every parameter on each call, about a
    # third of a metadata read's CPU (the metadataHeaders list repeats thirteen times).
    # Only the id differs between calls, so the request is prepared once per resource
    # and copied with the id put in (see _get_request).
    resource = (
        _messages(api_url) if collection == "messages" else _service(api_url).users().threads()
    )
    request: HttpRequest = resource.get(
        userId="me", id=_ID_SLOT, format="metadata", metadataHeaders=list(headers)
    )
    return request


def _get_request(api_url: str, collection: str, headers: tuple[str, ...], id_: str) -> Any:
    """A users.<collection>.get request for one id, from the prepared one."""
    template = _prepared_get(api_url, collection, headers)
    # quote(safe="") encodes as the discovery URI template does for a path parameter.
    slot = quote(_ID_SLOT, safe="")
    return HttpRequest(
        template.http,
        template.postproc,
        template.uri.replace(slot, quote(id_, safe=""), 1),
        method=template.method,
        headers=dict(template.headers),
        methodId=template.methodId,
    )


def _internal_date(raw: Any) -> datetime | None:
    """Gmail's internalDate (milliseconds since the epoch, as text) as aware UTC."""
    text = str(raw or "")
    if not text.isdigit() or len(text) > 15:
        return None
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)


def message_meta(data: dict[str, Any], message_id: str = "") -> MessageMeta:
    """A MessageMeta from a Gmail message resource (format=metadata)."""
    headers: dict[str, str] = {}
    for header in data.get("payload", {}).get("headers", []):
        name = str(header.get("name", "")).lower()
        # The first occurrence wins, as mail readers show it.
        headers.setdefault(name, str(header.get("value", "")))
    return MessageMeta(
        id=str(data.get("id", message_id)),
        thread_id=str(data.get("threadId", "")),
        headers=headers,
        label_ids=tuple(data.get("labelIds", [])),
        internal_date=_internal_date(data.get("internalDate")),
    )


_connections = threading.local()


def _connection(timeout: int) -> httplib2.Http:
    """One keep-alive HTTP connection pool per thread (httplib2 is not thread-safe)."""
    if not hasattr(_connections, "pool"):
        _connections.pool = {}
    pool: dict[int, httplib2.Http] = _connections.pool
    if timeout not in pool:
        pool[timeout] = httplib2.Http(timeout=timeout)
    return pool[timeout]


# A small shared pool for Gmail reads that overlap other work of a request. Its
# threads are reused, so each keeps its own keep-alive connections (see _connection).
_background = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gmail")


def run_in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run a Gmail call on the shared pool; the caller collects the result or exception."""
    return _background.submit(function, *args)


# RFC 6750's b64token, the shape of every OAuth bearer token (Google's included). Empty is
# let through: Gmail answers it with 401, as before.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]*=*")


def _token_shaped(token: str) -> bool:
    return _BEARER_TOKEN.fullmatch(token) is not None


class GoogleMailbox:
    """Gmail through google-api-python-client with the add-on's per-event tokens."""

    def __init__(
        self, api_url: str, oauth_token: str, access_token: str, timeout: int = 10
    ) -> None:
        self.api_url = api_url
        self.oauth_token = oauth_token
        self.access_token = access_token
        self.timeout = timeout

    def _http(self) -> AuthorizedHttp:
        # The event's token cannot be refreshed (no refresh token): a 401 must surface as
        # an HttpError, not as an attempt to refresh that raises RefreshError.
        return AuthorizedHttp(
            Credentials(token=self.oauth_token),
            http=_connection(self.timeout),
            refresh_status_codes=(),
        )

    def _execute(self, request: Any) -> Any:
        # Tokens travel in headers. Anything but a bearer token's characters cannot be
        # Google's token, and http.client (non-ASCII, line breaks) or httplib2 (which
        # reads a backslash as a regex escape) would fail on it.
        if not all(_token_shaped(t) for t in (self.oauth_token, self.access_token)):
            raise GmailError("Gmail refused the user's credentials")
        # The add-on's current-message scopes only work with this extra header.
        request.headers["X-Goog-Gmail-Access-Token"] = self.access_token
        try:
            return request.execute(http=self._http(), num_retries=1)
        except HttpError as exc:
            status = getattr(exc.resp, "status", 0)
            raise GmailError(f"Gmail answered {status}") from exc
        except GoogleAuthError as exc:
            raise GmailError("Gmail refused the user's credentials") from exc
        except UnicodeEncodeError as exc:
            # HTTP headers are Latin-1: a token outside it cannot be a Google token.
            raise GmailError("the event's Gmail tokens are not valid") from exc
        except (OSError, httplib2.HttpLib2Error) as exc:
            raise GmailError("Gmail could not be reached") from exc

    def get_message_metadata(self, message_id: str) -> MessageMeta:
        """Fetch one message with format=metadata and the headers the sidebar uses."""
        request = _get_request(self.api_url, "messages", METADATA_HEADERS, message_id)
        return message_meta(self._execute(request), message_id)

    def get_thread_metadata(self, thread_id: str) -> list[MessageMeta]:
        """Fetch a thread with format=metadata and the headers the email ledger reads."""
        request = _get_request(self.api_url, "threads", THREAD_HEADERS, thread_id)
        data = self._execute(request)
        messages = data.get("messages") or []
        if not isinstance(messages, list):
            raise GmailError("Gmail answered with an unreadable thread")
        return [message_meta(m) for m in messages if isinstance(m, dict)]
