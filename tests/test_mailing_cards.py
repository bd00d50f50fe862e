"""Mail merge in the sidebar: the card builders, then the actions end to end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from addon.cards import mailing as cards
from addon.cards.widgets import Actions
from addon.crm.models import AuditEntry, Member, SavedView
from addon.crm.views import save_view
from addon.crm.workspaces import folders_by_key
from addon.gmail.fake_server import FakeGmailServer, FakeSending
from addon.mailing.campaigns import create_campaign
from addon.mailing.clock import FakeClock
from addon.mailing.models import Campaign, MailTemplate, SendLog, suppress
from addon.web.mailing_actions import CLOCK_EXTENSION, GRANTS_EXTENSION, GrantHooks
from tests.cardcheck import BASE_URL, check_card
from tests.cardread import actions_in, card_of, navigations, texts
from tests.crmdata import Crm
from tests.google_fakes import AddonClient
from tests.mailing_support import FakeGrants, make_worker, sending

__all__ = ["sending"]  # the fake Gmail's sending side, as a fixture

ACTIONS = Actions(BASE_URL)
PARIS = cards.Display(locale="en-GB", tz="Europe/Paris")


def named(card: dict[str, Any], name: str) -> list[dict[str, str]]:
    """The actions of a card calling `name`."""
    return [a for a in actions_in(card) if a["name"] == name]


def inputs(card: dict[str, Any]) -> dict[str, str]:
    """Text inputs' values, selected items and pickers' values, by input name."""
    found: dict[str, str] = {}
    for section in card["sections"]:
        for widget in section["widgets"]:
            if "textInput" in widget:
                found[widget["textInput"]["name"]] = widget["textInput"].get("value", "")
            if "selectionInput" in widget:
                body = widget["selectionInput"]
                found[body["name"]] = ",".join(i["value"] for i in body["items"] if i["selected"])
            if "dateTimePicker" in widget:
                body = widget["dateTimePicker"]
                found[body["name"]] = body.get("valueMsEpoch", "")
            if "switchControl" in widget.get("decoratedText", {}):
                control = widget["decoratedText"]["switchControl"]
                found[control["name"]] = "on" if control["selected"] else ""
    return found


def buttons(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every button of a card (footer included) by its text."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "text" in node and "onClick" in node:
                found[node["text"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


# --------------------------------------------------------------------------- pure cards

FIELDS = [
    cards.MergeField("first_name", "Contact · First name"),
    cards.MergeField("company.name", "Company · Name"),
]


def test_template_editor_keeps_input_shows_error_and_merge_fields() -> None:
    form = cards.TemplateForm("Intro", "Hi {{first_name", "Hello <b>", "")
    built = cards.template_editor(
        ACTIONS, form, FIELDS, template_id=7, error="subject, line 1, column 4: never closed"
    )
    check_card(built)
    shown = inputs(built)
    assert shown["tpl_name"] == "Intro"
    assert shown["tpl_subject"] == "Hi {{first_name"
    assert shown["tpl_text"] == "Hello <b>"
    text = texts(built)
    assert "Subject, line 1, column 4: never closed. Nothing was saved." in text
    assert "{{first_name}}" in text and "{{company.name}}" in text
    assert "Company · Name" in text
    assert named(built, "mailing_save_template") == [
        {"name": "mailing_save_template", "template_id": "7"}
    ]


def test_templates_list_opens_each_editor() -> None:
    built = cards.templates_card(
        ACTIONS, [cards.TemplateLine(1, "Intro", "Hi"), cards.TemplateLine(2, "Follow-up", "Re")]
    )
    check_card(built)
    assert [a["template_id"] for a in named(built, "mailing_edit_template")] == ["1", "2"]
    assert named(built, "mailing_new_template")
    empty = cards.templates_card(ACTIONS, [])
    check_card(empty)
    assert "No templates yet." in texts(empty)


def test_campaign_form_offers_views_templates_and_options() -> None:
    form = cards.CampaignForm(
        name="Spring",
        view_id="3",
        template_id="9",
        cc="boss@acme.test",
        human_gaps=True,
        start_ms=1_790_000_000_000,
    )
    built = cards.campaign_form_card(
        ACTIONS,
        form,
        [cards.Choice("3", "Leads"), cards.Choice("4", "Customers")],
        [cards.Choice("9", "Intro")],
        campaign_id=12,
        error="choose a template",
    )
    check_card(built)
    shown = inputs(built)
    assert shown["cmp_view"] == "3" and shown["cmp_template"] == "9"
    assert shown["cmp_cc"] == "boss@acme.test" and shown["cmp_gaps"] == "on"
    assert shown["cmp_start"] == "1790000000000"
    assert "Choose a template. Nothing was saved." in texts(built)
    assert named(built, "mailing_save_campaign") == [
        {"name": "mailing_save_campaign", "campaign_id": "12"}
    ]


def test_campaign_form_without_views_says_to_save_one() -> None:
    built = cards.campaign_form_card(ACTIONS, cards.CampaignForm(), [], [cards.Choice("1", "T")])
    check_card(built)
    assert "No saved view of contacts yet" in texts(built)
    assert "cmp_view" not in inputs(built)


def _preview(**overrides: Any) -> cards.Preview:
    values: dict[str, Any] = {
        "campaign_id": 5,
        "name": "Spring",
        "view_name": "Leads",
        "template_name": "Intro",
        "included": 120,
        "exclusions": [
            cards.Exclusion("Ann (no email)", "no_email"),
            cards.Exclusion("bob@x.test", "suppressed"),
            cards.Exclusion("cat@x.test", "duplicate"),
            cards.Exclusion("dan@x.test", "missing_value", "first_name"),
        ],
        "excluded": 4,
        "picker": [cards.Choice(str(i), f"Person {i}") for i in range(50)],
        "position": 3,
        "message": cards.RenderedMessage(
            to="Person 3 <p3@x.test>",
            subject="Hi Person",
            text="Hello\nthere <b>",
            html="<p>Hello</p>",
            cc="boss@acme.test",
        ),
    }
    values.update(overrides)
    return cards.Preview(**values)


def test_preview_shows_count_exclusions_with_reasons_and_a_message() -> None:
    built = cards.preview_card(ACTIONS, _preview(), display=PARIS)
    check_card(built)
    text = texts(built)
    assert "<b>120 recipients</b>" in text
    assert "4 contacts left out" in text
    assert "No email address" in text
    assert "Unsubscribed or bounced" in text
    assert "Duplicate address" in text
    assert "Missing merge value: first_name" in text
    assert "Person 3 &lt;p3@x.test&gt;" in text
    assert "Hello<br>there &lt;b&gt;" in text
    assert "Message 4 of 120" in text
    assert inputs(built)["recipient"] == "3"
    assert [a["position"] for a in named(built, "mailing_preview") if "position" in a] == ["2", "4"]
    assert named(built, "mailing_send_test")[0]["position"] == "3"
    start = buttons(built)["Start sending"]
    assert "disabled" not in start


def test_preview_lists_a_bounded_number_of_exclusions() -> None:
    many = [cards.Exclusion(f"p{i}@x.test", "duplicate") for i in range(250)]
    built = cards.preview_card(ACTIONS, _preview(exclusions=many, excluded=250), display=PARIS)
    check_card(built)
    assert "… and 220 more." in texts(built)


def test_preview_with_nobody_to_send_to_cannot_start() -> None:
    built = cards.preview_card(
        ACTIONS, _preview(included=0, picker=[], message=None), display=PARIS
    )
    check_card(built)
    assert buttons(built)["Start sending"]["disabled"] is True
    assert "<b>0 recipients</b>" in texts(built)


def test_scheduled_preview_says_when_in_the_users_zone() -> None:
    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    built = cards.preview_card(ACTIONS, _preview(scheduled_at=at), display=PARIS)
    check_card(built)
    assert "Starts 1 Dec 2026, 09:30" in texts(built)
    assert "Schedule" in buttons(built)


def _progress(**overrides: Any) -> cards.Progress:
    values: dict[str, Any] = {
        "campaign_id": 8,
        "name": "Spring",
        "status": "running",
        "status_reason": None,
        "sent": 1500,
        "queued": 700,
        "failed": 2,
        "skipped": 11,
        "next_send_at": datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
        "forecast_finish_at": datetime(2026, 12, 2, 19, 45, tzinfo=UTC),
        "quota_used": 1500,
        "quota_cap": 1500,
    }
    values.update(overrides)
    return cards.Progress(**values)


def test_progress_shows_counts_times_quota_and_controls() -> None:
    built = cards.progress_card(ACTIONS, _progress(), display=PARIS)
    check_card(built)
    text = texts(built)
    for expected in ("1,500", "700", "2", "11", "2,213 recipients in all"):
        assert expected in text
    assert "2 Dec 2026, 08:00" in text  # next send, Paris time
    assert "2 Dec 2026, 20:45" in text  # forecast finish
    assert "1,500 of 1,500 recipients" in text and "0 left in the window" in text
    labels = buttons(built)
    assert {"Refresh", "Pause", "Cancel campaign"} <= set(labels)
    assert "Resume" not in labels
    refresh = named(built, "mailing_progress")[0]
    assert refresh == {"name": "mailing_progress", "campaign_id": "8", "nav": "update"}


def test_paused_progress_says_why_and_offers_resume() -> None:
    built = cards.progress_card(
        ACTIONS,
        _progress(status="paused", status_reason="Gmail revoked the sending permission"),
        display=PARIS,
    )
    check_card(built)
    assert "Gmail revoked the sending permission" in texts(built)
    assert {"Resume", "Cancel campaign"} <= set(buttons(built))
    assert "Pause" not in buttons(built)


def test_finished_progress_has_no_controls_but_refresh() -> None:
    built = cards.progress_card(
        ACTIONS,
        _progress(
            status="completed",
            queued=0,
            finished_at=datetime(2026, 12, 3, tzinfo=UTC),
            next_send_at=None,
            forecast_finish_at=None,
        ),
        display=PARIS,
    )
    check_card(built)
    assert set(buttons(built)) == {"Refresh"}
    assert "Finished" in texts(built)


def test_grant_card_explains_and_links_to_consent() -> None:
    built = cards.grant_needed_card("https://addon.test/oauth/send?state=x")
    check_card(built)
    assert "send email on your behalf" in texts(built)
    link = buttons(built)["Allow sending"]["onClick"]["openLink"]
    assert link["url"] == "https://addon.test/oauth/send?state=x"
    assert link["onClose"] == "RELOAD"
    unset = cards.grant_needed_card(None)
    check_card(unset)
    assert "ask your administrator" in texts(unset)


def test_home_lists_campaigns_and_needs_a_template_first() -> None:
    lines = [
        cards.CampaignLine(1, "Draft one", "draft"),
        cards.CampaignLine(2, "Spring", "running", datetime(2026, 12, 1, tzinfo=UTC)),
    ]
    built = cards.mail_merge_home(ACTIONS, lines, display=PARIS, templates=0)
    check_card(built)
    assert named(built, "mailing_preview")[0]["campaign_id"] == "1"
    assert named(built, "mailing_progress")[0]["campaign_id"] == "2"
    assert buttons(built)["New campaign"]["disabled"] is True
    ready = cards.mail_merge_home(ACTIONS, [], display=PARIS, templates=2)
    check_card(ready)
    assert "disabled" not in buttons(ready)["New campaign"]
    assert "No campaigns yet." in texts(ready)


# --------------------------------------------------------------------------- actions


def member_client(addon: AddonClient, db: Session, email: str, role: str) -> AddonClient:
    """Another member of acme.test with the given role."""
    client = AddonClient(addon.client, addon.tokens, user=email, hd="acme.test")
    client.post("/homepage")
    member = db.execute(select(Member).where(Member.email == email)).scalar_one()
    member.role = role
    db.flush()
    return client


def test_homepage_offers_mail_merge_to_managers_not_to_reps_or_viewers(
    addon: AddonClient, db: Session
) -> None:
    home = card_of(addon.post("/homepage"))
    assert named(home, "mailing_home")
    manager = member_client(addon, db, "boss@acme.test", "manager")
    assert named(card_of(manager.post("/homepage")), "mailing_home")
    for email, role in (("rep2@acme.test", "rep"), ("eve@acme.test", "viewer")):
        client = member_client(addon, db, email, role)
        assert not named(card_of(client.post("/homepage")), "mailing_home")


def template_count(db: Session) -> int:
    """How many templates exist in all workspaces."""
    return int(db.execute(select(func.count()).select_from(MailTemplate)).scalar_one())


def template_form(name: str, subject: str, text: str, html: str = "") -> dict[str, Any]:
    """The template editor's inputs as Google sends them."""
    return {"tpl_name": name, "tpl_subject": subject, "tpl_text": text, "tpl_html": html}


