"""CSV import rate against a raw bulk INSERT of the same rows.

`measure_import` builds a fresh schema with the Alembic migrations, provisions a workspace
through resolve_member (as the first request would), generates a CSV of realistic contacts
(first and last name, email, phone in several national formats, job title, company, lifecycle
stage; one company per 25 contacts on average), and times `import_csv` into that workspace,
commit included. It then copies out every row the import produced (`records`,
`field_values`, `record_emails`, `record_phones`, `record_domains`, `record_relations` and
`audit_entries`), points them at a second workspace, and times re-inserting them with Core
executemany in batches of 10,000: the raw bulk INSERT floor.

Run from the repository root (the database is wiped: a SQLite file is recreated; on PostgreSQL
the public schema is dropped, and the database name must contain "bench"):

    PYTHONPATH=. .venv/bin/python bench/hygiene_import.py --rows 100000
    PYTHONPATH=. .venv/bin/python bench/hygiene_import.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/addon_bench
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import phonenumbers

# The benches run as scripts from bench/, so their sibling modules import by name.
from contextual import FIRST_NAMES as FIRST
from sqlalchemy import Engine, Table, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from addon.crm.defaults import LIFECYCLE_STAGES
from addon.crm.imports import import_csv
from addon.crm.models import (
    AuditEntry,
    FieldDef,
    FieldValue,
    Folder,
    Record,
    RecordDomain,
    RecordEmail,
    RecordPhone,
    RecordRelation,
)
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import make_engine
from addon.migrations import upgrade

IMPORT_DOMAIN = "import-bench.test"
RAW_DOMAIN = "raw-bench.test"
BATCH = 10_000

LAST = [
    "Adams",
    "Baker",
    "Brown",
    "Chen",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Nakamura",
    "Novak",
    "Olsen",
    "Patel",
    "Perez",
    "Rossi",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Taylor",
    "Tanaka",
    "Weber",
    "Wilson",
    "Wong",
    "Young",
    "Zhang",
]
TITLES = (
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Executive",
    "Software Engineer",
    "Marketing Manager",
    "Procurement Lead",
    "Office Manager",
    "VP Operations",
    "Product Manager",
    "",
)
WORDS = [
    "Blue",
    "River",
    "North",
    "Peak",
    "Bright",
    "Iron",
    "Silver",
    "Green",
    "Atlas",
    "Nova",
    "Delta",
    "Summit",
    "Harbor",
    "Cedar",
    "Orbit",
    "Quantum",
    "Maple",
    "Falcon",
    "Vertex",
    "Lumen",
]
KINDS = [
    "Logistics",
    "Software",
    "Foods",
    "Labs",
    "Systems",
    "Partners",
    "Energy",
    "Health",
    "Media",
    "Capital",
]
SUFFIXES = ("", "", " Inc.", " GmbH", " Ltd", " SA")
# (region, format) of the phone numbers: international, national and E.164 spellings.
PHONE_STYLES = (
    ("US", phonenumbers.PhoneNumberFormat.NATIONAL),
    ("US", phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    ("GB", phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    ("DE", phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    ("FR", phonenumbers.PhoneNumberFormat.E164),
)
HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Phone Number",
    "Job Title",
    "Company Name",
    "Lifecycle Stage",
]


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def reset_database(url: str) -> None:
    """Start from an empty database: a new SQLite file, or an empty public schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if "bench" not in (parsed.database or ""):
        raise SystemExit(f"refusing to wipe {parsed.database!r}: its name lacks 'bench'")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _phone(rng: random.Random, taken: set[str]) -> str:
    region, style = rng.choice(PHONE_STYLES)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = str(example.national_number)
    while True:
        digits = national[:3] + "".join(rng.choice("0123456789") for _ in national[3:])
        number = phonenumbers.parse(f"+{example.country_code}{digits}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number) and e164 not in taken:
            taken.add(e164)
            return phonenumbers.format_number(number, style)


def generate_csv(rows: int, seed: int = 42) -> bytes:
    """A CSV file of `rows` distinct, valid contacts with a HubSpot-style header."""
    rng = random.Random(seed)
    companies = []
    for index in range(max(1, rows // 25)):
        word, kind = rng.choice(WORDS), rng.choice(KINDS)
        name = f"{word} {rng.choice(WORDS)} {kind}"
        companies.append((f"{name}{rng.choice(SUFFIXES)}", f"{word}{kind}{index}.com".lower()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    phones: set[str] = set()
    for index in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company, domain = rng.choice(companies)
        email = f"{first}.{last}{index}@{domain}".lower()
        stage = rng.choice(LIFECYCLE_STAGES)
        writer.writerow(
            [
                first,
                last,
                email if rng.random() > 0.1 else email.upper(),
                _phone(rng, phones),
                rng.choice(TITLES),
                company,
                stage.capitalize() if rng.random() > 0.5 else stage,
            ]
        )
    return out.getvalue().encode()


# The records, their values and the email index: what the raw floor held until it counted
# every table the import writes.
CORE_TABLES = ("records", "field_values", "record_emails")
# Every table the import writes, in the order their rows may be inserted.
_WRITTEN = (Record, FieldValue, RecordEmail, RecordPhone, RecordDomain, RecordRelation, AuditEntry)
# Columns naming a record: ids of the copy are the source's plus an offset.
_RECORD_COLUMNS = ("record_id", "from_record_id", "to_record_id")
# Columns naming a member: the copy names the target workspace's admin.
_MEMBER_COLUMNS = ("created_by_id", "owner_member_id", "actor_id")


def _copy_rows(engine: Engine, source_ws: int, target: dict[str, Any]) -> dict[Table, list[Any]]:
    """Every row the import wrote, re-pointed at the target workspace.

    Records, field values, the email, phone and domain indexes, links (contact to company)
    and audit entries: the raw floor inserts exactly what the import had to write.
    """
    with engine.connect() as conn:
        folders = {
            fid: key
            for fid, key in conn.execute(
                select(Folder.id, Folder.key).where(Folder.workspace_id == source_ws)
            )
        }
        fields = {
            fid: (folders[folder_id], key)
            for fid, folder_id, key in conn.execute(
                select(FieldDef.id, FieldDef.folder_id, FieldDef.key).where(
                    FieldDef.workspace_id == source_ws
                )
            )
        }
        offset = int(conn.execute(text("SELECT max(id) FROM records")).scalar_one())
        tables: dict[Table, list[Any]] = {}
        for model in _WRITTEN:
            table = _table(model)
            rows = []
            for row in conn.execute(select(table).where(table.c.workspace_id == source_ws)):
                copy = dict(row._mapping)
                if model is Record:
                    copy["id"] += offset
                else:
                    del copy["id"]  # the database numbers them, as for the import
                copy["workspace_id"] = target["workspace_id"]
                for name in _RECORD_COLUMNS:
                    if copy.get(name) is not None:
                        copy[name] += offset
                for name in _MEMBER_COLUMNS:
                    if copy.get(name) is not None:
                        copy[name] = target["member_id"]
                if copy.get("folder_id") is not None:
                    copy["folder_id"] = target["folders"][folders[copy["folder_id"]]]
                if copy.get("field_id") is not None:
                    copy["field_id"] = target["fields"][fields[copy["field_id"]]]
                rows.append(copy)
            tables[table] = rows
    return tables


def _provision(engine: Engine, domain: str) -> dict[str, Any]:
    with Session(engine) as session:
        member = resolve_member(session, domain, f"admin@{domain}", is_consumer=False)
        session.commit()
        folders = folders_by_key(session, member.workspace_id)
        keys = {f.id: f.key for f in folders.values()}
        fields = {
            (keys[f.folder_id], f.key): f.id
            for f in session.scalars(
                select(FieldDef).where(FieldDef.workspace_id == member.workspace_id)
            )
        }
        return {
            "workspace_id": member.workspace_id,
            "member_id": member.id,
            "folders": {k: f.id for k, f in folders.items()},
            "fields": fields,
        }


def measure_import(database_url: str, rows: int = 100_000, seed: int = 42) -> dict[str, Any]:
    """Time import_csv of `rows` contacts and a raw bulk INSERT of the rows it wrote."""
    reset_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            upgrade(database_url, conn)
        data = generate_csv(rows, seed)
        with Session(engine) as session:
            member = resolve_member(
                session, IMPORT_DOMAIN, f"admin@{IMPORT_DOMAIN}", is_consumer=False
            )
            session.commit()
            folder = folders_by_key(session, member.workspace_id)["contacts"]
            started = time.perf_counter()
            report = import_csv(session, member, folder, data)
            session.commit()
            seconds = time.perf_counter() - started
            source_ws = member.workspace_id
        if report.created != rows:
            raise RuntimeError(f"the import did not create every row: {report.summary()}")
        target = _provision(engine, RAW_DOMAIN)
        tables = _copy_rows(engine, source_ws, target)
        print(
            "rows the import wrote, re-inserted raw: "
            + ", ".join(f"{table.name} {len(found):,}" for table, found in tables.items()),
            flush=True,
        )
        started = time.perf_counter()
        per_table: dict[str, float] = {}
        with engine.begin() as conn:
            for table, table_rows in tables.items():
                table_started = time.perf_counter()
                for start in range(0, len(table_rows), BATCH):
                    conn.execute(insert(table), table_rows[start : start + BATCH])
                per_table[table.name] = time.perf_counter() - table_started
        raw_seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    import_rate, raw_rate = rows / seconds, rows / raw_seconds
    # Earlier versions of this bench re-inserted only these three tables (informational).
    core_seconds = sum(per_table[name] for name in CORE_TABLES)
    return {
        "import_rows_per_s": import_rate,
        "raw_rows_per_s": raw_rate,
        "ratio": import_rate / raw_rate,
        "seconds": seconds,
        "raw_seconds": raw_seconds,
        "core_ratio": import_rate / (rows / core_seconds),
        "per_table": per_table,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 when the import is slower than half the raw insert rate."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="contacts in the file")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="addon-import-bench-") as tmp:
        url = args.database_url or f"sqlite:///{os.path.join(tmp, 'import.sqlite3')}"
        print(f"database: {make_url(url).render_as_string(hide_password=True)}", flush=True)
        figures = measure_import(url, args.rows, args.seed)
    print(f"{'contacts':>10} {'import s':>9} {'import rows/s':>14} {'raw rows/s':>11} {'ratio':>6}")
    print(
        f"{args.rows:>10,} {figures['seconds']:>9.1f} {figures['import_rows_per_s']:>14,.0f} "
        f"{figures['raw_rows_per_s']:>11,.0f} {figures['ratio']:>6.2f}"
    )
    print(
        "raw seconds per table: "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in figures["per_table"].items())
    )
    print(
        f"ratio to re-inserting only {', '.join(CORE_TABLES)}: "
        f"{figures['core_ratio']:.2f} (informational)"
    )
    ok = figures["ratio"] >= 0.5
    print("target (import at least half the raw insert rate):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
