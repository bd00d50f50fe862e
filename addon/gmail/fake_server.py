"""A fake Gmail HTTP server speaking the REST shapes google-api-python-client expects.

Tests and the local simulator point ADDON_GMAIL_API_URL at it, so the real client
library runs end to end. It also serves a Google-style certificate list, so the real
token verification can run against keys the tests own.
"""

from __future__ import annotations

import base64
import io
import json
import math
import multiprocessing
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, message_from_string
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response


@dataclass
class FakeMessage:
    """A message in the fake mailbox: raw headers plus Gmail's ids."""

    id: str
    thread_id: str
    headers: list[tuple[str, str]]
    label_ids: list[str] = field(default_factory=lambda: ["INBOX"])
    snippet: str = ""
    # The mailbox history id at which the message was added (set by FakeGmail.add).
    history_id: int = 0

    def header(self, name: str) -> str:
        """The first value of a header, or ""."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return ""

    def internal_date_ms(self) -> str:
        """Gmail's internalDate: milliseconds since the epoch, as text."""
        try:
            return str(int(parsedate_to_datetime(self.header("Date")).timestamp() * 1000))
        except (TypeError, ValueError):
            return "0"


@dataclass
class FakeGmail:
    """The state behind the fake server: messages, tokens it accepts, and a request log."""

    messages: dict[str, FakeMessage] = field(default_factory=dict)
    # Access tokens the server accepts; empty means any non-empty token is accepted.
    valid_tokens: set[str] = field(default_factory=set)
    certs: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None
    # The fake OAuth server (addon.auth.fake_oauth.FakeOAuth) served alongside, if any.
    # With one, calls without the add-on's per-message header at all (mailbox sync with
    # an offline grant) need an access token it issued and has not revoked.
    oauth: Any = None
    # The mailbox's history id, raised by each message added; history.list answers 404
    # for a startHistoryId below `history_floor` (Gmail keeps history for a week or so).
    history_id: int = 1000
    history_floor: int = 0
    # A failure of threads.get only (messages.get still answers).
    fail_threads_with: int | None = None
    # Sending (mail merge): see FakeSending.
    sending: FakeSending = field(default_factory=lambda: FakeSending())

    def add(self, message: FakeMessage) -> FakeMessage:
        """Put a message in the mailbox (a new history record)."""
        self.history_id += 1
        message.history_id = self.history_id
        self.messages[message.id] = message
        return message

    def _message_json(self, message: FakeMessage, fmt: str, wanted: list[str]) -> dict[str, Any]:
        headers = message.headers
        if fmt == "metadata" and wanted:
            lowered = {w.lower() for w in wanted}
            headers = [(k, v) for k, v in headers if k.lower() in lowered]
        return {
            "id": message.id,
            "threadId": message.thread_id,
            "labelIds": message.label_ids,
            "snippet": message.snippet,
            "historyId": str(message.history_id or self.history_id),
            "internalDate": message.internal_date_ms(),
            "sizeEstimate": 1000,
            "payload": {
                "partId": "",
                "mimeType": "text/plain",
                "filename": "",
                "headers": [{"name": k, "value": v} for k, v in headers],
            },
        }

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The WSGI application."""
        return self.handle(Request(environ))(environ, start_response)

    def _error(self, status: int, message: str) -> Response:
        body = {"error": {"code": status, "message": message, "errors": [{"message": message}]}}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def handle(self, request: Request) -> Response:
        """Answer one request."""
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": parse_qs(request.query_string.decode()),
                "authorization": request.headers.get("Authorization", ""),
                "access_token": request.headers.get("X-Goog-Gmail-Access-Token", ""),
            }
        )
        if request.path == "/oauth2/v1/certs":
            return Response(json.dumps(self.certs), mimetype="application/json")
        if self.oauth is not None and (answer := self.oauth.handle(request)) is not None:
            return answer
        if self.fail_with is not None:
            return self._error(self.fail_with, "injected failure")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return self._error(401, "Request is missing required authentication credential.")
        access = request.headers.get("X-Goog-Gmail-Access-Token", "")
        if self.oauth is not None and "X-Goog-Gmail-Access-Token" not in request.headers:
            if not self.oauth.valid_access(auth.removeprefix("Bearer ")):
                return self._error(401, "Invalid Credentials")
        elif self.valid_tokens and access not in self.valid_tokens:
            return self._error(403, "Access token for the current message is missing or invalid.")
        return self._api(request)

    def _api(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts == ["batch", "gmail", "v1"] and request.method == "POST":
            return self._batch(request)
        if parts[:5] == ["gmail", "v1", "users", "me", "messages"]:
            if request.method == "POST" and parts[5:] == ["send"]:
                return self.sending.send(self, request)
            # Mailbox sync's date-bounded listing (after:/before: only) is answered by the
            # mailbox listing below; any other search (a Message-ID, bounce reports, or a
            # term the fake does not know, refused there) by the sending fake.
            query = request.args.get("q", "")
            searched = {term.partition(":")[0] for term in query.split()}
            if request.method == "GET" and len(parts) == 5 and searched - MAILBOX_LIST_TERMS:
                return self.sending.search(self, query)
        if parts[:4] == ["gmail", "v1", "users", "me"] and len(parts) == 5:
            listing = {
                "profile": self._profile,
                "messages": self._list_messages,
                "history": self._history,
            }.get(parts[4])
            if listing is not None:
                return listing(request)
        # gmail/v1/users/me/messages/{id}
        if len(parts) == 6 and parts[:5] == ["gmail", "v1", "users", "me", "messages"]:
            message = self.messages.get(parts[5])
            if message is None:
                return self._error(404, "Requested entity was not found.")
            fmt = request.args.get("format", "full")
            wanted = request.args.getlist("metadataHeaders")
            return Response(
                json.dumps(self._message_json(message, fmt, wanted)), mimetype="application/json"
            )
        # gmail/v1/users/me/threads/{id}
        if len(parts) == 6 and parts[:5] == ["gmail", "v1", "users", "me", "threads"]:
            return self._thread(parts[5], request)
        return self._error(404, f"Not found: {request.path}")

    # ------------------------------------------------------------ mailbox sync

    def _json(self, body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), mimetype="application/json")

    def _profile(self, request: Request) -> Response:
        return self._json(
            {
                "emailAddress": "me",
                "messagesTotal": len(self.messages),
                "threadsTotal": len({m.thread_id for m in self.messages.values()}),
                "historyId": str(self.history_id),
            }
        )

    def _matches(self, message: FakeMessage, query: str) -> bool:
        when = int(message.internal_date_ms()) // 1000
        for term in query.split():
            key, _, value = term.partition(":")
            if key in ("after", "before"):
                bound = _search_time(value)
                if bound is None:
                    continue
                if (key == "after" and when <= bound) or (key == "before" and when >= bound):
                    return False
        return not ({"SPAM", "TRASH"} & set(message.label_ids))

    def _list_messages(self, request: Request) -> Response:
        query = request.args.get("q", "")
        found = sorted(
            (m for m in self.messages.values() if self._matches(m, query)),
            key=lambda m: (int(m.internal_date_ms()), m.id),
            reverse=True,
        )
        return self._json(self._page(request, found, "messages", _ref))

    def _page(self, request: Request, items: list[Any], key: str, shape: Any) -> dict[str, Any]:
        start = int(request.args.get("pageToken") or 0)
        size = min(int(request.args.get("maxResults") or 100), 500)
        body: dict[str, Any] = {"resultSizeEstimate": len(items)}
        if items[start : start + size]:
            body[key] = [shape(item) for item in items[start : start + size]]
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body

    def _history(self, request: Request) -> Response:
        start = int(request.args.get("startHistoryId") or 0)
        if start < self.history_floor:
            return self._error(404, "Requested entity was not found.")
        added = sorted(
            (m for m in self.messages.values() if m.history_id > start),
            key=lambda m: m.history_id,
        )
        body = self._page(request, added, "history", _history_record)
        body["historyId"] = str(self.history_id)
        return self._json(body)

    def _batch(self, request: Request) -> Response:
        """Gmail's batch endpoint: multipart/mixed of application/http requests."""
        head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n"
        envelope = message_from_string(head + request.get_data(as_text=True))
        boundary = "batch_fake_boundary"
        out: list[str] = []
        for part in envelope.walk():
            if part.is_multipart():
                continue
            payload = str(part.get_payload())
            method, target, _ = payload.split("\n", 1)[0].split(" ", 2)
            path, _, query = target.partition("?")
            inner = Request(
                EnvironBuilder(method=method, path=path, query_string=query).get_environ()
            )
            answer = self._api(inner)
            content_id = str(part["Content-ID"]).strip("<>")
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id}>\r\n\r\n"
                f"HTTP/1.1 {answer.status}\r\nContent-Type: application/json\r\n\r\n"
                f"{answer.get_data(as_text=True)}\r\n"
            )
        out.append(f"--{boundary}--\r\n")
        return Response("".join(out), content_type=f"multipart/mixed; boundary={boundary}")

    def _thread(self, thread_id: str, request: Request) -> Response:
        """users.threads.get: the thread's messages, oldest first, in the asked format."""
        if self.fail_threads_with is not None:
            return self._error(self.fail_threads_with, "injected thread failure")
        found = [m for m in list(self.messages.values()) if m.thread_id == thread_id]
        if not found:
            return self._error(404, "Requested entity was not found.")
        found.sort(key=lambda m: (int(m.internal_date_ms()), m.id))
        fmt = request.args.get("format", "full")
        wanted = request.args.getlist("metadataHeaders")
        body = {
            "id": thread_id,
            "historyId": str(max((m.history_id for m in found), default=self.history_id)),
            "messages": [self._message_json(m, fmt, wanted) for m in found],
        }
        return Response(json.dumps(body), mimetype="application/json")