@pytest.fixture
def rival_template(db: Session, other_tenant: AddonClient) -> MailTemplate:
    """A template of another workspace (rival.test)."""
    other_tenant.post("/homepage")
    spy = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    template = MailTemplate(
        workspace_id=spy.workspace_id,
        owner_member_id=spy.id,
        name="Rival",
        subject="Secret",
        body_text="Rival body",
    )
    db.add(template)
    db.flush()
    return template


def test_create_and_edit_a_template(addon: AddonClient, crm: Crm, db: Session) -> None:
    editor = card_of(addon.action("mailing_new_template"))
    assert "{{first_name}}" in texts(editor)
    assert "{{company.name}}" in texts(editor)  # the contact's company lends its fields
    assert "{{owner.first_name}}" in texts(editor) and "{{last_contacted}}" in texts(editor)
    data = addon.action(
        "mailing_save_template",
        form=template_form("Intro", "Hi {{first_name|there}}", "Hello {{company.name}}"),
    )
    assert navigations(data) == ["pop", "updateCard"]
    listing = card_of(data)
    template = db.execute(select(MailTemplate)).scalar_one()
    assert (template.name, template.subject, template.body_html) == (
        "Intro",
        "Hi {{first_name|there}}",
        None,
    )
    assert template.workspace_id == crm.member.workspace_id
    opened = named(listing, "mailing_edit_template")
    assert opened == [{"name": "mailing_edit_template", "template_id": str(template.id)}]
    editor = card_of(
        addon.action("mailing_edit_template", parameters={"template_id": str(template.id)})
    )
    assert inputs(editor)["tpl_subject"] == "Hi {{first_name|there}}"
    addon.action(
        "mailing_save_template",
        parameters={"template_id": str(template.id)},
        form=template_form("Intro 2", "Hi", "Body", "<p>{{first_name|friend}}</p>"),
    )
    db.refresh(template)
    assert (template.name, template.body_html) == ("Intro 2", "<p>{{first_name|friend}}</p>")
    assert template_count(db) == 1


