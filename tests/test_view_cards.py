"""Saved views in the sidebar: homepage list with counts, paged view cards, the editor, roles."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.cards import views as view_cards
from addon.cards.widgets import Actions
from addon.crm import views as crm_views
from addon.crm.models import AuditEntry, Member, SavedView
from addon.crm.views import parse_definition, save_view
from addon.crm.workspaces import folder_fields
from tests.cardcheck import BASE_URL, check_card
from tests.cardread import actions_in, card_of, cards_of, navigations, texts
from tests.crmdata import Crm, add_field
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient

# --------------------------------------------------------------------------- helpers


def named(card: dict[str, Any], name: str) -> list[dict[str, str]]:
    """The actions of a card calling `name`."""
    return [a for a in actions_in(card) if a["name"] == name]


def params_of(action: dict[str, str]) -> dict[str, str]:
    """An action's parameters, as the button would send them."""
    return {k: v for k, v in action.items() if k != "name"}


def inputs(card: dict[str, Any]) -> dict[str, str]:
    """Text inputs' values and selection inputs' selected values, by input name."""
    found: dict[str, str] = {}
    for section in card["sections"]:
        for widget in section["widgets"]:
            if "textInput" in widget:
                found[widget["textInput"]["name"]] = widget["textInput"].get("value", "")
            if "selectionInput" in widget:
                body = widget["selectionInput"]
                found[body["name"]] = ",".join(i["value"] for i in body["items"] if i["selected"])
    return found


def section_headers(card: dict[str, Any]) -> list[str]:
    """Headers of a card's sections."""
    return [s.get("header", "") for s in card["sections"]]


def member_client(addon: AddonClient, db: Session, email: str, role: str) -> AddonClient:
    """Another member of acme.test with the given role."""
    client = AddonClient(addon.client, addon.tokens, user=email, hd="acme.test")
    client.post("/homepage")
    member = db.execute(select(Member).where(Member.email == email)).scalar_one()
    member.role = role
    db.flush()
    return client


def view_count(db: Session) -> int:
    """How many saved views exist in all workspaces."""
    return int(db.execute(select(func.count()).select_from(SavedView)).scalar_one())


def editor_form(
    name: str,
    *rows: tuple[str, str, str],
    folder: str = "contacts",
    match: str = "all",
    sort: str = "_title",
    direction: str = "asc",
    shared: bool = False,
) -> dict[str, Any]:
    """Form inputs of the view editor as Google would send them."""
    form: dict[str, Any] = {
        "view_name": name,
        "view_folder": folder,
        "match": match,
        "sort_field": sort,
        "sort_dir": direction,
    }
    for number, (field, op, value) in enumerate(rows):
        form[f"c{number}_field"] = field
        form[f"c{number}_op"] = op
        form[f"c{number}_value"] = value
    if shared:
        form["shared"] = ["yes"]
    return form


def lead(crm: Crm, first: str, stage: str = "lead", **more: str) -> None:
    """A contact with a lifecycle stage."""
    crm.save("contacts", first_name=first, lifecycle_stage=stage, **more)


@pytest.fixture
def leads_view(crm: Crm, db: Session) -> SavedView:
    """Three leads and a customer, and a personal view of the leads."""
    for name in ("Ann", "Bob", "Cat"):
        lead(crm, name)
    lead(crm, "Dan", "customer")
    return save_view(
        db,
        crm.member,
        crm.folders["contacts"],
        "My leads",
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}]},
        shared=False,
    )


# --------------------------------------------------------------------------- homepage


def test_homepage_lists_views_by_folder_with_counts(
    addon: AddonClient, crm: Crm, db: Session, leads_view: SavedView
) -> None:
    crm.save("companies", name="Globex", domain="globex.com")
    companies = save_view(
        db, crm.member, crm.folders["companies"], "All companies", {}, shared=True
    )
    home = card_of(addon.post("/homepage"))
    headers = section_headers(home)
    assert headers.index("Views · Contacts") < headers.index("Views · Companies")
    text = texts(home)
    assert "My leads" in text and "3 records · only you" in text
    assert "All companies" in text and "1 record · shared" in text
    opened = {a["view_id"] for a in named(home, "open_view")}
    assert opened == {str(leads_view.id), str(companies.id)}
    assert named(home, "new_view")
    # The search action redraws the homepage with the same views.
    searched = card_of(addon.action("search", form={"query": "Ann"}))
    assert "My leads" in texts(searched) and "Ann" in texts(searched)


