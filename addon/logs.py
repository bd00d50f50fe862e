"""Structured logs: one JSON object per line on stderr, the shape Cloud Logging reads.

Each request logs one line with `severity`, `message`, `httpRequest` (method, path,
status, latency), the request id (the trace id of X-Cloud-Trace-Context when Google's
front end sent one, else a fresh one; also sent back as X-Request-Id) and, on App Engine,
`logging.googleapis.com/trace` so the line joins the request's trace. Query strings are
never logged. Every text that reaches a line passes `redact`: email addresses, ID and
OAuth tokens, bearer credentials, long opaque strings (signed links' tokens), long digit
runs (phone numbers) and the configured secrets are replaced by placeholders.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

LOGGER_NAME = "addon"
_TRACE_RE = re.compile(r"([0-9a-fA-F]{32})(?:/\d+)?(?:;o=[01])?")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer [token]"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]*\.?[\w-]*"), "[token]"),
    (re.compile(r"\bya29\.[\w.-]+"), "[token]"),
    (re.compile(r"\b1//[\w-]+"), "[token]"),
    # Addresses, plain or percent-encoded, with any local part a mailbox accepts.
    (
        re.compile(
            r"[^\s@<>\"(),;:=&?\[\]/]+(?:@|%40)[^\s@<>\"'(),;:\[\]/]+\.[^\s@<>\"'(),;:\[\]/]+"
        ),
        "[email]",
    ),
    # Opaque strings of 24+ characters: signed download links, API keys, refresh tokens.
    (re.compile(r"[A-Za-z0-9_\-]{24,}={0,2}"), "[redacted]"),
    # Phone numbers and other long digit runs (9 or more digits, separators allowed).
    (re.compile(r"\+?\d(?:[\s().-]{0,2}\d){8,}"), "[number]"),
)

_CLIENT_TEXT = frozenset({"requestUrl", "userAgent", "referer"})

SEVERITIES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with secrets, tokens, addresses and long numbers replaced by placeholders."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secrets) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one redacted JSON line for Cloud Logging."""

    def __init__(self, secrets: Iterable[str] = (), project: str = "") -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object: severity, message, time, request fields, exception text."""
        entry: dict[str, Any] = {
            "severity": SEVERITIES.get(record.levelno, "DEFAULT"),
            "message": redact(record.getMessage(), self.secrets),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        http = getattr(record, "http_request", None)
        if isinstance(http, dict):
            # Only the texts that come from the client are redacted; method, status and
            # latency are ours.
            entry["httpRequest"] = {
                k: _redacted(v, self.secrets) if k in _CLIENT_TEXT else v for k, v in http.items()
            }
        request_id = getattr(record, "request_id", None)
        if isinstance(request_id, str):
            # Our own hex id, never user input (see _request_id), so it is not redacted.
            entry["requestId"] = request_id
            if self.project:
                entry["logging.googleapis.com/trace"] = (
                    f"projects/{self.project}/traces/{request_id}"
                )
        if record.exc_info:
            lines = traceback.format_exception(*record.exc_info)
            entry["stack_trace"] = redact("".join(lines), self.secrets)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test captures, gunicorn workers)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # a log line must never fail the request that wrote it
            self.handleError(record)


class _RequestIdFilter(logging.Filter):
    """Adds the current request's id to lines logged while handling it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            try:
                record.request_id = g.get("request_id")
            except RuntimeError:  # outside a request
                record.request_id = None
        return True


def _request_id() -> str:
    match = _TRACE_RE.fullmatch(request.headers.get("X-Cloud-Trace-Context", "").strip())
    return match[1].lower() if match else uuid.uuid4().hex


def _safe_path(path: str) -> str:
    # Query strings are never logged; path segments (signed links' tokens, addresses) are
    # redacted by the formatter like every other text.
    return path[:300]


def configure(app: Flask) -> logging.Logger:
    """Send the service's logs (logger "addon", Flask's app.logger) to stderr as JSON lines."""
    logger = logging.getLogger(LOGGER_NAME)
    secrets = [
        str(app.config.get(key) or "")
        for key in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "OAUTH_CLIENT_SECRET")
    ]
    formatter = JsonFormatter(secrets, os.environ.get("GOOGLE_CLOUD_PROJECT", ""))
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(_RequestIdFilter())
        logger.addHandler(handler)
    # The newest app's settings win (tests build many apps in one process).
    handler.setFormatter(formatter)
    logger.setLevel(str(app.config.get("LOG_LEVEL") or "INFO").upper())
    logger.propagate = False
    return logger


def init_app(app: Flask) -> None:
    """Log one line per request, with its id, status and latency."""
    logger = configure(app)

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        g.request_id = _request_id()

    @app.after_request
    def _log(response: Response) -> Response:
        started = g.get("request_started")
        latency = time.perf_counter() - started if started is not None else 0.0
        status = response.status_code
        logger.log(
            logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO,
            "%s %s %s",
            request.method,
            _safe_path(request.path),
            status,
            extra={
                "http_request": {
                    "requestMethod": request.method,
                    "requestUrl": _safe_path(request.path),
                    "status": status,
                    "latency": f"{latency:.6f}s",
                    "userAgent": (request.user_agent.string or "")[:200],
                },
                "request_id": g.get("request_id"),
            },
        )
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response
