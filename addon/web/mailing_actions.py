"""Mail merge in the sidebar: templates, campaign set-up and preview, sending and progress.

Every action needs "send_campaigns" (managers and admins). Ids of templates, campaigns and
views, whether in parameters or form inputs, are looked up in the caller's workspace only;
anything else is refused with an error card and the transaction is rolled back, so nothing
changes. Sending also needs the member's Gmail "send" grant; without it the cards say so
and offer the consent link.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, can
from addon.cards import mailing as cards
from addon.cards.records import error_card
from addon.cards.responses import navigate, push, update
from addon.crm.fieldtypes_base import zone
from addon.crm.models import FieldDef, Folder, Member, Record, SavedView, utcnow
from addon.crm.records import RecordNotFound
from addon.crm.views import ViewError, get_view, visible_views
from addon.crm.workspaces import folder_fields, folders_by_key
from addon.gmail.addresses import canonical_email
from addon.mailing.campaigns import (
    DUPLICATE,
    NO_EMAIL,
    SUPPRESSED,
    Plan,
    campaign_progress,
    cancel_campaign,
    create_campaign,
    pause_campaign,
    plan_recipients,
    resume_campaign,
    send_test,
    start_campaign,
)
from addon.mailing.clock import Clock, SystemClock
from addon.mailing.compose import CampaignError, Composer, recipients_per_message
from addon.mailing.context import SENDER_PREFIXES, STATS_NAMES, merge_values
from addon.mailing.models import DRAFT, Campaign, MailTemplate
from addon.mailing.sender import (
    CredentialsFor,
    GrantRevoked,
    Sender,
    SendError,
    gmail_sender_factory,
)
from addon.mailing.templates import MissingValues, TemplateError, compile_template
from addon.mailing.usage import aware, sender_usage
from addon.web.events import AddonRequest
from addon.web.registry import Handler, Result, action

PERMISSION = "send_campaigns"
CONTACTS = "contacts"
MAX_NAME = 100

# ------------------------------------------------------------------------------ sending grant

# The member's Gmail "send" grant lives in addon/auth/grants.py. The app installs its
# functions under this extension key; without them nobody has a grant, and the cards
# explain what is needed instead of sending.
GRANTS_EXTENSION = "addon.mailing.grants"


@dataclass(frozen=True)
class GrantHooks:
    """How mail merge asks about a member's sending grant, where they give one, and the
    credentials it grants (CredentialsFor raises GrantRevoked without a grant)."""

    has_send_grant: Callable[[Session, Member], bool]
    connect_url: Callable[[Member], str | None]
    credentials_for: CredentialsFor


def has_send_grant(session: Session, member: Member) -> bool:
    """Whether the member allowed the add-on to send mail from their Gmail account."""
    hooks: GrantHooks | None = current_app.extensions.get(GRANTS_EXTENSION)
    return hooks is not None and hooks.has_send_grant(session, member)


def connect_url(member: Member) -> str | None:
    """Where the member gives the sending grant, or None when the server cannot ask for it."""
    hooks: GrantHooks | None = current_app.extensions.get(GRANTS_EXTENSION)
    return hooks.connect_url(member) if hooks is not None else None


def sender_for(session: Session, member: Member) -> Sender:
    """The member's Gmail, for sending with their grant (GrantRevoked without one)."""
    hooks: GrantHooks | None = current_app.extensions.get(GRANTS_EXTENSION)
    if hooks is None:
        raise GrantRevoked("sending is not set up on this server")
    make = gmail_sender_factory(
        current_app.config["GMAIL_API_URL"],
        hooks.credentials_for,
        current_app.config["GMAIL_TIMEOUT_SECONDS"],
    )
    return make(session, member)


# The mail merge clock (a fake one in tests); the wall clock by default.
CLOCK_EXTENSION = "addon.mailing.clock"


def _now() -> datetime:
    clock: Clock = current_app.extensions.get(CLOCK_EXTENSION) or SystemClock()
    return clock.now()


# ------------------------------------------------------------------------------ refusals


