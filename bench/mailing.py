"""Benchmark of mail-merge message preparation against the `mailmerge` command-line tool.

For N recipients (default 10,000) with seeded names, companies (some with "&", some
non-ASCII), last-contacted dates and about 10% without a first name (the fallback
applies), both sides do the same work from the same data and the same template (subject
with a fallback, text body, HTML body with escaped values, a per-recipient unsubscribe
link in a List-Unsubscribe header):

1. ours, in this process, CPU time (`time.process_time`) of:
   - compiling the template once (addon.mailing.templates);
   - queue bookkeeping in a SQLite database built by the Alembic migrations: the N
     `campaign_recipients` rows inserted (Message-IDs assigned up front, as at campaign
     start), then per batch of 50 a claim (state `sending`, lease) and per message the
     `sent` update with its subject and Gmail id, committed per batch;
   - per message: the signed unsubscribe link (addon.mailing.unsubscribe), the render,
     and the RFC 5322 bytes (addon.mailing.mime.build_message);
2. `mailmerge --dry-run --no-limit --output-format raw` (PyPI `mailmerge`, Jinja2 template
   and CSV database written to a temporary directory, output to /dev/null), CPU time of
   the child process from `resource.getrusage(RUSAGE_CHILDREN)`; its interpreter start-up
   (the same command on a one-row database) is measured too and subtracted for the
   "net" figure, which the ratio uses.

Targets (issue 6): faster than mailmerge (net), and under 2 ms of CPU per message. The
script exits non-zero when either is missed.

    PYTHONPATH=. .venv/bin/python bench/mailing.py [--recipients 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.crm.workspaces import resolve_member
from addon.db import make_engine
from addon.ledger.sql import insert_many
from addon.mailing.mime import build_message
from addon.mailing.models import (
    QUEUED,
    SENDING,
    SENT,
    Campaign,
    CampaignRecipient,
    MailTemplate,
)
from addon.mailing.templates import Rendered, compile_template
from addon.mailing.unsubscribe import unsubscribe_url
from addon.migrations import upgrade

TARGET_MS = 2.0
BATCH = 50
BASE_URL = "https://crm.acme.test"
SECRET = "bench-secret"
SENDER = "Rex Sender <rex@acme.test>"

SUBJECT = "Hello {{first_name|there}}, news for {{company.name}}"
TEXT = """Hi {{first_name|there}},

We last spoke on {{last_contacted}}. Since then {{company.name}} has been busy, and so
have we: the spring release is out, with faster search and a new mobile app.

Would a short call next week suit you? Reply to this message and I will find a time.

Best regards,
{{owner.first_name}}
"""
HTML = """<html><body>
<p>Hi {{first_name|there}},</p>
<p>We last spoke on {{last_contacted}}. Since then <b>{{company.name}}</b> has been busy,
and so have we: the spring release is out, with faster search and a new mobile app.</p>
<p>Would a short call next week suit you? Reply to this message and I will find a time.</p>
<p>Best regards,<br>{{owner.first_name}}</p>
<p style="font-size:12px"><a href="{{unsubscribe_url}}">Unsubscribe</a></p>
</body></html>
"""

# The same template in mailmerge's Jinja2: fallbacks with default(), HTML escaped by |e.
_MM_FIRST = '{{first_name | default("there", true)}}'
MAILMERGE_TEMPLATE = f"""TO: {{{{email}}}}
SUBJECT: Hello {_MM_FIRST}, news for {{{{company_name}}}}
FROM: {SENDER}
List-Unsubscribe: <{{{{unsubscribe_url}}}}>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="boundary"

--boundary
Content-Type: text/plain; charset=utf-8

{
    TEXT.replace("{{first_name|there}}", _MM_FIRST)
    .replace("{{company.name}}", "{{company_name}}")
    .replace("{{owner.first_name}}", "{{owner_first_name}}")
}
--boundary
Content-Type: text/html; charset=utf-8