def test_homepage_without_views_offers_new_view(addon: AddonClient, crm: Crm) -> None:
    home = card_of(addon.post("/homepage"))
    assert "Save a filter as a view" in texts(home)
    assert named(home, "new_view") and not named(home, "all_views")


def test_homepage_caps_the_list_and_pages_the_rest(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    for number in range(23):
        save_view(db, crm.member, crm.folders["contacts"], f"View {number:02}", {}, shared=False)
    home = card_of(addon.post("/homepage"))
    assert len(named(home, "open_view")) == 20
    assert "View 19" in texts(home) and "View 20" not in texts(home)
    (more,) = named(home, "all_views")
    first = addon.action("all_views", parameters=params_of(more))
    assert navigations(first) == ["pushCard"]
    assert len(named(card_of(first), "open_view")) == 20
    (next_page,) = [a for a in named(card_of(first), "all_views") if a.get("page") == "1"]
    second = addon.action("all_views", parameters=params_of(next_page))
    assert navigations(second) == ["updateCard"]
    lines = named(card_of(second), "open_view")
    assert len(lines) == 3 and "View 22" in texts(card_of(second))


# --------------------------------------------------------------------------- view card


def test_view_card_pages_through_records(addon: AddonClient, crm: Crm, db: Session) -> None:
    for number in range(1, 31):
        crm.save("contacts", first_name=f"Person {number:02}", lifecycle_stage="lead")
    crm.save("contacts", first_name="Zed", lifecycle_stage="customer")
    view = save_view(
        db,
        crm.member,
        crm.folders["contacts"],
        "Leads",
        {
            "conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}],
            "sort": {"field": "_title", "desc": True},
        },
        shared=True,
    )
    first = addon.action("open_view", parameters={"view_id": str(view.id)})
    assert navigations(first) == ["pushCard"]
    card = card_of(first)
    text = texts(card)
    assert "Contacts · 30 records · shared" in text
    assert "<b>Lifecycle stage</b> is “lead”" in text and "Sorted by Name, descending" in text
    opens = named(card, "open_record")
    assert len(opens) == 25
    assert "Person 30" in text and "Person 06" in text and "Person 05" not in text
    assert "Showing 1 to 25 of 30" in text
    assert not [a for a in named(card, "open_view") if a.get("page") == "-1"]
    (following,) = [a for a in named(card, "open_view") if a.get("page") == "1"]
    second = addon.action("open_view", parameters=params_of(following))
    assert navigations(second) == ["updateCard"]
    page2 = card_of(second)
    assert len(named(page2, "open_record")) == 5
    assert "Person 05" in texts(page2) and "Person 01" in texts(page2) and "Zed" not in texts(page2)
    assert [a for a in named(page2, "open_view") if a.get("page") == "0"]  # Previous
    assert not [a for a in named(page2, "open_view") if a.get("page") == "2"]
    # Each record opens through the existing action.
    opened = addon.action("open_record", parameters=params_of(named(page2, "open_record")[0]))
    assert card_of(opened)["name"].startswith("record-")
    # A page past the end shows the last one.
    late = card_of(addon.action("open_view", parameters={"view_id": str(view.id), "page": "9"}))
    assert "Showing 26 to 30 of 30" in texts(late)


def test_large_views_count_up_to_the_cap(
    addon: AddonClient, crm: Crm, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sidebar stops counting at COUNT_CAP (10,000; 4 here) and says "4+".
    monkeypatch.setattr(crm_views, "COUNT_CAP", 4)
    for number in range(1, 8):
        lead(crm, f"Person {number}")
    view = save_view(
        db,
        crm.member,
        crm.folders["contacts"],
        "Leads",
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}]},
        shared=True,
    )
    assert "4+ records · shared" in texts(card_of(addon.post("/homepage")))
    card = card_of(addon.action("open_view", parameters={"view_id": str(view.id)}))
    assert "Contacts · 4+ records · shared" in texts(card)
    assert "Showing 1 to 7 of 7+" in texts(card)
    # A short page is the last one; a full page offers Next without the full count.
    assert not [a for a in named(card, "open_view") if a.get("page") == "1"]
    for number in range(8, 40):
        lead(crm, f"Person {number}")
    card = card_of(addon.action("open_view", parameters={"view_id": str(view.id)}))
    assert "Showing 1 to 25 of 25+" in texts(card)
    (following,) = [a for a in named(card, "open_view") if a.get("page") == "1"]
    later = card_of(addon.action("open_view", parameters=params_of(following)))
    assert "Showing 26 to 39 of 39+" in texts(later)
    assert not [a for a in named(later, "open_view") if a.get("page") == "2"]


