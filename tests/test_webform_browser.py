"""A visitor fills in a public web form in a real headless Chromium, without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from threading import Thread

import pytest
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from addon import create_app, migrations
from addon.crm.models import Record, RecordEmail
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import session_scope
from tests.crmdata import Crm
from tests.test_simulator_browser import CHROMIUM, CHROMIUM_FLAGS, OUTPUT_DIR, _require_browser
from tests.webforms_support import make_form, value_of

pytestmark = pytest.mark.browser


@pytest.fixture
def form_site(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The service on a loopback port with one published contact form; (form URL, app)."""
    _require_browser()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    url = f"sqlite:///{tmp_path / 'forms.sqlite3'}"
    app = create_app({"DATABASE_URL": url, "BASE_URL": base_url, "SECRET_KEY": "browser-test"})
    with app.extensions["addon.engine"].begin() as connection:
        migrations.upgrade(url, connection)
    with session_scope(app) as session:
        member = resolve_member(session, "acme.test", "admin@acme.test", is_consumer=False)
        session.flush()
        crm = Crm(session, member, folders_by_key(session, member.workspace_id))
        form = make_form(
            crm,
            spec=[
                ("first_name", "First name", True),
                ("emails", "Work email", True),
                ("lifecycle_stage", "Where are you in your search?", False),
            ],
            name="Request a demo",
            thank_you="Thank you, Ada will call you.",
        )
        public_id = form.public_id
    server.app = app
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{base_url}/forms/{public_id}", app
    server.shutdown()


def test_visitor_corrects_errors_and_submits_the_form(form_site: tuple[str, object]) -> None:
    from playwright.sync_api import expect, sync_playwright

    form_url, app = form_site
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        # No JavaScript: the form must work as plain HTML.
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(form_url)
        expect(page.get_by_role("heading", name="Request a demo")).to_be_visible()

        # Labels are bound to inputs: the visitor finds each field by its label.
        page.get_by_label("First name (required)").fill("Ada")
        page.get_by_label("Work email (required)").fill("ada@")
        page.get_by_label("Where are you in your search?").select_option("lead")
        page.get_by_role("button", name="Send").click()

        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("1 problem with what was sent")
        email = page.get_by_label("Work email (required)")
        expect(email).to_have_attribute("aria-invalid", "true")
        expect(email).to_have_accessible_description(
            "For example name@example.com. “ada@” is not a valid email address."
        )
        # What the visitor typed is still there.
        expect(page.get_by_label("First name (required)")).to_have_value("Ada")
        expect(page.get_by_label("Where are you in your search?")).to_have_value("lead")
        page.screenshot(path=str(OUTPUT_DIR / "webform-errors.png"), full_page=True)

        email.fill("Ada@Example.com")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_text("Thank you, Ada will call you.")).to_be_visible()
        page.screenshot(path=str(OUTPUT_DIR / "webform-thanks.png"), full_page=True)
        browser.close()

    with session_scope(app) as session:  # type: ignore[arg-type]
        record = session.execute(
            select(Record)
            .join(RecordEmail, RecordEmail.record_id == Record.id)
            .where(RecordEmail.email == "ada@example.com")
        ).scalar_one()
        assert record.title == "Ada"
        assert value_of(session, record, "lifecycle_stage") == "lead"
        assert value_of(session, record, "lead_source") == "web form"
