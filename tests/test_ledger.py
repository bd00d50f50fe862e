"""The email ledger: every message once per workspace, conversations across mailboxes."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, bindparam, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.orm import Session

from addon import collector
from addon.crm.models import Member, Record, ThreadLink, Workspace
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import Base, make_engine
from addon.gmail.client import MessageMeta
from addon.ledger.ingest import IngestResult, record_messages
from addon.ledger.models import (
    INTERNAL,
    RECEIVED,
    SENT,
    Conversation,
    LedgerMessage,
    LedgerParticipant,
    ThreadMap,
)
from addon.ledger.parse import (
    LedgerInput,
    as_utc,
    edge_ids,
    message_ids,
    parse_date,
    synthetic_key,
)
from addon.ledger.sql import IN_CHUNK, in_values, rows_in, sqlite_datetime
from addon.ledger.stats import (
    Stats,
    email_stats,
    recompute_stats,
    stored_stats,
)
from tests.crmdata import Crm
from tests.dbstate import row_counts

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    """The fixed "now" of these tests."""
    return NOW


def mail(
    mid: str,
    sender: str,
    to: str = "",
    *,
    cc: str = "",
    bcc: str = "",
    thread: str = "thr-1",
    day: int = 1,
    hour: int = 10,
    subject: str = "Pilot",
    refs: Iterable[str] = (),
    labels: tuple[str, ...] = (),
) -> LedgerInput:
    """A message as a mailbox shows it; `refs` are the Message-IDs it answers, oldest first."""
    references = list(refs)
    return LedgerInput(
        message_id=f"<{mid}>" if mid else "",
        gmail_id=f"g-{mid}-{thread}",
        gmail_thread_id=thread,
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        date=format_datetime(datetime(2025, 6, day, hour, tzinfo=UTC)),
        subject=subject,
        references=" ".join(f"<{r}>" for r in references),
        in_reply_to=f"<{references[-1]}>" if references else "",
        label_ids=labels,
    )


def ingest(crm: Crm, inputs: Iterable[LedgerInput], member: Member | None = None) -> IngestResult:
    """Record messages as the given member (the rep by default)."""
    result = record_messages(crm.db, member or crm.member, inputs, clock=clock)
    crm.db.flush()
    return result


def teammate(crm: Crm, email: str = "mate@acme.test") -> Member:
    """Another member of the rep's workspace."""
    member = resolve_member(crm.db, "acme.test", email, is_consumer=False)
    crm.db.flush()
    return member


