"""Merge templates: syntax, escaping, fallbacks, missing values, bad tags, subjects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from addon.crm.models import Record, Workspace
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.ledger.models import RecordStats
from addon.mailing.context import merge_values
from addon.mailing.templates import (
    MissingValues,
    Rendered,
    TemplateError,
    compile_template,
    subject_line,
)
from tests.crmdata import Crm, add_field

NOW = datetime(2026, 3, 7, 12, tzinfo=UTC)


def rendered(result: Rendered | MissingValues) -> Rendered:
    assert isinstance(result, Rendered), result
    return result


def test_fields_plain_dotted_and_fallback_are_listed_once_in_order() -> None:
    template = compile_template(
        "Hi {{first_name}}",
        "{{ Company.Name }} / {{owner.first_name}} / {{first_name|there}} {{last_contacted}}",
        "<p>{{first_name}}</p>",
    )
    assert template.fields == ("first_name", "company.name", "owner.first_name", "last_contacted")


def test_values_fill_subject_text_and_html() -> None:
    template = compile_template(
        "Hello {{first_name}} from {{company.name}}",
        "Dear {{first_name}},\n{{owner.first_name}} of {{company.name}}",
        "<p>Dear {{first_name}}</p><p>{{owner.first_name}}</p>",
    )
    out = rendered(
        template.render(
            {"first_name": "Ada", "company.name": "Acme", "owner.first_name": "Rex", "x": "y"}
        )
    )
    assert out.subject == "Hello Ada from Acme"
    assert out.text == "Dear Ada,\nRex of Acme"
    assert out.html == "<p>Dear Ada</p><p>Rex</p>"


def test_html_body_escapes_values_and_text_body_does_not() -> None:
    template = compile_template(
        "{{company.name}}", "{{company.name}}", '<a title="{{company.name}}">{{company.name}}</a>'
    )
    out = rendered(template.render({"company.name": 'Smith & "Sons" <b>'}))
    assert out.text == 'Smith & "Sons" <b>'
    assert out.subject == 'Smith & "Sons" <b>'
    escaped = "Smith &amp; &quot;Sons&quot; &lt;b&gt;"
    assert out.html == f'<a title="{escaped}">{escaped}</a>'


def test_script_in_a_value_cannot_run_in_the_html_body() -> None:
    template = compile_template("s", "t", "<p>{{note}}</p>")
    out = rendered(template.render({"note": "<script>alert(1)</script>"}))
    assert out.html is not None and "<script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html


def test_fallback_is_used_for_missing_and_blank_values_only() -> None:
    template = compile_template(
        "Hi {{first_name|there}}", "Hi {{ first_name | there friend }}", None
    )
    assert rendered(template.render({})).subject == "Hi there"
    assert rendered(template.render({"first_name": None})).text == "Hi there friend"
    assert rendered(template.render({"first_name": "  "})).subject == "Hi there"
    assert rendered(template.render({"first_name": "Bo"})).text == "Hi Bo"


def test_fallback_is_escaped_in_html_like_a_value() -> None:
    template = compile_template("s", "{{name|you & yours}}", "<p>{{name|you & yours}}</p>")
    out = rendered(template.render({}))
    assert out.text == "you & yours"
    assert out.html == "<p>you &amp; yours</p>"


def test_missing_values_list_every_field_without_fallback_once() -> None:
    template = compile_template(
        "{{first_name}} {{company.name}}",
        "{{first_name}} {{city|your town}} {{owner.email}}",
        "<p>{{company.name}}</p>",
    )
    result = template.render({"owner.email": "rex@acme.test", "company.name": ""})
    assert isinstance(result, MissingValues)
    assert result.fields == ("first_name", "company.name")
    assert result.message == "missing merge values: first_name, company.name"
    one = template.render({"first_name": "A", "owner.email": "x@y.z"})
    assert isinstance(one, MissingValues)
    assert one.message == "missing merge value: company.name"


def test_braces_and_literal_text_are_kept() -> None:
    template = compile_template(
        "50% off {not a tag}", "a { b } {0} }} %s", "<style>p {color: red}</style>{{x}}"
    )
    out = rendered(template.render({"x": "{0}{1}"}))
    assert out.subject == "50% off {not a tag}"
    assert out.text == "a { b } {0} }} %s"
    assert out.html == "<style>p {color: red}</style>{0}{1}"


def test_html_none_or_blank_renders_no_html() -> None:
    assert rendered(compile_template("s", "t", None).render({})).html is None
    assert rendered(compile_template("s", "t", "  \n").render({})).html is None


@pytest.mark.parametrize(
    ("subject", "text", "html", "message"),
    [
        ("Hi {{}}", "", None, "subject, line 1, column 4: the tag “{{}}” names no field"),
        ("ok", "line one\n  {{first name}}", None, "text body, line 2, column 3: “first name”"),
        ("ok", "", "<p>\n<b>{{first_name</b>", "HTML body, line 2, column 4: “{{” is never closed"),
        ("{{a}} {{b", "", None, "subject, line 1, column 7: “{{” is never closed"),
        ("{{ |x}}", "", None, "subject, line 1, column 1: the tag “{{ |x}}” names no field"),
        ("{{a.}}", "", None, "subject, line 1, column 1: “a.” is not a field name"),
        ("{{1st}}", "", None, "“1st” is not a field name"),
        ("{{a {{b}}", "", None, "subject, line 1, column 1: “{{” is never closed"),
        ("s", "{{a|x\ny}}", None, "text body, line 1, column 1: the fallback of {{a}}"),
    ],
)
def test_bad_tags_name_part_line_and_column(
    subject: str, text: str, html: str | None, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(subject, text, html)
    assert message in str(caught.value)


def test_subject_values_cannot_inject_headers() -> None:
    template = compile_template("Re: {{topic}}", "t", None)
    out = rendered(template.render({"topic": "hi\r\nBcc: everyone@example.com\n\x00x"}))
    assert "\r" not in out.subject and "\n" not in out.subject and "\x00" not in out.subject
    assert out.subject == "Re: hi Bcc: everyone@example.com x"


def test_subject_template_line_breaks_become_spaces() -> None:
    template = compile_template("Hello\r\n{{name}}\u2028again ", "t", None)
    assert rendered(template.render({"name": "Bo"})).subject == "Hello Bo again"
    assert subject_line(" a\tb\x0bc ") == "a b c"


def test_non_ascii_values_and_names_render() -> None:
    template = compile_template("Grüße, {{first_name}}", "{{company.name}} 日本", "<p>{{x|é}}</p>")
    out = rendered(template.render({"first_name": "Zoë", "company.name": "Ünï"}))
    assert out.subject == "Grüße, Zoë"
    assert out.text == "Ünï 日本"
    assert out.html == "<p>é</p>"


def test_a_compiled_template_renders_many_recipients_independently() -> None:
    template = compile_template("{{n}}", "{{n|none}}", "<i>{{n|none}}</i>")
    results = [template.render({"n": str(i)} if i % 2 else {}) for i in range(6)]
    assert [type(r).__name__ for r in results] == ["MissingValues", "Rendered"] * 3
    assert [rendered(r).text for r in results[1::2]] == ["1", "3", "5"]


# ------------------------------------------------------------------ merge values (context.py)


def _stats_row(db: Session, record: Record, **columns: Any) -> None:
    db.add(RecordStats(record_id=record.id, workspace_id=record.workspace_id, **columns))
    db.flush()


def test_merge_values_of_contact_company_sender_and_stats(crm: Crm, db: Session) -> None:
    crm.member.name = "Rex  Sender"
    company = crm.save("companies", name="Acme & Co", domain="acme-co.test", size="11-50")
    add_field(db, crm.folders["contacts"], "renewal", "date")
    colour = add_field(db, crm.folders["contacts"], "fav_col", "text")
    colour.label = "Favourite colour"
    db.flush()
    ada = crm.save(
        "contacts",
        first_name="Ada",
        last_name="Lovelace",
        emails=["ada@client.test", "ada2@client.test"],
        company=f"#{company.id}",
        owner=crm.member.email,
        renewal="2026-03-05",
        fav_col="teal",
    )
    _stats_row(
        db,
        ada,
        emails_sent=3,
        emails_received=1,
        threads=2,
        last_sent=datetime(2026, 2, 1, 10, tzinfo=UTC),
        last_received=datetime(2026, 2, 10, 23, 30, tzinfo=UTC),
    )
    merged = merge_values(db, crm.member.workspace_id, [ada.id], crm.member, clock=lambda: NOW)
    values = merged[ada.id]
    assert values["first_name"] == "Ada"
    assert values["emails"] == "ada@client.test, ada2@client.test"
    assert values["email"] == "ada@client.test"
    assert values["name"] == "Ada Lovelace"
    assert values["company"] == "Acme & Co"
    assert values["company.name"] == "Acme & Co"
    assert values["company.domain"] == "acme-co.test"
    assert values["company.size"] == "11-50"
    assert values["renewal"] == "Mar 5, 2026"
    assert values["fav_col"] == values["favourite_colour"] == "teal"
    assert values["owner"] == "Rex Sender"
    assert values["owner.first_name"] == values["sender.first_name"] == "Rex"
    assert values["owner.last_name"] == "Sender"
    assert values["owner.email"] == "rep@acme.test"
    assert values["emails_sent"] == "3"
    assert values["threads"] == "2"
    assert values["last_contacted"] == "Feb 10, 2026"
    assert values["days_since_last_contact"] == "25"
    assert values["job_title"] is None
    template = compile_template(
        "{{first_name}}, about {{company.name}}",
        "Last spoke {{last_contacted}}; {{job_title|no title}}. {{owner.first_name}}",
        "<b>{{company.name}}</b>",
    )
    out = rendered(template.render(values))
    assert out.subject == "Ada, about Acme & Co"
    assert out.text == "Last spoke Feb 10, 2026; no title. Rex"
    assert out.html == "<b>Acme &amp; Co</b>"


def test_merge_values_use_the_workspace_time_zone_for_dates(crm: Crm, db: Session) -> None:
    workspace = db.get(Workspace, crm.member.workspace_id)
    assert workspace is not None
    workspace.settings = {**workspace.settings, "timezone": "Asia/Tokyo", "locale": "en-GB"}
    bo = crm.save("contacts", first_name="Bo", emails="bo@client.test")
    _stats_row(db, bo, last_sent=datetime(2026, 2, 10, 20, tzinfo=UTC))
    values = merge_values(db, crm.member.workspace_id, [bo.id], crm.member, clock=lambda: NOW)
    assert values[bo.id]["last_contacted"] == "11 Feb 2026"


def test_missing_values_without_company_or_stats(crm: Crm, db: Session) -> None:
    cy = crm.save("contacts", emails="cy@client.test")
    values = merge_values(db, crm.member.workspace_id, [cy.id], crm.member)[cy.id]
    assert values["first_name"] is None
    assert "company.name" not in values
    assert values["last_contacted"] is None
    assert values["emails_sent"] == "0"
    result = compile_template("Hi {{first_name}}", "{{company.name}}", None).render(values)
    assert isinstance(result, MissingValues)
    assert result.fields == ("first_name", "company.name")


def test_merge_values_leave_out_other_workspaces_records(crm: Crm, db: Session) -> None:
    mine = crm.save("contacts", first_name="Mine", emails="mine@client.test")
    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    theirs = Crm(db, spy, folders_by_key(db, spy.workspace_id)).save(
        "contacts", first_name="Theirs", emails="theirs@client.test"
    )
    merged = merge_values(db, crm.member.workspace_id, [mine.id, theirs.id, 999_999], crm.member)
    assert list(merged) == [mine.id]
    with pytest.raises(ValueError, match="not a member of this workspace"):
        merge_values(db, crm.member.workspace_id, [mine.id], spy)


def test_merge_values_for_many_records_take_few_statements(crm: Crm, db: Session) -> None:
    company = crm.save("companies", name="Bulk Inc")
    ids = [
        crm.save(
            "contacts", first_name=f"P{i}", emails=f"p{i}@bulk.test", company=f"#{company.id}"
        ).id
        for i in range(40)
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        merged = merge_values(db, crm.member.workspace_id, ids, crm.member)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(merged) == 40
    assert {merged[i]["company.name"] for i in ids} == {"Bulk Inc"}
    assert len(statements) <= 12, statements
