"""CSV import: mapping, sidebar validation, duplicates, batches, audit, CLI, robustness."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, event, func, select, text
from sqlalchemy.orm import Session

from addon import collector
from addon.crm import imports
from addon.crm.audit import record_history
from addon.crm.csvio import FULL_NAME_KEY, decode_csv_bytes, read_rows
from addon.crm.imports import ImportMappingError, ImportReport, import_csv, split_full_name
from addon.crm.models import (
    AuditEntry,
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
from addon.crm.records import load_detail, save_record
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import Base
from tests.crmdata import Crm, add_field
from tests.dbstate import row_counts


def run(crm: Crm, csv_text: str, folder: str = "contacts", **options: Any) -> ImportReport:
    """Import CSV text into a folder of the crm fixture's workspace, as its admin."""
    report = import_csv(crm.db, crm.member, crm.folders[folder], csv_text.encode(), **options)
    crm.db.flush()
    return report


def records_of(crm: Crm, folder: str = "contacts") -> dict[str, Record]:
    """The folder's records by title."""
    rows = crm.db.execute(select(Record).where(Record.folder_id == crm.folders[folder].id))
    return {r.title: r for r in rows.scalars()}


def values_of(crm: Crm, record: Record) -> dict[str, Any]:
    """A record's values, links as titles."""
    detail = load_detail(crm.db, record)
    found = dict(detail.values)
    for key, targets in detail.links.items():
        if targets:
            found[key] = sorted(t.title for t in targets)
    return found


def lines(report: ImportReport) -> list[str]:
    """The report's lines as text."""
    return [str(line) for line in report.lines]


# ----------------------------------------------------------------------- identical rows


def _snapshot(db: Session, workspace_id: int) -> dict[str, list[Any]]:
    """Every table's rows of a workspace, with ids replaced by what they stand for."""
    records = {
        r.id: (r.folder.key, r.title)
        for r in db.execute(select(Record).where(Record.workspace_id == workspace_id)).scalars()
    }
    fields_by = {f.id: f for f in db.scalars(select(FieldDef))}
    members = {
        m.id: m.email.split("@")[0]
        for m in db.scalars(select(Member).where(Member.workspace_id == workspace_id))
    }
    key_of = {fid: (f.folder_id, f.key) for fid, f in fields_by.items()}
    link_keys = {f.key for f in fields_by.values() if f.type == "link"}
    user_keys = {f.key for f in fields_by.values() if f.type == "user"}

    def name(fid: int) -> str:
        return key_of[fid][1]

    def shown(values: dict[str, Any] | None) -> Any:
        # Link ids and member ids differ between workspaces; what they point at must not.
        if values is None:
            return None
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key in link_keys and isinstance(value, list):
                out[key] = [("#", records[v]) if isinstance(v, int) else v for v in value]
            elif key in user_keys and isinstance(value, int):
                out[key] = ("member", members[value])
            else:
                out[key] = value
        return out

    snap: dict[str, list[Any]] = {}
    snap["records"] = sorted(
        (records[r.id], r.search_key, members[r.created_by_id or 0])
        for r in db.scalars(select(Record).where(Record.workspace_id == workspace_id))
    )
    value_rows = db.execute(
        select(
            FieldValue.record_id,
            FieldValue.field_id,
            cast(FieldValue.value, Text),
            FieldValue.value,
            FieldValue.text_key,
            FieldValue.num_key,
        ).where(FieldValue.workspace_id == workspace_id)
    )
    snap["field_values"] = sorted(
        (
            records[rid],
            name(fid),
            # The stored JSON text itself (SQLite keeps it verbatim), except for member
            # ids, which differ between the two workspaces.
            raw if name(fid) not in user_keys else json.dumps(shown({name(fid): value})),
            tkey if name(fid) not in user_keys else "member",
            nkey if name(fid) not in user_keys else "member",
        )
        for rid, fid, raw, value, tkey, nkey in value_rows
    )
    for label, model, column in (
        ("record_emails", RecordEmail, RecordEmail.email),
        ("record_phones", RecordPhone, RecordPhone.phone),
        ("record_domains", RecordDomain, RecordDomain.domain),
    ):
        snap[label] = sorted(
            (records[rid], value)
            for rid, value in db.execute(
                select(model.record_id, column).where(model.workspace_id == workspace_id)
            )
        )
    snap["record_relations"] = sorted(
        (name(fid), records[src], records[dst])
        for fid, src, dst in db.execute(
            select(
                RecordRelation.field_id, RecordRelation.from_record_id, RecordRelation.to_record_id
            ).where(RecordRelation.workspace_id == workspace_id)
        )
    )
    audit_rows = db.execute(
        select(AuditEntry, cast(AuditEntry.before, Text).label("before_text")).where(
            AuditEntry.workspace_id == workspace_id, AuditEntry.action != "import"
        )
    )
    snap["audit_entries"] = sorted(
        (
            (
                entry.action,
                members.get(entry.actor_id or 0),
                records.get(entry.record_id or 0),
                entry.summary,
                before_text,
                json.dumps(shown(entry.after), sort_keys=True),
            )
            for entry, before_text in audit_rows
        ),
        key=repr,
    )
    return snap