def test_a_bad_tag_is_shown_on_the_form_with_the_input_kept(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    typed = template_form("Intro", "Hi {{first name}}", "Body {{first_name", "<p>x</p>")
    data = addon.action("mailing_save_template", form=typed)
    assert navigations(data) == ["updateCard"]
    editor = card_of(data)
    text = texts(editor)
    assert "Subject, line 1, column 4" in text and "Nothing was saved." in text
    shown = inputs(editor)
    assert (shown["tpl_name"], shown["tpl_subject"], shown["tpl_text"], shown["tpl_html"]) == (
        "Intro",
        "Hi {{first name}}",
        "Body {{first_name",
        "<p>x</p>",
    )
    assert template_count(db) == 0
    blank = card_of(addon.action("mailing_save_template", form=template_form("", "S", "B")))
    assert "Give the template a name. Nothing was saved." in texts(blank)
    assert template_count(db) == 0


def test_another_workspaces_template_is_refused_and_unchanged(
    addon: AddonClient, crm: Crm, db: Session, rival_template: MailTemplate
) -> None:
    tid = {"template_id": str(rival_template.id)}
    for name, form in (
        ("mailing_edit_template", None),
        ("mailing_save_template", template_form("Mine now", "S", "B")),
    ):
        refused = card_of(addon.action(name, parameters=tid, form=form))
        assert refused["name"] == "error"
        assert "does not exist in your workspace" in texts(refused)
    db.refresh(rival_template)
    assert (rival_template.name, rival_template.subject) == ("Rival", "Secret")
    assert template_count(db) == 1
    assert "Rival" not in texts(card_of(addon.action("mailing_templates")))


def test_viewers_and_reps_cannot_use_mail_merge(addon: AddonClient, crm: Crm, db: Session) -> None:
    for email, role in (("eve@acme.test", "viewer"), ("rep2@acme.test", "rep")):
        client = member_client(addon, db, email, role)
        for name in ("mailing_home", "mailing_new_template", "mailing_new_campaign"):
            refused = card_of(client.action(name))
            assert "does not allow you to send mail merge campaigns" in texts(refused)
        refused = card_of(client.action("mailing_save_template", form=template_form("T", "S", "B")))
        assert refused["name"] == "error"
    assert template_count(db) == 0


# --------------------------------------------------------------------------- campaigns


@dataclass
class Grants:
    """Who has allowed sending (the fake grant store behind the app's hooks)."""

    store: FakeGrants
    granted: set[int]


CONNECT_URL = "https://addon.test/oauth/send/start"


@pytest.fixture
def grants(app: Flask) -> Grants:
    """The sending-grant hooks, backed by a fake store; nobody has a grant at first."""
    state = Grants(FakeGrants(), set())

    def has_grant(session: Session, member: Member) -> bool:
        return member.id in state.granted and member.id not in state.store.revoked

    app.extensions[GRANTS_EXTENSION] = GrantHooks(
        has_send_grant=has_grant,
        connect_url=lambda member: CONNECT_URL,
        credentials_for=state.store,
    )
    return state


@pytest.fixture
def granted(grants: Grants, crm: Crm) -> Grants:
    """rep@acme.test (the admin) has allowed sending."""
    grants.granted.add(crm.member.id)
    return grants


@dataclass
class Audience:
    """A view of six leads, each showing one way to be in or out of a campaign."""

    view: SavedView
    template: MailTemplate


@pytest.fixture
def audience(crm: Crm, db: Session) -> Audience:
    """Ann and Cat get mail; Bob has no email, Dan repeats Ann's address, Eve unsubscribed,
    Fay has no first name (the template has no fallback). Gus is not a lead."""
    people = [
        ("Ann", "ann@client.test"),
        ("Bob", None),
        ("Cat", "cat@client.test"),
        ("Dan", "ANN@client.test"),
        ("Eve", "eve@client.test"),
        ("", "fay@client.test"),
    ]
    for first, email in people:
        values: dict[str, str | list[str]] = {"lifecycle_stage": "lead"}
        if first:
            values["first_name"] = first
        else:
            values["last_name"] = "Fay"
        if email:
            values["emails"] = [email]
        crm.save("contacts", **values)
    crm.save("contacts", first_name="Gus", emails=["gus@client.test"], lifecycle_stage="customer")
    suppress(db, crm.member.workspace_id, "eve@client.test", "unsubscribed")
    view = save_view(
        db,
        crm.member,
        crm.folders["contacts"],
        "Leads",
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}]},
        shared=True,
    )
    template = MailTemplate(
        workspace_id=crm.member.workspace_id,
        owner_member_id=crm.member.id,
        name="Intro",
        subject="Hello {{first_name}}",
        body_text="Hi {{first_name}},\nfrom {{sender.email}}",
        body_html="<p>Hi {{first_name}}</p>",
    )
    db.add(template)
    db.flush()
    return Audience(view, template)


