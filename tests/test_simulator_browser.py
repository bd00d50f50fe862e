"""The local sidebar simulator in a real headless Chromium, as a rep would use it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from addon.web.dev import build_dev_app
from tests.cardcheck import check_response

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "test-output" / "browser"

pytestmark = pytest.mark.browser


def _require_browser() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = (
        f"no browser at {CHROMIUM}: install Debian's chromium (`sudo apt-get install chromium`) "
        "to run the simulator's browser test"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    """The development app (fake Gmail, demo data, simulator page) on a loopback port."""
    _require_browser()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app, env = build_dev_app(base_url, f"sqlite:///{tmp_path / 'simulator.sqlite3'}")
    server.app = app
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base_url
    server.shutdown()
    env.gmail.stop()


def test_rep_adds_unknown_sender_links_thread_and_finds_record(simulator: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    base_url = simulator
    checked: list[str] = []
    problems: list[str] = []

    def check_card_response(response: Any) -> None:
        # Every answer of the service's add-on endpoints must pass the card contract.
        path = urlsplit(response.url).path
        if response.request.method != "POST" or path.startswith("/dev/"):
            return
        try:
            check_response(path, json.loads(response.body()), base_url)
            checked.append(path)
        except Exception as exc:  # collected and reported after the run
            problems.append(f"{path}: {exc!r}")

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("response", check_card_response)
        page.goto(f"{base_url}/dev/")
        sidebar = page.locator("#card-container")
        expect(page.locator('.card[data-card-name="home"]')).to_be_visible()

        # Open a message from a sender the CRM does not know.
        page.locator('li.message-row[data-message-id="demo-011"]').click()
        expect(page.locator('.card[data-card-name="message"]')).to_be_visible()
        expect(sidebar).to_contain_text("not in your CRM yet")
        sidebar.get_by_role("button", name="Add contact").click()

        # The form is pre-filled from the From header.
        expect(page.locator('.card[data-card-name="record-form"]')).to_be_visible()
        expect(sidebar.get_by_label("First name")).to_have_value("Priya")
        expect(sidebar.get_by_label("Last name")).to_have_value("Raman")
        expect(sidebar.get_by_label("Emails")).to_have_value("priya.raman@northwind-traders.com")
        expect(sidebar.get_by_label("Company")).to_have_value("Northwind Traders")
        sidebar.get_by_label("Job title").fill("Head of Sales Ops")
        sidebar.get_by_role("button", name="Save", exact=True).click()

        # The contact card, then link the open thread to it.
        contact_card = page.locator('.card[data-card-name^="record-"]')
        expect(contact_card).to_be_visible()
        expect(contact_card.locator(".card-title")).to_have_text("Priya Raman")
        expect(sidebar).to_contain_text("Head of Sales Ops")
        sidebar.get_by_role("button", name="Link this thread").click()
        expect(page.locator(".toast", has_text="Thread linked")).to_be_visible()
        expect(sidebar).to_contain_text("Question about your pricing")

        # Back to the message, then home, and find the record by search.
        page.locator("#back-button").click()
        expect(page.locator('.card[data-card-name="message"]')).to_be_visible()
        page.get_by_role("button", name="Home", exact=True).click()
        expect(page.locator('.card[data-card-name="home"]')).to_be_visible()
        sidebar.get_by_label("Search by name, email, company or domain").fill("priya")
        sidebar.get_by_role("button", name="Search", exact=True).click()
        search_section = sidebar.locator(".card-section").first
        result = search_section.locator(".decorated-text", has_text="Priya Raman")
        expect(result).to_be_visible()
        result.click()
        expect(page.locator('.card[data-card-name^="record-"] .card-title')).to_have_text(
            "Priya Raman"
        )

        # The raw toggle shows the protocol, with tokens redacted.
        page.locator("#raw-toggle").click()
        expect(page.locator("#raw-event")).to_contain_text("commonEventObject")
        expect(page.locator("#raw-event")).to_contain_text("<redacted>")

        page.screenshot(path=str(OUTPUT_DIR / "simulator.png"), full_page=True)
        browser.close()

    assert not problems, problems
    assert {"/homepage", "/gmail/message", "/actions/new_contact", "/actions/create_record"} <= set(
        checked
    )
    assert "/actions/link_thread" in checked and "/actions/search" in checked


def test_simulator_is_not_served_outside_development_mode(app: Any) -> None:
    assert app.test_client().get("/dev/").status_code == 404
    assert app.test_client().post("/dev/api/token", json={}).status_code == 404
