"""Saved views: every operator on every kind of field, AND/OR, sorting, paging, visibility."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from addon.crm.models import Member, Record
from addon.crm.views import (
    ViewError,
    count_view,
    count_view_capped,
    get_view,
    list_view,
    parse_definition,
    save_view,
    view_page,
    visible_views,
)
from addon.crm.workspaces import folder_fields
from tests.crmdata import Crm, add_field

TODAY = date(2026, 6, 15)


@pytest.fixture
def people(crm: Crm, db: Session) -> dict[str, Record]:
    contacts = crm.folders["contacts"]
    add_field(db, contacts, "score", "number")
    add_field(db, contacts, "vip", "checkbox")
    add_field(db, contacts, "met_at", "datetime")
    add_field(db, contacts, "tags", "multidropdown", choices=["gold", "silver", "bronze"])
    add_field(db, contacts, "birthday", "date")
    globex = crm.save("companies", name="Globex", domain="globex.com")
    crm.save("companies", name="Initech", domain="initech.com")
    owner = f"#{crm.member.id}"
    return {
        "ann": crm.save(
            "contacts",
            first_name="Ann",
            last_name="Archer",
            emails="ann@globex.com",
            phones="+1 650 253 0000",
            lifecycle_stage="customer",
            company=f"#{globex.id}",
            owner=owner,
            score="10",
            vip="yes",
            met_at="2026-06-10T09:00:00Z",
            tags=["gold", "silver"],
            birthday="1990-06-14",
        ),
        "bob": crm.save(
            "contacts",
            first_name="Bob",
            last_name="Baker",
            emails=["bob@initech.com", "bob.b@gmail.com"],
            lifecycle_stage="lead",
            company="Initech",
            score="25.5",
            vip="no",
            met_at="2026-01-02T12:00:00Z",
            tags=["bronze"],
        ),
        "cat": crm.save("contacts", first_name="Cat", emails="cat@example.org", score="-3"),
    }


def titles(records: list[Record]) -> list[str]:
    return [r.title for r in records]


def run(crm: Crm, db: Session, *conditions: tuple[str, str, str], match: str = "all") -> list[str]:
    folder = crm.folders["contacts"]
    definition = parse_definition(
        folder_fields(db, folder.id),
        {
            "match": match,
            "conditions": [{"field": f, "op": o, "value": v} for f, o, v in conditions],
        },
    )
    found = titles(list_view(db, folder, definition, today=TODAY))
    assert count_view(db, folder, definition, today=TODAY) == len(found)
    # Capped counts stop at cap + 1, whichever way the count is built.
    for cap in (0, 1, 2):
        assert count_view(db, folder, definition, today=TODAY, cap=cap) == min(len(found), cap + 1)
        capped = count_view_capped(db, folder, definition, today=TODAY, cap=cap)
        assert capped == (min(len(found), cap), len(found) > cap)
    # The view card's page: sorted out of the matching ids when they are within the cap,
    # walked in order otherwise; the same records either way.
    for cap in (0, 1, 2, 10):
        shown = view_page(db, folder, definition, page_size=2, today=TODAY, cap=cap)
        assert titles(shown.records) == found[:2]
        assert (shown.count, shown.more) == (min(len(found), cap), len(found) > cap)
    return sorted(found)


CASES: list[tuple[tuple[str, str, str], list[str]]] = [
    # text
    (("first_name", "equals", "ann"), ["Ann Archer"]),
    (("first_name", "not_equals", "Ann"), ["Bob Baker", "Cat"]),
    (("last_name", "contains", "AKE"), ["Bob Baker"]),
    (("last_name", "not_contains", "ake"), ["Ann Archer", "Cat"]),
    (("last_name", "is_empty", ""), ["Cat"]),
    (("last_name", "is_not_empty", ""), ["Ann Archer", "Bob Baker"]),
    (("first_name", "in_list", "Ann, Cat"), ["Ann Archer", "Cat"]),
    # built-in name column
    (("_title", "contains", "ar"), ["Ann Archer"]),
    (("_title", "equals", "cat"), ["Cat"]),
    # email (several per record)
    (("emails", "equals", "BOB@initech.com"), ["Bob Baker"]),
    (("emails", "equals", "bob.b@gmail.com"), ["Bob Baker"]),
    (("emails", "contains", "globex"), ["Ann Archer"]),
    (("emails", "not_equals", "ann@globex.com"), ["Bob Baker", "Cat"]),
    # phone, normalised before comparing
    (("phones", "equals", "(650) 253-0000"), ["Ann Archer"]),
    (("phones", "is_empty", ""), ["Bob Baker", "Cat"]),
    # dropdown
    (("lifecycle_stage", "equals", "customer"), ["Ann Archer"]),
    (("lifecycle_stage", "in_list", "customer,lead"), ["Ann Archer", "Bob Baker"]),
    (("lifecycle_stage", "is_empty", ""), ["Cat"]),
    # multi dropdown
    (("tags", "equals", "silver"), ["Ann Archer"]),
    (("tags", "in_list", "silver,bronze"), ["Ann Archer", "Bob Baker"]),
    # number
    (("score", "gt", "10"), ["Bob Baker"]),
    (("score", "lt", "10"), ["Cat"]),
    (("score", "equals", "25,5"), ["Bob Baker"]),
    (("score", "not_equals", "10"), ["Bob Baker", "Cat"]),
    (("score", "is_not_empty", ""), ["Ann Archer", "Bob Baker", "Cat"]),
    # checkbox
    (("vip", "equals", "true"), ["Ann Archer"]),
    # An unticked box is a stored "no" (a form sends nothing for it), not an empty value.
    (("vip", "equals", "no"), ["Bob Baker", "Cat"]),
    (("vip", "is_empty", ""), []),
    # date and date-time
    (("birthday", "before", "1990-06-15"), ["Ann Archer"]),
    (("birthday", "after", "1990-06-14"), []),
    (("birthday", "equals", "1990-06-14"), ["Ann Archer"]),
    (("met_at", "after", "2026-06-09"), ["Ann Archer"]),
    (("met_at", "before", "2026-06-10"), ["Bob Baker"]),
    (("met_at", "equals", "2026-06-10"), ["Ann Archer"]),
    (("met_at", "last_n_days", "30"), ["Ann Archer"]),
    (("met_at", "last_n_days", "365"), ["Ann Archer", "Bob Baker"]),
    (("_created", "last_n_days", "1"), []),
    # references: a member, a linked record
    (("owner", "equals", "rep@acme.test"), ["Ann Archer"]),
    (("owner", "is_empty", ""), ["Bob Baker", "Cat"]),
    (("company", "equals", "globex"), ["Ann Archer"]),
    (("company", "not_equals", "Globex"), ["Bob Baker", "Cat"]),
    (("company", "in_list", "Globex, Initech"), ["Ann Archer", "Bob Baker"]),
    (("company", "is_empty", ""), ["Cat"]),
]


@pytest.mark.parametrize(("condition", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_each_operator(
    crm: Crm,
    db: Session,
    people: dict[str, Record],
    condition: tuple[str, str, str],
    expected: list[str],
) -> None:
    assert run(crm, db, condition) == expected


def test_conditions_combine_with_and_or(crm: Crm, db: Session, people: dict[str, Record]) -> None:
    both = (("score", "gt", "0"), ("emails", "contains", "globex"))
    assert run(crm, db, *both) == ["Ann Archer"]
    assert run(crm, db, *both, match="any") == ["Ann Archer", "Bob Baker"]
    assert run(crm, db) == ["Ann Archer", "Bob Baker", "Cat"]


def test_sorting_and_paging(crm: Crm, db: Session, people: dict[str, Record]) -> None:
    folder = crm.folders["contacts"]
    fields = folder_fields(db, folder.id)
    by_score = parse_definition(fields, {"sort": {"field": "score", "desc": True}})
    assert titles(list_view(db, folder, by_score)) == ["Bob Baker", "Ann Archer", "Cat"]
    by_stage = parse_definition(fields, {"sort": {"field": "lifecycle_stage"}})
    # Empty values come last whatever the direction.
    assert titles(list_view(db, folder, by_stage)) == ["Ann Archer", "Bob Baker", "Cat"]
    by_name = parse_definition(fields, {"sort": {"field": "_title", "desc": True}})
    pages = [titles(list_view(db, folder, by_name, page=p, page_size=2)) for p in range(3)]
    assert pages == [["Cat", "Bob Baker"], ["Ann Archer"], []]
    # view_page pages the same way from the view's ids; past the end it shows the last page.
    for definition in (by_score, by_stage, by_name):
        for cap in (1, 10):
            for p in range(2):
                shown = view_page(db, folder, definition, page=p, page_size=2, cap=cap)
                assert titles(shown.records) == titles(
                    list_view(db, folder, definition, page=p, page_size=2)
                ), (definition, cap, p)
    last = view_page(db, folder, by_name, page=5, page_size=2)
    assert (titles(last.records), last.page, last.count, last.more) == (["Ann Archer"], 1, 3, False)


def test_a_walked_page_runs_without_parallel_workers(
    crm: Crm, db: Session, people: dict[str, Record]
) -> None:
    # A page of a view larger than the cap walks the sort order and stops early; parallel
    # workers would each walk ahead and have their rows thrown away (PostgreSQL).
    folder = crm.folders["contacts"]
    definition = parse_definition(folder_fields(db, folder.id), {"sort": {"field": "_title"}})
    postgresql = db.get_bind().dialect.name == "postgresql"
    show = text("SHOW max_parallel_workers_per_gather")
    before = db.execute(show).scalar() if postgresql else None
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", remember)
    try:
        shown = view_page(db, folder, definition, page_size=2, cap=1)
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    assert titles(shown.records) == ["Ann Archer", "Bob Baker"]
    settings = [s for s in statements if s.startswith("SET LOCAL")]
    if not postgresql:
        assert settings == []
        return
    assert settings == [
        "SET LOCAL max_parallel_workers_per_gather = 0",
        "SET LOCAL max_parallel_workers_per_gather TO DEFAULT",
    ]
    first, last = (statements.index(s) for s in settings)
    # The page's statement runs between the two, and the setting is back afterwards.
    assert any("ORDER BY records.search_key" in s for s in statements[first + 1 : last])
    assert db.execute(show).scalar() == before


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"conditions": [{"field": "nope", "op": "equals", "value": "x"}]}, "unknown field"),
        ({"conditions": [{"field": "score", "op": "contains", "value": "1"}]}, "cannot use"),
        ({"conditions": [{"field": "first_name", "op": "equals", "value": ""}]}, "what?"),
        ({"conditions": [{"field": "met_at", "op": "last_n_days", "value": "x"}]}, "days"),
        ({"conditions": "all"}, "must be a list"),
        ({"conditions": [{"field": "score", "op": "gt", "value": "many"}]}, "number"),
        ({"conditions": [{"field": "birthday", "op": "before", "value": "soon"}]}, "date"),
        ({"conditions": [{"field": "owner", "op": "equals", "value": "x@rival.test"}]}, "member"),
        ({"sort": {"field": "nope"}}, "sort"),
        ([], "object"),
    ],
)
def test_bad_definitions_are_refused_with_a_reason(
    crm: Crm, db: Session, people: dict[str, Record], definition: Any, message: str
) -> None:
    folder = crm.folders["contacts"]
    with pytest.raises(ViewError, match=message):
        parsed = parse_definition(folder_fields(db, folder.id), definition)
        count_view(db, folder, parsed)


def test_views_are_scoped_to_their_folder_and_workspace(
    crm: Crm, db: Session, people: dict[str, Record]
) -> None:
    from addon.crm.workspaces import folders_by_key, resolve_member

    rival = resolve_member(db, "rival.test", "boss@rival.test", is_consumer=False)
    rival_contacts = folders_by_key(db, rival.workspace_id)["contacts"]
    everything = parse_definition(folder_fields(db, rival_contacts.id), {})
    assert count_view(db, rival_contacts, everything) == 0
    companies = crm.folders["companies"]
    assert count_view(db, companies, parse_definition(folder_fields(db, companies.id), {})) == 2


def test_saved_views_are_shared_or_private(
    crm: Crm, db: Session, people: dict[str, Record]
) -> None:
    folder = crm.folders["contacts"]
    teammate = Member(workspace_id=crm.member.workspace_id, email="tim@acme.test", role="rep")
    db.add(teammate)
    db.flush()
    customers = {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "customer"}]}
    shared = save_view(db, crm.member, folder, "  Customers ", customers, shared=True)
    private = save_view(db, crm.member, folder, "Mine", {}, shared=False)
    assert shared.name == "Customers"
    assert [v.name for v in visible_views(db, crm.member, folder)] == ["Customers", "Mine"]
    assert [v.name for v in visible_views(db, teammate, folder)] == ["Customers"]
    assert get_view(db, teammate, shared.id) is shared
    with pytest.raises(ViewError):
        get_view(db, teammate, private.id)
    with pytest.raises(ViewError, match="name"):
        save_view(db, crm.member, folder, "   ", {}, shared=True)
