"""Who may run the worker over HTTP (/tasks/mailing), and the `flask mailing worker` command."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Flask
from sqlalchemy.orm import Session

from addon.gmail.fake_server import FakeSending
from addon.mailing.clock import FakeClock
from tests.crmdata import Crm
from tests.mailing_support import (
    START,
    FakeGrants,
    make_template,
    running_campaign,
    seed_contacts,
    sending,
)

__all__ = ["sending"]


def _arrange(app: Flask, db: Session, crm: Crm, sending: FakeSending, grants: bool = True) -> None:
    seed_contacts(db, crm.member, crm.folders["contacts"], 3)
    running_campaign(db, crm.member, crm.folders["contacts"], make_template(db, crm.member))
    db.commit()
    clock = FakeClock(START)
    sending.clock = clock.now
    app.extensions["addon.mailing.clock"] = clock
    if grants:
        app.extensions["addon.mailing.grants"] = SimpleNamespace(credentials_for=FakeGrants())


def test_task_endpoint_is_closed_without_a_token_or_app_engine(
    app: Flask, db: Session, crm: Crm, sending: FakeSending
) -> None:
    _arrange(app, db, crm, sending)
    client = app.test_client()
    closed = client.post("/tasks/mailing")
    assert closed.status_code == 403
    assert "set ADDON_TASKS_TOKEN" in closed.get_json()["error"]
    # The cron header means nothing off App Engine: anyone can send it.
    forged = client.get("/tasks/mailing", headers={"X-Appengine-Cron": "true"})
    assert forged.status_code == 403
    app.config["TASKS_TOKEN"] = "s3cret-token"
    wrong = client.post("/tasks/mailing", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    assert "only App Engine cron or the task token" in wrong.get_json()["error"]
    assert sending.sent == []


def test_task_endpoint_runs_a_pass_for_the_token_or_app_engine_cron(
    app: Flask, db: Session, crm: Crm, sending: FakeSending
) -> None:
    _arrange(app, db, crm, sending)
    app.config["TASKS_TOKEN"] = "s3cret-token"
    client = app.test_client()
    done = client.post("/tasks/mailing", headers={"Authorization": "Bearer s3cret-token"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["sent"] == 3
    assert len(sending.sent) == 3
    app.config["ON_APP_ENGINE"] = True
    cron = client.get("/tasks/mailing", headers={"X-Appengine-Cron": "true"})
    assert cron.status_code == 200 and cron.get_json()["sent"] == 0


def test_task_endpoint_says_when_sending_is_not_set_up(
    app: Flask, db: Session, crm: Crm, sending: FakeSending
) -> None:
    _arrange(app, db, crm, sending, grants=False)
    app.config["TASKS_TOKEN"] = "s3cret-token"
    answer = app.test_client().post(
        "/tasks/mailing", headers={"Authorization": "Bearer s3cret-token"}
    )
    assert answer.status_code == 503
    assert "no Gmail sending grant store" in answer.get_json()["error"]


def test_worker_command_once(app: Flask, db: Session, crm: Crm, sending: FakeSending) -> None:
    _arrange(app, db, crm, sending, grants=False)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["mailing", "worker", "--once"])
    assert refused.exit_code != 0
    assert "not set up" in refused.output
    app.extensions["addon.mailing.grants"] = SimpleNamespace(credentials_for=FakeGrants())
    result = runner.invoke(args=["mailing", "worker", "--once", "--worker-id", "cli-1"])
    assert result.exit_code == 0, result.output
    assert "sent 3," in result.output
    assert len(sending.sent) == 3