class Refused(Exception):
    """An id that is not the caller's, or a step their role or the campaign's state forbids."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


def _refusing(handler: Handler) -> Handler:
    """Answer a refusal with an error card and roll back, so nothing changes."""

    @functools.wraps(handler)
    def run(req: AddonRequest) -> Result:
        try:
            return handler(req)
        except Refused as exc:
            g.db_rollback = True
            return push(error_card(exc.title, exc.message))
        except RecordNotFound:
            g.db_rollback = True
            return push(error_card("Not found", "This item does not exist in your workspace."))
        except PermissionDenied as exc:
            g.db_rollback = True
            return push(error_card("Not allowed", str(exc).capitalize() + "."))

    return run


def mailing_action(name: str) -> Callable[[Handler], Handler]:
    """Register a mail merge action: the send_campaigns check, then refusals as cards."""

    def register(handler: Handler) -> Handler:
        return action(name, PERMISSION)(_refusing(handler))

    return register


def _id(raw: str, what: str) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise Refused("Not found", f"This {what} does not exist in your workspace.")
    return int(raw)


def _display(req: AddonRequest) -> cards.Display:
    return cards.Display(locale=req.locale, tz=req.timezone)


# ------------------------------------------------------------------------------ merge fields


def merge_fields(session: Session, workspace_id: int) -> list[cards.MergeField]:
    """The merge fields a contact template may use: contact fields, the company's, stats, sender."""
    folders = folders_by_key(session, workspace_id)
    contacts = folders.get(CONTACTS)
    found: list[cards.MergeField] = [
        cards.MergeField("name", "Contact · Name"),
        cards.MergeField("email", "Contact · Email address"),
    ]
    if contacts is not None:
        fields = folder_fields(session, contacts.id)
        found += [cards.MergeField(f.key, f"Contact · {f.label}") for f in fields]
        for link in _single_links(fields):
            target = folders.get(str(link.options.get("folder")))
            if target is None:
                continue
            found.append(cards.MergeField(f"{link.key}.name", f"{link.label} · Name"))
            found += [
                cards.MergeField(f"{link.key}.{f.key}", f"{link.label} · {f.label}")
                for f in folder_fields(session, target.id)
                if f.type != "link"
            ]
    found += [
        cards.MergeField(name, f"Email stats · {name.replace('_', ' ')}") for name in STATS_NAMES
    ]
    found += [
        cards.MergeField(
            f"{SENDER_PREFIXES[0]}.{part}", f"You (the sender) · {part.replace('_', ' ')}"
        )
        for part in ("first_name", "last_name", "name", "email")
    ]
    seen: set[str] = set()
    unique = []
    for mf in found:
        if mf.name not in seen:
            seen.add(mf.name)
            unique.append(mf)
    return unique


def _single_links(fields: list[FieldDef]) -> list[FieldDef]:
    return [f for f in fields if f.type == "link" and not f.options.get("many")]


def _contact_views(req: AddonRequest) -> tuple[Folder | None, list[cards.Choice]]:
    folder = folders_by_key(req.session, req.member.workspace_id).get(CONTACTS)
    if folder is None:
        return None, []
    views = visible_views(req.session, req.member, folder)
    return folder, [cards.Choice(str(v.id), v.name) for v in views[:99]]


def _view_id(req: AddonRequest, raw: str) -> int:
    """A contacts view the member may see, named in a form input: else refused."""
    try:
        view = get_view(req.session, req.member, raw)
    except ViewError:
        raise Refused("Not found", "This view does not exist in your workspace.") from None
    folder = req.session.get(Folder, view.folder_id)
    if folder is None or folder.workspace_id != req.member.workspace_id:
        raise Refused("Not found", "This view does not exist in your workspace.")
    if folder.key != CONTACTS:
        raise Refused("Not a view of contacts", "Mail merge sends to a saved view of contacts.")
    return view.id


# ------------------------------------------------------------------------------ home


HOME_CAMPAIGNS = 20


def _home_card(req: AddonRequest) -> cards.Card:
    rows = req.session.scalars(
        select(Campaign)
        .where(
            Campaign.workspace_id == req.member.workspace_id,
            Campaign.sender_member_id == req.member.id,
        )
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .limit(HOME_CAMPAIGNS)
    )
    lines = [
        cards.CampaignLine(c.id, c.name, c.status, c.finished_at or c.started_at or c.scheduled_at)
        for c in rows
    ]
    count = req.session.scalar(
        select(func.count())
        .select_from(MailTemplate)
        .where(MailTemplate.workspace_id == req.member.workspace_id)
    )
    granted = has_send_grant(req.session, req.member)
    return cards.mail_merge_home(
        req.actions,
        lines,
        display=_display(req),
        templates=int(count or 0),
        granted=granted,
        connect_url=None if granted else connect_url(req.member),
    )


