"""Authenticating add-on requests and reading Google's event objects."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from addon.auth.tokens import CertificateCache, TokenError, verify_id_token
from addon.cards.widgets import Actions
from addon.crm.models import Member
from addon.crm.workspaces import resolve_member
from addon.db import get_session
from addon.gmail.addresses import canonical_email
from addon.gmail.client import GoogleMailbox, Mailbox


class BadEvent(ValueError):
    """An event object that is not shaped as Google sends it."""


# Google's events are a few kilobytes; a note or a pasted list stays far below this.
MAX_EVENT_BYTES = 1024 * 1024
# No database stores a NUL character (PostgreSQL refuses it in text) or half of a UTF-16
# surrogate pair (nothing can encode it), and no user can type either.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_text(event: Any) -> None:
    """Refuse an event whose keys or strings hold text nothing can store (BadEvent)."""
    # Iterative: a deeply nested event must not exhaust the stack.
    pending: list[tuple[Any, str]] = [(event, "event")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise BadEvent(f"{where} holds a NUL character or invalid Unicode")
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{str(key)[:40]}"
                pending.append((key, name))
                pending.append((item, name))
        elif isinstance(value, list):
            pending.extend((item, where) for item in value)


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadEvent(f"{where} must be an object")
    return value


_PART_RE = re.compile(r"(.+)\.(\d)")
_LOCALE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")


def _gather_parts(form: dict[str, list[str]]) -> dict[str, list[str]]:
    """Inputs named `name.0` … `name.9` (one field shown as several inputs, e.g. an
    address) gathered into `name`, one string per part in order ("" for a missing part)."""
    parts: dict[str, dict[int, str]] = {}
    for name in list(form):
        match = _PART_RE.fullmatch(name)
        if match is not None:
            values = form.pop(name)
            parts.setdefault(match[1], {})[int(match[2])] = values[0] if values else ""
    for name, by_index in parts.items():
        form.setdefault(name, [by_index.get(i, "") for i in range(max(by_index) + 1)])
    return form


def parse_form_inputs(common: dict[str, Any]) -> dict[str, list[str]]:
    """formInputs as name -> list of strings; dates become milliseconds as text.

    Inputs named `name.N` are parts of one value and arrive gathered under `name`.
    """
    form: dict[str, list[str]] = {}
    for name, entry in _dict(common.get("formInputs"), "formInputs").items():
        entry = _dict(entry, f"formInputs.{name}")
        if "stringInputs" in entry:
            values = _dict(entry["stringInputs"], f"formInputs.{name}.stringInputs").get(
                "value", []
            )
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise BadEvent(f"formInputs.{name}.stringInputs.value must be a list of strings")
            form[str(name)] = values
        else:
            for key in ("dateInput", "dateTimeInput"):
                if key in entry:
                    ms = _dict(entry[key], f"formInputs.{name}.{key}").get("msSinceEpoch")
                    if not isinstance(ms, str | int) or not str(ms).lstrip("-").isdigit():
                        raise BadEvent(f"formInputs.{name}.{key}.msSinceEpoch must be a number")
                    form[str(name)] = [str(int(ms))]
    return _gather_parts(form)


def user_locale(common: dict[str, Any]) -> str:
    """The user's locale from the event ("de", "en-GB"); "en" when absent or malformed."""
    raw = common.get("userLocale")
    if isinstance(raw, str) and _LOCALE_RE.fullmatch(raw.strip()):
        return raw.strip().replace("_", "-")
    return "en"


def valid_zone(name: Any) -> str | None:
    """The name if it is a known IANA time zone, else None."""
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


def user_timezone(common: dict[str, Any], settings: Any) -> str:
    """The user's IANA time zone from the event, else the workspace's, else "UTC".

    Google sends `timeZone: {id, offset}` when the add-on may read the locale; an
    unknown id must not break any card, so it falls back like a missing one.
    """
    event_zone = common.get("timeZone")
    if isinstance(event_zone, dict) and (found := valid_zone(event_zone.get("id"))):
        return found
    workspace_zone = settings.get("timezone") if isinstance(settings, dict) else None
    return valid_zone(workspace_zone) or "UTC"


@dataclass
class AddonRequest:
    """One verified add-on event: who is calling, the event, and where to build URLs."""

    event: dict[str, Any]
    member: Member
    session: Session
    actions: Actions
    form: dict[str, list[str]]
    parameters: dict[str, str]
    # Work started before the user was resolved (see addon_endpoint's prefetch).
    prefetched: Future[Any] | None = None
    # The user's locale ("de", "en-GB") and IANA time zone, for what cards display.
    locale: str = "en"
    timezone: str = "UTC"
    # The permission the endpoint was registered with: what the record, folder and view
    # loaders of addon/web/helpers.py check by default.
    permission: str = "view"

    def param(self, name: str, default: str = "") -> str:
        """A parameter copied from the clicked action."""
        return self.parameters.get(name, default)

    def text(self, name: str) -> str:
        """A single-valued text form input."""
        values = self.form.get(name) or [""]
        return values[0]

    @property
    def gmail(self) -> dict[str, Any]:
        """The event's gmail object."""
        return _dict(self.event.get("gmail"), "gmail")

    def thread_id(self) -> str:
        """The open thread: from the action's parameters, else the event."""
        return self.param("thread_id") or str(self.gmail.get("threadId") or "")

    def mailbox(self) -> Mailbox:
        """Gmail access with this event's tokens."""
        return mailbox_for(self.event)