def campaign_form(audience: Audience, **more: Any) -> dict[str, Any]:
    """The campaign form's inputs as Google sends them."""
    form: dict[str, Any] = {
        "cmp_name": "Spring",
        "cmp_view": str(audience.view.id),
        "cmp_template": str(audience.template.id),
    }
    form.update(more)
    return form


def campaigns(db: Session) -> list[Campaign]:
    """Every campaign of every workspace."""
    return list(db.scalars(select(Campaign).order_by(Campaign.id)))


def draft(
    addon: AddonClient, db: Session, audience: Audience, **more: Any
) -> tuple[Campaign, dict[str, Any]]:
    """Save the campaign form; the draft and the preview card."""
    data = addon.action("mailing_save_campaign", form=campaign_form(audience, **more))
    assert navigations(data) == ["updateCard"]
    return campaigns(db)[-1], card_of(data)


def labelled(card: dict[str, Any]) -> dict[str, str]:
    """The text of each labelled line of a card, by its top label."""
    return {
        w["decoratedText"]["topLabel"]: w["decoratedText"]["text"]
        for s in card["sections"]
        for w in s["widgets"]
        if "topLabel" in w.get("decoratedText", {})
    }


def test_preview_counts_recipients_lists_exclusions_and_renders_each_one(
    addon: AddonClient, audience: Audience, db: Session
) -> None:
    form = card_of(addon.action("mailing_new_campaign"))
    view_items = next(
        w["selectionInput"]["items"]
        for s in form["sections"]
        for w in s["widgets"]
        if w.get("selectionInput", {}).get("name") == "cmp_view"
    )
    assert [i["text"] for i in view_items if i["value"]] == ["Leads"]
    campaign, preview = draft(addon, db, audience, cmp_cc="boss@acme.test")
    assert (campaign.status, campaign.cc, campaign.view_id) == (
        "draft",
        "boss@acme.test",
        audience.view.id,
    )
    text = texts(preview)
    assert "<b>2 recipients</b>" in text and "4 contacts left out" in text
    assert "No email address\nBob\n" in text
    assert "Duplicate address\nDan · ann@client.test" in text
    assert "Unsubscribed or bounced\nEve · eve@client.test" in text
    assert "Missing merge value: first_name\nFay · fay@client.test" in text
    assert "Hello Ann" in text and "Hi Ann,<br>from rep@acme.test" in text
    assert "boss@acme.test" in text
    assert "Gus" not in text
    cid = str(campaign.id)
    second = card_of(
        addon.action(
            "mailing_preview", parameters={"campaign_id": cid, "position": "1", "nav": "update"}
        )
    )
    assert "Hello Cat" in texts(second) and "Message 2 of 2" in texts(second)
    picked = card_of(
        addon.action(
            "mailing_preview",
            parameters={"campaign_id": cid, "nav": "update"},
            form={"recipient": "1"},
        )
    )
    assert "Hello Cat" in texts(picked)


