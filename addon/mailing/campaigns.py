"""Campaign services: create, plan and resolve recipients, start, pause, resume, cancel, progress.

Services take the session and flush; the caller commits. A campaign is resolved to its
recipients when it starts (at once, or when its scheduled time comes): every record of the
view (or folder) gets a row with its own Message-ID, or is excluded with a reason (no
email, suppressed, duplicate address, missing merge value). Excluded records with an
address are kept as skipped rows so the progress counts them; the others are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from addon.auth.roles import require
from addon.crm.audit import record_audit
from addon.crm.models import Folder, Member, Record, RecordEmail, SavedView
from addon.crm.views import load_definition, view_record_ids
from addon.gmail.addresses import canonical_email
from addon.mailing.compose import (
    CampaignError,
    Composer,
    new_message_id,
    parse_copies,
    recipients_per_message,
)
from addon.mailing.context import merge_values
from addon.mailing.models import (
    CANCELLED,
    COMPLETED,
    DRAFT,
    PAUSED,
    QUEUED,
    RECIPIENT_FAILED,
    RUNNING,
    SCHEDULED,
    SENDING,
    SENT,
    SKIPPED,
    SOURCE_TEST,
    Campaign,
    CampaignRecipient,
    MailTemplate,
    SendLog,
    is_suppressed,
)
from addon.mailing.quota import WINDOW, schedule
from addon.mailing.sender import Sender
from addon.mailing.templates import MissingValues, Rendered
from addon.mailing.usage import aware, sender_usage

__all__ = ["CampaignError"]

NO_EMAIL, SUPPRESSED, DUPLICATE, CANCELLED_REASON = (
    "no email address",
    "suppressed (unsubscribed or bounced)",
    "duplicate address",
    "campaign cancelled",
)
# Forecasts simulate at most this many sends (a campaign larger than that is days long).
FORECAST_LIMIT = 50_000


@dataclass(frozen=True)
class Excluded:
    """A record left out of a campaign, and why."""

    record_id: int
    email: str | None
    reason: str


@dataclass(frozen=True)
class Planned:
    """A recipient a campaign will send to."""

    record_id: int
    email: str
    subject: str


@dataclass
class Plan:
    """Who a campaign would send to now, and who it leaves out."""

    recipients: list[Planned] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """A campaign's counts and timing, for the progress card."""

    sent: int
    queued: int
    failed: int
    skipped: int
    bounced: int
    next_send_at: datetime | None
    forecast_finish_at: datetime | None
    quota_used: int
    quota_cap: int


class _Owned(Protocol):
    workspace_id: int


_T = TypeVar("_T", bound=_Owned)


def _owned(
    session: Session, model: type[_T], object_id: int | None, workspace_id: int, what: str
) -> _T | None:
    """The object if it exists in the workspace; a foreign id reads as a missing one."""
    if object_id is None:
        return None
    found = session.get(model, object_id)
    if found is None or found.workspace_id != workspace_id:
        raise CampaignError(f"that {what} does not exist in this workspace")
    return found


def create_campaign(
    session: Session,
    member: Member,
    *,
    name: str,
    template_id: int,
    view_id: int | None = None,
    folder_id: int | None = None,
    cc: str = "",
    bcc: str = "",
    human_gaps: bool = False,
) -> Campaign:
    """A draft campaign of the member's, sending from the member's mailbox."""
    require(member, "send_campaigns")
    name = " ".join((name or "").split())
    if not name:
        raise CampaignError("give the campaign a name")
    if len(name) > 200:
        raise CampaignError("the campaign name is longer than 200 characters")
    if (view_id is None) == (folder_id is None):
        raise CampaignError("choose the view (or folder) of contacts to send to")
    ws = member.workspace_id
    _owned(session, MailTemplate, template_id, ws, "template")
    view = _owned(session, SavedView, view_id, ws, "view")
    if view is not None and view.owner_id not in (None, member.id):
        raise CampaignError("that view does not exist in this workspace")
    _owned(session, Folder, folder_id, ws, "folder")
    campaign = Campaign(
        workspace_id=ws,
        sender_member_id=member.id,
        template_id=template_id,
        view_id=view_id,
        folder_id=folder_id,
        name=name,
        status=DRAFT,
        status_reason="",
        cc=", ".join(parse_copies(cc, "Cc")),
        bcc=", ".join(parse_copies(bcc, "Bcc")),
        human_gaps=human_gaps,
    )
    recipients_per_message(campaign)
    session.add(campaign)
    session.flush()
    return campaign