@mailing_action("mailing_home")
def home(req: AddonRequest) -> Result:
    """Mail merge: the member's campaigns, templates, and a new campaign."""
    return push(_home_card(req))


# ------------------------------------------------------------------------------ templates


class TemplateInvalid(ValueError):
    """A template that cannot be saved; the message says why."""


def _own_template(req: AddonRequest, raw: str) -> MailTemplate:
    """A template of the caller's workspace, else refused."""
    template = req.session.get(MailTemplate, _id(raw, "template"))
    if template is None or template.workspace_id != req.member.workspace_id:
        raise Refused("Not found", "This template does not exist in your workspace.")
    return template


def save_template(
    session: Session, member: Member, form: cards.TemplateForm, template: MailTemplate | None
) -> MailTemplate:
    """Validate (compile) and store a template; TemplateInvalid says why. Flushes only."""
    name = " ".join(form.name.split())
    if not name:
        raise TemplateInvalid("give the template a name")
    if len(name) > MAX_NAME:
        raise TemplateInvalid(f"the name is longer than {MAX_NAME} characters")
    if not form.subject.strip():
        raise TemplateInvalid("write a subject")
    if not form.body_text.strip():
        raise TemplateInvalid("write the plain text body (it is sent with any HTML body)")
    html = form.body_html if form.body_html.strip() else None
    try:
        compile_template(form.subject, form.body_text, html)
    except TemplateError as exc:
        raise TemplateInvalid(str(exc)) from None
    if template is None:
        template = MailTemplate(workspace_id=member.workspace_id, owner_member_id=member.id)
        session.add(template)
    template.name = name
    template.subject = form.subject.strip()
    template.body_text = form.body_text
    template.body_html = html
    template.updated_at = utcnow()
    session.flush()
    return template


def _templates(session: Session, workspace_id: int) -> list[MailTemplate]:
    return list(
        session.scalars(
            select(MailTemplate)
            .where(MailTemplate.workspace_id == workspace_id)
            .order_by(MailTemplate.name, MailTemplate.id)
            .limit(99)
        )
    )


def _templates_card(req: AddonRequest) -> cards.Card:
    lines = [
        cards.TemplateLine(t.id, t.name, t.subject)
        for t in _templates(req.session, req.member.workspace_id)
    ]
    return cards.templates_card(req.actions, lines)


def _template_form(template: MailTemplate) -> cards.TemplateForm:
    return cards.TemplateForm(
        template.name, template.subject, template.body_text, template.body_html or ""
    )


@mailing_action("mailing_templates")
def templates(req: AddonRequest) -> Result:
    """The workspace's templates."""
    return push(_templates_card(req))


@mailing_action("mailing_new_template")
def new_template(req: AddonRequest) -> Result:
    """An empty template editor."""
    fields = merge_fields(req.session, req.member.workspace_id)
    return push(cards.template_editor(req.actions, cards.TemplateForm(), fields))


@mailing_action("mailing_edit_template")
def edit_template(req: AddonRequest) -> Result:
    """The editor of a template (parameter template_id)."""
    template = _own_template(req, req.param("template_id"))
    fields = merge_fields(req.session, req.member.workspace_id)
    return push(
        cards.template_editor(
            req.actions, _template_form(template), fields, template_id=template.id
        )
    )


@mailing_action("mailing_save_template")
def save_template_action(req: AddonRequest) -> Result:
    """Save the editor's template; a bad one shows the form again with the typed input."""
    template = _own_template(req, req.param("template_id")) if req.param("template_id") else None
    form = cards.TemplateForm(
        req.text("tpl_name"), req.text("tpl_subject"), req.text("tpl_text"), req.text("tpl_html")
    )
    try:
        save_template(req.session, req.member, form, template)
    except TemplateInvalid as exc:
        g.db_rollback = True
        fields = merge_fields(req.session, req.member.workspace_id)
        return update(
            cards.template_editor(
                req.actions,
                form,
                fields,
                template_id=template.id if template is not None else None,
                error=str(exc),
            )
        )
    return navigate(
        {"pop": True},
        {"updateCard": _templates_card(req)},
        state_changed=True,
        notify="Template saved",
    )