def test_campaign_form_errors_keep_the_input_and_save_nothing(
    addon: AddonClient, audience: Audience, db: Session
) -> None:
    past = {"dateTimeInput": {"msSinceEpoch": "1000000000000"}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cmp_template": ""}, "Choose a template. Nothing was saved."),
        ({"cmp_cc": "nobody-at-all"}, "“nobody-at-all” in Cc is not an email address"),
        ({"cmp_start": past}, "The start time has passed"),
        ({"cmp_name": "  "}, "Give the campaign a name"),
    ]
    for change, message in cases:
        data = addon.action("mailing_save_campaign", form=campaign_form(audience, **change))
        shown = card_of(data)
        assert message in texts(shown), texts(shown)
        assert inputs(shown)["cmp_view"] == str(audience.view.id)
    assert campaigns(db) == []


def test_send_test_to_myself(
    addon: AddonClient, audience: Audience, db: Session, granted: Grants, sending: FakeSending
) -> None:
    campaign, _ = draft(addon, db, audience)
    data = addon.action(
        "mailing_send_test", parameters={"campaign_id": str(campaign.id), "position": "1"}
    )
    assert data["renderActions"]["action"]["notification"]["text"] == "Test sent to rep@acme.test"
    assert [(m.to, m.user) for m in sending.sent] == [("rep@acme.test", "rep@acme.test")]
    log = db.scalars(select(SendLog)).all()
    assert [(row.source, row.recipients) for row in log] == [("test", 1)]
    assert campaign.status == "draft"


