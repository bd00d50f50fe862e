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

        # The contact card: the open thread, recorded when the message was opened, is
        # linked to the new contact by its address.
        contact_card = page.locator('.card[data-card-name^="record-"]')
        expect(contact_card).to_be_visible()
        expect(contact_card.locator(".card-title")).to_have_text("Priya Raman")
        expect(sidebar).to_contain_text("Head of Sales Ops")
        expect(sidebar).to_contain_text("Question about your pricing")
        expect(sidebar).to_contain_text("Matched by email address")
        # Unlinking by hand, then linking again by hand.
        sidebar.get_by_role("button", name="Unlink", exact=True).click()
        expect(page.locator(".toast", has_text="Thread unlinked")).to_be_visible()
        sidebar.get_by_role("button", name="Link this thread").click()
        expect(page.locator(".toast", has_text="Thread linked")).to_be_visible()
        expect(sidebar).to_contain_text("Linked by hand")

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
    assert "/actions/unlink_thread" in checked


def test_simulator_is_not_served_outside_development_mode(app: Any) -> None:
    assert app.test_client().get("/dev/").status_code == 404
    assert app.test_client().post("/dev/api/token", json={}).status_code == 404


def _button(text: str) -> dict[str, Any]:
    return {"text": text, "onClick": {"openLink": {"url": "https://example.com/help"}}}


def _items(*names: str) -> list[dict[str, Any]]:
    return [{"text": n, "value": n.lower(), "selected": i == 0} for i, n in enumerate(names)]


GALLERY_CARD: dict[str, Any] = {
    "name": "gallery",
    "header": {"title": "Gallery", "subtitle": "Every widget the renderer knows"},
    "sections": [
        {
            "header": "Text",
            "collapsible": True,
            "uncollapsibleWidgetsCount": 2,
            "widgets": [
                {
                    "textParagraph": {
                        "text": '<b>bold</b> <i>it</i> <font color="#d93025">red</font>'
                        "<script>window.hacked = 1</script>"
                    }
                },
                {
                    "decoratedText": {
                        "topLabel": "Top",
                        "text": "Decorated",
                        "bottomLabel": "Bottom",
                        "startIcon": {"knownIcon": "PERSON"},
                        "button": _button("Side"),
                    }
                },
                {"divider": {}},
                {"buttonList": {"buttons": [{**_button("Filled"), "type": "FILLED"}]}},
            ],
        },
        {
            "header": "Inputs",
            "widgets": [
                {"textInput": {"name": "t", "label": "Text label", "value": "hello"}},
                {"textInput": {"name": "m", "label": "Long text", "type": "MULTIPLE_LINE"}},
                {
                    "selectionInput": {
                        "name": "dd",
                        "label": "Dropdown",
                        "type": "DROPDOWN",
                        "items": _items("One", "Two"),
                    }
                },
                {
                    "selectionInput": {
                        "name": "cb",
                        "label": "Checks",
                        "type": "CHECK_BOX",
                        "items": _items("A", "B"),
                    }
                },
                {
                    "selectionInput": {
                        "name": "rb",
                        "label": "Radios",
                        "type": "RADIO_BUTTON",
                        "items": _items("X", "Y"),
                    }
                },
                {
                    "selectionInput": {
                        "name": "sw",
                        "label": "Switches",
                        "type": "SWITCH",
                        "items": _items("On"),
                    }
                },
                {
                    "selectionInput": {
                        "name": "ms",
                        "label": "Multi",
                        "type": "MULTI_SELECT",
                        "items": _items("P", "Q"),
                    }
                },
                {"dateTimePicker": {"name": "d", "label": "When", "type": "DATE_ONLY"}},
            ],
        },
        {
            "widgets": [
                {
                    "grid": {
                        "title": "Grid",
                        "columnCount": 2,
                        "items": [{"title": "G1"}, {"title": "G2"}],
                    }
                },
                {
                    "columns": {
                        "columnItems": [
                            {"widgets": [{"textParagraph": {"text": "left column"}}]},
                            {"widgets": [{"textParagraph": {"text": "right column"}}]},
                        ]
                    }
                },
                {
                    "carousel": {
                        "carouselCards": [{"widgets": [{"textParagraph": {"text": "slide"}}]}]
                    }
                },
            ]
        },
    ],
    "fixedFooter": {"primaryButton": _button("Footer action")},
}