# ------------------------------------------------------------------------------ campaign form

# Google allows 100 recipients per message: the "To" plus every cc and bcc.
MAX_COPIES = 99


class CampaignInvalid(ValueError):
    """A campaign set-up that cannot be saved; the message says why."""


@dataclass
class CampaignSetup:
    """A validated campaign form: everything create_campaign needs."""

    name: str
    view_id: int
    template: MailTemplate
    cc: list[str]
    bcc: list[str]
    human_gaps: bool
    scheduled_at: datetime | None


def _offset_minutes(req: AddonRequest) -> int:
    """The user's UTC offset now, for the date-time picker."""
    offset = datetime.now(zone(req.timezone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def _typed_campaign(req: AddonRequest) -> cards.CampaignForm:
    """The campaign form's inputs as the user left them."""
    start = req.text("cmp_start")
    return cards.CampaignForm(
        name=req.text("cmp_name"),
        view_id=req.text("cmp_view"),
        template_id=req.text("cmp_template"),
        cc=req.text("cmp_cc"),
        bcc=req.text("cmp_bcc"),
        human_gaps=bool(req.text("cmp_gaps")),
        start_ms=int(start) if start.lstrip("-").isdigit() and len(start) < 16 else None,
    )


def _stored_campaign(campaign: Campaign) -> cards.CampaignForm:
    start = campaign.scheduled_at
    return cards.CampaignForm(
        name=campaign.name,
        view_id=str(campaign.view_id or ""),
        template_id=str(campaign.template_id),
        cc=", ".join(a for a in campaign.cc.split(",") if a),
        bcc=", ".join(a for a in campaign.bcc.split(",") if a),
        human_gaps=campaign.human_gaps,
        start_ms=int(start.timestamp() * 1000) if start is not None else None,
    )


def _addresses(text: str, what: str) -> list[str]:
    found: list[str] = []
    for raw in text.replace(";", ",").split(","):
        if not raw.strip():
            continue
        email = canonical_email(raw.strip())
        if email is None:
            raise CampaignInvalid(f"“{raw.strip()[:80]}” in {what} is not an email address")
        if email not in found:
            found.append(email)
    return found


def check_campaign(req: AddonRequest, form: cards.CampaignForm, now: datetime) -> CampaignSetup:
    """Validate the form; foreign ids are refused (Refused), bad input is CampaignInvalid."""
    # Ids first: another workspace's view or template is refused whatever else is wrong.
    view_id = _view_id(req, form.view_id) if form.view_id else None
    template = _own_template(req, form.template_id) if form.template_id else None
    name = " ".join(form.name.split())
    if not name:
        raise CampaignInvalid("give the campaign a name")
    if len(name) > MAX_NAME:
        raise CampaignInvalid(f"the name is longer than {MAX_NAME} characters")
    if view_id is None:
        raise CampaignInvalid("choose the view of contacts to send to")
    if template is None:
        raise CampaignInvalid("choose a template")
    cc = _addresses(form.cc, "Cc")
    bcc = _addresses(form.bcc, "Bcc")
    if len(cc) + len(bcc) > MAX_COPIES:
        raise CampaignInvalid(f"Gmail takes at most {MAX_COPIES} cc and bcc addresses in all")
    scheduled_at = None
    if form.start_ms is not None:
        scheduled_at = datetime.fromtimestamp(form.start_ms / 1000, tz=UTC)
        if scheduled_at <= now:
            raise CampaignInvalid("the start time has passed; choose a later one or leave it empty")
    return CampaignSetup(name, view_id, template, cc, bcc, form.human_gaps, scheduled_at)


def _campaign_form(
    req: AddonRequest,
    form: cards.CampaignForm,
    *,
    campaign_id: int | None = None,
    error: str | None = None,
) -> cards.Card:
    _folder, views = _contact_views(req)
    choices = [
        cards.Choice(str(t.id), t.name) for t in _templates(req.session, req.member.workspace_id)
    ]
    return cards.campaign_form_card(
        req.actions,
        form,
        views,
        choices,
        campaign_id=campaign_id,
        error=error,
        offset_minutes=_offset_minutes(req),
    )


@mailing_action("mailing_new_campaign")
def new_campaign(req: AddonRequest) -> Result:
    """An empty campaign form (parameter view_id preselects a view)."""
    form = cards.CampaignForm(view_id=req.param("view_id"))
    return push(_campaign_form(req, form))


def _save_draft(req: AddonRequest, setup: CampaignSetup, campaign: Campaign | None) -> Campaign:
    """Create the draft, or change the draft being edited; flushes only."""
    cc, bcc = ", ".join(setup.cc), ", ".join(setup.bcc)
    if campaign is None:
        campaign = create_campaign(
            req.session,
            req.member,
            name=setup.name,
            template_id=setup.template.id,
            view_id=setup.view_id,
            cc=cc,
            bcc=bcc,
            human_gaps=setup.human_gaps,
        )
    else:
        campaign.name = setup.name
        campaign.template_id = setup.template.id
        campaign.view_id = setup.view_id
        campaign.cc, campaign.bcc = cc, bcc
        campaign.human_gaps = setup.human_gaps
        recipients_per_message(campaign)
    # A draft keeps the wanted start; Start schedules it (or starts at once if it passed).
    campaign.scheduled_at = setup.scheduled_at
    campaign.updated_at = _now()
    req.session.flush()
    return campaign


@mailing_action("mailing_edit_campaign")
def edit_campaign(req: AddonRequest) -> Result:
    """The form of a draft campaign (parameter campaign_id)."""
    campaign = _draft(req)
    return push(_campaign_form(req, _stored_campaign(campaign), campaign_id=campaign.id))


@mailing_action("mailing_save_campaign")
def save_campaign(req: AddonRequest) -> Result:
    """Save the form as a draft and show its preview; bad input shows the form again."""
    campaign = _draft(req) if req.param("campaign_id") else None
    form = _typed_campaign(req)
    try:
        setup = check_campaign(req, form, _now())
        campaign = _save_draft(req, setup, campaign)
    except (CampaignInvalid, CampaignError) as exc:
        g.db_rollback = True
        cid = campaign.id if campaign is not None else None
        return update(_campaign_form(req, form, campaign_id=cid, error=str(exc)))
    return update(_preview_card(req, campaign, 0), state_changed=True, notify="Draft saved")


# ------------------------------------------------------------------------------ campaigns


def _campaign(req: AddonRequest, *, manage: bool = False) -> Campaign:
    """The campaign named by campaign_id, if the caller sent it (or is an admin)."""
    campaign = req.session.get(Campaign, _id(req.param("campaign_id"), "campaign"))
    if campaign is None or campaign.workspace_id != req.member.workspace_id:
        raise Refused("Not found", "This campaign does not exist in your workspace.")
    mine = campaign.sender_member_id == req.member.id
    if not mine and not (manage and can(req.member, "admin")):
        raise Refused("Not allowed", "Only the member who sends this campaign can do that.")
    return campaign


def _draft(req: AddonRequest) -> Campaign:
    campaign = _campaign(req)
    if campaign.status != DRAFT:
        raise Refused("Already started", "This campaign has started; it can no longer be edited.")
    return campaign


def _exclusion(reason: str) -> tuple[str, str]:
    """The card's reason code and detail for a plan's reason."""
    codes = {NO_EMAIL: "no_email", SUPPRESSED: "suppressed", DUPLICATE: "duplicate"}
    if reason in codes:
        return codes[reason], ""
    if reason.startswith("missing merge value"):
        return "missing_value", reason.partition(": ")[2]
    return reason, ""


def _titles(session: Session, workspace_id: int, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(
            select(Record.id, Record.title).where(
                Record.workspace_id == workspace_id, Record.id.in_(ids)
            )
        ).all()
    )


def _position(req: AddonRequest) -> int:
    raw = req.param("position") or req.text("recipient") or "0"
    return int(raw) if raw.isdigit() and len(raw) < 8 else 0


def _composer() -> Composer:
    return Composer(current_app.config["BASE_URL"], current_app.config["SECRET_KEY"] or "")


def _preview_card(
    req: AddonRequest, campaign: Campaign, position: int, *, error: str | None = None
) -> cards.Card:
    """Plan the draft now and build its preview, showing the recipient at `position`."""
    now = _now()
    composer = _composer()
    plan: Plan = plan_recipients(req.session, campaign, now, composer)
    template = req.session.get(MailTemplate, campaign.template_id)
    assert template is not None
    included = len(plan.recipients)
    position = min(position, max(0, included - 1))
    start = (position // cards.PICKER_SIZE) * cards.PICKER_SIZE
    window = plan.recipients[start : start + cards.PICKER_SIZE]
    shown_out = plan.excluded[: cards.EXCLUSIONS_SHOWN]
    titles = _titles(
        req.session,
        campaign.workspace_id,
        [p.record_id for p in window] + [e.record_id for e in shown_out],
    )
    picker = [
        cards.Choice(str(start + i), f"{titles.get(p.record_id) or p.email} · {p.email}")
        for i, p in enumerate(window)
    ]
    exclusions = []
    for e in shown_out:
        code, detail = _exclusion(e.reason)
        label = titles.get(e.record_id) or "(no name)"
        exclusions.append(
            cards.Exclusion(f"{label} · {e.email}" if e.email else label, code, detail)
        )
    message = None
    if included:
        chosen = plan.recipients[position]
        sender = req.session.get(Member, campaign.sender_member_id)
        assert sender is not None
        values = merge_values(
            req.session, campaign.workspace_id, [chosen.record_id], sender, clock=lambda: now
        )
        rendered = composer.render(template, values.get(chosen.record_id) or {})
        if not isinstance(rendered, MissingValues):
            message = cards.RenderedMessage(
                to=chosen.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                cc=campaign.cc,
                bcc=campaign.bcc,
            )
    usage = sender_usage(req.session, req.member, now)
    view = req.session.get(SavedView, campaign.view_id) if campaign.view_id else None
    preview = cards.Preview(
        campaign_id=campaign.id,
        name=campaign.name,
        view_name=view.name if view is not None else "(deleted view)",
        template_name=template.name,
        included=included,
        exclusions=exclusions,
        excluded=len(plan.excluded),
        picker=picker,
        position=position,
        message=message,
        scheduled_at=aware(campaign.scheduled_at) if campaign.scheduled_at else None,
        human_gaps=campaign.human_gaps,
        quota_left=max(0, usage.policy.cap - usage.used),
        error=error,
    )
    return cards.preview_card(req.actions, preview, display=_display(req))


def _shown(req: AddonRequest, built: cards.Card, **kwargs: Any) -> Result:
    return update(built, **kwargs) if req.param("nav") == "update" else push(built, **kwargs)


def _grant_card(req: AddonRequest, reason: str | None = None) -> Result:
    return push(cards.grant_needed_card(connect_url(req.member), reason=reason))


@mailing_action("mailing_preview")
def preview(req: AddonRequest) -> Result:
    """A draft's preview (parameters campaign_id, position or the recipient picker)."""
    campaign = _campaign(req)
    if campaign.status != DRAFT:
        return _shown(req, _progress_card(req, campaign))
    try:
        built = _preview_card(req, campaign, _position(req))
    except CampaignError as exc:
        raise Refused("Cannot preview", f"{str(exc).capitalize()}. Edit the campaign.") from None
    return _shown(req, built)


@mailing_action("mailing_send_test")
def send_test_action(req: AddonRequest) -> Result:
    """Send the previewed recipient's message to the member's own address."""
    campaign = _draft(req)
    if not has_send_grant(req.session, req.member):
        return _grant_card(req)
    now = _now()
    composer = _composer()
    plan = plan_recipients(req.session, campaign, now, composer)
    position = _position(req)
    if not plan.recipients:
        raise Refused("Nothing to test", "No recipient of this campaign can receive it.")
    chosen = plan.recipients[min(position, len(plan.recipients) - 1)]
    try:
        send_test(
            req.session,
            req.member,
            campaign,
            sender_for(req.session, req.member),
            composer,
            now,
            record_id=chosen.record_id,
        )
    except GrantRevoked as exc:
        g.db_rollback = True
        return _grant_card(req, f"Gmail refused: {exc}")
    except (CampaignError, SendError) as exc:
        g.db_rollback = True
        return update(_preview_card(req, campaign, position, error=f"the test was not sent: {exc}"))
    return update(
        _preview_card(req, campaign, position),
        state_changed=True,
        notify=f"Test sent to {req.member.email}",
    )


@mailing_action("mailing_start")
def start(req: AddonRequest) -> Result:
    """Start the draft now, or schedule it for its start time."""
    campaign = _draft(req)
    if not has_send_grant(req.session, req.member):
        return _grant_card(req)
    now = _now()
    scheduled = aware(campaign.scheduled_at) if campaign.scheduled_at else None
    try:
        start_campaign(req.session, campaign, now, scheduled_at=scheduled)
    except CampaignError as exc:
        g.db_rollback = True
        return update(_preview_card(req, campaign, 0, error=str(exc)))
    notice = "Campaign scheduled" if campaign.status == "scheduled" else "Sending started"
    return update(_progress_card(req, campaign), state_changed=True, notify=notice)


# ------------------------------------------------------------------------------ progress


def _progress_card(req: AddonRequest, campaign: Campaign) -> cards.Card:
    found = campaign_progress(req.session, campaign, _now())
    progress = cards.Progress(
        campaign_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        status_reason=campaign.status_reason or None,
        sent=found.sent,
        queued=found.queued,
        failed=found.failed,
        skipped=found.skipped,
        bounced=found.bounced,
        next_send_at=found.next_send_at,
        forecast_finish_at=found.forecast_finish_at,
        quota_used=found.quota_used,
        quota_cap=found.quota_cap,
        scheduled_at=aware(campaign.scheduled_at) if campaign.scheduled_at else None,
        finished_at=aware(campaign.finished_at) if campaign.finished_at else None,
    )
    return cards.progress_card(req.actions, progress, display=_display(req))


@mailing_action("mailing_progress")
def progress(req: AddonRequest) -> Result:
    """A campaign's progress (parameters campaign_id; nav=update to refresh)."""
    campaign = _campaign(req, manage=True)
    if campaign.status == DRAFT:
        return _shown(req, _preview_card(req, campaign, 0))
    return _shown(req, _progress_card(req, campaign))


def _change(req: AddonRequest, change: Callable[[Campaign], None], done: str) -> Result:
    campaign = _campaign(req, manage=True)
    try:
        change(campaign)
    except CampaignError as exc:
        g.db_rollback = True
        return update(_progress_card(req, campaign), notify=str(exc).capitalize())
    return update(_progress_card(req, campaign), state_changed=True, notify=done)


@mailing_action("mailing_pause")
def pause(req: AddonRequest) -> Result:
    """Pause a running or scheduled campaign."""
    now = _now()
    reason = f"paused by {req.member.email}"
    return _change(req, lambda c: pause_campaign(req.session, c, now, reason), "Campaign paused")


@mailing_action("mailing_resume")
def resume(req: AddonRequest) -> Result:
    """Resume a paused campaign (sending needs the grant)."""
    if not has_send_grant(req.session, req.member):
        return _grant_card(req)
    now = _now()
    return _change(req, lambda c: resume_campaign(req.session, c, now), "Campaign resumed")


@mailing_action("mailing_confirm_cancel")
def confirm_cancel(req: AddonRequest) -> Result:
    """Ask before cancelling a campaign."""
    campaign = _campaign(req, manage=True)
    queued = campaign_progress(req.session, campaign, _now()).queued
    return update(cards.confirm_cancel_card(req.actions, campaign.id, campaign.name, queued))


@mailing_action("mailing_cancel")
def cancel(req: AddonRequest) -> Result:
    """Cancel a campaign (queued messages are never sent), or discard a draft."""
    campaign = _campaign(req, manage=True)
    if campaign.status == DRAFT:
        cancel_campaign(req.session, campaign, _now())
        return navigate(
            {"popToRoot": True},
            {"pushCard": _home_card(req)},
            state_changed=True,
            notify="Draft discarded",
        )
    return _change(req, lambda c: cancel_campaign(req.session, c, _now()), "Campaign cancelled")