def test_without_a_grant_sending_steps_explain_and_offer_the_link(
    addon: AddonClient, audience: Audience, db: Session, grants: Grants, sending: FakeSending
) -> None:
    home = card_of(addon.action("mailing_home"))
    assert "send email on your behalf" in texts(home)
    assert buttons(home)["Allow sending"]["onClick"]["openLink"]["url"] == CONNECT_URL
    campaign, _ = draft(addon, db, audience)  # drafting and previewing need no grant
    for name in ("mailing_send_test", "mailing_start"):
        shown = card_of(addon.action(name, parameters={"campaign_id": str(campaign.id)}))
        assert shown["name"] == "mailing-grant"
        assert buttons(shown)["Allow sending"]["onClick"]["openLink"]["url"] == CONNECT_URL
    db.refresh(campaign)
    assert campaign.status == "draft"
    assert sending.sent == [] and db.scalars(select(SendLog)).all() == []


def test_start_then_progress_pause_resume_and_cancel(
    addon: AddonClient, audience: Audience, db: Session, granted: Grants
) -> None:
    campaign, _ = draft(addon, db, audience)
    cid = {"campaign_id": str(campaign.id)}
    data = addon.action("mailing_start", parameters=cid)
    assert data["renderActions"]["action"]["notification"]["text"] == "Sending started"
    shown = card_of(data)
    db.refresh(campaign)
    assert campaign.status == "running"
    # The start is in the audit log: who, which campaign, how many recipients.
    (started,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "campaign_start"))
    assert started.actor_id == campaign.sender_member_id
    assert started.after is not None and started.after["campaign_id"] == campaign.id
    assert started.after["recipients"] == 2
    text = texts(shown)
    assert "Sending" in text and "Queued" in text
    queued = labelled(shown)
    assert (queued["Sent"], queued["Queued"], queued["Skipped"]) == ("0", "2", "2")
    assert queued["Quota used (rolling 24 hours)"] == "0 of 1,500 recipients"
    assert queued["Next send"] != "—" and queued["Forecast finish"] != "—"
    assert {"Refresh", "Pause", "Cancel campaign"} <= set(buttons(shown))

    paused = card_of(addon.action("mailing_pause", parameters=cid))
    db.refresh(campaign)
    assert campaign.status == "paused" and "Resume" in buttons(paused)
    again = addon.action("mailing_pause", parameters=cid)
    assert "cannot be paused" in again["renderActions"]["action"]["notification"]["text"]
    addon.action("mailing_resume", parameters=cid)
    db.refresh(campaign)
    assert campaign.status == "running"
    ask = card_of(addon.action("mailing_confirm_cancel", parameters=cid))
    assert "2 queued messages are then never sent" in texts(ask)
    done = card_of(addon.action("mailing_cancel", parameters=cid))
    db.refresh(campaign)
    assert campaign.status == "cancelled"
    assert set(buttons(done)) == {"Refresh"}
    refreshed = card_of(addon.action("mailing_progress", parameters={**cid, "nav": "update"}))
    assert "Cancelled" in texts(refreshed)
    listed = card_of(addon.action("mailing_home"))
    assert named(listed, "mailing_progress") == [{"name": "mailing_progress", **cid}]


