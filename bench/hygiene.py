"""Benchmark of data hygiene at scale: CSV import, the duplicate scan and saved-view queries.

Three measurements, each against a target of issue 4:

1. import: `measure_import` of bench/hygiene_import.py imports a generated CSV of
   contacts through the import service and compares its rate with a raw bulk INSERT of
   the same rows (target: at least 0.5x). It builds its own schema (on PostgreSQL, in the
   same database, before the rest; on SQLite, in a file of its own).
2. duplicate scan: `addon.crm.hygiene.duplicate_clusters` (what `flask --app addon crm
   duplicates` runs) over N contacts and N/10 companies seeded with a known share of
   duplicates: the same email typed in another case, the same phone in another format,
   companies with the same registrable domain or the same normalised name (target: under
   60 s). The clusters found are checked against the duplicates planted.
3. saved views: several two-condition views over the N contacts, each sample with fresh
   random operands, timed as the view card runs them: `view_page`, the matching ids up to
   the cap (the count) and the first page (target: p50 under 200 ms on PostgreSQL).

The schema is built by the Alembic migrations, the workspace provisioned by
resolve_member, and the records bulk-seeded with Core executemany batches of 10,000 rows
holding exactly what save_record writes (records, field_values with their view keys,
record_emails, record_phones, record_domains, record_relations); a sample of the rows is
compared with the rows save_record writes for the same input.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/hygiene.py

The target database is wiped: a SQLite file is recreated; on PostgreSQL the `public`
schema is dropped (the database name must contain "bench" unless --force is given).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from addon import create_app
from addon.crm.defaults import COMPANY_SIZES, LEAD_SOURCES, LIFECYCLE_STAGES
from addon.crm.fields import field_type
from addon.crm.hygiene import duplicate_clusters, normalised_company_name
from addon.crm.models import (
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordDomain,
    RecordEmail,
    RecordPhone,
    RecordRelation,
)
from addon.crm.records import normalise_domain, save_record
from addon.crm.structure import add_field
from addon.crm.views import parse_definition, view_page
from addon.crm.workspaces import folder_fields, resolve_member
from addon.db import make_engine
from addon.gmail.addresses import registrable_domain
from addon.migrations import upgrade

# The shared harness of the benchmarks (schema reset, bulk-load engine, names).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from contextual import (
    BATCH,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    TITLES,
    insert_rows,
    percentile,
    reset_database,
    seeding_engine,
)

DOMAIN = "bench-co.com"
USER = f"rep@{DOMAIN}"
OTHER_REPS = ("ana", "ben", "chloe", "dara")
WARMUP_ROUNDS = 3

# Duplicates a CRM of this size realistically holds (people imported twice, a phone
# typed on a second record, subsidiaries and renamed companies).
EMAIL_DUPLICATES = 0.02
PHONE_DUPLICATES = 0.01
DOMAIN_DUPLICATES = 0.02
NAME_DUPLICATES = 0.01

# Lifecycle stages are skewed as in real pipelines: many subscribers, few evangelists.
STAGE_WEIGHTS = (0.30, 0.30, 0.15, 0.15, 0.05, 0.05)
# fmt: off
SYLLABLES = (
    "ka", "ro", "bel", "tin", "mar", "vo", "lex", "dun", "pra", "sil", "ten", "qua", "zor", "mi",
    "na", "fen", "gal", "hor", "ix", "jun", "kel", "lum", "mor", "nex", "ov", "pel", "rin", "sa",
    "tor", "ul", "ven", "wex", "yo", "zen", "bri", "cor", "dal", "en", "fir", "gro",
)
# fmt: on
KINDS = (
    "Systems",
    "Labs",
    "Logistics",
    "Partners",
    "Group",
    "Foods",
    "Media",
    "Health",
    "Energy",
    "Analytics",
    "Studio",
    "Capital",
)
LEGAL_SUFFIXES = ("", "", "", " Inc.", " Ltd", " GmbH", " LLC")
AREA_CODES = ("212", "305", "312", "415", "512", "617", "650", "702", "808", "919")
EXCHANGES = ("202", "234", "253", "288", "312", "345", "376", "410", "467", "523", "589")
TITLE_WORDS = ("eng", "sales", "manager", "found", "ceo", "analyst")
NAME_FRAGMENTS = ("ana", "an", "chen", "sar", "mil", "ito", "lee", "tom")


# --------------------------------------------------------------------------- data


def company_base(ci: int) -> str:
    """A pronounceable name unique per index ("Karobel Systems")."""
    n = len(SYLLABLES)
    word = SYLLABLES[ci % n] + SYLLABLES[(ci // n) % n] + SYLLABLES[(ci // n**2) % n]
    return f"{word.capitalize()} {KINDS[(ci // n**3) % len(KINDS)]}"


def company_domain(ci: int) -> str:
    """The company's own domain ("karobel-systems.com")."""
    return company_base(ci).lower().replace(" ", "-") + ".com"