def _card(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "header": {"title": name.title()},
        "sections": [{"widgets": [{"textParagraph": {"text": name}}]}],
    }


def test_renderer_widgets_navigation_and_compose(simulator: str) -> None:
    from google.apps.card_v1 import Card
    from playwright.sync_api import expect, sync_playwright

    # The gallery is a real card: the strict parser accepts it.
    Card.from_json(json.dumps(GALLERY_CARD), ignore_unknown_fields=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{simulator}/dev/")
        expect(page.locator('.card[data-card-name="home"]')).to_be_visible()

        page.evaluate("card => window.simulator.render(card)", GALLERY_CARD)
        card = page.locator('.card[data-card-name="gallery"]')
        expect(card.locator(".text-paragraph b").first).to_have_text("bold")
        expect(card.locator("font, [style*=color]").first).to_have_text("red")
        assert card.locator("script").count() == 0, "card text never runs scripts"
        assert page.evaluate("window.hacked") is None
        expect(card.locator(".dt-top")).to_have_text("Top")
        expect(card.get_by_role("button", name="Side")).to_be_visible()
        expect(card.get_by_role("button", name="Show more")).to_be_visible()
        expect(card.get_by_label("Text label")).to_have_value("hello")
        expect(card.locator("textarea[name=m]")).to_be_visible()
        expect(card.locator("select[name=dd] option")).to_have_count(2)
        expect(card.locator("select[name=ms][multiple]")).to_have_count(1)
        expect(card.locator("input[type=checkbox][name=cb]")).to_have_count(2)
        expect(card.locator("input[type=radio][name=rb]")).to_have_count(2)
        expect(card.get_by_role("switch")).to_have_count(1)
        expect(card.get_by_label("When")).to_be_visible()
        expect(card.locator(".grid-item")).to_have_count(2)
        expect(card.locator(".columns")).to_contain_text("right column")
        expect(card.locator(".unknown-widget")).to_have_text("Unsupported widget: carousel")
        expect(card.get_by_role("button", name="Footer action")).to_be_visible()

        # Navigation rules, applied as Gmail applies them.
        stack = page.evaluate(
            "b => window.simulator.apply(b)",
            {
                "renderActions": {
                    "action": {"navigations": [{"pushCard": _card(n)} for n in ("a", "b", "c")]}
                }
            },
        )
        assert stack == ["gallery", "a", "b", "c"]
        stack = page.evaluate(
            "b => window.simulator.apply(b)",
            {"renderActions": {"action": {"navigations": [{"popToCard": "a"}]}}},
        )
        assert stack == ["gallery", "a"]
        stack = page.evaluate(
            "b => window.simulator.apply(b)",
            {
                "renderActions": {
                    "action": {
                        "navigations": [{"updateCard": _card("z")}],
                        "notification": {"text": "Updated!"},
                    }
                }
            },
        )
        assert stack == ["gallery", "z"]
        expect(page.locator(".toast", has_text="Updated!")).to_be_visible()
        stack = page.evaluate(
            "b => window.simulator.apply(b)",
            {"renderActions": {"action": {"navigations": [{"popToRoot": True}]}}},
        )
        assert stack == ["gallery"]
        stack = page.evaluate(
            "b => window.simulator.apply(b)",
            {"renderActions": {"action": {"navigations": [{"pop": True}]}}},
        )
        assert stack == ["gallery"], "pop never goes below the root card"

        # The compose trigger lists which draft recipients are in the CRM.
        page.locator("#compose-button").click()
        page.get_by_label("To", exact=True).fill("alice.martin@acme.com, new.person@startup.io")
        page.locator("#compose-run").click()
        compose = page.locator('.card[data-card-name="compose"]')
        expect(compose).to_contain_text("Alice Martin")
        expect(compose).to_contain_text("new.person@startup.io")
        page.screenshot(path=str(OUTPUT_DIR / "compose.png"))
        browser.close()