def test_a_scheduled_start_waits_for_its_time(
    addon: AddonClient, audience: Audience, db: Session, granted: Grants
) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    at = {"dateTimeInput": {"msSinceEpoch": str(int(later.timestamp() * 1000))}}
    campaign, preview = draft(addon, db, audience, cmp_start=at, cmp_gaps="true")
    assert campaign.human_gaps is True
    assert "Schedule" in buttons(preview) and "human-like gaps" in texts(preview)
    shown = card_of(addon.action("mailing_start", parameters={"campaign_id": str(campaign.id)}))
    db.refresh(campaign)
    assert campaign.status == "scheduled"
    assert "Starts" in texts(shown) and "Scheduled" in texts(shown)


def test_another_workspaces_ids_are_refused_and_change_nothing(
    addon: AddonClient,
    other_tenant: AddonClient,
    audience: Audience,
    db: Session,
    granted: Grants,
    sending: FakeSending,
) -> None:
    other_tenant.post("/homepage")
    spy = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    rival_folders = folders_by_key(db, spy.workspace_id)
    rival_view = save_view(db, spy, rival_folders["contacts"], "Rival leads", {}, shared=True)
    rival_template = MailTemplate(
        workspace_id=spy.workspace_id,
        owner_member_id=spy.id,
        name="Rival",
        subject="S",
        body_text="B",
    )
    db.add(rival_template)
    db.flush()
    rival = create_campaign(
        db, spy, name="Rival run", template_id=rival_template.id, view_id=rival_view.id
    )
    db.flush()
    before = len(campaigns(db))
    for form in (
        campaign_form(audience, cmp_view=str(rival_view.id)),
        campaign_form(audience, cmp_template=str(rival_template.id)),
    ):
        refused = card_of(addon.action("mailing_save_campaign", form=form))
        assert refused["name"] == "error"
        assert "does not exist in your workspace" in texts(refused)
    assert len(campaigns(db)) == before
    rid = {"campaign_id": str(rival.id)}
    for name in (
        "mailing_preview",
        "mailing_edit_campaign",
        "mailing_send_test",
        "mailing_start",
        "mailing_progress",
        "mailing_pause",
        "mailing_resume",
        "mailing_confirm_cancel",
        "mailing_cancel",
    ):
        refused = card_of(addon.action(name, parameters=rid))
        assert refused["name"] == "error", name
        assert "This campaign does not exist in your workspace." in texts(refused)
    refused = card_of(
        addon.action("mailing_save_campaign", parameters=rid, form=campaign_form(audience))
    )
    assert refused["name"] == "error"
    db.refresh(rival)
    assert (rival.status, rival.name, rival.template_id) == (
        "draft",
        "Rival run",
        rival_template.id,
    )
    assert sending.sent == []
    assert "Rival run" not in texts(card_of(addon.action("mailing_home")))


