"""A mail-merge worker in its own process, for the crash and concurrency tests.

    python -m tests.mailing_worker_proc DATABASE_URL GMAIL_API_URL WORKER_ID LEASE_SECONDS

Runs on the wall clock with Gmail's rate pacing off (the fake server enforces none), until
nothing is pending, and prints its report. Credentials are fake: the server takes any token.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from sqlalchemy.orm import sessionmaker

from addon.db import make_engine
from addon.mailing.clock import SystemClock
from addon.mailing.sender import gmail_sender_factory
from addon.mailing.worker import Worker, WorkerSettings
from tests.mailing_support import BASE_URL, SECRET, FakeGrants


def main(argv: list[str]) -> int:
    """Run one worker until the queue is empty."""
    url, api_url, worker_id, lease = argv
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    settings = WorkerSettings(
        worker_id=worker_id,
        base_url=BASE_URL,
        secret=SECRET,
        lease=timedelta(seconds=float(lease)),
        min_interval=timedelta(0),
        backoff_base=timedelta(milliseconds=50),
        backoff_max=timedelta(milliseconds=500),
        idle_poll=timedelta(milliseconds=200),
    )
    worker = Worker(
        sessions, gmail_sender_factory(api_url, FakeGrants(), 5), SystemClock(), settings
    )
    report = worker.run(until_done=True)
    print(f"{worker_id}: sent {report.sent}, reconciled {report.reconciled}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
