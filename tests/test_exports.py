"""CSV export: cells as a CSV user reads them, escaping, views, round trip, download links, CLI."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from addon import create_app
from addon.crm import exports
from addon.crm.exports import export_csv
from addon.crm.imports import import_csv
from addon.crm.models import AuditEntry, FieldDef, Folder, Member, Record, SavedView
from addon.crm.records import load_detail, save_record
from addon.crm.views import save_view
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.gmail.fake_server import FakeGmailServer
from addon.web import export_actions
from tests.cardcheck import BASE_URL, check_card
from tests.crmdata import Crm, add_field
from tests.google_fakes import CLIENT_ID, SERVICE_ACCOUNT, AddonClient, TokenFactory


def read_csv(text: str) -> list[list[str]]:
    """The rows of exported CSV text (BOM and CRLF line ends as written)."""
    assert text.startswith("\ufeff") and "\r\n" in text
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def exported(crm: Crm, folder: str = "contacts", view: SavedView | None = None) -> list[list[str]]:
    """A folder or view exported by the crm fixture's admin, as rows."""
    return read_csv("".join(export_csv(crm.db, crm.member, crm.folders[folder], view)))


def by_title(crm: Crm, workspace_id: int, folder_key: str) -> dict[str, Any]:
    """Each record's values (links as titles) by record title."""
    folder = folders_by_key(crm.db, workspace_id)[folder_key]
    found: dict[str, Any] = {}
    for record in crm.db.scalars(select(Record).where(Record.folder_id == folder.id)):
        detail = load_detail(crm.db, record)
        values = dict(detail.values)
        if "owner" in values:
            owner = crm.db.get(Member, values["owner"])
            values["owner"] = owner.email if owner is not None else None
        for key, targets in detail.links.items():
            if targets:
                values[key] = sorted(t.title for t in targets)
        found[record.title] = values
    return found


def _custom_fields(db: Session, folder: Folder) -> None:
    add_field(db, folder, "ticket", "autonumber", prefix="C-")
    add_field(db, folder, "score", "number")
    add_field(db, folder, "double", "formula", expression="score * 2")
    add_field(db, folder, "discount", "percent")
    add_field(db, folder, "budget", "currency", default_currency="EUR")
    add_field(db, folder, "met_on", "date")
    add_field(db, folder, "call_at", "datetime")
    add_field(db, folder, "vip", "checkbox")
    add_field(db, folder, "topics", "multidropdown", choices=["crm", "mail", "api"])
    add_field(db, folder, "site", "url")
    add_field(db, folder, "address", "address")
    add_field(db, folder, "profiles", "social")
    add_field(db, folder, "bio", "multiline")


def _people(crm: Crm) -> None:
    acme = crm.save("companies", name="Acme, Inc.", domain="acme-inc.com")
    crm.save(
        "contacts",
        first_name="Ann",
        last_name="Lee",
        emails="ann@globex.com, ann@home.org",
        phones=["+49 30 1234567", "+1 650-253-0000 ext. 12"],
        job_title="CTO",
        company="Globex",
        lifecycle_stage="lead",
        owner="rep@acme.test",
        score="10.5",
        discount="12.5",
        budget="1200.5",
        met_on="2025-06-02",
        call_at="2025-06-02 10:30",
        vip="yes",
        topics="api, crm",
        site="globex.com/team",
        address='{"street":"1 Main St","city":"Springfield","postal_code":"62701","country":"US"}',
        profiles="https://www.linkedin.com/in/annlee",
        bio="Line one\nLine two",
    )
    crm.save(
        "contacts", first_name="Bob", emails="bob@acme-inc.com", company=f"#{acme.id}", vip="no"
    )
    crm.save("contacts", emails="solo@x.com")