def _record_ids(session: Session, campaign: Campaign, now: datetime) -> list[int]:
    if campaign.view_id is not None:
        view = session.get(SavedView, campaign.view_id)
        if view is None:
            raise CampaignError("the campaign's view was deleted")
        folder = session.get(Folder, view.folder_id)
        assert folder is not None
        query = view_record_ids(session, folder, load_definition(session, view), today=now.date())
        return sorted(session.scalars(query))
    if campaign.folder_id is None:
        raise CampaignError("the campaign has no view or folder")
    return sorted(
        session.scalars(
            select(Record.id).where(
                Record.workspace_id == campaign.workspace_id,
                Record.folder_id == campaign.folder_id,
            )
        )
    )


def _fallback_emails(session: Session, record_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(record_ids), 900):
        chunk = record_ids[start : start + 900]
        for rid, email in session.execute(
            select(RecordEmail.record_id, RecordEmail.email)
            .where(RecordEmail.record_id.in_(chunk))
            .order_by(RecordEmail.id)
        ):
            found.setdefault(rid, email)
    return found


def plan_recipients(
    session: Session, campaign: Campaign, now: datetime, composer: Composer | None = None
) -> Plan:
    """Who the campaign would send to if it started now, and who is left out with reasons."""
    template = session.get(MailTemplate, campaign.template_id)
    sender = session.get(Member, campaign.sender_member_id)
    if template is None or sender is None:
        raise CampaignError("the campaign's template or sender no longer exists")
    composer = composer or Composer("", "")
    ids = _record_ids(session, campaign, now)
    values = merge_values(session, campaign.workspace_id, ids, sender, clock=lambda: now)
    fallback = _fallback_emails(session, ids)
    plan = Plan()
    addresses: dict[int, str] = {}
    for rid in ids:
        raw = (values.get(rid) or {}).get("email") or fallback.get(rid)
        email = canonical_email(raw) if raw else None
        if email is None:
            plan.excluded.append(Excluded(rid, None, NO_EMAIL))
        else:
            addresses[rid] = email
    suppressed = is_suppressed(session, campaign.workspace_id, set(addresses.values()))
    seen: set[str] = set()
    for rid, email in addresses.items():
        if email in seen:
            plan.excluded.append(Excluded(rid, email, DUPLICATE))
            continue
        seen.add(email)
        if email in suppressed:
            plan.excluded.append(Excluded(rid, email, SUPPRESSED))
            continue
        rendered = composer.render(template, values.get(rid) or {})
        if isinstance(rendered, MissingValues):
            plan.excluded.append(Excluded(rid, email, rendered.message))
            continue
        plan.recipients.append(Planned(rid, email, rendered.subject))
    return plan


def resolve_recipients(session: Session, campaign: Campaign, now: datetime) -> Plan:
    """Turn the plan into queue rows, each with its Message-ID; flushes only."""
    if session.scalar(
        select(func.count(CampaignRecipient.id)).where(CampaignRecipient.campaign_id == campaign.id)
    ):
        raise CampaignError("the campaign's recipients are already resolved")
    sender = session.get(Member, campaign.sender_member_id)
    assert sender is not None
    plan = plan_recipients(session, campaign, now)
    count = recipients_per_message(campaign)
    rows = [
        {
            "workspace_id": campaign.workspace_id,
            "campaign_id": campaign.id,
            "record_id": p.record_id,
            "email": p.email,
            "state": QUEUED,
            "message_id": new_message_id(campaign.id, sender.email),
            "attempts": 0,
            "recipients_count": count,
            "rendered_subject": p.subject[:998],
        }
        for p in plan.recipients
    ]
    # Left-out records with an address stay visible as skipped (a duplicate's address
    # already has its row).
    rows += [
        {
            "workspace_id": campaign.workspace_id,
            "campaign_id": campaign.id,
            "record_id": e.record_id,
            "email": e.email,
            "state": SKIPPED,
            "skip_reason": e.reason[:200],
            "message_id": new_message_id(campaign.id, sender.email),
            "attempts": 0,
            "recipients_count": count,
        }
        for e in plan.excluded
        if e.email is not None and e.reason != DUPLICATE
    ]
    for start in range(0, len(rows), 1000):
        session.execute(insert(CampaignRecipient), rows[start : start + 1000])
    session.flush()
    return plan