def test_view_card_buttons_follow_roles(
    addon: AddonClient, crm: Crm, db: Session, leads_view: SavedView
) -> None:
    shared = save_view(db, crm.member, crm.folders["contacts"], "Team", {}, shared=True)
    admin_card = card_of(addon.action("open_view", parameters={"view_id": str(shared.id)}))
    names = {a["name"] for a in actions_in(admin_card)}
    assert {"edit_view", "confirm_delete_view", "export_view", "mass_update_form"} <= names
    assert named(admin_card, "export_view")[0]["view_id"] == str(shared.id)
    assert named(admin_card, "mass_update_form")[0]["view_id"] == str(shared.id)

    rep = member_client(addon, db, "bob@acme.test", "rep")
    rep_card = card_of(rep.action("open_view", parameters={"view_id": str(shared.id)}))
    rep_names = {a["name"] for a in actions_in(rep_card)}
    assert "export_view" in rep_names
    assert not rep_names & {"edit_view", "confirm_delete_view", "mass_update_form"}

    viewer = member_client(addon, db, "vera@acme.test", "viewer")
    viewer_card = card_of(viewer.action("open_view", parameters={"view_id": str(shared.id)}))
    assert not {a["name"] for a in actions_in(viewer_card)} & {"export_view", "mass_update_form"}


def test_a_view_whose_field_was_removed_says_so(addon: AddonClient, crm: Crm, db: Session) -> None:
    score = add_field(db, crm.folders["contacts"], "score", "number")
    view = save_view(
        db,
        crm.member,
        crm.folders["contacts"],
        "High scores",
        {"conditions": [{"field": "score", "op": "gt", "value": "10"}]},
        shared=False,
    )
    score.active = False
    db.flush()
    home = card_of(addon.post("/homepage"))
    assert "High scores" in texts(home) and "needs fixing" in texts(home)
    card = card_of(addon.action("open_view", parameters={"view_id": str(view.id)}))
    assert "unknown field “score”" in texts(card)
    assert named(card, "edit_view") and not named(card, "open_record")
    assert not named(card, "export_view")


# --------------------------------------------------------------------------- editor


def test_create_a_view_through_the_editor(addon: AddonClient, crm: Crm, db: Session) -> None:
    lead(crm, "Ann")
    lead(crm, "Bob", "customer")
    opened = addon.action("new_view")
    editor = card_of(opened)
    assert navigations(opened) == ["pushCard"] and editor["name"] == "view-editor"
    assert "Shared with the workspace" in texts(editor)  # the admin may share
    assert named(editor, "save_view")[0]["rows"] == "1"

    # "Add condition" keeps what was typed and adds an empty row.
    typed = editor_form("Hot leads", ("lifecycle_stage", "equals", "lead"))
    (add,) = [a for a in named(editor, "view_form") if a.get("add")]
    added = addon.action("view_form", parameters=params_of(add), form=typed)
    assert navigations(added) == ["updateCard"]
    form_card = card_of(added)
    assert "Condition 2" in section_headers(form_card)
    assert inputs(form_card) == {
        "view_name": "Hot leads",
        "view_folder": "contacts",
        "match": "all",
        "c0_field": "lifecycle_stage",
        "c0_op": "equals",
        "c0_value": "lead",
        "c1_field": "",
        "c1_op": "",
        "c1_value": "",
        "sort_field": "_title",
        "sort_dir": "asc",
        "shared": "",
    }
    assert named(form_card, "save_view")[0]["rows"] == "2"

    # The empty second row is ignored on save.
    save = named(form_card, "save_view")[0]
    before = view_count(db)
    saved = addon.action(
        "save_view",
        parameters=params_of(save),
        form=editor_form("Hot leads", ("lifecycle_stage", "equals", "lead"), ("", "", "")),
    )
    assert navigations(saved) == ["popToRoot", "updateCard", "pushCard"]
    assert saved["renderActions"]["action"]["notification"]["text"] == "View saved"
    assert view_count(db) == before + 1
    view = db.execute(select(SavedView).where(SavedView.name == "Hot leads")).scalar_one()
    assert view.owner_id == crm.member.id
    assert view.definition["conditions"] == [
        {"field": "lifecycle_stage", "op": "equals", "value": "lead"}
    ]
    home, view_card = cards_of(saved)
    assert "Hot leads" in texts(home) and "1 record · only you" in texts(home)
    assert view_card["name"] == f"view-{view.id}" and "Ann" in texts(view_card)
    assert "Bob" not in texts(view_card)