def test_export_has_field_labels_and_cells_a_csv_user_reads(crm: Crm, db: Session) -> None:
    _custom_fields(db, crm.folders["contacts"])
    _people(crm)
    rows = exported(crm)
    header = rows[0]
    assert header[:9] == [
        "First name",
        "Last name",
        "Emails",
        "Phones",
        "Job title",
        "Company",
        "Lifecycle stage",
        "Owner",
        "Lead source",
    ]
    ann = dict(zip(header, rows[1], strict=True))
    assert ann["Emails"] == "ann@globex.com, ann@home.org"
    # Several numbers in one cell are no longer a plain phone number: escaped, as any
    # other cell starting with "+" (the importer takes the quote off again).
    assert ann["Phones"] == "'+49301234567, +16502530000;ext=12"
    assert ann["Company"] == "Globex"
    assert ann["Owner"] == "rep@acme.test"
    assert (ann["Ticket"], ann["Score"], ann["Double"]) == ("C-1", "10.5", "21")
    assert (ann["Discount"], ann["Budget"]) == ("12.5%", "1200.50 EUR")
    assert ann["Met on"] == "2025-06-02"
    assert ann["Call at"] == "2025-06-02T10:30:00Z"
    assert (ann["Vip"], ann["Topics"], ann["Site"]) == (
        "Yes",
        "crm, api",
        "https://globex.com/team",
    )
    assert ann["Bio"] == "Line one\nLine two"
    bob = dict(zip(header, rows[2], strict=True))
    assert (bob["Company"], bob["Vip"], bob["Last name"]) == ("Acme, Inc.", "No", "")
    assert rows[3][:3] == ["", "", "solo@x.com"]
    assert len(rows) == 4


def test_formula_looking_cells_are_escaped(crm: Crm) -> None:
    crm.save("contacts", first_name="=cmd|' /C calc'!A0", emails="a@x.com", job_title="+SUM(A1)")
    crm.save("contacts", first_name="@SUM(1+1)", emails="b@x.com", job_title="-2+3")
    crm.save(
        "contacts", first_name="Plain", emails="c@x.com", job_title="-5", phones="+49 30 1234567"
    )
    rows = exported(crm)
    cells = {(row[0], row[4]) for row in rows[1:]}
    assert cells == {
        ("'=cmd|' /C calc'!A0", "'+SUM(A1)"),
        ("'@SUM(1+1)", "'-2+3"),
        ("Plain", "-5"),
    }
    assert rows[3][3] == "+49301234567"  # a phone number is not a formula


def test_a_view_exports_its_records_in_its_order(crm: Crm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)  # several pages
    for name, stage in [
        ("Ann", "lead"),
        ("Bob", "customer"),
        ("Cy", "lead"),
        ("Di", "lead"),
        ("Ed", "lead"),
    ]:
        crm.save("contacts", first_name=name, lifecycle_stage=stage)
    view = save_view(
        crm.db,
        crm.member,
        crm.folders["contacts"],
        "Leads",
        {
            "conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}],
            "sort": {"field": "first_name", "desc": True},
        },
        shared=True,
    )
    assert [row[0] for row in exported(crm, view=view)[1:]] == ["Ed", "Di", "Cy", "Ann"]
    assert [row[0] for row in exported(crm)[1:]] == ["Ann", "Bob", "Cy", "Di", "Ed"]


def test_every_export_is_audited(crm: Crm, db: Session) -> None:
    crm.save("contacts", first_name="Ann")
    exported(crm)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert entry.actor_id == crm.member.id and entry.folder_id == crm.folders["contacts"].id
    assert entry.summary == "Exported 1 Contacts to CSV"
    assert entry.after == {"view": None, "rows": 1}


