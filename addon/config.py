"""Settings from ADDON_* environment variables, with safe defaults."""

from __future__ import annotations

import os
from typing import Any

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GMAIL_API_URL = "https://gmail.googleapis.com/"

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