def _counts(db: Session, workspace_id: int) -> dict[str, int]:
    """Rows per table of one workspace (the import's own summary entry left out)."""
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if "workspace_id" in table.c:
            query = (
                select(func.count()).select_from(table).where(table.c.workspace_id == workspace_id)
            )
            if table.name == "audit_entries":
                query = query.where(table.c.action != "import")
            counts[table.name] = db.execute(query).scalar_one()
    return counts


def _custom_fields(db: Session, folder: Folder) -> None:
    add_field(db, folder, "ticket", "autonumber", prefix="C-")
    add_field(db, folder, "score", "number")
    add_field(db, folder, "double", "formula", expression="score * 2")
    add_field(db, folder, "discount", "percent")
    add_field(db, folder, "budget", "currency", default_currency="EUR")
    add_field(db, folder, "met_on", "date")
    add_field(db, folder, "vip", "checkbox")
    add_field(db, folder, "topics", "multidropdown", choices=["crm", "mail", "api"])
    add_field(db, folder, "site", "url")
    add_field(db, folder, "address", "address")


EQUIVALENCE_CSV = """\
First name,Last name,Emails,Phones,Job title,Company,Lifecycle stage,Owner,Score,Discount,\
Budget,Met on,Vip,Topics,Site,Address
Ann,Lee,Ann.Lee@Globex.com; ann@home.org,+49 30 1234567,CTO,Globex,Lead,rep@{domain},10,\
12.5%,"1,200.50",2025-06-02,yes,"crm, api",globex.com/team,"Hauptstr. 5, 10115 Berlin"
Bob,,bob@globex.com,,,globex,,,,,,,no,,,
,,carl@initech.com,(415) 555-2671,Engineer,Initech,customer,,2.5,,EUR 3,6/2/2025,,mail,,
Dee,Ng,,,,Umbrella,,,,,,,,,,
"""


def test_import_writes_exactly_the_rows_save_record_writes(
    crm: Crm, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two batches of two rows: batch boundaries must not change anything.
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    other = resolve_member(db, "beta.test", "rep@beta.test", is_consumer=False)
    db.flush()
    other_folders = folders_by_key(db, other.workspace_id)
    for folders in (crm.folders, other_folders):
        _custom_fields(db, folders["contacts"])
    crm.save("companies", name="Initech", domain="initech.com")
    save_record(
        db, other, other_folders["companies"], {"name": ["Initech"], "domain": ["initech.com"]}
    )

    report = run(crm, EQUIVALENCE_CSV.format(domain="acme.test"))
    assert (report.created, report.rejected) == (4, 0), lines(report)

    # The same forms, one save_record each, in the other workspace.
    parsed = read_rows(EQUIVALENCE_CSV.format(domain="beta.test"))
    fields = {
        f.label: f.key
        for f in db.scalars(
            select(FieldDef).where(FieldDef.folder_id == other_folders["contacts"].id)
        )
    }
    for row in parsed.rows:
        form = {
            fields[label]: [cell] for label, cell in zip(parsed.header, row.values, strict=True)
        }
        save_record(db, other, other_folders["contacts"], form, source="import")
    db.flush()

    mine, theirs = _snapshot(db, crm.member.workspace_id), _snapshot(db, other.workspace_id)
    for table in theirs:
        assert mine[table] == theirs[table], table
    # And no table save_record writes to is left out of the comparison above.
    assert _counts(db, crm.member.workspace_id) == _counts(db, other.workspace_id)
    # The comparison saw every kind of row.
    assert all(
        theirs[t] for t in ("field_values", "record_emails", "record_phones", "record_relations")
    )


# ---------------------------------------------------------------------------- mapping


def test_mapping_is_guessed_from_headers_in_other_languages(crm: Crm) -> None:
    report = run(
        crm,
        "Vorname;Nachname;E-Mail-Adresse;Firma;Lieblingsfarbe\n"
        "Änne;Müller;aenne@beispiel.de;Beispiel GmbH;blau\n",
    )
    assert report.mapping == [
        ("Vorname", "First name"),
        ("Nachname", "Last name"),
        ("E-Mail-Adresse", "Emails"),
        ("Firma", "Company"),
    ]
    assert report.unmapped == ["Lieblingsfarbe"]
    assert report.created == 1
    anne = records_of(crm)["Änne Müller"]
    assert values_of(crm, anne)["company"] == ["Beispiel GmbH"]


def test_full_name_column_is_split_into_first_and_last_name(crm: Crm) -> None:
    report = run(
        crm,
        'Name,Email\nAnn van der Berg,ann@x.com\n"Lee, Bob",bob@x.com\nCher,cher@x.com\n',
    )
    assert report.mapping[0] == ("Name", imports.FULL_NAME_LABEL)
    assert report.created == 3
    people = records_of(crm)
    assert values_of(crm, people["Ann van der Berg"])["last_name"] == "van der Berg"
    assert values_of(crm, people["Bob Lee"])["first_name"] == "Bob"
    assert "last_name" not in values_of(crm, people["Cher"])
    assert split_full_name("  Ann   Lee ") == ("Ann", "Lee")


def test_explicit_mapping_replaces_the_guess(crm: Crm) -> None:
    csv_text = "Who,Contact,Role\nAnn Lee,ann@x.com,CTO\n"
    report = run(crm, csv_text, mapping={0: FULL_NAME_KEY, 1: "emails", 2: "job_title"})
    assert report.mapping == [
        ("Who", imports.FULL_NAME_LABEL),
        ("Contact", "Emails"),
        ("Role", "Job title"),
    ]
    assert values_of(crm, records_of(crm)["Ann Lee"])["job_title"] == "CTO"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({5: "emails"}, "no column 5"),
        ({0: "shoe_size"}, "no field “shoe_size”"),
        ({0: "first_name", 1: "first_name"}, "both map to First name"),
    ],
)
def test_explicit_mapping_that_does_not_fit_is_refused(
    crm: Crm, db: Session, mapping: dict[int, str], message: str
) -> None:
    before = row_counts(db)
    with pytest.raises(ImportMappingError, match=message):
        run(crm, "A,B\nAnn,Lee\n", mapping=mapping)
    assert row_counts(db) == before


