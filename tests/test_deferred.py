"""Work deferred past a request's answer: after commit only, on its own session and thread."""

from __future__ import annotations

import logging
import threading

import pytest
from flask import Flask
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from addon.deferred import defer, drain, run_deferred


@pytest.fixture
def ran(app: Flask) -> list[tuple[str, bool]]:
    """Routes that defer work answering 200 and 400; the work notes its thread and session."""
    seen: list[tuple[str, bool]] = []

    def work(session: Session) -> None:
        seen.append((threading.current_thread().name, isinstance(session, Session)))

    @app.post("/test-defer/<int:status>")
    def _defer(status: int) -> tuple[str, int]:
        defer(work, "test work")
        return "", status

    return seen


def test_work_runs_after_a_successful_request_only(app: Flask, ran: list[tuple[str, bool]]) -> None:
    client = app.test_client()
    assert client.post("/test-defer/400").status_code == 400
    assert ran == []  # a refused request rolls back, and its deferred work with it
    assert client.post("/test-defer/200").status_code == 200
    # The tests' configuration runs it inline, after the commit, with a session of its own.
    assert ran == [(threading.current_thread().name, True)]


def test_in_production_work_runs_on_the_background_pool(
    app: Flask, ran: list[tuple[str, bool]]
) -> None:
    app.config["DEFERRED_WORK"] = "background"
    assert app.test_client().post("/test-defer/200").status_code == 200
    drain(timeout=10)
    [(thread, had_session)] = ran
    assert thread.startswith("deferred") and had_session


def test_a_failing_piece_of_work_is_logged_not_raised(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(session: Session) -> None:
        raise RuntimeError("boom")

    with app.test_request_context(), caplog.at_level(logging.ERROR, logger="addon.deferred"):
        defer(broken, "broken work")
        run_deferred(app)
    assert "deferred work broken work failed" in caplog.text


def test_work_a_deadlock_rolled_back_is_run_again(app: Flask) -> None:
    attempts: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    def flaky(session: Session) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise DBAPIError("INSERT ...", {}, Deadlock("deadlock detected"))

    with app.test_request_context():
        defer(flaky, "flaky work")
        run_deferred(app)
    assert len(attempts) == 3


def test_work_that_is_wrong_is_not_retried(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def wrong(session: Session) -> None:
        attempts.append(1)
        raise DBAPIError("INSERT ...", {}, ValueError("constraint failed"))

    with app.test_request_context(), caplog.at_level(logging.ERROR, logger="addon.deferred"):
        defer(wrong, "wrong work")
        run_deferred(app)
    assert attempts == [1] and "deferred work wrong work failed" in caplog.text