{
    HTML.replace("{{first_name|there}}", _MM_FIRST.replace("}}", " | e}}"))
    .replace("{{company.name}}", "{{company_name | e}}")
    .replace("{{owner.first_name}}", "{{owner_first_name | e}}")
    .replace("{{last_contacted}}", "{{last_contacted | e}}")
    .replace("{{unsubscribe_url}}", "{{unsubscribe_url | e}}")
}
--boundary--
"""
MAILMERGE_CONFIG = """[smtp_server]
host = 127.0.0.1
port = 25
ratelimit = 0
"""

FIRST = ["Ada", "Bo", "Chen", "Zoë", "Åsa", "Émile", "Grace", "Hiro", "Ines", "Jonas", "Kofi"]
LAST = ["Lovelace", "Nakamura", "Okafor", "Müller", "Dubois", "Smith", "García", "Kowalski"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Ünïcorn", "Hooli"]
SUFFIX = [" Ltd", " & Co", " GmbH", " Inc", "", " <Labs>"]


@dataclass
class Person:
    """One recipient's merge data."""

    email: str
    first_name: str | None
    company: str
    last_contacted: str


def people(count: int, seed: int) -> list[Person]:
    """Seeded recipients; about one in ten has no first name."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    found = []
    for i in range(count):
        first = rng.choice(FIRST)
        day = (start + timedelta(days=rng.randrange(300))).date()
        local = first.lower().encode("ascii", "ignore").decode() or "p"
        found.append(
            Person(
                email=f"{local}.{i}@client{i % 97}.test",
                first_name=None if rng.random() < 0.1 else f"{first}",
                company=rng.choice(COMPANY) + rng.choice(SUFFIX),
                last_contacted=f"{day:%b} {day.day}, {day.year}",
            )
        )
    return found


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _setup(url: str) -> tuple[Session, Member, Campaign]:
    upgrade(url)
    engine = make_engine(url)
    session = Session(engine, expire_on_commit=False)
    member = resolve_member(session, "acme.test", "rex@acme.test", is_consumer=False)
    member.name = "Rex Sender"
    template = MailTemplate(
        workspace_id=member.workspace_id,
        owner_member_id=member.id,
        name="Spring news",
        subject=SUBJECT,
        body_text=TEXT,
        body_html=HTML,
    )
    session.add(template)
    session.flush()
    campaign = Campaign(
        workspace_id=member.workspace_id,
        sender_member_id=member.id,
        template_id=template.id,
        name="Spring",
        status="running",
    )
    session.add(campaign)
    session.commit()
    return session, member, campaign


def run_ours(workdir: Path, persons: Sequence[Person]) -> tuple[float, int]:
    """CPU seconds of preparing every message with our code, and the bytes produced."""
    session, member, campaign = _setup(f"sqlite:///{workdir / 'queue.sqlite3'}")
    ws = member.workspace_id
    values = [
        {
            "first_name": p.first_name,
            "company.name": p.company,
            "last_contacted": p.last_contacted,
            "owner.first_name": "Rex",
        }
        for p in persons
    ]
    table = CampaignRecipient.__table__.c
    claim = (
        update(CampaignRecipient.__table__)
        .where(table.id.in_(bindparam("ids", expanding=True)))
        .values(state=SENDING, claimed_by="bench", claimed_until=bindparam("until"))
    )
    sent = (
        update(CampaignRecipient.__table__)
        .where(table.id == bindparam("rid"), table.state == SENDING)
        .values(
            state=SENT,
            sent_at=bindparam("now"),
            rendered_subject=bindparam("subject"),
            gmail_message_id=bindparam("gid"),
            attempts=table.attempts + 1,
            claimed_by=None,
            claimed_until=None,
        )
    )
    total_bytes = 0
    started = time.process_time()
    template = compile_template(SUBJECT, TEXT, HTML)
    rows = [
        {
            "workspace_id": ws,
            "campaign_id": campaign.id,
            "record_id": None,
            "email": p.email,
            "state": QUEUED,
            "message_id": f"<c{campaign.id}.r{i}.{i * 7919 % 1000003:x}@acme.test>",
            "attempts": 0,
            "recipients_count": 1,
        }
        for i, p in enumerate(persons)
    ]
    ids = [
        row[0]
        for row in insert_many(session, CampaignRecipient, rows, returning=[CampaignRecipient.id])
    ]
    session.commit()
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        now = datetime.now(UTC)
        session.execute(claim, {"ids": batch, "until": now + timedelta(minutes=5)})
        updates = []
        for offset, rid in enumerate(batch):
            index = start + offset
            merge = values[index]
            link = unsubscribe_url(BASE_URL, SECRET, ws, rid)
            merge["unsubscribe_url"] = link
            out = template.render(merge)
            assert isinstance(out, Rendered)
            raw = build_message(
                sender=SENDER,
                to=persons[index].email,
                cc=(),
                bcc=(),
                subject=out.subject,
                text=out.text,
                html=out.html,
                message_id=rows[index]["message_id"],
                unsubscribe_url=link,
            )
            total_bytes += len(raw)
            updates.append({"rid": rid, "now": now, "subject": out.subject, "gid": f"g{rid:x}"})
        session.execute(sent, updates)
        session.commit()
    elapsed = time.process_time() - started
    session.close()
    return elapsed, total_bytes


def _mailmerge(workdir: Path, persons: Sequence[Person], executable: str) -> float:
    (workdir / "mailmerge_template.txt").write_text(MAILMERGE_TEMPLATE, encoding="utf-8")
    (workdir / "mailmerge_server.conf").write_text(MAILMERGE_CONFIG, encoding="utf-8")
    with (workdir / "mailmerge_database.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "email",
                "first_name",
                "company_name",
                "last_contacted",
                "owner_first_name",
                "unsubscribe_url",
            ]
        )
        for i, p in enumerate(persons):
            url = unsubscribe_url(BASE_URL, SECRET, 1, i + 1)
            writer.writerow([p.email, p.first_name or "", p.company, p.last_contacted, "Rex", url])
    before = _cpu_children()
    subprocess.run(
        [executable, "--dry-run", "--no-limit", "--output-format", "raw"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return _cpu_children() - before


def run_mailmerge(workdir: Path, persons: Sequence[Person]) -> tuple[float, float]:
    """CPU seconds of the mailmerge dry run over all recipients, and over one (start-up)."""
    executable = shutil.which("mailmerge", path=str(Path(sys.executable).parent))
    if executable is None:
        raise SystemExit("mailmerge is not installed: .venv/bin/pip install -e '.[dev]'")
    one = workdir / "one"
    one.mkdir()
    startup = _mailmerge(one, persons[:1], executable)
    full = workdir / "all"
    full.mkdir()
    return _mailmerge(full, persons, executable), startup


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sides and print the figures; non-zero when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    persons = people(args.recipients, args.seed)
    n = len(persons)
    with tempfile.TemporaryDirectory(prefix="bench-mailing-") as tmp:
        workdir = Path(tmp)
        ours, size = run_ours(workdir, persons)
        theirs, startup = run_mailmerge(workdir, persons)
    net = max(theirs - startup, 1e-9)
    ours_ms, theirs_ms, net_ms = (1000 * s / n for s in (ours, theirs, net))
    print(f"recipients: {n:,}   average message: {size // n:,} bytes")
    print(f"{'':28}{'CPU s':>9}{'ms/message':>12}")
    print(f"{'ours (render+MIME+queue)':28}{ours:9.2f}{ours_ms:12.3f}")
    print(f"{'mailmerge dry run':28}{theirs:9.2f}{theirs_ms:12.3f}")
    print(f"{'mailmerge start-up (1 row)':28}{startup:9.2f}")
    print(f"{'mailmerge net of start-up':28}{net:9.2f}{net_ms:12.3f}")
    print(f"ratio mailmerge net / ours: {net / ours:.1f}x (total: {theirs / ours:.1f}x)")
    faster = ours < net
    under = ours_ms < TARGET_MS
    print(f"target faster than mailmerge: {'met' if faster else 'NOT MET'}")
    print(f"target under {TARGET_MS} ms/message: {'met' if under else 'NOT MET'}")
    return 0 if faster and under else 1


if __name__ == "__main__":
    sys.exit(main())
