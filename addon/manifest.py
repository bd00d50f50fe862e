"""The Google Workspace add-on deployment (HTTP runtime) for Inbox CRM.

The JSON produced here is the JSON form of ``google.cloud.gsuiteaddons.v1.Deployment``
that ``gcloud workspace-add-ons deployments create --deployment-file=...`` accepts.
Field names follow the proto, not the Apps Script ``appsscript.json`` manifest: for
example the compose trigger takes ``actions`` of ``{label, runFunction}`` items
(``MenuItemExtensionPoint``), not Apps Script's ``selectActions`` of ``{text, ...}``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from google.cloud import gsuiteaddons_v1

OAUTH_SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/gmail.addons.current.action.compose",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/script.locale",
)

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_URL_KEYS = frozenset({"runFunction", "onTriggerFunction"})


def _normalize_base_url(base_url: str) -> str:
    """Return base_url without trailing "/"; raise ValueError if it may not serve the add-on."""
    base = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(base)
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"invalid add-on base URL {base_url!r}: {exc}") from exc
    if not host:
        raise ValueError(f"invalid add-on base URL {base_url!r}: it has no host")
    if parts.query or parts.fragment:
        raise ValueError(
            f"invalid add-on base URL {base_url!r}: it must not have a query or fragment"
        )
    if parts.scheme == "https":
        return base
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        return base
    raise ValueError(
        f"add-on base URL {base_url!r} must use https "
        "(plain http is allowed only on 127.0.0.1, localhost or [::1] for local development)"
    )


def render_deployment(
    base_url: str, name: str = "Inbox CRM", logo_url: str | None = None
) -> dict[str, Any]:
    """Return the JSON form of the gsuiteaddons.v1 Deployment for the add-on served at base_url."""
    base = _normalize_base_url(base_url)
    return {
        "oauthScopes": list(OAUTH_SCOPES),
        "addOns": {
            "common": {
                "name": name,
                "logoUrl": logo_url if logo_url is not None else f"{base}/static/logo.png",
                # Events then carry userLocale and timeZone (with the script.locale scope).
                "useLocaleFromApp": True,
                "homepageTrigger": {"runFunction": f"{base}/homepage", "enabled": True},
                "universalActions": [
                    {"label": "Settings", "runFunction": f"{base}/actions/settings"},
                    {"label": "Search CRM", "runFunction": f"{base}/homepage"},
                ],
            },
            "gmail": {
                "contextualTriggers": [
                    {"unconditional": {}, "onTriggerFunction": f"{base}/gmail/message"},
                ],
                "composeTrigger": {
                    "actions": [
                        {"label": "Insert from CRM", "runFunction": f"{base}/gmail/compose"},
                    ],
                    "draftAccess": "METADATA",
                },
            },
            "httpOptions": {"authorizationHeader": "SYSTEM_ID_TOKEN"},
        },
    }


def _endpoint_urls(node: Any) -> list[str]:
    """Return every runFunction/onTriggerFunction value found anywhere in node."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _URL_KEYS:
                found.append(value if isinstance(value, str) else repr(value))
            else:
                found.extend(_endpoint_urls(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_endpoint_urls(item))
    return found


def _url_base(url: str) -> str:
    """Return scheme://host[:port] of url, or raise ValueError if it is not an allowed endpoint."""
    parts = urlsplit(url)
    _normalize_base_url(f"{parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def validate_deployment(data: dict[str, Any], base_url: str | None = None) -> None:
    """Raise ValueError unless data is a valid Deployment whose endpoints all share one base."""
    try:
        gsuiteaddons_v1.Deployment.from_json(json.dumps(data), ignore_unknown_fields=False)
    except Exception as exc:  # json_format.ParseError, TypeError from json.dumps, ...
        raise ValueError(f"invalid add-on deployment: {exc}") from exc

    urls = _endpoint_urls(data)
    if not urls:
        raise ValueError("invalid add-on deployment: it declares no runFunction endpoints")
    base = _normalize_base_url(base_url) if base_url is not None else _url_base(urls[0])
    prefix = f"{base}/"
    stray = sorted({url for url in urls if not url.startswith(prefix)})
    if stray:
        raise ValueError(
            f"invalid add-on deployment: endpoint URLs must all start with {prefix!r}, "
            f"but these do not: {', '.join(stray)}"
        )


def render_deployment_json(base_url: str) -> str:
    """Return the validated deployment for base_url as stable, indented JSON text."""
    data = render_deployment(base_url)
    validate_deployment(data, base_url)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