def test_remove_condition_keeps_the_others(addon: AddonClient, crm: Crm) -> None:
    typed = editor_form("Two", ("lifecycle_stage", "equals", "lead"), ("_title", "contains", "ann"))
    removed = addon.action("view_form", parameters={"rows": "2", "remove": "0"}, form=typed)
    card = card_of(removed)
    assert "Condition 2" not in section_headers(card)
    typed = inputs(card)
    assert (typed["c0_field"], typed["c0_op"], typed["c0_value"]) == ("_title", "contains", "ann")
    assert "c1_field" not in typed and typed["view_name"] == "Two"


def test_operators_follow_the_chosen_field(addon: AddonClient, crm: Crm, db: Session) -> None:
    add_field(db, crm.folders["contacts"], "score", "number")

    def operators(field: str, op: str = "") -> list[str]:
        card = card_of(
            addon.action(
                "view_form", parameters={"rows": "1"}, form=editor_form("x", (field, op, ""))
            )
        )
        (dropdown,) = [
            w["selectionInput"]
            for s in card["sections"]
            for w in s["widgets"]
            if w.get("selectionInput", {}).get("name") == "c0_op"
        ]
        return [i["value"] for i in dropdown["items"] if i["value"]]

    assert "gt" in operators("score") and "contains" not in operators("score")
    assert "last_n_days" in operators("_created") and "contains" not in operators("_created")
    assert "contains" in operators("lifecycle_stage") and "gt" not in operators("lifecycle_stage")
    # An operator the new field cannot use is cleared rather than kept.
    card = card_of(
        addon.action(
            "view_form", parameters={"rows": "1"}, form=editor_form("x", ("score", "contains", ""))
        )
    )
    chosen = [
        i["value"]
        for s in card["sections"]
        for w in s["widgets"]
        if w.get("selectionInput", {}).get("name") == "c0_op"
        for i in w["selectionInput"]["items"]
        if i["selected"]
    ]
    assert chosen == [""]


def test_changing_the_folder_clears_fields_it_does_not_have(addon: AddonClient, crm: Crm) -> None:
    typed = editor_form("x", ("lifecycle_stage", "equals", "lead"), folder="companies")
    card = card_of(addon.action("view_form", parameters={"rows": "1"}, form=typed))
    selected = [
        (w["selectionInput"]["name"], i["value"])
        for s in card["sections"]
        for w in s["widgets"]
        if "selectionInput" in w
        for i in w["selectionInput"]["items"]
        if i["selected"]
    ]
    assert ("view_folder", "companies") in selected and ("c0_field", "") in selected


@pytest.mark.parametrize(
    ("rows", "name", "message"),
    [
        ([("nope", "equals", "x")], "Bad", "unknown field “nope”"),
        ([("lifecycle_stage", "gt", "3")], "Bad", "cannot use the operator “gt”"),
        ([("score", "gt", "lots")], "Bad", "Condition 1: “Score”: “lots”"),
        ([("_created", "before", "31/02/2026")], "Bad", "is not a date"),
        ([("_created", "last_n_days", "-3")], "Bad", "number of days must be 1 to 36500"),
        ([("lifecycle_stage", "equals", "lead"), ("score", "", "")], "Bad", "Condition 2: choose"),
        ([("", "equals", "lead")], "Bad", "Condition 1: choose a field"),
        ([("lifecycle_stage", "equals", "")], "Bad", "is what?"),
        ([("lifecycle_stage", "equals", "lead")], "   ", "Give the view a name"),
    ],
)
def test_invalid_definitions_show_the_form_again(
    addon: AddonClient,
    crm: Crm,
    db: Session,
    rows: list[tuple[str, str, str]],
    name: str,
    message: str,
) -> None:
    add_field(db, crm.folders["contacts"], "score", "number")
    before = row_counts(db)
    data = addon.action(
        "save_view", parameters={"rows": str(len(rows))}, form=editor_form(name, *rows)
    )
    assert navigations(data) == ["updateCard"]
    card = card_of(data)
    assert card["name"] == "view-editor"
    assert message in texts(card) and "Nothing was saved" in texts(card)
    # What was typed is still there; an unknown field or an operator the field cannot
    # use is not among the dropdown's choices, so it shows unselected.
    typed = inputs(card)
    assert typed["view_name"] == name
    for number, (field, op, value) in enumerate(rows):
        assert typed[f"c{number}_value"] == value
        if field != "nope":
            shown_op = "" if "cannot use the operator" in message else op
            assert (typed[f"c{number}_field"], typed[f"c{number}_op"]) == (field, shown_op)
    assert row_counts(db) == before