def count(db: Session, model: Any, *where: Any) -> int:
    """Rows of a table (matching the conditions)."""
    return int(db.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def links_of(db: Session, record: Record) -> dict[int | None, str]:
    """The record's thread links: conversation id -> reason."""
    return {
        conv: reason
        for conv, reason in db.execute(
            select(ThreadLink.conversation_id, ThreadLink.reason).where(
                ThreadLink.record_id == record.id
            )
        )
    }


def stats_of(crm: Crm, record: Record) -> Stats | None:
    """The stored stats of a record (None when it has none)."""
    return stored_stats(crm.db, crm.member.workspace_id).get(record.id)


def assert_recompute_agrees(crm: Crm) -> None:
    """Rebuilding from the ledger changes nothing: the incremental stats were right."""
    before = stored_stats(crm.db, crm.member.workspace_id)
    assert recompute_stats(crm.db, crm.member.workspace_id) == 0
    assert stored_stats(crm.db, crm.member.workspace_id) == before


ANN = "Ann Archer <ann@globex.com>"
REP = "Rep <rep@acme.test>"


def conversation_of(db: Session, key: str) -> int:
    """The conversation a recorded message belongs to."""
    return int(
        db.execute(
            select(LedgerMessage.conversation_id).where(LedgerMessage.message_key == key)
        ).scalar_one()
    )


# ------------------------------------------------------------------------- counting once


def test_repeated_opens_count_once(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    thread = [
        mail("m1@globex.com", ANN, REP, day=2),
        mail("m2@acme.test", REP, ANN, day=3, refs=["m1@globex.com"]),
    ]
    first = ingest(crm, thread)
    assert (first.recorded, first.duplicates) == (2, 0)
    once = stats_of(crm, ann)
    again = ingest(crm, thread)
    assert (again.recorded, again.duplicates) == (0, 2)
    # The same message twice in one input (Gmail lists a message sent to oneself twice).
    third = ingest(crm, [thread[0], thread[0]])
    assert (third.recorded, third.duplicates) == (0, 2)
    assert count(crm.db, LedgerMessage) == 2
    assert count(crm.db, Conversation) == 1
    assert stats_of(crm, ann) == once
    assert once is not None and (once.emails_received, once.emails_sent, once.threads) == (1, 1, 1)
    assert_recompute_agrees(crm)


def test_teammates_copies_count_once_and_share_the_conversation(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    mate = teammate(crm)
    rep_copy = [
        mail("m1@globex.com", ANN, f"{REP}, mate@acme.test", thread="rep-17"),
        mail(
            "m2@acme.test", REP, ANN, cc="mate@acme.test", thread="rep-17", refs=["m1@globex.com"]
        ),
    ]
    mate_copy = [
        mail("m1@globex.com", ANN, f"{REP}, mate@acme.test", thread="mate-99"),
        mail(
            "m2@acme.test", REP, ANN, cc="mate@acme.test", thread="mate-99", refs=["m1@globex.com"]
        ),
        # A reply only the teammate has seen so far follows the conversation.
        mail(
            "m3@acme.test",
            "mate@acme.test",
            ANN,
            thread="mate-99",
            day=5,
            refs=["m1@globex.com", "m2@acme.test"],
        ),
    ]
    mine = ingest(crm, rep_copy)
    theirs = ingest(crm, mate_copy, mate)
    assert (mine.recorded, theirs.recorded, theirs.duplicates) == (2, 1, 2)
    conv = mine.conversations["rep-17"]
    assert theirs.conversations == {"mate-99": conv}
    maps = dict(crm.db.execute(select(ThreadMap.gmail_thread_id, ThreadMap.conversation_id)).all())
    assert maps == {"rep-17": conv, "mate-99": conv}
    assert count(crm.db, LedgerMessage) == 3
    stats = stats_of(crm, ann)
    assert stats is not None
    assert (stats.emails_sent, stats.emails_received, stats.threads) == (2, 1, 1)
    # The teammate linking from their copy finds the conversation already linked.
    from addon.crm.records import link_thread

    assert link_thread(crm.db, mate, ann, "mate-99", "Pilot") is False
    assert_recompute_agrees(crm)


def test_replies_join_the_conversation_whatever_order_they_arrive_in(crm: Crm) -> None:
    # The reply first (as mailbox sync may deliver it), under another Gmail thread.
    ingest(crm, [mail("r1@globex.com", ANN, REP, thread="a", day=4, refs=["root@acme.test"])])
    ingest(crm, [mail("root@acme.test", REP, ANN, thread="b", day=3)])
    # A reply naming only its parent (no References) follows it too.
    reply = LedgerInput(
        message_id="<r2@globex.com>",
        gmail_thread_id="c",
        sender=ANN,
        to=REP,
        date="Fri, 6 Jun 2025 09:00:00 +0200",
        in_reply_to="<r1@globex.com>",
    )
    ingest(crm, [reply])
    convs = {
        conversation_of(crm.db, k) for k in ("r1@globex.com", "root@acme.test", "r2@globex.com")
    }
    assert len(convs) == 1
    # An unrelated message starts its own conversation.
    ingest(crm, [mail("other@globex.com", ANN, REP, thread="d", subject="Other")])
    assert conversation_of(crm.db, "other@globex.com") not in convs


def test_a_message_without_message_id_counts_once_by_a_stable_key(crm: Crm) -> None:
    mate = teammate(crm)
    bare = mail("", ANN, f"{REP}, mate@acme.test", thread="t-rep")
    assert ingest(crm, [bare]).recorded == 1
    copy = mail("", ANN, f"{REP}, mate@acme.test", thread="t-mate")
    assert ingest(crm, [copy], mate).duplicates == 1
    assert count(crm.db, LedgerMessage) == 1
    key = crm.db.execute(select(LedgerMessage.message_key)).scalar_one()
    assert key == synthetic_key(bare.sender, bare.date, bare.subject)
    assert key.startswith("synthetic:")
    # Another subject or date is another message.
    assert synthetic_key(bare.sender, bare.date, "Other") != key


def test_direction_is_relative_to_the_workspace(crm: Crm) -> None:
    mate = teammate(crm)
    ingest(
        crm,
        [
            mail("in@globex.com", ANN, REP),
            mail("out@acme.test", REP, f"{ANN}, mate@acme.test"),
            mail("team@acme.test", REP, "mate@acme.test", cc="ops@acme.test"),
            # A member's send-as alias outside the domain: the SENT label tells.
            mail("alias@acme-sales.com", "rep@acme-sales.com", ANN, labels=("SENT",)),
            # A colleague without the add-on is still inside the workspace's domain.
            mail("eu@acme.test", "Lea <lea@eu.acme.test>", ANN),
        ],
        mate,
    )
    directions = dict(
        crm.db.execute(select(LedgerMessage.message_key, LedgerMessage.direction)).all()
    )
    assert directions == {
        "in@globex.com": RECEIVED,
        "out@acme.test": SENT,
        "team@acme.test": INTERNAL,
        "alias@acme-sales.com": SENT,
        "eu@acme.test": SENT,
    }
    roles = crm.db.execute(
        select(LedgerParticipant.role, LedgerParticipant.email)
        .join(LedgerMessage, LedgerMessage.id == LedgerParticipant.message_id)
        .where(LedgerMessage.message_key == "out@acme.test")
        .order_by(LedgerParticipant.role, LedgerParticipant.email)
    ).all()
    assert [tuple(r) for r in roles] == [
        ("from", "rep@acme.test"),
        ("to", "ann@globex.com"),
        ("to", "mate@acme.test"),
    ]


def test_unusable_inputs_are_reported_and_write_nothing(crm: Crm) -> None:
    before = row_counts(crm.db)
    result = ingest(
        crm,
        [
            mail("d@acme.test", REP, ANN, labels=("DRAFT",)),
            mail("s@spam.example", ANN, REP, labels=("SPAM", "INBOX")),
            LedgerInput(message_id="<nodate@globex.com>", gmail_id="g1", sender=ANN, to=REP),
            LedgerInput(
                message_id="<noone@globex.com>",
                gmail_id="g2",
                date="Mon, 2 Jun 2025 10:00:00 +0000",
            ),
            LedgerInput(
                message_id="<long@globex.com>",
                gmail_id="g3",
                gmail_thread_id="x" * 65,
                sender=ANN,
                date="Mon, 2 Jun 2025 10:00:00 +0000",
            ),
        ],
    )
    assert result.recorded == 0
    assert [(s.reference, s.reason) for s in result.skipped] == [
        ("g-d@acme.test-thr-1", "skipped: a draft"),
        ("g-s@spam.example-thr-1", "skipped: spam"),
        ("g1", "no readable date"),
        ("g2", "no sender or recipient address"),
        ("g3", "the Gmail thread id is too long"),
    ]
    assert row_counts(crm.db) == before


def test_internal_date_stands_in_for_a_missing_date(crm: Crm) -> None:
    item = LedgerInput(
        message_id="<late@globex.com>",
        sender=ANN,
        to=REP,
        date="not a date",
        internal_date=datetime(2025, 6, 9, 8, 30),
    )
    assert ingest(crm, [item]).recorded == 1
    sent_at = crm.db.execute(select(LedgerMessage.sent_at)).scalar_one()
    assert sent_at.replace(tzinfo=None) == datetime(2025, 6, 9, 8, 30)


def test_the_sidebar_message_metadata_becomes_a_ledger_input(crm: Crm) -> None:
    meta = MessageMeta(
        id="g-open",
        thread_id="t-open",
        headers={
            "from": ANN,
            "to": REP,
            "subject": "=?utf-8?q?Caf=C3=A9?=",
            "date": "Tue, 3 Jun 2025 10:00:00 +0000",
            "message-id": "<open@globex.com>",
        },
        label_ids=("INBOX",),
    )
    result = ingest(crm, [LedgerInput.from_meta(meta)])
    assert result.conversations == {"t-open": conversation_of(crm.db, "open@globex.com")}
    assert crm.db.execute(select(LedgerMessage.subject)).scalar_one() == "Café"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 2 Jun 2025 10:00:00 +0200", datetime(2025, 6, 2, 8, 0, tzinfo=UTC)),
        ("2 Jun 2025 10:00 -0130", datetime(2025, 6, 2, 11, 30, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 10:00:00 GMT", datetime(2025, 6, 2, 10, 0, tzinfo=UTC)),
        ("Mon, 2 Jun 2025 10:00:00 +0000 (UTC)", datetime(2025, 6, 2, 10, 0, tzinfo=UTC)),
        ("Mon, 31 Feb 2025 10:00:00 +0000", None),
        ("yesterday", None),
    ],
)
def test_dates_are_read_as_utc(header: str, expected: datetime | None) -> None:
    assert parse_date(header) == expected


def test_message_ids_are_bracket_free_and_long_ones_hashed() -> None:
    assert message_ids(" <a@b.c>\r\n <d@e.f>") == ["a@b.c", "d@e.f"]
    assert message_ids("bare@host.example") == ["bare@host.example"]
    assert message_ids("no id here") == []
    long = message_ids(f"<{'x' * 300}@host>")[0]
    assert long.startswith("sha256:") and len(long) <= 255
    assert message_ids(f"<{'x' * 300}@host>") == [long]


# ------------------------------------------------------------------------ tenants


def test_another_workspace_keeps_its_own_ledger_and_records(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    spy = resolve_member(crm.db, "rival.test", "spy@rival.test", is_consumer=False)
    spy_crm = Crm(crm.db, spy, {})
    theirs = ingest(spy_crm, [mail("m1@globex.com", ANN, "spy@rival.test", thread="s1")], spy)
    assert theirs.recorded == 1 and theirs.links == []
    # The same Message-ID is still new to the rep's workspace, and links only here.
    mine = ingest(crm, [mail("m1@globex.com", ANN, REP)])
    assert mine.recorded == 1
    assert [(record, reason) for _c, record, reason in mine.links] == [(ann.id, "matched_email")]
    assert links_of(crm.db, ann) == {mine.conversations["thr-1"]: "matched_email"}
    # Stats of another workspace's record are not answered.
    assert email_stats(crm.db, spy.workspace_id, [ann.id], clock=clock) == {}
    assert set(email_stats(crm.db, crm.member.workspace_id, [ann.id], clock=clock)) == {ann.id}


# ------------------------------------------------------------------------- concurrency


def _purge(engine: Engine, workspace_id: int) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if "workspace_id" in table.c:
                connection.execute(delete(table).where(table.c.workspace_id == workspace_id))
        connection.execute(
            delete(Workspace.__table__).where(Workspace.__table__.c.id == workspace_id)
        )


@pytest.fixture
def writer_engine(engine: Engine) -> Iterator[Engine]:
    """An engine whose sessions really commit, for requests running side by side."""
    if engine.dialect.name != "sqlite":
        yield engine
        return
    # SQLite has one writer: each transaction takes the write lock when it begins and
    # the other waits for it (a reader turning writer would fail instead of waiting).
    dedicated = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(dedicated, "connect")
    def _manual(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(dedicated, "begin")
    def _immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    yield dedicated
    dedicated.dispose()


def test_concurrent_ingest_counts_once(writer_engine: Engine) -> None:
    domain = f"race-{uuid.uuid4().hex[:8]}.test"
    with Session(writer_engine) as setup:
        rep = resolve_member(setup, domain, f"rep@{domain}", is_consumer=False)
        mate = resolve_member(setup, domain, f"mate@{domain}", is_consumer=False)
        crm = Crm(setup, rep, folders_by_key(setup, rep.workspace_id))
        ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
        workspace_id, ids = rep.workspace_id, (rep.id, mate.id, ann.id)
        setup.commit()
    thread = [
        mail("c1@globex.com", ANN, f"rep@{domain}, mate@{domain}", day=2),
        mail("c2@x.test", f"rep@{domain}", ANN, day=3, refs=["c1@globex.com"]),
        mail("c3@globex.com", ANN, f"rep@{domain}", day=4, refs=["c1@globex.com", "c2@x.test"]),
    ]
    first_inserted = threading.Event()
    results: dict[str, IngestResult] = {}
    errors: list[BaseException] = []

    def run(name: str, member_id: int, gmail_thread: str) -> None:
        try:
            if name == "second":
                # Start only once the first request has written, inside its transaction.
                first_inserted.wait(10)
            with Session(writer_engine) as session:
                member = session.get(Member, member_id)
                assert member is not None
                copies = [replace(m, gmail_thread_id=gmail_thread) for m in thread]
                results[name] = record_messages(session, member, copies, clock=clock)
                if name == "first":
                    # Keep the transaction open while the teammate's request runs into it.
                    first_inserted.set()
                    time.sleep(0.5)
                session.commit()
        except BaseException as exc:  # reported by the main thread
            first_inserted.set()
            errors.append(exc)

    workers = [
        threading.Thread(target=run, args=("first", ids[0], "rep-1")),
        threading.Thread(target=run, args=("second", ids[1], "mate-1")),
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert not errors, errors
        assert results["first"].recorded == 3
        assert (results["second"].recorded, results["second"].duplicates) == (0, 3)
        with Session(writer_engine) as check:
            messages = check.execute(
                select(func.count())
                .select_from(LedgerMessage)
                .where(LedgerMessage.workspace_id == workspace_id)
            ).scalar_one()
            assert messages == 3
            maps = set(
                check.execute(
                    select(ThreadMap.gmail_thread_id, ThreadMap.conversation_id).where(
                        ThreadMap.workspace_id == workspace_id
                    )
                ).all()
            )
            assert {t for t, _c in maps} == {"rep-1", "mate-1"} and len({c for _t, c in maps}) == 1
            stats = stored_stats(check, workspace_id)[ids[2]]
            assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 1, 1)
            assert recompute_stats(check, workspace_id) == 0
    finally:
        _purge(writer_engine, workspace_id)


def test_bulk_insert_writes_datetimes_as_sqlalchemy_does() -> None:
    # SQLite rows written through the driver must compare and read back like the ORM's.
    write = DATETIME().bind_processor(SQLiteDialect())
    assert write is not None
    for moment in (
        datetime(2025, 6, 2, 10, 0, tzinfo=UTC),
        datetime(2025, 6, 2, 10, 0, 0, 123, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ):
        assert sqlite_datetime(moment) == write(moment)


def test_batches_of_any_size_give_the_same_ledger_and_stats(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    crm.save("companies", name="Globex", domain="globex.com")
    thread = [
        mail("b1@globex.com", ANN, REP, day=1),
        mail("b2@acme.test", REP, ANN, day=2, refs=["b1@globex.com"]),
        mail("b3@globex.com", ANN, REP, day=3, refs=["b1@globex.com", "b2@acme.test"]),
        mail("o1@globex.com", "Cy <cy@globex.com>", REP, thread="other", day=4),
        mail("b4@acme.test", REP, ANN, cc="cy@globex.com", day=5, refs=["b1@globex.com"]),
    ]

    def outcome(batch_size: int) -> tuple[Any, ...]:
        savepoint = crm.db.begin_nested()
        try:
            result = record_messages(crm.db, crm.member, thread, clock=clock, batch_size=batch_size)
            crm.db.flush()
            conversations = sorted(
                crm.db.execute(
                    select(LedgerMessage.message_key, LedgerMessage.conversation_id)
                ).all()
            )
            same = [k for k, c in conversations if c == conversations[0][1]]
            return (
                result.recorded,
                same,
                sorted((r, why) for _c, r, why in result.links),
                stored_stats(crm.db, crm.member.workspace_id),
            )
        finally:
            savepoint.rollback()

    one_by_one = outcome(1)
    assert one_by_one == outcome(1000)
    assert one_by_one[0] == 5
    assert one_by_one[1] == ["b1@globex.com", "b2@acme.test", "b3@globex.com", "b4@acme.test"]
    stats = one_by_one[3][ann.id]
    assert (stats.emails_sent, stats.emails_received, stats.threads) == (2, 2, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<> ab@.\t", max_size=30))
def test_reading_only_the_first_and_last_reference_agrees_with_the_full_parse(
    header: str,
) -> None:
    ids = message_ids(header)
    assert edge_ids(header) == ((ids[0], ids[-1]) if ids else (None, None))


def test_batch_lookups_take_one_array_on_postgresql_and_an_in_list_on_sqlite() -> None:
    """rows_in's condition: a PostgreSQL batch is one statement whatever its size; on SQLite
    the IN list stays a plain condition (never "= 1", which no index serves)."""
    statement = select(LedgerMessage.id).where(in_values(LedgerMessage.message_key))
    on_postgresql = str(statement.compile(dialect=postgresql.dialect()))
    on_sqlite = str(statement.compile(dialect=sqlite.dialect()))
    array = "ledger_messages.message_key = ANY(%(in_values)s::VARCHAR(255)[])"
    assert on_postgresql.endswith(array)
    assert on_sqlite.endswith("ledger_messages.message_key IN (__[POSTCOMPILE_in_values])")


def test_batch_lookups_see_pending_changes_and_read_typed_values(crm: Crm) -> None:
    """rows_in on either database: unflushed rows are found (as session.execute would
    autoflush them), values beyond one IN list's size all come back, datetimes are aware-
    comparable datetimes and repeated values are looked up once."""
    ingest(crm, [mail("m1@globex.com", ANN, REP, day=2)])
    conv = conversation_of(crm.db, "m1@globex.com")
    crm.db.add(
        LedgerMessage(
            workspace_id=crm.member.workspace_id,
            conversation_id=conv,
            message_key="pending@globex.com",
            sent_at=datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
            direction=RECEIVED,
            subject="Pending",
            from_email="ann@globex.com",
            recorded_at=NOW,
        )
    )
    wanted = ["m1@globex.com", "pending@globex.com", "pending@globex.com"]
    wanted += [f"absent-{i}@globex.com" for i in range(2 * IN_CHUNK)]
    rows = sorted(rows_in(crm.db, _SENT_AT_BY_KEY, wanted, workspace_id=crm.member.workspace_id))
    assert [key for key, _moment in rows] == ["m1@globex.com", "pending@globex.com"]
    assert all(isinstance(moment, datetime) for _key, moment in rows)
    assert as_utc(rows[1][1]) == datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert list(rows_in(crm.db, _SENT_AT_BY_KEY, [], workspace_id=crm.member.workspace_id)) == []


_SENT_AT_BY_KEY = select(LedgerMessage.message_key, LedgerMessage.sent_at).where(
    LedgerMessage.workspace_id == bindparam("workspace_id"),
    in_values(LedgerMessage.message_key),
)


def test_the_garbage_collector_runs_less_often_during_an_ingest_only(crm: Crm) -> None:
    """The ingest raises the young threshold while it reads its input, and puts back the
    one it found, also when the input fails half-way."""
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []

    def inputs(fail: bool) -> Iterator[LedgerInput]:
        during.append(gc.get_threshold())
        yield mail("m1@globex.com", ANN, REP, day=2)
        if fail:
            raise RuntimeError("the source broke")

    assert ingest(crm, inputs(fail=False)).recorded == 1
    assert during == [(collector.YOUNG_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError):
        ingest(crm, inputs(fail=True))
    assert gc.get_threshold() == before