def test_computed_fields_cannot_be_mapped_and_are_never_guessed(crm: Crm, db: Session) -> None:
    add_field(db, crm.folders["contacts"], "ticket", "autonumber")
    with pytest.raises(ImportMappingError, match="Ticket is computed"):
        run(crm, "Ticket,Email\n7,a@x.com\n", mapping={0: "ticket", 1: "emails"})
    report = run(crm, "Ticket,Email\n7,a@x.com\n")
    assert report.unmapped == ["Ticket"]
    assert values_of(crm, records_of(crm)["a@x.com"])["ticket"] == 1


def test_a_file_without_usable_columns_imports_nothing(crm: Crm, db: Session) -> None:
    before = row_counts(db)
    report = run(crm, "Colour,Size\nblue,L\n")
    assert report.error is not None and "no column matches" in report.error
    assert report.rows_seen == 0
    assert row_counts(db) == before


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\x00\x00"])
def test_an_empty_or_unreadable_file_is_an_error_not_a_crash(
    crm: Crm, db: Session, data: bytes
) -> None:
    before = row_counts(db)
    report = import_csv(db, crm.member, crm.folders["contacts"], data)
    assert report.error and report.summary().startswith("Nothing was imported")
    assert row_counts(db) == before


def test_file_problems_are_reported_by_line(crm: Crm) -> None:
    report = run(
        crm,
        'First name,Email\nAnn,ann@x.com,extra\n"Bob,bob@x.com\nCy,cy@x.com\n',
    )
    text = "\n".join(lines(report))
    assert "line 2: warning: Row has 3 cells" in text
    # The unclosed quote costs its row only; the reader resumes on the next line.
    assert "line 3: rejected: A quoted cell" in text
    assert report.created == 2 and report.rejected == 1 and report.rows_seen == 3


# ------------------------------------------------------------------ rules of the sidebar


