"""Development mode: the local Gmail sidebar simulator and what it needs.

Only registered when ADDON_DEV=1. The simulator page plays Gmail's part: it mints
Google-style ID tokens with a local key (which only a development app trusts) and posts
real event objects to the service's real endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_from_directory

from addon.auth.devkeys import SigningKey, TokenMinter
from addon.auth.fake_oauth import AUTH_PATH, REVOKE_PATH, TOKEN_PATH, FakeOAuth
from addon.gmail.addresses import decode_header_text
from addon.gmail.demo_mailbox import demo_messages
from addon.gmail.fake_server import FakeGmail, FakeGmailServer

bp = Blueprint("dev", __name__, url_prefix="/dev")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "dev"
DEV_SERVICE_ACCOUNT = "service-0@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
DEV_CLIENT_ID = "inbox-crm-dev.apps.googleusercontent.com"
DEV_CLIENT_SECRET = "inbox-crm-dev-secret"
DEV_DOMAIN = "example.com"
DEV_USERS = (f"rep@{DEV_DOMAIN}", f"sam@{DEV_DOMAIN}", f"lee@{DEV_DOMAIN}")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class UnsafeDevMode(RuntimeError):
    """Development mode asked for where it could be reached from another machine."""


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine only."""
    return host.strip("[]") in LOOPBACK_HOSTS or host.startswith("127.")


def check_dev_mode_is_safe(config: dict[str, Any]) -> None:
    """Refuse development mode (and its trusted local key) on anything but loopback."""
    host = urlsplit(str(config.get("BASE_URL", ""))).hostname or ""
    if config.get("DEV") and not is_loopback(host):
        raise UnsafeDevMode(
            f"ADDON_DEV=1 trusts a local signing key and must only run on loopback; "
            f"ADDON_BASE_URL host is {host!r}"
        )
    if config.get("DEV_MINTER") is not None and not config.get("DEV"):
        raise UnsafeDevMode("a development signing key was given outside development mode")


def _minter() -> TokenMinter:
    minter: TokenMinter | None = current_app.extensions.get("addon.dev_minter")
    if minter is None:
        raise LookupError("no development key: start the simulator with `make run`")
    return minter


@bp.get("/")
def page() -> Response:
    """The simulator page."""
    return send_from_directory(STATIC_DIR, "index.html")


@bp.get("/api/config")
def config() -> Response:
    """What the page needs to play Gmail's part."""
    return jsonify(
        {
            "baseUrl": current_app.config["BASE_URL"],
            "user": DEV_USERS[0],
            "users": list(DEV_USERS),
            "oauthToken": "dev-oauth-token",
        }
    )


@bp.get("/api/inbox")
def inbox() -> Response:
    """The demo mailbox, newest first, with headers decoded for display."""
    gmail: FakeGmail | None = current_app.extensions.get("addon.dev_gmail")
    messages = list(gmail.messages.values()) if gmail else []
    rows = [
        {
            "id": m.id,
            "threadId": m.thread_id,
            "from": decode_header_text(m.header("From")),
            "to": decode_header_text(m.header("To")),
            "subject": decode_header_text(m.header("Subject")),
            "date": m.header("Date"),
            "snippet": m.snippet,
            "labels": m.label_ids,
        }
        for m in reversed(messages)
    ]
    return jsonify({"messages": rows})


@bp.post("/api/token")
def token() -> tuple[Response, int] | Response:
    """Mint the system token for one endpoint URL and the user's token."""
    body = request.get_json(silent=True) or {}
    audience = str(body.get("audience", ""))
    user = str(body.get("user") or DEV_USERS[0])
    base = current_app.config["BASE_URL"]
    if not audience.startswith(base + "/"):
        return jsonify({"error": f"audience must be a URL of this service ({base}/...)"}), 400
    if user not in DEV_USERS:
        return jsonify({"error": f"unknown demo user {user!r}"}), 400
    try:
        minter = _minter()
    except LookupError as exc:
        return jsonify({"error": str(exc)}), 503
    return jsonify(
        {
            "systemIdToken": minter.system_token(audience),
            "userIdToken": minter.user_token(user, DEV_DOMAIN),
        }
    )


@dataclass
class DevEnvironment:
    """A fake Gmail (with the dev key's certificate) and the config that trusts it."""

    gmail: FakeGmailServer
    minter: TokenMinter

    def config(self, base_url: str, database_url: str) -> dict[str, Any]:
        """create_app overrides for a development app on this environment."""
        return {
            "DEV": True,
            "BASE_URL": base_url,
            "DATABASE_URL": database_url,
            "GMAIL_API_URL": self.gmail.url,
            "GOOGLE_CERTS_URL": self.gmail.certs_url,
            "SERVICE_ACCOUNT_EMAIL": DEV_SERVICE_ACCOUNT,
            "OAUTH_CLIENT_ID": DEV_CLIENT_ID,
            "SECRET_KEY": "development-only",
            # Gmail access (sending, mailbox sync) consents at the fake OAuth server.
            "OAUTH_CLIENT_SECRET": DEV_CLIENT_SECRET,
            "OAUTH_AUTH_URL": self.gmail.url.rstrip("/") + AUTH_PATH,
            "OAUTH_TOKEN_URL": self.gmail.url.rstrip("/") + TOKEN_PATH,
            "OAUTH_REVOKE_URL": self.gmail.url.rstrip("/") + REVOKE_PATH,
            "DEV_MINTER": self.minter,
            "DEV_GMAIL": self.gmail.state,
        }


def start_dev_environment() -> DevEnvironment:
    """Start the fake Gmail with the demo mailbox and a fresh development key."""
    key = SigningKey.generate("inbox-crm-dev")
    state = FakeGmail(certs=key.certs())
    for message in demo_messages(DEV_DOMAIN):
        state.add(message)
    minter = TokenMinter(key, DEV_SERVICE_ACCOUNT, DEV_CLIENT_ID)
    state.oauth = FakeOAuth(DEV_CLIENT_ID, DEV_CLIENT_SECRET, minter)
    server = FakeGmailServer(state).start()
    return DevEnvironment(server, minter)


def init_app(app: Flask, config: dict[str, Any]) -> None:
    """Register the simulator when in development mode."""
    check_dev_mode_is_safe({**app.config, **config})
    if not app.config["DEV"]:
        return
    if config.get("DEV_MINTER") is not None:
        app.extensions["addon.dev_minter"] = config["DEV_MINTER"]
    if config.get("DEV_GMAIL") is not None:
        app.extensions["addon.dev_gmail"] = config["DEV_GMAIL"]
    app.register_blueprint(bp)


def build_dev_app(base_url: str, database_url: str) -> tuple[Flask, DevEnvironment]:
    """A migrated, seeded development app with its fake Gmail running."""
    from addon import create_app, migrations
    from addon.db import session_scope
    from addon.demo import seed_demo

    env = start_dev_environment()
    app = create_app(env.config(base_url, database_url))
    with app.extensions["addon.engine"].begin() as connection:
        migrations.upgrade(database_url, connection)
    with session_scope(app) as session:
        seed_demo(session, DEV_DOMAIN)
    return app, env