def _ref(message: FakeMessage) -> dict[str, str]:
    return {"id": message.id, "threadId": message.thread_id}


def _history_record(message: FakeMessage) -> dict[str, Any]:
    ref = {**_ref(message), "labelIds": message.label_ids}
    return {"id": str(message.history_id), "messagesAdded": [{"message": ref}]}


def _search_time(value: str) -> int | None:
    """A Gmail search date (epoch seconds or YYYY/MM/DD, UTC here) as epoch seconds."""
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def _match(message: FakeMessage, name: str, value: str) -> bool:
    """Whether a message meets one search term."""
    if name == "rfc822msgid":
        found = message.header("Message-ID").strip().strip("<>").lower()
        return found == value.strip("<>").lower()
    if name == "from":
        return value.lower() in message.header("From").lower()
    if name == "in":
        return value.upper() in message.label_ids
    sent_ms = int(message.internal_date_ms())
    return sent_ms >= int(value) * 1000 if name == "after" else sent_ms < int(value) * 1000


DROP_HEADER = "X-Fake-Gmail-Drop"
# Faults the sending endpoint can inject: "429", "500" and "timeout" (no answer) send
# nothing; "lost" and "lost500" send the message, then lose the answer or answer 500.
FAULTS = ("429", "500", "timeout", "lost", "lost500")