# --------------------------------------------------------------------------- sharing and roles


def test_a_rep_keeps_personal_views_but_cannot_share(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    addon.post("/homepage")
    rep = member_client(addon, db, "bob@acme.test", "rep")
    editor = card_of(rep.action("new_view"))
    assert "Shared with the workspace" not in texts(editor)
    assert "Only you will see this view" in texts(editor)
    before = row_counts(db)
    refused = rep.action(
        "save_view",
        parameters={"rows": "0"},
        form=editor_form("For everyone", shared=True),
    )
    assert "does not allow you to share views with the workspace" in texts(card_of(refused))
    assert row_counts(db) == before
    rep.action("save_view", parameters={"rows": "0"}, form=editor_form("Just mine"))
    view = db.execute(select(SavedView).where(SavedView.name == "Just mine")).scalar_one()
    bob = db.execute(select(Member).where(Member.email == "bob@acme.test")).scalar_one()
    assert view.owner_id == bob.id


def test_a_viewer_may_keep_personal_views(addon: AddonClient, crm: Crm, db: Session) -> None:
    addon.post("/homepage")
    viewer = member_client(addon, db, "vera@acme.test", "viewer")
    saved = viewer.action(
        "save_view",
        parameters={"rows": "1"},
        form=editor_form("Customers", ("lifecycle_stage", "equals", "customer")),
    )
    assert navigations(saved)[-1] == "pushCard"
    view = db.execute(select(SavedView).where(SavedView.name == "Customers")).scalar_one()
    vera = db.execute(select(Member).where(Member.email == "vera@acme.test")).scalar_one()
    assert view.owner_id == vera.id
    # ... and cannot share, even by sending the checkbox.
    refused = viewer.action(
        "save_view", parameters={"rows": "0"}, form=editor_form("Everyone", shared=True)
    )
    assert "does not allow you to share" in texts(card_of(refused))


def test_shared_and_personal_views_across_members(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    lead(crm, "Ann")
    addon.action("save_view", parameters={"rows": "0"}, form=editor_form("Team", shared=True))
    addon.action("save_view", parameters={"rows": "0"}, form=editor_form("Mine"))
    team = db.execute(select(SavedView).where(SavedView.name == "Team")).scalar_one()
    mine = db.execute(select(SavedView).where(SavedView.name == "Mine")).scalar_one()
    assert team.owner_id is None and mine.owner_id == crm.member.id

    rep = member_client(addon, db, "bob@acme.test", "rep")
    home = card_of(rep.post("/homepage"))
    assert "Team" in texts(home) and "Mine" not in texts(home)
    assert card_of(rep.action("open_view", parameters={"view_id": str(team.id)}))
    # Someone else's personal view is unknown to the rep, for every action.
    for name in ("open_view", "edit_view", "confirm_delete_view", "delete_view", "view_form"):
        rep.action(name, parameters={"view_id": str(mine.id)}, expect=403)
    rep.action(
        "save_view",
        parameters={"view_id": str(mine.id), "rows": "0"},
        form=editor_form("Stolen"),
        expect=403,
    )
    # A shared view is visible but only members allowed to share may change it.
    for name in ("edit_view", "confirm_delete_view", "delete_view"):
        denied = card_of(rep.action(name, parameters={"view_id": str(team.id)}))
        assert "does not allow you to share views" in texts(denied)
    db.refresh(mine)
    db.refresh(team)
    assert mine.name == "Mine" and team.name == "Team"


def test_edit_a_view(addon: AddonClient, crm: Crm, db: Session, leads_view: SavedView) -> None:
    editor = card_of(addon.action("edit_view", parameters={"view_id": str(leads_view.id)}))
    typed = inputs(editor)
    assert typed["view_name"] == "My leads" and "view_folder" not in typed
    assert (typed["c0_field"], typed["c0_op"], typed["c0_value"]) == (
        "lifecycle_stage",
        "equals",
        "lead",
    )
    save = named(editor, "save_view")[0]
    assert save["view_id"] == str(leads_view.id) and save["rows"] == "1"
    saved = addon.action(
        "save_view",
        parameters=params_of(save),
        form=editor_form(
            "Customers", ("lifecycle_stage", "equals", "customer"), direction="desc", shared=True
        ),
    )
    assert navigations(saved) == ["popToRoot", "updateCard", "pushCard"]
    db.refresh(leads_view)
    assert leads_view.name == "Customers" and leads_view.owner_id is None
    assert leads_view.definition["sort"] == {"field": "_title", "desc": True}
    assert "Dan" in texts(cards_of(saved)[-1])


def test_delete_a_view_after_confirming(
    addon: AddonClient, crm: Crm, db: Session, leads_view: SavedView
) -> None:
    view_id = str(leads_view.id)
    asked = addon.action("confirm_delete_view", parameters={"view_id": view_id})
    confirm = card_of(asked)
    assert "records themselves are not deleted" in texts(confirm)
    assert named(confirm, "open_view")  # Cancel goes back to the view
    assert view_count(db) == 1  # asking deletes nothing
    (delete,) = named(confirm, "delete_view")
    done = addon.action("delete_view", parameters=params_of(delete))
    assert navigations(done) == ["popToRoot", "updateCard"]
    assert "My leads" not in texts(card_of(done))
    assert view_count(db) == 0
    assert crm.db.execute(select(func.count()).select_from(SavedView)).scalar_one() == 0
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "delete_view")).scalar_one()
    assert entry.summary == "Deleted view My leads" and entry.before["name"] == "My leads"
    addon.action("open_view", parameters={"view_id": view_id}, expect=403)


