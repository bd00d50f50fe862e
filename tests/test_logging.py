"""Logs: JSON lines on stderr that Cloud Logging reads, with no token, secret or address."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask

from addon.logs import redact
from tests.admin_support import link_of
from tests.google_fakes import AddonClient

TRACE = "105445aa7843bc8bf206b12000100000"


def lines(captured: str) -> list[dict[str, Any]]:
    """The JSON log lines written to stderr (every line must be one)."""
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def test_requests_log_json_lines_with_request_id_status_and_latency(
    addon: AddonClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = addon.client.get("/healthz", headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"})
    assert response.headers["X-Request-Id"] == TRACE
    other = addon.client.get("/healthz")
    generated = other.headers["X-Request-Id"]
    assert len(generated) == 32 and generated != TRACE
    logged = lines(capsys.readouterr().err)
    first, second = logged[-2], logged[-1]
    assert first["severity"] == "INFO" and first["message"] == "GET /healthz 200"
    assert first["requestId"] == TRACE and second["requestId"] == generated
    http = first["httpRequest"]
    assert http["requestMethod"] == "GET" and http["requestUrl"] == "/healthz"
    assert http["status"] == 200 and http["latency"].endswith("s")
    assert float(http["latency"][:-1]) >= 0


def test_on_app_engine_lines_join_the_request_trace(
    app: Flask, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from addon import logs

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme-crm")
    logs.configure(app)
    app.test_client().get("/healthz", headers={"X-Cloud-Trace-Context": TRACE})
    line = lines(capsys.readouterr().err)[-1]
    assert line["logging.googleapis.com/trace"] == f"projects/acme-crm/traces/{TRACE}"


def test_no_token_secret_or_address_reaches_the_logs(
    app: Flask, addon: AddonClient, capsys: pytest.CaptureFixture[str]
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    secret = app.config["SECRET_KEY"]
    user_token = addon.tokens.user_token("rep@acme.test", "acme.test")
    system_token = addon.tokens.system_token("https://addon.test/homepage")

    @app.get("/boom/<path:rest>")
    def boom(rest: str) -> str:
        raise ValueError(f"cannot mail jane.doe@client.example with {user_token} ({secret})")

    logger = logging.getLogger("addon")
    addon.post("/homepage")
    addon.action("admin_invite", form={"email": "vera@acme.test", "role": "viewer"})
    addon.action("admin_erase_confirm", form={"email": "Jane.Doe@client.example"})
    url = link_of(addon.action("admin_privacy_export", form={"email": "jane.doe@client.example"}))
    addon.client.get(url)
    addon.client.get("/exports/jane.doe%40client.example?token=" + system_token)
    addon.client.post("/homepage", headers={"Authorization": f"Bearer {system_token}"}, json={})
    addon.client.get("/boom/jane.doe@client.example", headers={"Authorization": "Bearer abc"})
    logger.warning(
        "refresh %s for %s, key %s", "1//0gLongRefreshToken-abc", "sam@acme.test", secret
    )
    logger.info("access ya29.a0AfH6SMBx and phone +1 (415) 555-0100 and id-token %s", user_token)

    err = capsys.readouterr().err
    logged = lines(err)
    assert len(logged) >= 9
    for forbidden in (
        "@",
        "%40",
        "jane",
        "vera",
        "sam",
        user_token,
        system_token,
        user_token.split(".")[1],
        secret,
        "ya29.a0",
        "1//0g",
        "555-0100",
        url.rsplit("/", 1)[-1],
    ):
        assert forbidden not in err, forbidden
    failure = next(line for line in logged if line["severity"] == "ERROR" and "stack_trace" in line)
    assert "ValueError: cannot mail [email] with [token] ([secret])" in failure["stack_trace"]
    statuses = {line["httpRequest"]["status"] for line in logged if "httpRequest" in line}
    assert {200, 403, 401, 500} <= statuses
    assert any(line["message"] == "GET /admin/downloads/[redacted] 200" for line in logged)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("From: Ann <ann.o'neil+crm@sub.example.co.uk>", "From: Ann <[email]>"),
        ("q=ann%40example.com", "q=[email]"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [token]"),
        ("call +44 20 7946 0958 now", "call [number] now"),
        ("record 12345 of 20", "record 12345 of 20"),
        ("GET /actions/open_record 200", "GET /actions/open_record 200"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
