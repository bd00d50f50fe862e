"""Work a request hands over to run after its answer is committed, with its own session.

Some consequences of a request are too slow for the sidebar's latency budget but need not
be in its answer: recording a newly opened thread in the email ledger reads the thread
from Gmail and writes a few dozen rows. The request registers that work with `defer`;
once the request's transaction has committed (never after a rollback), the work runs with
a session of its own that commits on success:

  background  on a small thread pool, after the answer has been handed back (production)
  inline      at once, before the answer is returned (tests, so they can assert on it)

Each piece of work must be idempotent: a process that stops before running it loses it,
and the next occasion (another open of the thread, mailbox sync) does it again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import Flask, g
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from addon.db import session_scope

log = logging.getLogger(__name__)

Work = Callable[[Session], None]

MODES = ("background", "inline")
# Two threads: deferred work is database-bound and shares the process with requests.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deferred")
_pending: set[Future[None]] = set()


def defer(work: Work, name: str) -> None:
    """Run `work(session)` after the current request commits (see the module docstring)."""
    g.setdefault("addon_deferred", []).append((name, work))


# Two recordings of one new thread (teammates opening it together) can deadlock on
# PostgreSQL or find SQLite's write lock taken; the database rolls one back, which is then
# simply run again on a fresh session.
ATTEMPTS = 4
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def is_transient(exc: BaseException) -> bool:
    """Whether a database error means "try the same work again", not "the work is wrong"."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def _run(app: Flask, name: str, work: Work) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with app.app_context(), session_scope(app) as session:
                work(session)
            return
        except Exception as exc:
            if attempt < ATTEMPTS and is_transient(exc):
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            # Deferred work is redone on a later occasion; a failure must not be silent.
            log.exception("deferred work %s failed", name)
            return


def run_deferred(app: Flask) -> None:
    """Start the work the request deferred; called once its transaction has committed."""
    queued: list[tuple[str, Work]] = g.pop("addon_deferred", [])
    for name, work in queued:
        if app.config.get("DEFERRED_WORK", "background") == "inline":
            _run(app, name, work)
        else:
            future = _pool.submit(_run, app, name, work)
            _pending.add(future)
            future.add_done_callback(_pending.discard)


def discard_deferred() -> None:
    """Forget the work of a request that rolled back."""
    g.pop("addon_deferred", None)


def drain(timeout: float | None = None) -> None:
    """Wait for background work started so far (benchmarks, tests, shutdown)."""
    wait(list(_pending), timeout=timeout)