def test_export_then_import_into_an_empty_workspace_gives_the_same_values(
    crm: Crm, db: Session
) -> None:
    other = resolve_member(db, "beta.test", "rep@acme.test", is_consumer=False)
    db.flush()
    other_folders = folders_by_key(db, other.workspace_id)
    for folders in (crm.folders, other_folders):
        _custom_fields(db, folders["contacts"])
    _people(crm)
    crm.save("contacts", first_name="=1+2", emails="formula@x.com", job_title="@boss")

    for key in ("companies", "contacts"):
        data = "".join(export_csv(db, crm.member, crm.folders[key])).encode()
        report = import_csv(db, other, other_folders[key], data)
        assert report.rejected == report.skipped == 0, report.lines
    db.flush()

    for key in ("companies", "contacts"):
        assert by_title(crm, other.workspace_id, key) == by_title(crm, crm.member.workspace_id, key)


# -------------------------------------------------------------------- download links


def _link(data: dict[str, Any]) -> str:
    action = data["renderActions"]["action"]
    url = action["link"]["url"]
    assert action["link"]["openAs"] == "FULL_SIZE" and url.startswith(BASE_URL + "/exports/")
    return str(url)


def _download(addon: AddonClient, url: str, expect: int = 200) -> Any:
    response = addon.client.get(url.removeprefix(BASE_URL))
    assert response.status_code == expect, response.get_data(as_text=True)
    return response


def _leads_view(db: Session, member: Member, shared: bool = True) -> SavedView:
    folder = folders_by_key(db, member.workspace_id)["contacts"]
    return save_view(
        db,
        member,
        folder,
        "Leads",
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}]},
        shared=shared,
    )


def test_export_view_opens_a_download_link_streaming_the_csv(
    addon: AddonClient, db: Session
) -> None:
    data = addon.action("export_view", parameters={"folder": "contacts"})
    url = _link(data)
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    save_record(
        db, member, folders_by_key(db, member.workspace_id)["contacts"], {"first_name": ["Ann"]}
    )
    db.flush()
    response = _download(addon, url)
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="contacts-') and disposition.endswith(
        '.csv"'
    )
    rows = read_csv(response.get_data(as_text=True))
    assert rows[0][0] == "First name" and rows[1][0] == "Ann"
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert audit.actor_id == member.id


def test_export_view_by_view_id_exports_the_view(addon: AddonClient, db: Session) -> None:
    addon.action("settings")  # the first request makes rep@acme.test the admin
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    contacts = folders_by_key(db, member.workspace_id)["contacts"]
    for name, stage in [("Ann", "lead"), ("Bob", "customer")]:
        save_record(db, member, contacts, {"first_name": [name], "lifecycle_stage": [stage]})
    view = _leads_view(db, member)
    db.flush()
    data = addon.action("export_view", parameters={"view_id": str(view.id)})
    assert data["renderActions"]["action"]["notification"]["text"] == (
        "Downloading Leads (1 contacts) as CSV"
    )
    rows = read_csv(_download(addon, _link(data)).get_data(as_text=True))
    assert [row[0] for row in rows[1:]] == ["Ann"]


def _token(app: Flask, payload: dict[str, Any], age: float = 0) -> str:
    """A link token signed with the app's key, as if issued `age` seconds ago."""

    class Clock(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    signer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt=export_actions._SALT, signer=Clock
    )
    return str(signer.dumps(payload))


def test_an_expired_or_tampered_link_is_refused(
    app: Flask, addon: AddonClient, db: Session
) -> None:
    url = _link(addon.action("export_view", parameters={"folder": "contacts"}))
    payload_part, timestamp, signature = url.rsplit("/", 1)[1].split(".")
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    payload = {
        "w": member.workspace_id,
        "m": member.id,
        "f": folders_by_key(db, member.workspace_id)["contacts"].id,
        "v": None,
    }
    # Another payload (or a changed signature) under the original signature.
    other_payload = _token(app, {**payload, "m": member.id + 1}).split(".")[0]
    for token in (
        f"{other_payload}.{timestamp}.{signature}",
        f"{payload_part}.{timestamp}.{signature[::-1]}",
        "not-a-token",
    ):
        body = _download(addon, f"/exports/{token}", 403).get_json()
        assert body == {"error": "this download link is not valid"}
    expired = _token(app, payload, age=export_actions.EXPORT_LINK_SECONDS + 5)
    body = _download(addon, f"/exports/{expired}", 403).get_json()
    assert body == {"error": "this download link has expired; export again"}
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all() == []
    # Nine minutes old is still fine.
    assert _download(addon, f"/exports/{_token(app, payload, age=540)}").status_code == 200


