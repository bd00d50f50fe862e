"""The add-on deployment manifest: proto validity, URLs and the committed example."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import gsuiteaddons_v1

from addon.manifest import (
    OAUTH_SCOPES,
    render_deployment,
    render_deployment_json,
    validate_deployment,
)

BASE = "https://crm.example.org"
EXAMPLE_FILE = Path(__file__).resolve().parent.parent / "manifest" / "deployment.example.json"


def _endpoint_urls(node: Any) -> list[str]:
    """Return every runFunction/onTriggerFunction value in node."""
    if isinstance(node, dict):
        urls = [v for k, v in node.items() if k in ("runFunction", "onTriggerFunction")]
        for value in node.values():
            urls.extend(_endpoint_urls(value))
        return urls
    if isinstance(node, list):
        return [url for item in node for url in _endpoint_urls(item)]
    return []


def test_render_parses_as_deployment_proto_strictly() -> None:
    data = render_deployment(BASE)
    validate_deployment(data)
    deployment = gsuiteaddons_v1.Deployment.from_json(json.dumps(data), ignore_unknown_fields=False)
    assert list(deployment.oauth_scopes) == list(OAUTH_SCOPES)
    common = deployment.add_ons.common
    assert common.name == "Inbox CRM"
    assert common.logo_url == f"{BASE}/static/logo.png"
    assert common.homepage_trigger.run_function == f"{BASE}/homepage"
    assert common.homepage_trigger.enabled is True
    assert [(a.label, a.run_function) for a in common.universal_actions] == [
        ("Settings", f"{BASE}/actions/settings"),
        ("Search CRM", f"{BASE}/homepage"),
    ]
    gmail = deployment.add_ons.gmail
    assert len(gmail.contextual_triggers) == 1
    trigger = gmail.contextual_triggers[0]
    assert "unconditional" in trigger
    assert trigger.on_trigger_function == f"{BASE}/gmail/message"
    compose = gmail.compose_trigger
    assert [(a.label, a.run_function) for a in compose.actions] == [
        ("Insert from CRM", f"{BASE}/gmail/compose")
    ]
    assert compose.draft_access == compose.DraftAccess.METADATA
    assert deployment.add_ons.http_options.authorization_header.name == "SYSTEM_ID_TOKEN"


def test_oauth_scopes_are_full_urls() -> None:
    assert len(OAUTH_SCOPES) == 5
    assert all(s.startswith("https://www.googleapis.com/auth/") for s in OAUTH_SCOPES)


def test_every_endpoint_uses_the_base_url() -> None:
    urls = _endpoint_urls(render_deployment(BASE))
    assert len(urls) == 5
    assert all(url.startswith(f"{BASE}/") for url in urls)


def test_name_and_logo_can_be_overridden() -> None:
    data = render_deployment(BASE, name="Acme CRM", logo_url="https://cdn.example.org/a.png")
    validate_deployment(data)
    assert data["addOns"]["common"]["name"] == "Acme CRM"
    assert data["addOns"]["common"]["logoUrl"] == "https://cdn.example.org/a.png"


@pytest.mark.parametrize("suffix", ["/", "//"])
def test_trailing_slash_is_stripped(suffix: str) -> None:
    assert render_deployment(BASE + suffix) == render_deployment(BASE)
    assert render_deployment_json(BASE + suffix) == render_deployment_json(BASE)
    assert all(
        "//" not in url.removeprefix("https://")
        for url in _endpoint_urls(render_deployment(BASE + suffix))
    )


def test_base_url_with_path_prefix() -> None:
    data = render_deployment("https://example.org/crm/")
    validate_deployment(data)
    assert data["addOns"]["common"]["homepageTrigger"]["runFunction"] == (
        "https://example.org/crm/homepage"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.org",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.evil.example",
        "ftp://localhost",
        "crm.example.org",
        "https://",
        "",
    ],
)
def test_non_https_base_url_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        render_deployment(url)
    with pytest.raises(ValueError, match="base URL"):
        render_deployment_json(url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8080", "http://127.0.0.1:5000/", "http://[::1]:8080"]
)
def test_local_http_base_url_is_allowed(url: str) -> None:
    data = render_deployment(url)
    validate_deployment(data)
    base = url.rstrip("/")
    assert all(u.startswith(f"{base}/") for u in _endpoint_urls(data))


def test_committed_example_matches_a_fresh_render() -> None:
    assert EXAMPLE_FILE.read_text(encoding="utf-8") == render_deployment_json(
        "https://addon.example.com"
    )


def test_render_json_is_stable_and_validated() -> None:
    text = render_deployment_json(BASE)
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data == render_deployment(BASE)
    validate_deployment(data)


@pytest.mark.parametrize(
    "path",
    [
        (),
        ("addOns",),
        ("addOns", "common"),
        ("addOns", "gmail"),
        ("addOns", "gmail", "composeTrigger"),
        ("addOns", "httpOptions"),
    ],
)
def test_unknown_field_is_rejected(path: tuple[str, ...]) -> None:
    data = copy.deepcopy(render_deployment(BASE))
    node = data
    for key in path:
        node = node[key]
    node["notARealField"] = True
    with pytest.raises(ValueError, match="notARealField"):
        validate_deployment(data)


def test_apps_script_style_compose_field_is_rejected() -> None:
    data = copy.deepcopy(render_deployment(BASE))
    data["addOns"]["gmail"]["composeTrigger"] = {
        "selectActions": [{"text": "Insert from CRM", "runFunction": f"{BASE}/gmail/compose"}]
    }
    with pytest.raises(ValueError, match="selectActions"):
        validate_deployment(data)


def test_bad_enum_value_is_rejected() -> None:
    data = copy.deepcopy(render_deployment(BASE))
    data["addOns"]["httpOptions"]["authorizationHeader"] = "BEARER"
    with pytest.raises(ValueError, match="invalid add-on deployment"):
        validate_deployment(data)


def test_endpoint_on_another_base_is_rejected() -> None:
    data = copy.deepcopy(render_deployment(BASE))
    data["addOns"]["gmail"]["contextualTriggers"][0]["onTriggerFunction"] = (
        "https://elsewhere.example.net/gmail/message"
    )
    with pytest.raises(ValueError, match=r"elsewhere\.example\.net"):
        validate_deployment(data)


def test_endpoint_outside_the_explicit_base_is_rejected() -> None:
    data = render_deployment("https://example.org/crm")
    validate_deployment(data, "https://example.org/crm/")
    with pytest.raises(ValueError, match="must all start with"):
        validate_deployment(data, "https://example.org/other")


def test_plain_http_endpoints_are_rejected() -> None:
    data = json.loads(json.dumps(render_deployment(BASE)).replace("https://", "http://"))
    with pytest.raises(ValueError, match="must use https"):
        validate_deployment(data)