def mailbox_for(event: dict[str, Any]) -> Mailbox:
    """Gmail access with an event's tokens."""
    auth = _dict(event.get("authorizationEventObject"), "authorizationEventObject")
    gmail = _dict(event.get("gmail"), "gmail")
    return GoogleMailbox(
        current_app.config["GMAIL_API_URL"],
        str(auth.get("userOAuthToken") or ""),
        str(gmail.get("accessToken") or ""),
        timeout=current_app.config["GMAIL_TIMEOUT_SECONDS"],
    )


def _certs() -> CertificateCache:
    cache: CertificateCache | None = current_app.extensions.get("addon.certs")
    if cache is None:
        cache = CertificateCache(
            current_app.config["GOOGLE_CERTS_URL"],
            current_app.config["CERTS_CACHE_SECONDS"],
            current_app.config["CERTS_MIN_REFRESH_SECONDS"],
        )
        current_app.extensions["addon.certs"] = cache
    return cache


def _refuse(status: int, reason: str) -> Response:
    response = jsonify({"error": reason})
    response.status_code = status
    return response


def called_url() -> str:
    """The URL Google called, which is the audience of its system ID token."""
    url = current_app.config["BASE_URL"] + request.path
    if request.query_string:
        url += "?" + request.query_string.decode()
    return url


Prefetch = Callable[[dict[str, Any]], "Future[Any] | None"]


def authenticate(prefetch: Prefetch | None = None) -> AddonRequest | Response:
    """Verify the system and user ID tokens and resolve the calling member.

    `prefetch` starts slow I/O (a Gmail read) once the system token has proved the
    event comes from Google, so it overlaps verifying the user and loading the member.
    """
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _refuse(401, "missing bearer token")
    try:
        system = verify_id_token(header.removeprefix("Bearer ").strip(), called_url(), _certs())
    except TokenError as exc:
        return _refuse(401, f"system token: {exc}")
    expected = current_app.config["SERVICE_ACCOUNT_EMAIL"]
    # Compare the exact configured address; any other Google identity is refused.
    if not expected or system.get("email") != expected:
        return _refuse(401, "system token: not the add-on's service account")
    request.max_content_length = MAX_EVENT_BYTES
    try:
        event = request.get_json(silent=True)
    except RequestEntityTooLarge:
        return _refuse(413, f"the event is larger than {MAX_EVENT_BYTES // 1024} KiB")
    except RecursionError:
        return _refuse(400, "the event is nested too deeply")
    if not isinstance(event, dict):
        return _refuse(400, "the body must be a JSON event object")
    try:
        check_text(event)
        common = _dict(event.get("commonEventObject"), "commonEventObject")
        auth = _dict(event.get("authorizationEventObject"), "authorizationEventObject")
        form = parse_form_inputs(common)
        raw_params = _dict(common.get("parameters"), "parameters")
        parameters = {str(k): v for k, v in raw_params.items() if isinstance(v, str)}
        if len(parameters) != len(raw_params):
            raise BadEvent("parameters values must be strings")
        _dict(event.get("gmail"), "gmail")
    except BadEvent as exc:
        return _refuse(400, str(exc))
    pending = prefetch(event) if prefetch is not None else None
    if pending is not None:
        # Hand the GIL to the prefetching thread at once: it builds and sends its request
        # (a fraction of a millisecond) and Gmail answers while this thread goes on, instead
        # of the request leaving only when this thread first waits on the database.
        time.sleep(0)
    user_token = auth.get("userIdToken")
    if not isinstance(user_token, str) or not user_token:
        return _refuse(401, "user token: missing (the userinfo.email scope is required)")
    try:
        user = verify_id_token(user_token, current_app.config["OAUTH_CLIENT_ID"], _certs())
    except TokenError as exc:
        return _refuse(401, f"user token: {exc}")
    email = canonical_email(str(user["email"]))
    if email is None:
        return _refuse(401, "user token: unusable email")
    hosted_domain = str(user.get("hd") or "").lower()
    session = get_session()
    member = resolve_member(session, hosted_domain or email, email, is_consumer=not hosted_domain)
    g.member_id = member.id
    return AddonRequest(
        event,
        member,
        session,
        Actions(current_app.config["BASE_URL"]),
        form,
        parameters,
        pending,
        locale=user_locale(common),
        timezone=user_timezone(common, member.workspace.settings),
    )


Handler = Callable[..., dict[str, Any] | Response]


def addon_endpoint(handler: Handler | None = None, *, prefetch: Prefetch | None = None) -> Any:
    """Wrap a view so it runs only for verified Google add-on requests.

    Used bare (`@addon_endpoint`) or with a prefetch (`@addon_endpoint(prefetch=...)`),
    whose future the view finds in `req.prefetched`.
    """

    def wrap(view_function: Handler) -> Callable[..., Any]:
        @functools.wraps(view_function)
        def view(*args: Any, **kwargs: Any) -> Any:
            result = authenticate(prefetch)
            if isinstance(result, Response):
                return result
            return view_function(result, *args, **kwargs)

        return view

    return wrap(handler) if handler is not None else wrap