def test_the_role_is_checked_again_at_download(addon: AddonClient, db: Session) -> None:
    url = _link(addon.action("export_view", parameters={"folder": "contacts"}))
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    member.role = "viewer"
    db.flush()
    body = _download(addon, url, 403).get_json()
    assert body == {"error": "your role (viewer) does not allow you to export records"}
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all() == []


def test_a_viewer_cannot_export(
    app: Flask, tokens: TokenFactory, addon: AddonClient, db: Session
) -> None:
    addon.action("settings")
    viewer = AddonClient(app.test_client(), tokens, user="viewer@acme.test", hd="acme.test")
    viewer.action("settings")
    db.scalars(select(Member).where(Member.email == "viewer@acme.test")).one().role = "viewer"
    db.flush()
    data = viewer.action("export_view", parameters={"folder": "contacts"})
    card = data["renderActions"]["action"]["navigations"][0]["pushCard"]
    assert card["header"]["title"] == "Not allowed"
    assert "does not allow you to export records" in str(card)


def test_another_workspace_cannot_export_or_download(
    app: Flask, addon: AddonClient, other_tenant: AddonClient, db: Session
) -> None:
    addon.action("settings")
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    view = _leads_view(db, member)
    personal = _leads_view(db, member, shared=False)
    db.flush()
    for view_id in (str(view.id), str(personal.id), "999999", "x"):
        body = other_tenant.action("export_view", expect=403, parameters={"view_id": view_id})
        assert body == {"error": "record not found in your workspace"}
    assert other_tenant.action("export_view", expect=403, parameters={"folder": "tickets"})
    # A colleague cannot export someone's personal view either.
    colleague = AddonClient(addon.client, addon.tokens, user="colleague@acme.test", hd="acme.test")
    assert colleague.action("export_view", expect=403, parameters={"view_id": str(personal.id)})

    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    db.flush()
    contacts = folders_by_key(db, member.workspace_id)["contacts"]
    forged = [
        # A member of another workspace, with this workspace's folder or view.
        {"w": spy.workspace_id, "m": spy.id, "f": contacts.id, "v": None},
        {
            "w": spy.workspace_id,
            "m": spy.id,
            "f": folders_by_key(db, spy.workspace_id)["contacts"].id,
            "v": view.id,
        },
        # A member named with the wrong workspace.
        {"w": spy.workspace_id, "m": member.id, "f": contacts.id, "v": None},
        {"w": member.workspace_id, "m": member.id, "f": contacts.id, "v": "1"},
    ]
    for payload in forged:
        assert _download(addon, f"/exports/{_token(app, payload)}", 403).get_json()["error"]
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all() == []


def test_export_needs_a_secret_key(
    session_factory: sessionmaker[Session], gmail_server: FakeGmailServer, tokens: TokenFactory
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "SESSIONMAKER": session_factory,
            "BASE_URL": BASE_URL,
            "SERVICE_ACCOUNT_EMAIL": SERVICE_ACCOUNT,
            "OAUTH_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": gmail_server.certs_url,
            "GMAIL_API_URL": gmail_server.url,
            "SECRET_KEY": "",
        }
    )
    client = AddonClient(app.test_client(), tokens)
    data = client.action("export_view", parameters={"folder": "contacts"})
    card = data["renderActions"]["action"]["navigations"][0]["pushCard"]
    check_card(card)
    assert "SECRET_KEY" in str(card)
    assert app.test_client().get("/exports/anything").status_code == 403


# -------------------------------------------------------------------------------- CLI


