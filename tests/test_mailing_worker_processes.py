"""Worker processes against one database: killed at random points, and two at once.

These use their own database (a SQLite file, or a schema of the PostgreSQL test database),
since the workers are separate processes and must see each other's commits.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import make_engine
from addon.gmail.fake_server import FakeGmailServer, FakeSending
from addon.mailing.models import SENDING, SENT, CampaignRecipient
from addon.migrations import upgrade
from tests.mailing_support import make_template, running_campaign, seed_contacts, sending

__all__ = ["sending"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def worker_db(tmp_path: Path) -> Iterator[str]:
    """A migrated database the worker processes share, dropped afterwards."""
    base = os.environ.get("ADDON_TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
        upgrade(url)
        yield url
        return
    schema = f"mailing_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    try:
        upgrade(rendered)
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _seed(engine: Engine, count: int) -> int:
    with Session(engine) as db:
        member = resolve_member(db, "acme.test", "rep@acme.test", is_consumer=False)
        db.flush()
        folder = folders_by_key(db, member.workspace_id)["contacts"]
        seed_contacts(db, member, folder, count)
        campaign = running_campaign(db, member, folder, make_template(db, member))
        db.commit()
        return campaign.id


def _worker(url: str, api_url: str, name: str, lease: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.mailing_worker_proc", url, api_url, name, str(lease)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _check_exactly_once(engine: Engine, campaign_id: int, sending: FakeSending, count: int) -> None:
    sends = Counter(s.message_id for s in sending.sent)
    duplicates = {k: v for k, v in sends.items() if v > 1}
    assert duplicates == {}
    with Session(engine) as db:
        expected = set(
            db.scalars(
                select(CampaignRecipient.message_id).where(
                    CampaignRecipient.campaign_id == campaign_id
                )
            )
        )
        sent = db.scalar(
            select(func.count()).where(
                CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.state == SENT
            )
        )
    assert len(expected) == count
    assert set(sends) == expected
    assert sent == count


def test_killing_the_worker_20_times_still_sends_everyone_exactly_once(
    worker_db: str, gmail_server: FakeGmailServer, sending: FakeSending
) -> None:
    engine = make_engine(worker_db)
    campaign_id = _seed(engine, 1000)
    # A little latency per send, so kills land between a send and its commit too.
    sending.delay = 0.004
    sending.odds = {"500": 0.01, "lost": 0.01, "timeout": 0.01}
    rng = random.Random(20)
    unknown_after_kill = 0
    for kill in range(20):
        before = len(sending.sent)
        process = _worker(worker_db, gmail_server.url, f"crash-{kill}", lease=1.0)
        # Kill it while it sends: once its first message is out, at a random moment.
        deadline = time.monotonic() + 120
        while len(sending.sent) == before and time.monotonic() < deadline:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the worker ended before its kill: {out!r} {err[-2000:]!r}")
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        with Session(engine) as db:
            unknown_after_kill += bool(
                db.scalar(select(func.count()).where(CampaignRecipient.state == SENDING))
            )
    assert len(sending.sent) < 1000, "the campaign finished before the kills were done"
    last = _worker(worker_db, gmail_server.url, "survivor", lease=1.0)
    out, err = last.communicate(timeout=900)
    assert last.returncode == 0, err[-3000:]
    print(
        f"\nafter 20 kills ({unknown_after_kill} left a send of unknown outcome): "
        f"{out.decode().strip()}; {len(sending.sent)} sends in all"
    )
    _check_exactly_once(engine, campaign_id, sending, 1000)
    engine.dispose()


def test_two_workers_on_postgresql_send_no_duplicates(
    worker_db: str, gmail_server: FakeGmailServer, sending: FakeSending
) -> None:
    if not worker_db.startswith("postgresql"):
        pytest.skip(
            "two concurrent workers need PostgreSQL (FOR UPDATE SKIP LOCKED); "
            "set ADDON_TEST_DATABASE_URL to a postgresql+psycopg:// URL"
        )
    engine = make_engine(worker_db)
    campaign_id = _seed(engine, 600)
    sending.delay = 0.002
    sending.odds = {"lost": 0.01, "500": 0.01}
    workers = [_worker(worker_db, gmail_server.url, f"pg-{i}", lease=60) for i in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    reports = [out.decode().strip() for out, _ in outputs]
    print("\n" + "\n".join(reports))
    # Both took part.
    assert all(" sent 0," not in r for r in reports)
    _check_exactly_once(engine, campaign_id, sending, 600)
    engine.dispose()