@dataclass
class SentMail:
    """One message the fake accepted for sending."""

    at: datetime
    user: str
    message_id: str
    recipients: int
    gmail_id: str
    to: str


# Search terms of mailbox sync's listing (messages.list q=); others go to FakeSending.search.
MAILBOX_LIST_TERMS = frozenset({"after", "before"})


@dataclass
class FakeSending:
    """users.messages.send with Gmail's limits, fault injection, search and bounce reports.

    The per-user quota counts recipients (to + cc + bcc) over a rolling 24 hours (an
    accepted send at `at` counts while now - 24 h < at); the rate allows one send per
    1 / `rate` seconds per user. Both answer 429 with a Retry-After. Users are told apart
    by the From address of the message.
    """

    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    quota: int | None = None
    rate: float | None = None
    # Injected faults, consumed one per send before `odds` are drawn.
    faults: list[str] = field(default_factory=list)
    odds: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # Real seconds each send takes (widens the window a crash can fall in).
    delay: float = 0.0
    # The Retry-After of an injected 429.
    retry_after: int = 1
    bad_recipients: set[str] = field(default_factory=set)
    revoked_tokens: set[str] = field(default_factory=set)
    sent: list[SentMail] = field(default_factory=list)
    refused: list[tuple[datetime, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: int = 0

    def reset(self) -> None:
        """Forget sends, faults and limits (each test starts clean)."""
        with self._lock:
            self.clock = lambda: datetime.now(UTC)
            self.quota = self.rate = None
            self.faults.clear()
            self.odds.clear()
            self.delay = 0.0
            self.retry_after = 1
            self.bad_recipients.clear()
            self.revoked_tokens.clear()
            self.sent.clear()
            self.refused.clear()

    def _error(
        self, status: int, message: str, reason: str, retry_after: int | None = None
    ) -> Response:
        body = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "reason": reason, "domain": "usageLimits"}],
            }
        }
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def _next_fault(self) -> str | None:
        if self.faults:
            return self.faults.pop(0)
        for kind, odds in self.odds.items():
            if self.rng.random() < odds:
                return kind
        return None

    def used(self, user: str, at: datetime) -> int:
        """Recipients counted for a user at an instant."""
        start = at - timedelta(hours=24)
        return sum(s.recipients for s in self.sent if s.user == user and start < s.at <= at)

    def send(self, gmail: FakeGmail, request: Request) -> Response:
        """users.messages.send with a raw base64url message."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.revoked_tokens:
            return self._error(401, "Invalid Credentials", "authError")
        try:
            raw = base64.urlsafe_b64decode(json.loads(request.get_data())["raw"] + "==")
            parsed = message_from_bytes(raw)
        except (KeyError, ValueError, TypeError):
            return self._error(400, "Invalid raw message", "invalidArgument")
        addresses = [
            a.lower()
            for _, a in getaddresses(
                parsed.get_all("To", []) + parsed.get_all("Cc", []) + parsed.get_all("Bcc", [])
            )
            if a
        ]
        user = (getaddresses(parsed.get_all("From", [])) or [("", "")])[0][1].lower()
        if not addresses or any("@" not in a or a in self.bad_recipients for a in addresses):
            return self._error(400, "Invalid To header", "invalidArgument")
        if len(addresses) > 100:
            return self._error(400, "Too many recipients", "invalidArgument")
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            now = self.clock()
            fault = self._next_fault()
            if fault in ("429", "500", "timeout"):
                self.refused.append((now, user, fault))
                if fault == "429":
                    return self._error(
                        429, "Rate limit exceeded (injected)", "rateLimitExceeded", self.retry_after
                    )
                if fault == "500":
                    return self._error(500, "Backend Error (injected)", "backendError")
                return Response("", status=504, headers={DROP_HEADER: "1"})
            if self.rate is not None:
                last = max((s.at for s in self.sent if s.user == user), default=None)
                interval = timedelta(seconds=1 / self.rate)
                # A millisecond of slack for clocks that round.
                if last is not None and now - last < interval - timedelta(milliseconds=1):
                    self.refused.append((now, user, "rate"))
                    return self._error(429, "User-rate limit exceeded", "userRateLimitExceeded", 1)
            if self.quota is not None:
                used = self.used(user, now)
                if used + len(addresses) > self.quota:
                    self.refused.append((now, user, "quota"))
                    mine = sorted((s.at, s.recipients) for s in self.sent if s.user == user)
                    free_at = now
                    for at, n in mine:
                        if at > now - timedelta(hours=24):
                            used -= n
                            free_at = at + timedelta(hours=24)
                            if used + len(addresses) <= self.quota:
                                break
                    wait = max(1, math.ceil((free_at - now).total_seconds()))
                    return self._error(
                        429, "Mail sending limit exceeded", "rateLimitExceeded", wait
                    )
            self._ids += 1
            gmail_id = f"s{self._ids:015x}"
            message_id = parsed.get("Message-ID", "").strip()
            headers = [(k, str(v)) for k, v in parsed.items()]
            gmail.add(FakeMessage(gmail_id, gmail_id, headers, label_ids=["SENT"]))
            self.sent.append(
                SentMail(now, user, message_id, len(addresses), gmail_id, parsed.get("To", ""))
            )
        if fault == "lost":
            return Response("", status=504, headers={DROP_HEADER: "1"})
        if fault == "lost500":
            return self._error(500, "Backend Error (injected after sending)", "backendError")
        body = {"id": gmail_id, "threadId": gmail_id, "labelIds": ["SENT"]}
        return Response(json.dumps(body), mimetype="application/json")

    def search(self, gmail: FakeGmail, query: str) -> Response:
        """users.messages.list with the q terms rfc822msgid:, from:, in:, after: and before:."""
        terms: list[tuple[str, str]] = []
        for term in query.split():
            name, _, value = term.partition(":")
            value = value.strip('"')
            if name not in ("rfc822msgid", "from", "in", "after", "before") or (
                name in ("after", "before") and not value.isdigit()
            ):
                return self._error(400, f"the fake does not understand {term!r}", "invalidArgument")
            terms.append((name, value))
        found = [m for m in list(gmail.messages.values()) if all(_match(m, *t) for t in terms)]
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if found:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in found]
        return Response(json.dumps(body), mimetype="application/json")

    def add_bounce(
        self, gmail: FakeGmail, message_id: str, recipient: str, at: datetime | None = None
    ) -> FakeMessage:
        """A mailer-daemon delivery failure citing one of our Message-IDs, in the inbox."""
        with self._lock:
            self._ids += 1
            gmail_id = f"b{self._ids:015x}"
        when = at or self.clock()
        return gmail.add(
            FakeMessage(
                gmail_id,
                gmail_id,
                [
                    ("From", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"),
                    ("To", "sender"),
                    ("Subject", "Delivery Status Notification (Failure)"),
                    ("Date", format_datetime(when)),
                    ("Message-ID", f"<{gmail_id}@mail.gmail.test>"),
                    ("In-Reply-To", message_id),
                    ("References", message_id),
                    ("X-Failed-Recipients", recipient),
                ],
            )
        )


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as Google's front ends offer; no access log.

    Werkzeug's development server closes every connection, which would make each
    client call pay a TCP connect that real Gmail traffic does not.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, flushed after each request; separate small
    # writes on a kept-alive connection meet Nagle and delayed ACKs (40 ms stalls).
    wbufsize = 65536
    disable_nagle_algorithm = True
    server: _FakeHTTPServer

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.protocol_version,
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(length),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        for name, value in self.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        response = self.server.state.handle(Request(environ))
        if response.headers.get(DROP_HEADER):
            # The request got no answer at all: the client sees a dead connection.
            self.close_connection = True
            return
        data = response.get_data()
        self.send_response(response.status_code)
        self.send_header("Content-Type", response.content_type or "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in response.headers.items():
            # Redirects of the fake OAuth consent page carry a Location; 429s a Retry-After.
            if name.lower() not in ("content-type", "content-length"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Skip the access log: requests are recorded in FakeGmail.requests instead."""


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away mid-request (tests kill worker processes)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], state: FakeGmail) -> None:
        self.state = state
        super().__init__(address, _KeepAliveHandler)