def test_cli_export_to_a_file_and_to_standard_output(app: Flask, crm: Crm, tmp_path: Path) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@x.com", lifecycle_stage="lead")
    crm.save("contacts", first_name="Bob", lifecycle_stage="customer")
    _leads_view(crm.db, crm.member)
    crm.db.flush()
    runner = app.test_cli_runner()
    target = tmp_path / "out.csv"
    result = runner.invoke(args=["crm", "export", "--domain", "acme.test", "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = read_csv(target.read_bytes().decode("utf-8"))
    assert [row[0] for row in rows] == ["First name", "Ann", "Bob"]
    result = runner.invoke(
        args=[
            "crm",
            "export",
            "--domain",
            "acme.test",
            "--view",
            "leads",
            "--as",
            "rep@acme.test",
            "-o",
            "-",
        ]
    )
    assert result.exit_code == 0, result.output
    assert [row[0] for row in read_csv(result.stdout_bytes.decode())] == ["First name", "Ann"]
    assert "Exported 1 row(s) to standard output" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--view", "Nope"], "no view 'Nope' of Contacts (views: Leads"),
        (["--as", "nobody@acme.test"], "is not a member of acme.test"),
        (["--domain", "nowhere.test"], "no workspace 'nowhere.test'"),
    ],
)
def test_cli_export_refuses_bad_arguments(
    app: Flask, crm: Crm, tmp_path: Path, args: list[str], message: str
) -> None:
    _leads_view(crm.db, crm.member)
    crm.db.flush()
    base = ["crm", "export", "--domain", "acme.test", "-o", str(tmp_path / "x.csv")]
    result = app.test_cli_runner().invoke(args=base + args)
    assert result.exit_code != 0 and message in result.output


def test_cli_export_as_a_member_needs_the_export_permission(
    app: Flask, crm: Crm, db: Session, tmp_path: Path
) -> None:
    viewer = resolve_member(db, "acme.test", "viewer@acme.test", is_consumer=False)
    viewer.role = "viewer"
    db.flush()
    result = app.test_cli_runner().invoke(
        args=["crm", "export", "--domain", "acme.test", "--as", "viewer@acme.test", "-o", "-"]
    )
    assert result.exit_code == 1
    assert "your role (viewer) does not allow you to export records" in result.output


def test_cli_export_shows_a_progress_bar_for_large_exports(
    app: Flask, crm: Crm, tmp_path: Path
) -> None:
    data = "Email\n" + "".join(f"p{i}@x.com\n" for i in range(1100))
    import_csv(crm.db, crm.member, crm.folders["contacts"], data.encode())
    crm.db.flush()
    target = tmp_path / "all.csv"
    result = app.test_cli_runner().invoke(
        args=["crm", "export", "--domain", "acme.test", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "Exporting" in result.stderr
    assert len(read_csv(target.read_bytes().decode("utf-8"))) == 1101


def test_a_view_broken_since_the_link_was_made_is_refused_with_the_reason(
    addon: AddonClient, db: Session
) -> None:
    addon.action("settings")
    member = db.scalars(select(Member).where(Member.email == "rep@acme.test")).one()
    view = _leads_view(db, member)
    db.flush()
    url = _link(addon.action("export_view", parameters={"view_id": str(view.id)}))
    stage = db.scalars(
        select(FieldDef).where(
            FieldDef.workspace_id == member.workspace_id, FieldDef.key == "lifecycle_stage"
        )
    ).one()
    stage.active = False
    db.flush()
    body = _download(addon, url, 403).get_json()
    assert body == {
        "error": "this view cannot be exported: condition 1: unknown field “lifecycle_stage”"
    }
    # The sidebar says so too, instead of offering a link.
    data = addon.action("export_view", parameters={"view_id": str(view.id)})
    card = data["renderActions"]["action"]["navigations"][0]["pushCard"]
    assert card["header"]["title"] == "Cannot export this view"
