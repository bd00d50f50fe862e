"""The app starts, answers health checks, and serves the homepage to a verified caller."""

from __future__ import annotations

from flask import Flask

from tests.google_fakes import AddonClient


def test_healthz(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_homepage_for_first_member_creates_admin_workspace(addon: AddonClient) -> None:
    data = addon.post("/homepage")
    card = data["action"]["navigations"][0]["pushCard"]
    assert card["header"]["title"] == "Inbox CRM"
    assert card["header"]["subtitle"] == "rep@acme.test"
