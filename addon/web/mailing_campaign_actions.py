"""Mail merge campaigns in the sidebar: set-up, preview, test, start, progress and controls.

A campaign is saved as a draft from the form (a view of contacts, a template, cc/bcc,
pacing, an optional start time), previewed as planned right now, then started or
scheduled. Only the member who sends a campaign may edit, test, start or resume it; an
admin may also see its progress, pause or cancel it. Refusals and foreign ids answer as in
addon/web/mailing_actions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, can
from addon.cards import mailing as cards
from addon.cards.responses import navigate, push, update
from addon.crm.fieldtypes_base import zone
from addon.crm.models import Member, Record, SavedView
from addon.digits import ascii_digits, bounded_int
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
from addon.mailing.compose import CampaignError, Composer, parse_copies, recipients_per_message
from addon.mailing.context import merge_values
from addon.mailing.models import DRAFT, Campaign, MailTemplate
from addon.mailing.quota import MAX_RECIPIENTS_PER_MESSAGE
from addon.mailing.sender import GrantRevoked, SendError
from addon.mailing.templates import MissingValues
from addon.mailing.usage import aware, sender_usage
from addon.web.events import AddonRequest
from addon.web.mailing_actions import (
    MAX_NAME,
    Refused,
    connect_url,
    contact_view_id,
    contact_views,
    display_of,
    has_send_grant,
    home_card,
    mailing_action,
    mailing_now,
    own_template,
    parse_id,
    sender_for,
    templates_of,
)
from addon.web.registry import Result

# ------------------------------------------------------------------------------ campaign form


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
        start_ms=int(start) if ascii_digits(start.lstrip("-")) and len(start) < 16 else None,
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


def check_campaign(req: AddonRequest, form: cards.CampaignForm, now: datetime) -> CampaignSetup:
    """Validate the form; foreign ids are Refused, bad input CampaignInvalid or CampaignError."""
    # Ids first: another workspace's view or template is refused whatever else is wrong.
    view_id = contact_view_id(req, form.view_id) if form.view_id else None
    template = own_template(req, form.template_id) if form.template_id else None
    name = " ".join(form.name.split())
    if not name:
        raise CampaignInvalid("give the campaign a name")
    if len(name) > MAX_NAME:
        raise CampaignInvalid(f"the name is longer than {MAX_NAME} characters")
    if view_id is None:
        raise CampaignInvalid("choose the view of contacts to send to")
    if template is None:
        raise CampaignInvalid("choose a template")
    cc, bcc = parse_copies(form.cc, "Cc"), parse_copies(form.bcc, "Bcc")
    if len(cc) + len(bcc) >= MAX_RECIPIENTS_PER_MESSAGE:
        raise CampaignInvalid(
            f"Gmail takes at most {MAX_RECIPIENTS_PER_MESSAGE - 1} cc and bcc addresses in all "
            "(each message goes to one contact too)"
        )
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
    _folder, views = contact_views(req)
    choices = [
        cards.Choice(str(t.id), t.name) for t in templates_of(req.session, req.member.workspace_id)
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
    raw = req.param("view_id")
    # A view that is not the caller's is refused, as in the saved form.
    view_id = str(contact_view_id(req, raw)) if raw else ""
    form = cards.CampaignForm(view_id=view_id)
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
    campaign.updated_at = mailing_now()
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
        setup = check_campaign(req, form, mailing_now())
        campaign = _save_draft(req, setup, campaign)
    except (CampaignInvalid, CampaignError) as exc:
        g.db_rollback = True
        cid = campaign.id if campaign is not None else None
        return update(_campaign_form(req, form, campaign_id=cid, error=str(exc)))
    shown = _preview_card(req, campaign, 0)
    if req.param("campaign_id"):
        # The edited draft's form was pushed over its preview: back to that, refreshed.
        return navigate({"pop": True}, {"updateCard": shown}, state_changed=True, notify="Saved")
    return update(shown, state_changed=True, notify="Draft saved")


# ------------------------------------------------------------------------------ campaigns


class NotTheSender(PermissionDenied):
    """Someone other than a campaign's sender (or, where allowed, an admin) asked to act on it."""

    def __init__(self, role: str, *, manage: bool) -> None:
        who = "the member who sends it or an admin" if manage else "the member who sends it"
        Exception.__init__(
            self,
            f"your role ({role}) does not allow you to act on another member's campaign; "
            f"only {who} can",
        )
        self.action = "send_campaigns"
        self.role = role


def _campaign(req: AddonRequest, *, manage: bool = False) -> Campaign:
    """The campaign named by campaign_id, if the caller sent it (or, to manage it, is an admin)."""
    campaign = req.session.get(Campaign, parse_id(req.param("campaign_id"), "campaign"))
    if campaign is None or campaign.workspace_id != req.member.workspace_id:
        raise Refused("Not found", "This campaign does not exist in your workspace.")
    mine = campaign.sender_member_id == req.member.id
    if not mine and not (manage and can(req.member, "admin")):
        raise NotTheSender(req.member.role, manage=manage)
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
    return bounded_int(raw, 7) or 0


def _composer() -> Composer:
    return Composer(current_app.config["BASE_URL"], current_app.config["SECRET_KEY"] or "")


def _preview_card(
    req: AddonRequest, campaign: Campaign, position: int, *, error: str | None = None
) -> cards.Card:
    """Plan the draft now and build its preview, showing the recipient at `position`."""
    now = mailing_now()
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
    return cards.preview_card(req.actions, preview, display=display_of(req))


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
    now = mailing_now()
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
    now = mailing_now()
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
    found = campaign_progress(req.session, campaign, mailing_now())
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
    return cards.progress_card(req.actions, progress, display=display_of(req))


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
    now = mailing_now()
    reason = f"paused by {req.member.email}"
    return _change(req, lambda c: pause_campaign(req.session, c, now, reason), "Campaign paused")


@mailing_action("mailing_resume")
def resume(req: AddonRequest) -> Result:
    """Resume a paused campaign: its sender only, since it sends from their Gmail again."""
    _campaign(req)
    if not has_send_grant(req.session, req.member):
        return _grant_card(req)
    now = mailing_now()
    return _change(req, lambda c: resume_campaign(req.session, c, now), "Campaign resumed")


@mailing_action("mailing_confirm_cancel")
def confirm_cancel(req: AddonRequest) -> Result:
    """Ask before cancelling a campaign."""
    campaign = _campaign(req, manage=True)
    queued = campaign_progress(req.session, campaign, mailing_now()).queued
    return update(cards.confirm_cancel_card(req.actions, campaign.id, campaign.name, queued))


@mailing_action("mailing_cancel")
def cancel(req: AddonRequest) -> Result:
    """Cancel a campaign (queued messages are never sent), or discard a draft."""
    campaign = _campaign(req, manage=True)
    if campaign.status == DRAFT:
        cancel_campaign(req.session, campaign, mailing_now())
        return navigate(
            {"popToRoot": True},
            {"pushCard": home_card(req)},
            state_changed=True,
            notify="Draft discarded",
        )
    return _change(
        req, lambda c: cancel_campaign(req.session, c, mailing_now()), "Campaign cancelled"
    )