def phone_of(k: int) -> tuple[str, str]:
    """A valid US number unique per index: (E.164, how a rep typed it)."""
    area = AREA_CODES[k % len(AREA_CODES)]
    rest = k // len(AREA_CODES)
    exchange = EXCHANGES[(rest // 10_000) % len(EXCHANGES)]
    line = f"{rest % 10_000:04d}"
    return f"+1{area}{exchange}{line}", f"+1 {area} {exchange} {line}"


def other_phone_format(e164: str) -> str:
    """The same number as another rep types it: "(650) 253-0000"."""
    digits = e164.removeprefix("+1")
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def other_case(email: str) -> str:
    """The same address typed with capitals ("Ann.Smith.12@Karobel-Systems.com")."""
    local, domain = email.split("@", 1)
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.title()


@dataclass
class Fields:
    """The seeded folders' field ids and how to compute their view keys."""

    ids: dict[tuple[str, str], int]
    defs: dict[int, tuple[str, dict[str, Any]]]
    folders: dict[str, int]
    _keys: dict[tuple[int, Any], tuple[str | None, float | None]] = field(default_factory=dict)

    def keys(self, field_id: int, value: Any) -> tuple[str | None, float | None]:
        """The view keys write_value stores: the field type's index keys, 255 chars at most."""
        memo = (field_id, value) if isinstance(value, str | int) else None
        if memo is not None and memo in self._keys:
            return self._keys[memo]
        ftype, options = self.defs[field_id]
        if ftype == "user":
            keys: tuple[str | None, float | None] = (str(value), float(value))
        else:
            text_key, num_key = field_type(ftype).index_keys(value, options)
            keys = (text_key[:255] if text_key else text_key, num_key)
        if memo is not None:
            self._keys[memo] = keys
        return keys


@dataclass
class Sample:
    """A seeded record kept with the form a user would have typed, to check fidelity."""

    folder: str
    record_id: int
    form: dict[str, list[str]]


@dataclass
class Seeded:
    """What the measurements need to know about the seeded data."""

    workspace_id: int
    members: list[int]
    member_emails: list[str]
    fields: Fields
    rows: dict[str, int]
    # (duplicate id, original id, reason) of every planted duplicate.
    planted: list[tuple[int, int, str]]
    samples: list[Sample]
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def provision(engine: Engine) -> tuple[int, list[int], list[str], Fields]:
    """The workspace, its admin and four reps, and a custom "Score" number field."""
    with Session(engine) as session:
        admin = resolve_member(session, DOMAIN, USER, is_consumer=False)
        members = [admin] + [
            resolve_member(session, DOMAIN, f"{name}@{DOMAIN}", is_consumer=False)
            for name in OTHER_REPS
        ]
        contacts = session.execute(
            select(Folder).where(
                Folder.workspace_id == admin.workspace_id, Folder.key == "contacts"
            )
        ).scalar_one()
        # Custom fields are what views filter on most; one numeric field exercises gt/lt.
        add_field(session, admin, contacts, "Score", "number")
        session.commit()
        folders = {
            f.key: f.id
            for f in session.scalars(
                select(Folder).where(Folder.workspace_id == admin.workspace_id)
            )
        }
        keys = {v: k for k, v in folders.items()}
        defs = list(
            session.scalars(select(FieldDef).where(FieldDef.workspace_id == admin.workspace_id))
        )
        ids = {(keys[d.folder_id], d.key): d.id for d in defs}
        fields = Fields(ids, {d.id: (d.type, dict(d.options)) for d in defs}, folders)
        return (
            admin.workspace_id,
            [m.id for m in members],
            [m.email for m in members],
            fields,
        )


def seed(engine: Engine, n: int, rng: random.Random, samples_wanted: int = 25) -> Seeded:
    """Bulk-insert n contacts and n/10 companies, with planted duplicates."""
    started, cpu_started = time.perf_counter(), time.process_time()
    ws_id, members, member_emails, fields = provision(engine)
    n_comp = max(2, n // 10)
    f = fields.ids
    now = datetime.now(UTC).replace(microsecond=0)
    # Records were created over three years up to a minute ago, in id order.
    span = timedelta(days=3 * 365).total_seconds()
    counts = dict.fromkeys(
        ("records", "field_values", "record_emails", "record_phones", "record_domains"), 0
    )
    counts["record_relations"] = 0
    planted: list[tuple[int, int, str]] = []
    samples: list[Sample] = []

    # Syllable names must be unique, or the scan would find duplicates nobody planted.
    names = {normalised_company_name(company_base(ci)) for ci in range(n_comp)}
    assert len(names) == n_comp, "company names collide; extend SYLLABLES"
    with engine.connect() as conn:
        first_id = (conn.execute(select(func.max(Record.id))).scalar() or 0) + 1
    comp_id0, contact_id0 = first_id, first_id + n_comp
    total = n_comp + n

    def created(index: int) -> datetime:
        return now - timedelta(seconds=60 + span * (total - index) / total)

    def record(rid: int, folder: str, title: str, at: datetime) -> dict[str, Any]:
        return {
            "id": rid,
            "workspace_id": ws_id,
            "folder_id": fields.folders[folder],
            "title": title[:300],
            "search_key": title[:300].lower(),
            "created_by_id": members[0],
            "created_at": at,
            "updated_at": at,
        }

    def value(rid: int, folder: str, key: str, val: Any) -> dict[str, Any]:
        field_id = f[(folder, key)]
        text_key, num_key = fields.keys(field_id, val)
        return {
            "workspace_id": ws_id,
            "record_id": rid,
            "field_id": field_id,
            "value": val,
            "text_key": text_key,
            "num_key": num_key,
        }

    def flush(conn: Connection, tables: dict[str, list[dict[str, Any]]]) -> None:
        models = {
            "records": Record,
            "field_values": FieldValue,
            "record_emails": RecordEmail,
            "record_phones": RecordPhone,
            "record_domains": RecordDomain,
            "record_relations": RecordRelation,
        }
        for name, rows in tables.items():
            insert_rows(conn, models[name].__table__, rows)
            counts[name] += len(rows)

    def empty() -> dict[str, list[dict[str, Any]]]:
        return {name: [] for name in counts}

    # Companies: name, domain, industry, size, owner; the domain index.
    comp_domains: list[str | None] = []
    comp_names: list[str] = []
    clean_companies: list[int] = []
    for start in range(0, n_comp, BATCH):
        tables = empty()
        for ci in range(start, min(n_comp, start + BATCH)):
            rid, roll = comp_id0 + ci, rng.random()
            raw_domain: str | None
            if clean_companies and roll < DOMAIN_DUPLICATES:
                # A subsidiary or a second entry: same registrable domain, other name.
                orig = rng.choice(clean_companies)
                base = comp_names[orig]
                name = f"{base} {rng.choice(('Europe', 'International', 'Holdings', 'UK'))}"
                host = comp_domains[orig] or company_domain(orig)
                raw_domain = rng.choice(
                    (f"www.{host}", f"https://{host}/about", f"eu.{host}", f"mail.{host}")
                )
                planted.append((rid, comp_id0 + orig, "same domain"))
            elif clean_companies and roll < DOMAIN_DUPLICATES + NAME_DUPLICATES:
                # The same company typed again: other case, punctuation or legal suffix.
                orig = rng.choice(clean_companies)
                base = company_base(orig)
                name = rng.choice((f"{base.upper()}, Inc.", f"{base.lower()} llc", f"{base} GmbH"))
                raw_domain = None if rng.random() < 0.5 else f"{base.split()[0].lower()}{ci}.net"
                planted.append((rid, comp_id0 + orig, "same name"))
            else:
                name = company_base(ci) + rng.choice(LEGAL_SUFFIXES)
                raw_domain = company_domain(ci)
                clean_companies.append(ci)
            comp_names.append(name)
            domain = normalise_domain(raw_domain) if raw_domain else None
            comp_domains.append(domain)
            form = {"name": [name], "industry": [rng.choice(INDUSTRIES)]}
            form["size"] = [rng.choice(COMPANY_SIZES)]
            owner = rng.choice(members)
            tables["records"].append(record(rid, "companies", name, created(ci)))
            tables["field_values"] += [
                value(rid, "companies", "name", name),
                value(rid, "companies", "industry", form["industry"][0]),
                value(rid, "companies", "size", form["size"][0]),
                value(rid, "companies", "owner", owner),
            ]
            if domain:
                form["domain"] = [raw_domain or ""]
                tables["field_values"].append(value(rid, "companies", "domain", domain))
                registrable = registrable_domain(domain)
                if registrable:
                    tables["record_domains"].append(
                        {"workspace_id": ws_id, "record_id": rid, "domain": registrable}
                    )
            form["owner"] = [f"#{owner}"]
            if ci < 5 or (ci % 997 == 0 and len(samples) < samples_wanted):
                samples.append(Sample("companies", rid, form))
        with engine.begin() as conn:
            flush(conn, tables)

    # Contacts: names, emails, phones, job title, stage, owner, lead source, score, company.
    emails: list[str] = []
    phones: dict[int, str] = {}
    clean_contacts: list[int] = []
    with_phone: list[int] = []
    for start in range(0, n, BATCH):
        tables = empty()
        for k in range(start, min(n, start + BATCH)):
            rid, roll = contact_id0 + k, rng.random()
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            ci = rng.randrange(n_comp)
            phone: str | None = None
            raw_phone = ""
            if clean_contacts and roll < EMAIL_DUPLICATES:
                # Imported twice: the same person, the address typed with capitals.
                orig = rng.choice(clean_contacts)
                email = emails[orig]
                first, last = (s.capitalize() for s in email.split("@")[0].split(".")[:2])
                raw_email = other_case(email)
                planted.append((rid, contact_id0 + orig, "same email"))
            elif with_phone and roll < EMAIL_DUPLICATES + PHONE_DUPLICATES:
                # A second record with a private address and the same phone, other format.
                orig = rng.choice(with_phone)
                email = f"{first}.{last}.{k}@gmail.com".lower()
                raw_email = email
                phone = phones[orig]
                raw_phone = other_phone_format(phone)
                planted.append((rid, contact_id0 + orig, "same phone"))
            else:
                mail_host = "gmail.com" if rng.random() < 0.1 else comp_domains[ci]
                email = f"{first}.{last}.{k}@{mail_host or 'example.com'}".lower()
                raw_email = email
                clean_contacts.append(k)
                if rng.random() < 0.5:
                    phone, raw_phone = phone_of(k)
                    phones[k] = phone
                    with_phone.append(k)
            emails.append(email)
            stage = rng.choices(LIFECYCLE_STAGES, STAGE_WEIGHTS)[0]
            owner, source = rng.choice(members), rng.choice(LEAD_SOURCES)
            title = f"{first} {last}"
            tables["records"].append(record(rid, "contacts", title, created(n_comp + k)))
            tables["field_values"] += [
                value(rid, "contacts", "first_name", first),
                value(rid, "contacts", "last_name", last),
                value(rid, "contacts", "emails", [email]),
                value(rid, "contacts", "lifecycle_stage", stage),
                value(rid, "contacts", "owner", owner),
                value(rid, "contacts", "lead_source", source),
            ]
            form = {
                "first_name": [first],
                "last_name": [last],
                "emails": [raw_email],
                "lifecycle_stage": [stage],
                "owner": [f"#{owner}"],
                "lead_source": [source],
                "company": [f"#{comp_id0 + ci}"],
            }
            tables["record_emails"].append(
                {"workspace_id": ws_id, "record_id": rid, "email": email}
            )
            if phone:
                tables["field_values"].append(value(rid, "contacts", "phones", [phone]))
                tables["record_phones"].append(
                    {"workspace_id": ws_id, "record_id": rid, "phone": phone}
                )
                form["phones"] = [raw_phone]
            if rng.random() < 0.7:
                job = rng.choice(TITLES)
                tables["field_values"].append(value(rid, "contacts", "job_title", job))
                form["job_title"] = [job]
            if rng.random() < 0.8:
                score = str(rng.randrange(0, 101))
                tables["field_values"].append(value(rid, "contacts", "score", score))
                form["score"] = [score]
            tables["record_relations"].append(
                {
                    "workspace_id": ws_id,
                    "field_id": f[("contacts", "company")],
                    "from_record_id": rid,
                    "to_record_id": comp_id0 + ci,
                }
            )
            if (k < 10 or (planted and planted[-1][0] == rid)) and len(samples) < samples_wanted:
                samples.append(Sample("contacts", rid, form))
        with engine.begin() as conn:
            flush(conn, tables)

    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # Explicit record ids bypass the sequence; move it past the seeded rows.
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('records', 'id'), "
                    "(SELECT max(id) FROM records))"
                )
            )
        # What autovacuum does after bulk inserts on a live database: VACUUM sets the
        # visibility map (index-only scans need it), ANALYZE the planner's statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    seeded = Seeded(ws_id, members, member_emails, fields, counts, planted, samples)
    seeded.seconds = time.perf_counter() - started
    seeded.cpu_seconds = time.process_time() - cpu_started
    return seeded


def _record_rows(session: Session, record_id: int) -> dict[str, Any]:
    """Everything save_record writes for one record, without ids and timestamps."""
    record = session.get(Record, record_id)
    assert record is not None
    keys = {d.id: d.key for d in folder_fields(session, record.folder_id)}
    values = session.execute(
        select(
            FieldValue.field_id, FieldValue.value, FieldValue.text_key, FieldValue.num_key
        ).where(FieldValue.record_id == record_id)
    )
    return {
        "title": (record.title, record.search_key),
        "values": {keys[fid]: (v, t, num) for fid, v, t, num in values},
        "emails": sorted(
            session.scalars(select(RecordEmail.email).where(RecordEmail.record_id == record_id))
        ),
        "phones": sorted(
            session.scalars(select(RecordPhone.phone).where(RecordPhone.record_id == record_id))
        ),
        "domains": sorted(
            session.scalars(select(RecordDomain.domain).where(RecordDomain.record_id == record_id))
        ),
        "links": sorted(
            (keys[fid], to)
            for fid, to in session.execute(
                select(RecordRelation.field_id, RecordRelation.to_record_id).where(
                    RecordRelation.from_record_id == record_id
                )
            )
        ),
    }


def check_fidelity(engine: Engine, seeded: Seeded) -> int:
    """Save each sample's form through save_record (rolled back) and compare the rows."""
    with Session(engine) as session:
        member = session.get(Member, seeded.members[0])
        assert member is not None
        folders = {key: session.get(Folder, fid) for key, fid in seeded.fields.folders.items()}
        for sample in seeded.samples:
            folder = folders[sample.folder]
            assert folder is not None
            saved = save_record(session, member, folder, sample.form)
            session.flush()
            expected, actual = (
                _record_rows(session, saved.id),
                _record_rows(session, sample.record_id),
            )
            if expected != actual:
                raise SystemExit(
                    f"seeded {sample.folder} #{sample.record_id} differs from save_record:\n"
                    f"  save_record: {expected}\n  seeded:      {actual}"
                )
        session.rollback()
    return len(seeded.samples)


# --------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """The figures of measure_import, or why they are missing."""

    figures: dict[str, float] | None
    problem: str = ""


def measure_import_section(url: str, rows: int, seed_value: int) -> ImportResult:
    """Run bench/hygiene_import.py's measure_import, imported only now (it is optional)."""
    try:
        module = importlib.import_module("hygiene_import")
    except ImportError as exc:
        return ImportResult(None, f"bench/hygiene_import.py cannot be imported: {exc}")
    try:
        figures = module.measure_import(url, rows=rows, seed=seed_value)
    except SystemExit as exc:  # it refuses to wipe a database not named *bench*
        return ImportResult(None, f"measure_import refused: {exc}")
    return ImportResult({k: float(v) for k, v in figures.items()})


# --------------------------------------------------------------------------- duplicates


@dataclass
class ScanResult:
    """The duplicate scan's times and what it found against what was planted."""

    seconds: list[float]
    clusters: int
    records_in_clusters: int
    expected_clusters: int
    missed: int
    cli_seconds: float | None = None
    cli_problem: str = ""


def scan_duplicates(url: str, engine: Engine, seeded: Seeded, runs: int = 2) -> ScanResult:
    """Time duplicate_clusters, check it against the planted duplicates, time the CLI."""
    seconds: list[float] = []
    clusters: list[Any] = []
    for _ in range(runs):
        with Session(engine) as session:
            started = time.perf_counter()
            clusters = duplicate_clusters(session, seeded.workspace_id)
            seconds.append(time.perf_counter() - started)
    cluster_of = {rid: i for i, c in enumerate(clusters) for rid in c.record_ids}
    missed = sum(
        1
        for dup, orig, _reason in seeded.planted
        if dup not in cluster_of or cluster_of.get(orig) != cluster_of[dup]
    )
    # Duplicates of one original form one cluster; nothing else is a duplicate.
    expected = len({orig for _dup, orig, _reason in seeded.planted})
    result = ScanResult(seconds, len(clusters), len(cluster_of), expected, missed)
    # The command an admin runs: the scan, the titles, one printed line per cluster.
    try:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    except Exception as exc:  # informational: a broken app must not lose the figures
        result.cli_problem = f"the app cannot be created: {exc}"
        return result
    started = time.perf_counter()
    outcome = app.test_cli_runner().invoke(args=["crm", "duplicates", "--domain", DOMAIN])
    elapsed = time.perf_counter() - started
    app.extensions["addon.engine"].dispose()
    last_line = outcome.output.strip().splitlines()[-1:] or [""]
    if outcome.exit_code == 0 and last_line[0] == f"{len(clusters)} duplicate cluster(s)":
        result.cli_seconds = elapsed
    else:
        problem = outcome.exception or last_line[0]
        result.cli_problem = f"exit {outcome.exit_code}: {str(problem)[:200]}"
    return result


# --------------------------------------------------------------------------- views

ViewMaker = Callable[[random.Random, Seeded], dict[str, Any]]


def _cond(field_key: str, op: str, value: str = "") -> dict[str, str]:
    return {"field": field_key, "op": op, "value": value}


def _stage(rng: random.Random) -> str:
    return rng.choices(LIFECYCLE_STAGES, STAGE_WEIGHTS)[0]


# Two-condition views of the kinds reps save, each sample with fresh operands.
VIEWS: list[tuple[str, ViewMaker]] = [
    (
        "stage = S and created in last N days",
        lambda rng, s: {
            "conditions": [
                _cond("lifecycle_stage", "equals", _stage(rng)),
                _cond("_created", "last_n_days", str(rng.choice((7, 30, 90, 365)))),
            ],
            "sort": {"field": "_created", "desc": True},
        },
    ),
    (
        "stage = S and job title contains W",
        lambda rng, s: {
            "conditions": [
                _cond("lifecycle_stage", "equals", _stage(rng)),
                _cond("job_title", "contains", rng.choice(TITLE_WORDS)),
            ],
        },
    ),
    (
        "lead source = L and score > X",
        lambda rng, s: {
            "conditions": [
                _cond("lead_source", "equals", rng.choice(LEAD_SOURCES)),
                _cond("score", "gt", str(rng.randrange(0, 100))),
            ],
            "sort": {"field": "score", "desc": True},
        },
    ),
    (
        "owner = M and stage in [S, T]",
        lambda rng, s: {
            "conditions": [
                _cond("owner", "equals", rng.choice(s.member_emails)),
                _cond("lifecycle_stage", "in_list", ",".join(rng.sample(LIFECYCLE_STAGES, 2))),
            ],
        },
    ),
    (
        "name contains T and lead source = L",
        lambda rng, s: {
            "conditions": [
                _cond("_title", "contains", rng.choice(NAME_FRAGMENTS)),
                _cond("lead_source", "equals", rng.choice(LEAD_SOURCES)),
            ],
        },
    ),
    (
        "emails contain gmail.com and phone not empty",
        lambda rng, s: {
            "conditions": [
                _cond("emails", "contains", rng.choice(("gmail.com", "@gmail", "systems.com"))),
                _cond("phones", "is_not_empty"),
            ],
            "sort": {"field": "_updated", "desc": True},
        },
    ),
    (
        "stage = S or score > X (any)",
        lambda rng, s: {
            "match": "any",
            "conditions": [
                _cond("lifecycle_stage", "equals", _stage(rng)),
                _cond("score", "gt", str(rng.randrange(90, 100))),
            ],
        },
    ),
]


@dataclass
class ViewTiming:
    """One sample: the count, the first page and the whole sidebar query."""

    count_ms: float
    page_ms: float
    total_ms: float
    matched: int


@dataclass
class ViewResult:
    """All samples of one view."""

    name: str
    samples: list[ViewTiming] = field(default_factory=list)

    def p(self, q: float, attr: str = "total_ms") -> float:
        """A percentile of one measure."""
        return percentile([getattr(s, attr) for s in self.samples], q)


def run_view(engine: Engine, seeded: Seeded, raw: dict[str, Any]) -> ViewTiming:
    """One view as the view card shows it (`view_page`): parse, the matching ids up to the
    cap (the count), the first page; own session. The count is timed to the end of its
    statement."""
    marks: list[float] = []

    def _after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The ids statement is the first with a LIMIT (the conditions' own lookups have none).
        if " LIMIT " in statement:
            marks.append(time.perf_counter())

    with Session(engine) as session:
        started = time.perf_counter()
        folder = session.get(Folder, seeded.fields.folders["contacts"])
        assert folder is not None
        fields = folder_fields(session, folder.id)
        definition = parse_definition(fields, raw)
        connection = session.connection()
        event.listen(connection, "after_cursor_execute", _after)
        try:
            found = view_page(session, folder, definition)
        finally:
            event.remove(connection, "after_cursor_execute", _after)
        done = time.perf_counter()
        counted = marks[0]
        assert len(found.records) == min(found.count, 20), (raw, found.count)
    return ViewTiming(
        (counted - started) * 1000, (done - counted) * 1000, (done - started) * 1000, found.count
    )


def measure_views(
    engine: Engine, seeded: Seeded, requests: int, rng: random.Random
) -> list[ViewResult]:
    """Interleave the views (so load drift hits all alike); warm-up rounds not kept."""
    results = [ViewResult(name) for name, _maker in VIEWS]
    for round_number in range(WARMUP_ROUNDS + requests):
        for result, (_name, maker) in zip(results, VIEWS, strict=True):
            timing = run_view(engine, seeded, maker(rng, seeded))
            if round_number >= WARMUP_ROUNDS:
                result.samples.append(timing)
    return results


# --------------------------------------------------------------------------- report


def report(
    backend: str,
    contacts: int,
    seeded: Seeded,
    imported: ImportResult | None,
    scan: ScanResult,
    views: list[ViewResult],
) -> bool:
    """Print the tables and the targets; True when every target is met."""
    ok = True

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    print()
    print(f"Data hygiene benchmark on {backend} (load average {os.getloadavg()[0]:.1f})")
    print()
    if imported is not None:
        print("1. CSV import")
        if imported.figures is None:
            ok = False
            print(f"   unavailable: {imported.problem}  FAIL (not measured)")
        else:
            fig = imported.figures
            passed = fig["ratio"] >= 0.5
            ok &= passed
            print(
                f"   import {fig['import_rows_per_s']:,.0f} rows/s, raw INSERT "
                f"{fig['raw_rows_per_s']:,.0f} rows/s, import took {fig['seconds']:.1f} s"
            )
            print(f"   ratio {fig['ratio']:.2f}x  (target >= 0.5x) {verdict(passed)}")
        print()

    print(f"2. Duplicate scan over {contacts:,} contacts and {contacts // 10:,} companies")
    by_reason: dict[str, int] = {}
    for _dup, _orig, reason in seeded.planted:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    print(
        "   planted: "
        + ", ".join(f"{reason} {count:,}" for reason, count in sorted(by_reason.items()))
        + f" ({scan.expected_clusters:,} clusters)"
    )
    found_ok = scan.missed == 0 and scan.clusters == scan.expected_clusters
    ok &= found_ok
    print(
        f"   found {scan.clusters:,} clusters of {scan.records_in_clusters:,} records; "
        f"planted duplicates missed: {scan.missed}  {verdict(found_ok)}"
    )
    runs = ", ".join(f"{s:.2f} s" for s in scan.seconds)
    passed = scan.seconds[0] < 60
    ok &= passed
    print(f"   duplicate_clusters: {runs}  (target first run < 60 s) {verdict(passed)}")
    if scan.cli_seconds is not None:
        print(f"   `flask crm duplicates` end to end: {scan.cli_seconds:.2f} s (informational)")
    else:
        print(f"   `flask crm duplicates` failed: {scan.cli_problem} (informational)")
    print()

    judged = backend == "postgresql"
    print(
        f"3. Saved views over {contacts:,} contacts: view_page (capped ids + first page), "
        f"{len(views[0].samples)} samples each"
    )
    header = (
        f"   {'view':<46} {'matched p50':>11} {'count p50':>9} {'page p50':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    print(header)
    print("   " + "-" * (len(header) - 3))
    for view in views:
        print(
            f"   {view.name:<46} {int(view.p(0.5, 'matched')):>11,} "
            f"{view.p(0.5, 'count_ms'):>9.1f} {view.p(0.5, 'page_ms'):>8.1f} "
            f"{view.p(0.5):>8.1f} {view.p(0.99):>8.1f}"
        )
    everything = [s.total_ms for v in views for s in v.samples]
    worst = max(views, key=lambda v: v.p(0.5))
    print(
        f"   all views: p50 {percentile(everything, 0.5):.1f} ms, "
        f"p99 {percentile(everything, 0.99):.1f} ms"
    )
    passed = worst.p(0.5) < 200
    if judged:
        ok &= passed
        print(
            f"   slowest view p50 {worst.p(0.5):.1f} ms  (target every view's p50 < 200 ms) "
            f"{verdict(passed)}"
        )
    else:
        print(
            f"   slowest view p50 {worst.p(0.5):.1f} ms  (the 200 ms target is set for "
            f"PostgreSQL; informational here: {'met' if passed else 'not met'})"
        )
    return ok


def _seeded(url: str, args: argparse.Namespace) -> Seeded:
    """Seed a fresh database, or with --reuse take the one an earlier run seeded."""
    remembered = Path(args.reuse) if args.reuse else None
    if remembered is not None and remembered.exists():
        # Seeding 1M contacts takes many minutes: iterating on the view SQL or on indexes
        # (a new migration, applied here) does not need it again.
        engine = seeding_engine(url)
        with engine.begin() as conn:
            upgrade(url, conn)
        engine.dispose()
        seeded: Seeded = pickle.loads(remembered.read_bytes())
        print(f"  reusing the database seeded with {remembered}", flush=True)
        return seeded
    reset_database(url, args.force)
    engine = seeding_engine(url)
    with engine.begin() as conn:
        upgrade(url, conn)
    seeded = seed(engine, args.contacts, random.Random(args.seed))
    engine.dispose()
    if remembered is not None:
        remembered.write_bytes(pickle.dumps(seeded))
    return seeded


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the three measurements, print the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts to seed")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the CSV import")
    parser.add_argument("--requests", type=int, default=100, help="measured samples per view")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--skip-import", action="store_true", help="leave out the import")
    parser.add_argument("--force", action="store_true", help="wipe a database not named *bench*")
    parser.add_argument(
        "--reuse",
        default="",
        help="a file remembering what was seeded: seed and write it when it is missing, "
        "otherwise keep the database as it is (migrated to head) and skip the seeding",
    )
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="addon-bench-")
    url = args.database_url or f"sqlite:///{os.path.join(tmp.name, 'hygiene.sqlite3')}"
    backend = make_url(url).get_backend_name()
    print(f"database: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    # Refuse before anything runs, not after the import has wiped the database.
    if backend != "sqlite" and "bench" not in (make_url(url).database or "") and not args.force:
        raise SystemExit(
            f"refusing to wipe {make_url(url).database!r}: name lacks 'bench' (--force)"
        )

    imported = None
    if not args.skip_import:
        # The import builds its own schema: in its own SQLite file, or in this database
        # before it is reset for the rest.
        import_url = (
            f"sqlite:///{os.path.join(tmp.name, 'import.sqlite3')}" if backend == "sqlite" else url
        )
        print(f"import: {args.import_rows:,} rows through measure_import...", flush=True)
        imported = measure_import_section(import_url, args.import_rows, args.seed)

    print(
        f"seeding {args.contacts:,} contacts and {args.contacts // 10:,} companies...", flush=True
    )
    seeded = _seeded(url, args)
    print(
        f"  seeded in {seeded.seconds:.1f} s ({seeded.cpu_seconds:.1f} s CPU here): "
        + ", ".join(f"{k} {v:,}" for k, v in seeded.rows.items()),
        flush=True,
    )
    # The app's own engine settings from here on.
    engine = make_engine(url)
    checked = check_fidelity(engine, seeded)
    print(f"  {checked} sampled records match what save_record writes", flush=True)

    print(f"duplicate scan (load average {os.getloadavg()[0]:.1f})...", flush=True)
    scan = scan_duplicates(url, engine, seeded)
    print(f"views: {len(VIEWS)} views x {args.requests} samples...", flush=True)
    views = measure_views(engine, seeded, args.requests, random.Random(args.seed + 1))
    engine.dispose()
    ok = report(backend, args.contacts, seeded, imported, scan, views)
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
