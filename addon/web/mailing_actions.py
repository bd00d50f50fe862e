"""Mail merge in the sidebar: the entry card, templates, and what every mail merge action shares.

Every action needs "send_campaigns" (managers and admins). Ids of templates, campaigns and
views, whether in parameters or form inputs, are looked up in the caller's workspace only;
anything else is refused with an error card and the transaction is rolled back, so nothing
changes. Sending also needs the member's Gmail "send" grant; without it the cards say so
and offer the consent link. Campaign actions are in addon/web/mailing_campaign_actions.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, can, require
from addon.cards import mailing as cards
from addon.cards.records import error_card
from addon.cards.responses import navigate, push, update
from addon.crm.models import FieldDef, Folder, Member, utcnow
from addon.crm.records import RecordNotFound
from addon.crm.views import ViewError, get_view, visible_views
from addon.crm.workspaces import folder_fields, folders_by_key
from addon.digits import bounded_int
from addon.mailing.clock import Clock, SystemClock
from addon.mailing.context import SENDER_PREFIXES, STATS_NAMES
from addon.mailing.models import Campaign, MailTemplate
from addon.mailing.sender import (
    CredentialsFor,
    GrantRevoked,
    Sender,
    gmail_sender_factory,
)
from addon.mailing.templates import TemplateError, compile_template
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


def mailing_now() -> datetime:
    """The current time on the mail merge clock."""
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
            # Not str.capitalize(): it would lowercase a folder's name in the message.
            message = str(exc)
            return push(error_card("Not allowed", message[:1].upper() + message[1:] + "."))

    return run


def mailing_action(name: str) -> Callable[[Handler], Handler]:
    """Register a mail merge action: the send_campaigns check, then refusals as cards."""

    def register(handler: Handler) -> Handler:
        return action(name, PERMISSION)(_refusing(handler))

    return register


def parse_id(raw: str, what: str) -> int:
    """A positive id from a parameter or input; anything else is refused as unknown."""
    number = bounded_int(raw, 9)
    if number is None:
        raise Refused("Not found", f"This {what} does not exist in your workspace.")
    return number


def display_of(req: AddonRequest) -> cards.Display:
    """How the caller reads times: their locale and time zone."""
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


def contact_views(req: AddonRequest) -> tuple[Folder | None, list[cards.Choice]]:
    """The contacts folder and the views of it the caller can see, as dropdown choices."""
    folder = folders_by_key(req.session, req.member.workspace_id).get(CONTACTS)
    if folder is None or not can(req.member, "view", folder):
        return None, []
    views = visible_views(req.session, req.member, folder)
    return folder, [cards.Choice(str(v.id), v.name) for v in views[:99]]


def contact_view_id(req: AddonRequest, raw: str) -> int:
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
    # The preview shows the contacts' names and addresses: the folder must be readable.
    require(req.member, "view", folder)
    return view.id


# ------------------------------------------------------------------------------ home


HOME_CAMPAIGNS = 20


def home_card(req: AddonRequest) -> cards.Card:
    """The mail merge card: the caller's latest campaigns, templates, the grant if missing."""
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
        display=display_of(req),
        templates=int(count or 0),
        granted=granted,
        connect_url=None if granted else connect_url(req.member),
    )


@mailing_action("mailing_home")
def home(req: AddonRequest) -> Result:
    """Mail merge: the member's campaigns, templates, and a new campaign."""
    return push(home_card(req))


# ------------------------------------------------------------------------------ templates


class TemplateInvalid(ValueError):
    """A template that cannot be saved; the message says why."""


def own_template(req: AddonRequest, raw: str) -> MailTemplate:
    """A template of the caller's workspace, else refused."""
    template = req.session.get(MailTemplate, parse_id(raw, "template"))
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


def templates_of(session: Session, workspace_id: int) -> list[MailTemplate]:
    """The workspace's templates by name (a dropdown's worth)."""
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
        for t in templates_of(req.session, req.member.workspace_id)
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
    template = own_template(req, req.param("template_id"))
    fields = merge_fields(req.session, req.member.workspace_id)
    return push(
        cards.template_editor(
            req.actions, _template_form(template), fields, template_id=template.id
        )
    )


@mailing_action("mailing_save_template")
def save_template_action(req: AddonRequest) -> Result:
    """Save the editor's template; a bad one shows the form again with the typed input."""
    template = own_template(req, req.param("template_id")) if req.param("template_id") else None
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