def start_campaign(
    session: Session, campaign: Campaign, now: datetime, scheduled_at: datetime | None = None
) -> Plan | None:
    """Start now (resolving recipients) or schedule a later start; flushes only."""
    if campaign.status not in (DRAFT, SCHEDULED):
        raise CampaignError(f"a {campaign.status} campaign cannot be started")
    campaign.updated_at = now
    sender = session.get(Member, campaign.sender_member_id)
    if scheduled_at is not None and scheduled_at > now:
        campaign.status = SCHEDULED
        campaign.scheduled_at = scheduled_at
        session.flush()
        _audit_start(
            session,
            sender,
            campaign,
            f"Scheduled campaign “{campaign.name}”",
            {"scheduled_at": scheduled_at.isoformat()},
        )
        return None
    plan = resolve_recipients(session, campaign, now)
    campaign.status = RUNNING if plan.recipients else COMPLETED
    campaign.started_at = now
    if not plan.recipients:
        campaign.finished_at = now
        campaign.status_reason = "no recipient to send to"
    session.flush()
    _audit_start(
        session,
        sender,
        campaign,
        f"Started campaign “{campaign.name}”",
        {
            "recipients": len(plan.recipients),
            "excluded": len(plan.excluded),
        },
    )
    return plan


def _audit_start(
    session: Session, sender: Member | None, campaign: Campaign, summary: str, more: dict[str, Any]
) -> None:
    # Starting a campaign sends mail in the sender's name: the audit log keeps who and what.
    record_audit(
        session,
        sender,
        "campaign_start",
        workspace_id=campaign.workspace_id,
        summary=summary[:500],
        after={
            "campaign_id": campaign.id,
            "template_id": campaign.template_id,
            "view_id": campaign.view_id,
            **more,
        },
    )


def start_due(session: Session, now: datetime) -> list[Campaign]:
    """Start scheduled campaigns whose time has come; flushes only."""
    due = list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status == SCHEDULED, Campaign.scheduled_at <= now)
            .order_by(Campaign.id)
        )
    )
    for campaign in due:
        try:
            start_campaign(session, campaign, now)
        except CampaignError as exc:
            campaign.status = PAUSED
            campaign.status_reason = f"could not start: {exc}"
    session.flush()
    return due


def pause_campaign(session: Session, campaign: Campaign, now: datetime, reason: str = "") -> None:
    """Stop sending until resumed (a scheduled campaign stays unresolved); flushes only."""
    if campaign.status not in (RUNNING, SCHEDULED):
        raise CampaignError(f"a {campaign.status} campaign cannot be paused")
    campaign.status = PAUSED
    campaign.status_reason = reason or "paused"
    campaign.updated_at = now
    session.flush()


def resume_campaign(session: Session, campaign: Campaign, now: datetime) -> None:
    """Carry on sending (or wait for the scheduled start again); flushes only."""
    if campaign.status != PAUSED:
        raise CampaignError(f"a {campaign.status} campaign cannot be resumed")
    campaign.status = RUNNING if campaign.started_at is not None else SCHEDULED
    if campaign.status == SCHEDULED and campaign.scheduled_at is None:
        campaign.scheduled_at = now
    campaign.status_reason = ""
    campaign.updated_at = now
    session.flush()


def cancel_campaign(session: Session, campaign: Campaign, now: datetime) -> None:
    """Stop for good: queued recipients are skipped; flushes only."""
    if campaign.status in (COMPLETED, CANCELLED):
        raise CampaignError(f"a {campaign.status} campaign cannot be cancelled")
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.state == QUEUED)
        .values(state=SKIPPED, skip_reason=CANCELLED_REASON),
        execution_options={"synchronize_session": False},
    )
    campaign.status = CANCELLED
    campaign.finished_at = now
    campaign.updated_at = now
    session.flush()