class FakeGmailServer:
    """Runs FakeGmail on a loopback port in a background thread."""

    def __init__(self, state: FakeGmail | None = None, port: int = 0) -> None:
        self.state = state or FakeGmail()
        self._server = _FakeHTTPServer(("127.0.0.1", port), self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._child: multiprocessing.process.BaseProcess | None = None

    @property
    def url(self) -> str:
        """The base URL, with a trailing slash as the client's api_endpoint expects."""
        return f"http://127.0.0.1:{self._server.server_port}/"

    @property
    def certs_url(self) -> str:
        """Where the Google-style certificate list is served."""
        return f"{self.url}oauth2/v1/certs"

    def start(self) -> FakeGmailServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def start_in_child(self) -> FakeGmailServer:
        """Serve from a forked process, with the state as it is now.

        For benchmarks: a real Gmail API does not share the service's CPU or its GIL.
        Later changes to `state`, including its request log, stay in this process.
        """
        self._child = multiprocessing.get_context("fork").Process(
            target=self._server.serve_forever, daemon=True
        )
        self._child.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._child is not None:
            self._child.terminate()
            self._child.join()
        else:
            self._server.shutdown()
        self._server.server_close()


def encode_header_word(text: str) -> str:
    """RFC 2047 B-encode a display name (for building test and demo messages)."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def rfc2822_date(dt: Any) -> str:
    """An RFC 2822 Date header value for a datetime."""
    return format_datetime(dt)