@pytest.mark.parametrize(
    ("header", "cell", "message"),
    [
        ("Email", "not-an-email", "Emails: “not-an-email” is not a valid email address"),
        ("Phone", "call me", "Phones: “call me” is not a phone number"),
        ("Lifecycle stage", "royalty", "Lifecycle stage: “royalty” is not one of"),
        ("Owner", "nobody@acme.test", "Owner: “nobody@acme.test” is not a member"),
        ("Job title", "x" * 301, "Job title: is longer than 300 characters"),
        ("Score", "twelve", "Score: “twelve” is not a number"),
        ("Budget", "12 XYZ", "Budget: “XYZ” is not a supported currency code"),
        ("Met on", "32/13/2025", "Met on: “32/13/2025” is not a valid date"),
        ("Vip", "perhaps", "Vip: “perhaps” is not yes or no"),
    ],
)
def test_invalid_values_reject_the_whole_row_with_the_field_and_reason(
    crm: Crm, db: Session, header: str, cell: str, message: str
) -> None:
    contacts = crm.folders["contacts"]
    add_field(db, contacts, "score", "number")
    add_field(db, contacts, "budget", "currency")
    add_field(db, contacts, "met_on", "date")
    add_field(db, contacts, "vip", "checkbox")
    csv_text = f"First name,Email,{header}\nAnn,ann@x.com,{cell}\nBob,bob@x.com,\n"
    report = run(crm, csv_text)
    assert (report.created, report.rejected) == (1, 1)
    (line,) = lines(report)
    assert line.startswith(f"line 2: rejected: {message}")
    # Never half a row: nothing of Ann was written, not even her email.
    assert set(records_of(crm)) == {"Bob"}
    assert crm.db.scalar(select(func.count()).where(RecordEmail.email == "ann@x.com")) == 0


def test_required_fields_are_enforced_as_in_the_sidebar(crm: Crm, db: Session) -> None:
    region = add_field(db, crm.folders["contacts"], "region", "dropdown", choices=["EMEA", "APAC"])
    region.required = True
    db.flush()
    report = run(crm, "Name,Email,Region\nAnn Lee,ann@x.com,EMEA\nBob,bob@x.com,\n,,APAC\n")
    assert lines(report) == [
        "line 3: rejected: Region: is required",
        "line 4: rejected: First name: enter a name or an email address",
    ]
    assert set(records_of(crm)) == {"Ann Lee"}
    # Companies need a name, whatever else the row has.
    report = run(crm, "Name,Domain\n,initech.com\n", folder="companies")
    assert lines(report) == ["line 2: rejected: Name: is required"]


def test_links_resolve_by_name_and_create_missing_records_once(crm: Crm) -> None:
    globex = crm.save("companies", name="Globex")
    report = run(
        crm,
        'Name,Email,Company\nAnn Lee,ann@x.com,GLOBEX\nBob Ray,bob@x.com,"Acme, Inc."\n'
        'Cy Po,cy@x.com,"acme, inc."\n',
    )
    assert report.created == 3, lines(report)
    companies = records_of(crm, "companies")
    assert set(companies) == {"Globex", "Acme, Inc."}
    people = records_of(crm)
    assert values_of(crm, people["Ann Lee"])["company"] == ["Globex"]
    assert values_of(crm, people["Bob Ray"])["company"] == ["Acme, Inc."]
    assert values_of(crm, people["Cy Po"])["company"] == ["Acme, Inc."]
    assert companies["Globex"].id == globex.id
    # A deal names several contacts; a contact that does not exist cannot be made from a
    # name alone, exactly as in the sidebar form.
    report = run(
        crm, 'Deal,Contacts\nBig one,"Ann Lee, Bob Ray"\nGhost,Nobody Here\n', folder="deals"
    )
    assert values_of(crm, records_of(crm, "deals")["Big one"])["contacts"] == [
        "Ann Lee",
        "Bob Ray",
    ]
    assert lines(report) == [
        "line 3: rejected: Contacts: could not create contact “Nobody Here” "
        "(First name: enter a name or an email address)"
    ]


def test_ids_of_another_workspace_look_unknown(crm: Crm, db: Session) -> None:
    rival = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    db.flush()
    secret = save_record(
        db, rival, folders_by_key(db, rival.workspace_id)["companies"], {"name": ["Secret"]}
    )
    report = run(crm, f"Deal,Company,Owner\nProbe,#{secret.id},spy@rival.test\n", folder="deals")
    assert lines(report) == [
        "line 2: rejected: Owner: “spy@rival.test” is not a member of this workspace; "
        f"Company: record #{secret.id} was not found"
    ]
    with pytest.raises(ValueError, match="another workspace"):
        import_csv(
            db, crm.member, folders_by_key(db, rival.workspace_id)["contacts"], b"Email\na@x.com\n"
        )
    assert (
        db.scalar(
            select(func.count())
            .select_from(RecordRelation)
            .where(RecordRelation.to_record_id == secret.id)
        )
        == 0
    )


def test_cells_an_export_escaped_are_read_back_unescaped(crm: Crm) -> None:
    run(crm, "First name,Email,Job title\n'=HYPERLINK(1),a@x.com,'-boss\n")
    ann = records_of(crm)["=HYPERLINK(1)"]
    assert values_of(crm, ann)["job_title"] == "-boss"


# ------------------------------------------------------------------------- duplicates


ANN = "Name,Email,Phone,Job title\nAnn Lee,ann@x.com,+49 30 1234567,CTO\n"