def test_another_workspace_cannot_touch_views(
    addon: AddonClient, other_tenant: AddonClient, crm: Crm, db: Session, leads_view: SavedView
) -> None:
    shared = save_view(db, crm.member, crm.folders["contacts"], "Team", {}, shared=True)
    other_tenant.post("/homepage")  # the rival workspace exists before counting rows
    before = row_counts(db)
    for view in (leads_view, shared):
        for name in ("open_view", "edit_view", "confirm_delete_view", "delete_view", "view_form"):
            other_tenant.action(name, parameters={"view_id": str(view.id)}, expect=403)
        other_tenant.action(
            "save_view",
            parameters={"view_id": str(view.id), "rows": "0"},
            form=editor_form("Mine now", shared=True),
            expect=403,
        )
    home = card_of(other_tenant.post("/homepage"))
    assert "Team" not in texts(home) and "My leads" not in texts(home)
    assert row_counts(db) == before
    for bogus in ("abc", "-1", "99999999999", ""):
        addon.action("open_view", parameters={"view_id": bogus}, expect=403)


# --------------------------------------------------------------------------- pure cards


def test_cards_built_directly_pass_the_contract(crm: Crm, db: Session) -> None:
    actions = Actions(BASE_URL)
    folder = crm.folders["contacts"]
    fields = folder_fields(db, folder.id)
    rows = [view_cards.ConditionRow("lifecycle_stage", "in_list", "lead, customer")] * 20
    form = view_cards.ViewForm(name="Long", rows=rows, shared=True)
    check_card(view_cards.view_editor(actions, form, [folder], fields, can_share=True))
    definition = parse_definition(
        fields,
        {
            "match": "any",
            "conditions": [
                {"field": "lifecycle_stage", "op": "in_list", "value": "lead, customer"},
                {"field": "_created", "op": "last_n_days", "value": "7"},
                {"field": "emails", "op": "is_empty"},
            ],
        },
    )
    words = view_cards.describe_definition(definition, view_cards.field_labels(fields))
    assert words.startswith("<b>Lifecycle stage</b> is one of “lead”, “customer” <i>or</i>")
    assert "<b>Created</b> in the last 7 days" in words and "<b>Emails</b> is empty" in words