def test_only_the_sender_starts_a_campaign(
    addon: AddonClient, audience: Audience, db: Session, granted: Grants
) -> None:
    campaign, _ = draft(addon, db, audience)
    manager = member_client(addon, db, "boss@acme.test", "manager")
    boss = db.execute(select(Member).where(Member.email == "boss@acme.test")).scalar_one()
    granted.granted.add(boss.id)
    refused = card_of(manager.action("mailing_start", parameters={"campaign_id": str(campaign.id)}))
    assert "only the member who sends it can." in texts(refused)
    db.refresh(campaign)
    assert campaign.status == "draft"


def test_discarding_a_draft_returns_to_mail_merge(
    addon: AddonClient, audience: Audience, db: Session
) -> None:
    campaign, _ = draft(addon, db, audience)
    data = addon.action("mailing_cancel", parameters={"campaign_id": str(campaign.id)})
    assert navigations(data) == ["popToRoot", "pushCard"]
    db.refresh(campaign)
    assert campaign.status == "cancelled"


def test_progress_follows_the_worker(
    app: Flask,
    addon: AddonClient,
    audience: Audience,
    db: Session,
    granted: Grants,
    sending: FakeSending,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    app.extensions[CLOCK_EXTENSION] = clock
    sending.clock = clock.now
    campaign, _ = draft(addon, db, audience, cmp_bcc="archive@acme.test")
    cid = {"campaign_id": str(campaign.id)}
    addon.action("mailing_start", parameters=cid)
    worker = make_worker(session_factory, gmail_server, clock, granted.store)
    worker.run(until_done=True)
    assert sorted(m.to for m in sending.sent) == ["ann@client.test", "cat@client.test"]
    shown = card_of(addon.action("mailing_progress", parameters={**cid, "nav": "update"}))
    labels = labelled(shown)
    assert (labels["Status"], labels["Sent"], labels["Queued"]) == ("<b>Completed</b>", "2", "0")
    # Each message had a bcc: two recipients per message count against the quota.
    assert labels["Quota used (rolling 24 hours)"] == "4 of 1,500 recipients"
    assert "Finished" in labels and "Next send" not in labels


def test_edit_a_draft_then_no_more_once_started(
    addon: AddonClient, audience: Audience, db: Session, granted: Grants
) -> None:
    campaign, _ = draft(addon, db, audience)
    cid = {"campaign_id": str(campaign.id)}
    form = card_of(addon.action("mailing_edit_campaign", parameters=cid))
    assert inputs(form)["cmp_name"] == "Spring"
    data = addon.action(
        "mailing_save_campaign",
        parameters=cid,
        form=campaign_form(audience, cmp_name="Spring 2", cmp_bcc="a@acme.test; b@acme.test"),
    )
    assert navigations(data) == ["pop", "updateCard"]
    db.refresh(campaign)
    assert (campaign.name, campaign.bcc) == ("Spring 2", "a@acme.test, b@acme.test")
    too_many = ", ".join(f"c{i}@acme.test" for i in range(100))
    shown = card_of(
        addon.action(
            "mailing_save_campaign", parameters=cid, form=campaign_form(audience, cmp_cc=too_many)
        )
    )
    assert "at most 99 cc and bcc addresses" in texts(shown)
    db.refresh(campaign)
    assert campaign.cc == ""
    addon.action("mailing_start", parameters=cid)
    for name in ("mailing_edit_campaign", "mailing_save_campaign", "mailing_send_test"):
        refused = card_of(addon.action(name, parameters=cid, form=campaign_form(audience)))
        assert "it can no longer be edited" in texts(refused)
    db.refresh(campaign)
    assert (campaign.name, campaign.status) == ("Spring 2", "running")