def test_duplicates_are_skipped_by_default_with_the_reason(crm: Crm, db: Session) -> None:
    existing = crm.save("contacts", first_name="Ann", last_name="Lee", emails="ANN@x.com")
    crm.save("contacts", first_name="Pat", phones="+49 30 7654321")
    before = row_counts(db)
    report = run(
        crm,
        "Name,Email,Phone\nAnn L.,ann@x.com,\nPatty,,+49 (30) 765 4321\n",
    )
    assert lines(report) == [
        "line 2: skipped: duplicate of “Ann Lee” (same email)",
        "line 3: skipped: duplicate of “Pat” (same phone)",
    ]
    assert (report.skipped, report.created) == (2, 0)
    # Only the import's own audit entry was added.
    assert row_counts(db) == {**before, "audit_entries": before["audit_entries"] + 1}
    assert values_of(crm, existing)["first_name"] == "Ann"


def test_update_fills_in_the_existing_record_and_keeps_what_the_file_leaves_blank(
    crm: Crm,
) -> None:
    ann = crm.save(
        "contacts",
        first_name="Ann",
        last_name="Lee",
        emails="ann@x.com",
        job_title="CEO",
        lifecycle_stage="lead",
    )
    report = run(
        crm,
        "First name,Email,Phone,Job title,Lifecycle stage\nAnn,ann@x.com; ann@home.org,"
        "+49 30 1234567,CTO,\n",
        on_duplicate="update",
    )
    assert (report.updated, report.created) == (1, 0)
    values = values_of(crm, ann)
    assert values["job_title"] == "CTO"
    assert values["lifecycle_stage"] == "lead"  # blank cell: left alone
    assert values["emails"] == ["ann@x.com", "ann@home.org"]
    assert values["phones"] == ["+49301234567"]
    update = record_history(crm.db, ann.workspace_id, ann.id)[0]
    assert update.action == "update" and update.summary == "Updated Ann Lee (import)"
    assert update.before == {"job_title": "CEO", "emails": ["ann@x.com"], "phones": None}


