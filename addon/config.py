"""Settings from ADDON_* environment variables, with safe defaults."""

from __future__ import annotations

import os
from typing import Any

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GMAIL_API_URL = "https://gmail.googleapis.com/"
OAUTH_AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
OAUTH_TOKEN_URL = "https://oauth2.googleapis.com/token"
OAUTH_REVOKE_URL = "https://oauth2.googleapis.com/revoke"

# Every setting the service reads, with its default. Keys are read from the
# environment as ADDON_<KEY>; an explicit `config` dict given to create_app wins.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///instance/addon.sqlite3",
    "BASE_URL": "http://127.0.0.1:8080",
    "SERVICE_ACCOUNT_EMAIL": "",
    "OAUTH_CLIENT_ID": "",
    "GOOGLE_CERTS_URL": GOOGLE_CERTS_URL,
    "GMAIL_API_URL": GMAIL_API_URL,
    "SECRET_KEY": "",
    "DEV": False,
    # Seconds a fetched set of Google's signing certificates is trusted before refetching.
    "CERTS_CACHE_SECONDS": 3600,
    # Least seconds between refetches forced by tokens signed with an unknown key id.
    "CERTS_MIN_REFRESH_SECONDS": 30,
    "GMAIL_TIMEOUT_SECONDS": 10,
    # Public web forms: submissions one client may make to a workspace's forms per window.
    "FORMS_RATE_LIMIT": 10,
    "FORMS_RATE_WINDOW_SECONDS": 600,
    # Largest accepted submission body, and how long a rendered form may be submitted.
    "FORMS_MAX_BODY_BYTES": 65536,
    "FORMS_TOKEN_MAX_AGE_SECONDS": 7200,
    # Proxies in front of the service that append to X-Forwarded-For (1 on App Engine).
    "FORMS_PROXY_HOPS": 0,
    # The offline Gmail grant (sending, mailbox sync): the web OAuth client's secret,
    # Google's endpoints, and the Fernet keys that encrypt refresh tokens at rest
    # (comma-separated; the first encrypts, all decrypt, so keys can be rotated).
    "OAUTH_CLIENT_SECRET": "",
    "OAUTH_AUTH_URL": OAUTH_AUTH_URL,
    "OAUTH_TOKEN_URL": OAUTH_TOKEN_URL,
    "OAUTH_REVOKE_URL": OAUTH_REVOKE_URL,
    "TOKEN_KEYS": "",
    # Least severity written to the JSON logs on stderr (DEBUG, INFO, WARNING, ERROR).
    "LOG_LEVEL": "INFO",
    # Where work deferred past a request's answer runs (addon.deferred): "background"
    # (a thread pool, after the answer) or "inline" (before the answer; tests).
    "DEFERRED_WORK": "background",
    # Mail merge task endpoint: who may call it, and how long one pass may run (under
    # gunicorn's 30 s request timeout in app.yaml).
    "TASKS_TOKEN": "",
    "ON_APP_ENGINE": False,
    "MAILING_TASK_SECONDS": 20,
}

_BOOLEAN_KEYS = {"DEV", "ON_APP_ENGINE"}
_INTEGER_KEYS = {
    "CERTS_CACHE_SECONDS",
    "CERTS_MIN_REFRESH_SECONDS",
    "GMAIL_TIMEOUT_SECONDS",
    "FORMS_RATE_LIMIT",
    "FORMS_RATE_WINDOW_SECONDS",
    "FORMS_MAX_BODY_BYTES",
    "FORMS_TOKEN_MAX_AGE_SECONDS",
    "FORMS_PROXY_HOPS",
    "MAILING_TASK_SECONDS",
}


def _coerce(key: str, raw: str) -> Any:
    if key in _BOOLEAN_KEYS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if key in _INTEGER_KEYS:
        return int(raw)
    return raw


def load_settings(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults, ADDON_* environment variables and explicit overrides."""
    env = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        value = env.get(f"ADDON_{key}")
        if value is not None and value != "":
            settings[key] = _coerce(key, value)
    settings.update(overrides or {})
    settings["BASE_URL"] = str(settings["BASE_URL"]).rstrip("/")
    return settings