def finish_if_done(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Mark a running campaign completed when nothing is left to send; flushes only."""
    if campaign.status != RUNNING:
        return False
    left = session.scalar(
        select(func.count(CampaignRecipient.id)).where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.state.in_((QUEUED, SENDING)),
        )
    )
    if left:
        return False
    campaign.status = COMPLETED
    campaign.finished_at = now
    campaign.updated_at = now
    session.flush()
    return True


def campaign_progress(session: Session, campaign: Campaign, now: datetime) -> Progress:
    """Counts by state, and when the next message and the last one should go."""
    counts = dict(
        session.execute(
            select(CampaignRecipient.state, func.count(CampaignRecipient.id))
            .where(CampaignRecipient.campaign_id == campaign.id)
            .group_by(CampaignRecipient.state)
        ).all()
    )
    bounced = session.scalar(
        select(func.count(CampaignRecipient.id)).where(
            CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.bounced_at.is_not(None)
        )
    )
    member = session.get(Member, campaign.sender_member_id)
    assert member is not None
    usage = sender_usage(session, member, now)
    queued = int(counts.get(QUEUED, 0)) + int(counts.get(SENDING, 0))
    next_at: datetime | None = None
    finish_at: datetime | None = None
    if campaign.status in (RUNNING, SCHEDULED) and (queued or campaign.status == SCHEDULED):
        start = max(now, aware(campaign.scheduled_at)) if campaign.scheduled_at else now
        events = [
            (aware(when), int(n))
            for when, n in session.execute(
                select(SendLog.sent_at, SendLog.recipients)
                .where(SendLog.sender_member_id == member.id, SendLog.sent_at > now - WINDOW)
                .order_by(SendLog.sent_at)
            )
        ]
        per_message = recipients_per_message(campaign)
        times = schedule(
            now=start,
            counts=[per_message] * min(max(queued, 1), FORECAST_LIMIT),
            cap=usage.policy.cap,
            window_events=events,
            last_send_at=usage.last_send_at,
            min_interval=usage.policy.min_interval,
        )
        next_at, finish_at = times[0], times[-1]
    return Progress(
        sent=int(counts.get(SENT, 0)),
        queued=queued,
        failed=int(counts.get(RECIPIENT_FAILED, 0)),
        skipped=int(counts.get(SKIPPED, 0)),
        bounced=int(bounced or 0),
        next_send_at=next_at,
        forecast_finish_at=finish_at,
        quota_used=usage.used,
        quota_cap=usage.policy.cap,
    )


def send_test(
    session: Session,
    member: Member,
    campaign: Campaign,
    sender: Sender,
    composer: Composer,
    now: datetime,
    record_id: int | None = None,
) -> str:
    """Send one recipient's message to the member's own address, counted in the quota.

    The message is sent at once (the caller commits the send-log row right after); its
    unsubscribe link names no recipient.
    """
    if campaign.workspace_id != member.workspace_id or campaign.sender_member_id != member.id:
        raise CampaignError("only the campaign's sender can send a test")
    template = session.get(MailTemplate, campaign.template_id)
    assert template is not None
    plan = plan_recipients(session, campaign, now, composer)
    chosen = next(
        (p for p in plan.recipients if record_id is None or p.record_id == record_id), None
    )
    if chosen is None:
        raise CampaignError("no recipient of this campaign can be previewed for a test")
    values = merge_values(
        session, campaign.workspace_id, [chosen.record_id], member, clock=lambda: now
    )
    rendered = composer.render(template, values.get(chosen.record_id) or {})
    assert isinstance(rendered, Rendered)
    usage = sender_usage(session, member, now)
    if usage.used + 1 > usage.policy.cap:
        raise CampaignError("the daily sending cap is used up; try the test later")
    probe = CampaignRecipient(
        id=0, workspace_id=campaign.workspace_id, email=chosen.email, message_id=""
    )
    raw = composer.build(
        member=member,
        campaign=campaign,
        recipient=probe,
        rendered=rendered,
        date=now,
        to=member.email,
        subject_prefix="[Test] ",
    )
    gmail_id = sender.send(raw)
    session.add(
        SendLog(
            workspace_id=member.workspace_id,
            sender_member_id=member.id,
            sent_at=now,
            recipients=1,
            campaign_id=campaign.id,
            source=SOURCE_TEST,
        )
    )
    session.flush()
    return gmail_id


def pending_campaigns(session: Session, member: Member) -> list[Campaign]:
    """The member's campaigns that still send or wait (running, scheduled, paused)."""
    return list(
        session.scalars(
            select(Campaign)
            .where(
                Campaign.sender_member_id == member.id,
                Campaign.status.in_((RUNNING, SCHEDULED, PAUSED)),
            )
            .order_by(Campaign.id)
        )
    )


def since_started(campaigns: Sequence[Campaign], default: datetime) -> datetime:
    """The earliest start among campaigns (the bounce scan looks back that far)."""
    starts = [aware(c.started_at) for c in campaigns if c.started_at is not None]
    return min(starts, default=default) - timedelta(minutes=5)
