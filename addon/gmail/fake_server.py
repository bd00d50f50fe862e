"""A fake Gmail HTTP server speaking the REST shapes google-api-python-client expects.

Tests and the local simulator point ADDON_GMAIL_API_URL at it, so the real client
library runs end to end. It also serves a Google-style certificate list, so the real
token verification can run against keys the tests own.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class FakeMessage:
    """A message in the fake mailbox: raw headers plus Gmail's ids."""

    id: str
    thread_id: str
    headers: list[tuple[str, str]]
    label_ids: list[str] = field(default_factory=lambda: ["INBOX"])
    snippet: str = ""

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

    def add(self, message: FakeMessage) -> FakeMessage:
        """Put a message in the mailbox."""
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
            "historyId": "1000",
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
        request = Request(environ)
        response = self._dispatch(request)
        return response(environ, start_response)

    def _error(self, status: int, message: str) -> Response:
        body = {"error": {"code": status, "message": message, "errors": [{"message": message}]}}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _dispatch(self, request: Request) -> Response:
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
        if self.fail_with is not None:
            return self._error(self.fail_with, "injected failure")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return self._error(401, "Request is missing required authentication credential.")
        access = request.headers.get("X-Goog-Gmail-Access-Token", "")
        if self.valid_tokens and access not in self.valid_tokens:
            return self._error(403, "Access token for the current message is missing or invalid.")
        parts = request.path.strip("/").split("/")
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
        return self._error(404, f"Not found: {request.path}")


class _QuietHandler(WSGIRequestHandler):
    """No access log: the fake's requests are recorded in FakeGmail.requests instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log line."""


class FakeGmailServer:
    """Runs FakeGmail on a loopback port in a background thread."""

    def __init__(self, state: FakeGmail | None = None, port: int = 0) -> None:
        self.state = state or FakeGmail()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", port, self.state.wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

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

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def encode_header_word(text: str) -> str:
    """RFC 2047 B-encode a display name (for building test and demo messages)."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def rfc2822_date(dt: Any) -> str:
    """An RFC 2822 Date header value for a datetime."""
    return format_datetime(dt)