def test_update_keeps_emails_and_phones_the_record_already_has(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@x.com, a.lee@corp.com")
    run(crm, "Email,Job title\nann@x.com,CTO\n", on_duplicate="update")
    assert values_of(crm, ann)["emails"] == ["ann@x.com", "a.lee@corp.com"]


def test_create_mode_creates_duplicates_anyway(crm: Crm) -> None:
    crm.save("contacts", first_name="Ann", last_name="Lee", emails="ann@x.com")
    report = run(crm, ANN + ANN.split("\n", 1)[1], on_duplicate="create")
    assert report.created == 2
    count = crm.db.scalar(select(func.count()).where(RecordEmail.email == "ann@x.com"))
    assert count == 3


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_rows_repeating_an_earlier_row_are_skipped_or_update_it(
    crm: Crm, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    csv_text = (
        "Name,Email,Phone,Job title\n"
        "Ann Lee,ann@x.com,,CTO\n"
        "Bob Ray,bob@x.com,+49 30 1234567,\n"
        "A. Lee,ANN@X.COM,,CEO\n"
        "Robert,,+4930 1234567,Founder\n"
    )
    report = run(crm, csv_text)
    assert lines(report) == [
        "line 4: skipped: duplicate of “Ann Lee” on line 2 (same email)",
        "line 5: skipped: duplicate of “Bob Ray” on line 3 (same phone)",
    ]
    assert report.created == 2


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_in_file_duplicates_update_the_record_an_earlier_row_created(
    crm: Crm, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    csv_text = (
        "Name,Email,Phone,Job title\n"
        "Ann Lee,ann@x.com,,CTO\n"
        "Bob Ray,bob@x.com,,\n"
        "Ann Lee,ann@x.com,+49 30 1234567,CEO\n"
        ",ann@x.com,,Chair\n"
    )
    report = run(crm, csv_text, on_duplicate="update")
    assert (report.created, report.updated, report.rejected) == (2, 2, 0), lines(report)
    ann = records_of(crm)["Ann Lee"]
    assert values_of(crm, ann)["job_title"] == "Chair"
    assert values_of(crm, ann)["phones"] == ["+49301234567"]


def test_companies_match_by_domain_and_normalised_name(crm: Crm) -> None:
    crm.save("companies", name="Initech LLC", domain="initech.com")
    report = run(
        crm,
        "Name,Website\nInitrode,https://www.initech.com/about\nINITECH,\nGlobex,globex.com\n"
        "Globex Corp,\n",
        folder="companies",
    )
    assert lines(report) == [
        "line 2: skipped: duplicate of “Initech LLC” (same domain)",
        "line 3: skipped: duplicate of “Initech LLC” (same name)",
        "line 5: skipped: duplicate of “Globex” on line 4 (same name)",
    ]
    assert report.created == 1


# ---------------------------------------------------------------- batches and failures


def _refuse_email(db: Session, email: str) -> None:
    """A database trigger refusing one email address: a real failure inside a batch."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            text(
                "CREATE FUNCTION refuse_test_email() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused by a test trigger'; "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        db.execute(
            text(
                "CREATE TRIGGER refuse_test_email BEFORE INSERT ON record_emails "
                "FOR EACH ROW EXECUTE FUNCTION refuse_test_email()"
            )
        )
    else:
        db.execute(
            text(
                "CREATE TRIGGER refuse_test_email BEFORE INSERT ON record_emails "
                f"WHEN NEW.email = '{email}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
            )
        )


def test_a_batch_the_database_refuses_leaves_nothing_half_written(crm: Crm, db: Session) -> None:
    _refuse_email(db, "boom@x.com")
    report = run(
        crm,
        "Name,Email,Phone,Company\nAnn Lee,ann@x.com,,Globex\n"
        "Bo Om,boom@x.com,+49 30 1234567,Boomco\nCy Po,cy@x.com,,Globex\n",
    )
    assert (report.created, report.rejected) == (2, 1)
    (line,) = lines(report)
    assert line.startswith("line 3: rejected: the database refused this row (")
    assert "refused by a test trigger" in line
    assert set(records_of(crm)) == {"Ann Lee", "Cy Po"}
    # No trace of the refused row anywhere: not its record, values, phone, company or audit.
    assert set(records_of(crm, "companies")) == {"Globex"}
    assert db.scalar(select(func.count()).where(RecordPhone.phone == "+49301234567")) == 0
    assert db.scalar(select(func.count()).where(AuditEntry.summary.like("%Bo Om%"))) == 0
    assert db.scalar(select(func.count()).where(AuditEntry.summary.like("%Boomco%"))) == 0
    values = db.scalars(
        select(FieldValue.value).where(FieldValue.workspace_id == crm.member.workspace_id)
    )
    assert "Bo" not in list(values)


def test_progress_is_reported_per_batch(crm: Crm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    seen: list[int] = []
    csv_text = "Email\n" + "".join(f"p{i}@x.com\n" for i in range(5))
    report = run(crm, csv_text, progress=seen.append)
    assert seen == [2, 2, 1] and report.created == 5


def test_garbage_collection_is_less_frequent_during_an_import_only(crm: Crm) -> None:
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    report = run(crm, "Email\na@x.com\n", progress=lambda _: during.append(gc.get_threshold()))
    assert report.created == 1
    assert during == [(collector.YOUNG_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before

    def fail(_: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        run(crm, "Email\nb@x.com\n", progress=fail)
    assert gc.get_threshold() == before


# ------------------------------------------------------------------------------ audit


def test_each_record_and_the_import_itself_are_audited(crm: Crm, db: Session) -> None:
    run(crm, "Name,Email,Company\nAnn Lee,ann@x.com,Globex\nBad,nope,\n")
    entries = list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.workspace_id == crm.member.workspace_id)
            .order_by(AuditEntry.id)
        )
    )
    summaries = sorted(e.summary for e in entries if e.action == "create")
    assert summaries == ["Created Ann Lee (import)", "Created Globex (import)"]
    (summary,) = [e for e in entries if e.action == "import"]
    assert summary.actor_id == crm.member.id
    assert summary.folder_id == crm.folders["contacts"].id
    assert summary.summary.startswith("Imported into Contacts: 1 created, 0 updated")
    assert summary.after is not None
    assert (summary.after["created"], summary.after["rejected"]) == (1, 1)
    assert summary.after["mapping"] == {
        "Name": imports.FULL_NAME_LABEL,
        "Email": "Emails",
        "Company": "Company",
    }
    ann = records_of(crm)["Ann Lee"]
    (created,) = record_history(db, ann.workspace_id, ann.id)
    assert created.after is not None and created.after["emails"] == ["ann@x.com"]


# ------------------------------------------------------------------------- robustness


_CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "ann@x.com", "lead", '"', "\x00"]
    ),
    st.text(alphabet="a,;\"\n\r\t '", max_size=12),
)
_CSV_TEXT = st.lists(st.lists(_CELL, max_size=6), max_size=8).map(
    lambda rows: "\n".join(",".join(row) for row in rows)
)
_HEADERS = st.sampled_from(
    ["Name,Email,Phone,Company,Lifecycle stage\n", "", "First name;E-Mail\n"]
)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, or CSV-ish text in some encoding, now and then with a huge cell."""
    kind = draw(st.sampled_from(["bytes", "text", "text", "huge"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    body = draw(_HEADERS) + draw(_CSV_TEXT)
    if kind == "huge":
        body += "\nAnn," + "x" * draw(st.sampled_from([301, 100_001]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    return body.encode(encoding, errors="replace")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=csv_bytes())
def test_import_never_raises_and_accounts_for_every_row(crm: Crm, db: Session, data: bytes) -> None:
    contacts = crm.folders["contacts"]
    with db.begin_nested() as savepoint:
        before = db.scalar(select(func.count()).where(Record.folder_id == contacts.id))
        report = import_csv(db, crm.member, contacts, data)
        db.flush()
        after = db.scalar(select(func.count()).where(Record.folder_id == contacts.id))
        savepoint.rollback()
    parsed = read_rows(decode_csv_bytes(data).text)
    if report.error:
        assert report.rows_seen == 0 and after == before
        return
    skipped_by_reader = [p for p in parsed.problems if p.message.endswith("skipped.")]
    assert report.rows_seen == len(parsed.rows) + len(skipped_by_reader)
    assert report.created == after - before
    not_imported = [line for line in report.lines if line.kind in ("rejected", "skipped")]
    assert len(not_imported) == report.rejected + report.skipped
    assert all(line.line >= 1 and line.message for line in report.lines)


# -------------------------------------------------------------------------------- CLI


def _csv_file(tmp_path: Path, content: str | bytes) -> str:
    path = tmp_path / "contacts.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def test_cli_import_prints_the_mapping_and_the_report(app: Flask, crm: Crm, tmp_path: Path) -> None:
    path = _csv_file(tmp_path, "Name,Email,Shoe size\nAnn Lee,ann@x.com,38\nBad,nope,40\n")
    result = app.test_cli_runner().invoke(
        args=["crm", "import", path, "--domain", "acme.test", "--as", "rep@acme.test"]
    )
    assert result.exit_code == 0, result.output
    assert "Name -> Full name (first + last name)" in result.output
    assert "Shoe size -> (not imported)" in result.output
    assert "line 3: rejected: Emails: “nope” is not a valid email address" in result.output
    assert "1 created, 0 updated, 0 skipped, 1 rejected (2 rows)" in result.output
    assert set(records_of(crm)) == {"Ann Lee"}


def test_cli_import_map_and_dry_run(app: Flask, crm: Crm, db: Session, tmp_path: Path) -> None:
    path = _csv_file(tmp_path, "Who,Reach,Notes\nAnn Lee,ann@x.com,Met at a fair\n")
    before = row_counts(db)
    result = app.test_cli_runner().invoke(
        args=[
            "crm", "import", path, "--domain", "acme.test", "--as", "rep@acme.test",
            "--map", "who=first name", "--map", "Reach=emails", "--map", "Notes=", "--dry-run",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Who -> First name" in result.output and "Notes -> (not imported)" in result.output
    assert "1 created" in result.output and "Dry run: nothing was saved." in result.output
    assert row_counts(db) == before
    result = app.test_cli_runner().invoke(
        args=[
            "crm", "import", path, "--domain", "acme.test", "--as", "rep@acme.test",
            "--map", "Who=first_name", "--map", "Reach=emails",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(records_of(crm)) == {"Ann Lee"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "someone@acme.test"], "is not a member of acme.test"),
        (["--as", "rep@acme.test", "--folder", "tickets"], "no folder 'tickets'"),
        (["--as", "rep@acme.test", "--map", "Nope=emails"], "no column 'Nope'"),
        (["--as", "rep@acme.test", "--map", "Email=shoe"], "no field 'shoe'"),
    ],
)
def test_cli_import_refuses_bad_arguments(
    app: Flask, crm: Crm, tmp_path: Path, args: list[str], message: str
) -> None:
    path = _csv_file(tmp_path, "Email\na@x.com\n")
    result = app.test_cli_runner().invoke(
        args=["crm", "import", path, "--domain", "acme.test", *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert records_of(crm) == {}


def test_cli_import_needs_the_import_permission(
    app: Flask, crm: Crm, db: Session, tmp_path: Path
) -> None:
    resolve_member(db, "acme.test", "sales@acme.test", is_consumer=False)  # a rep
    db.flush()
    path = _csv_file(tmp_path, "Email\na@x.com\n")
    result = app.test_cli_runner().invoke(
        args=["crm", "import", path, "--domain", "acme.test", "--as", "sales@acme.test"]
    )
    assert result.exit_code == 1
    assert "your role (rep) does not allow you to import records" in result.output
    assert records_of(crm) == {}


def test_cli_import_fails_when_the_file_cannot_be_read(
    app: Flask, crm: Crm, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    empty = _csv_file(tmp_path, b"")
    result = runner.invoke(
        args=["crm", "import", empty, "--domain", "acme.test", "--as", "rep@acme.test"]
    )
    assert result.exit_code == 1
    assert "Nothing was imported: The file is empty" in result.output
    missing = str(tmp_path / "missing.csv")
    result = runner.invoke(
        args=["crm", "import", missing, "--domain", "acme.test", "--as", "rep@acme.test"]
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_import_shows_a_progress_bar_for_large_files(
    app: Flask, crm: Crm, tmp_path: Path
) -> None:
    rows = "".join(f"Person {i},p{i}@x.com\n" for i in range(1200))
    path = _csv_file(tmp_path, "Name,Email\n" + rows)
    result = app.test_cli_runner().invoke(
        args=["crm", "import", path, "--domain", "acme.test", "--as", "rep@acme.test"]
    )
    assert result.exit_code == 0, result.output
    assert "Importing" in result.output
    assert "1,200 created" in result.output


@pytest.mark.parametrize(
    ("cores", "busy", "workers"),
    [(1, 0.0, 0), (2, 0.0, 1), (2, 0.2, 1), (2, 0.6, 0), (2, 2.0, 0), (8, 1.5, 3), (8, 6.2, 1)],
)
def test_parse_ahead_workers_only_on_idle_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, busy: float, workers: int
) -> None:
    # On a busy machine a worker would take CPU time from the batch writer.
    monkeypatch.setattr(imports, "_usable_cores", lambda: cores)
    monkeypatch.setattr(imports, "_busy_elsewhere", lambda: busy)
    assert imports._parse_workers(None, imports.PARSE_AHEAD_MIN_ROWS) == workers
    assert imports._parse_workers(None, imports.PARSE_AHEAD_MIN_ROWS - 1) == 0
    assert imports._parse_workers(2, 10) == 2


@pytest.mark.parametrize(("first_at", "analyzed"), [(3, True), (6, False)])
def test_lookup_tables_are_analyzed_once_an_import_saved_enough_records(
    crm: Crm, db: Session, monkeypatch: pytest.MonkeyPatch, first_at: int, analyzed: bool
) -> None:
    # PostgreSQL's statistics do not know the rows an import adds to its workspace; once
    # it saved enough records the duplicate lookups' tables are analyzed (SQLite: never).
    monkeypatch.setattr(imports, "ANALYZE_FIRST_AT", first_at)
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", remember)
    try:
        rows = "".join(f"Person {i},p{i}@acme.test\n" for i in range(5))
        report = run(crm, "Name,Email\n" + rows)
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    assert (report.created, report.rejected) == (5, 0)
    expected = analyzed and db.get_bind().dialect.name == "postgresql"
    assert [s for s in statements if s.startswith("ANALYZE")] == (
        [f"ANALYZE {table}" for table in imports.ANALYZED_TABLES] if expected else []
    )


def test_busy_elsewhere_reads_the_cpu_counters_over_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Over the interval 100 ticks passed on 2 cores, 25 of them idle or waiting for I/O:
    # other processes kept 1.5 cores busy, whatever the one-minute load average says.
    ticks = imports._cpu_ticks()
    if ticks is not None:  # Linux: all ticks include the idle ones
        assert ticks[0] >= ticks[1] >= 0
    readings = iter([(1000, 400), (1100, 425)])
    monkeypatch.setattr(imports, "_cpu_ticks", lambda: next(readings))
    monkeypatch.setattr(imports, "_usable_cores", lambda: 2)
    monkeypatch.setattr(imports, "_BUSY_SAMPLE_SECONDS", 0)
    assert imports._busy_elsewhere() == pytest.approx(1.5)


def test_values_parsed_ahead_in_worker_processes_are_the_same(
    crm: Crm, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches so the workers parse several chunks ahead of the writer.
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    rows = [
        f"Person {i},p{i}@x.com,+49 30 123456{i},{'lead' if i % 2 else 'Customer'},Co {i % 3}"
        for i in range(10)
    ]
    bad = ["Bad One,not-an-email,,,", "Bad Two,b2@x.com,call me,,"]
    csv_text = "Name,Email,Phone,Lifecycle stage,Company\n" + "\n".join([*rows, *bad]) + "\n"
    report = run(crm, csv_text, workers=1)
    assert (report.created, report.rejected) == (10, 2)
    assert lines(report) == [
        "line 12: rejected: Emails: “not-an-email” is not a valid email address",
        "line 13: rejected: Phones: “call me” is not a phone number",
    ]
    people = records_of(crm)
    assert values_of(crm, people["Person 3"]) == {
        "first_name": "Person",
        "last_name": "3",
        "emails": ["p3@x.com"],
        "phones": ["+49301234563"],
        "lifecycle_stage": "lead",
        "company": ["Co 0"],
    }
    assert values_of(crm, people["Person 4"])["lifecycle_stage"] == "customer"
