"""The mail-merge worker: claim, reconcile, pace under the quota, send, record, scan bounces.

Exactly once: a recipient's Message-ID exists before the first attempt. Before each send
the worker commits state `sending` together with a quota reservation (a send-log row);
after the send it commits `sent`. A recipient found in state `sending` had an attempt
whose outcome was never recorded (crash, timeout, 5xx), so the sender's mailbox is
searched for its Message-ID before anything is resent.

Pacing: a send waits until the sender's rolling-window use plus this message fits the
cap, and until the per-user rate allows (plus a human-like gap when the campaign asks).
On PostgreSQL the check and the reservation happen under a lock of the sender's member
row, so workers sharing a sender never overshoot together.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from addon.crm.models import Member
from addon.ledger.ingest import record_messages
from addon.ledger.parse import LedgerInput, message_ids
from addon.mailing.campaigns import finish_if_done, since_started, start_due
from addon.mailing.clock import Clock
from addon.mailing.compose import Composer
from addon.mailing.context import merge_values
from addon.mailing.mime import MessageError
from addon.mailing.models import (
    BOUNCED,
    PAUSED,
    QUEUED,
    RECIPIENT_FAILED,
    RUNNING,
    SENDING,
    SENT,
    SKIPPED,
    SOURCE_CAMPAIGN,
    Campaign,
    CampaignRecipient,
    MailTemplate,
    SendLog,
    suppress,
)
from addon.mailing.queue import LEASE, claim, next_due_at, release, senders_with_work
from addon.mailing.quota import WINDOW, Event, QuotaError, human_gap
from addon.mailing.sender import (
    GrantRevoked,
    OutcomeUnknown,
    RateLimited,
    RecipientRejected,
    Sender,
    SenderFactory,
    SendError,
)
from addon.mailing.templates import MissingValues
from addon.mailing.usage import aware, earliest_send, outside_events

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    """How a worker behaves; the defaults follow Gmail's documented limits."""

    worker_id: str = field(default_factory=lambda: f"worker-{uuid.uuid4().hex[:12]}")
    base_url: str = "http://127.0.0.1:8080"
    secret: str = ""
    lease: timedelta = LEASE
    batch: int = 20
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=15)
    # A wait shorter than this is slept through holding the claimed batch.
    short_wait: timedelta = timedelta(seconds=5)
    idle_poll: timedelta = timedelta(seconds=30)
    bounce_scan_every: timedelta = timedelta(minutes=15)
    # How long mail a sender sent outside the add-on (from the ledger) is cached.
    outside_refresh: timedelta = timedelta(minutes=1)
    # Overrides the per-user send interval (None: Gmail's, from the quota policy).
    min_interval: timedelta | None = None
    record_ledger: bool = True


@dataclass
class RunReport:
    """What a run did."""

    sent: int = 0
    reconciled: int = 0  # found already sent in the mailbox, not resent
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    bounced: int = 0
    paused_campaigns: int = 0
    ticks: int = 0


class _Stop(Exception):
    """Stop working for this sender now; `until` says when to come back."""

    def __init__(self, until: datetime | None) -> None:
        super().__init__()
        self.until = until


class Worker:
    """Sends what is due for every sender with running campaigns."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sender_for: SenderFactory,
        clock: Clock,
        settings: WorkerSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.sender_for = sender_for
        self.clock = clock
        self.settings = settings or WorkerSettings()
        self.rng = rng or random.Random()
        self.composer = Composer(self.settings.base_url, self.settings.secret)
        self.report = RunReport()
        self._senders: dict[int, Sender] = {}
        self._not_before: dict[int, datetime] = {}
        self._last_bounce_scan: dict[int, datetime] = {}
        self._outside: dict[int, tuple[datetime, list[Event]]] = {}

    # -- the loop ---------------------------------------------------------------------

    def run(
        self, *, once: bool = False, max_seconds: float | None = None, until_done: bool = False
    ) -> RunReport:
        """Work in a loop, sleeping on the clock between due moments.

        `once`: do what is due now, then stop. `until_done`: stop when nothing is pending.
        `max_seconds`: stop after that much clock time. Otherwise run forever.
        """
        started = self.clock.now()
        while True:
            wake = self.tick(scan_bounces=not once)
            now = self.clock.now()
            if once and (wake is None or wake > now):
                self.scan_bounces(force=True)
                return self.report
            if until_done and wake is None:
                self.scan_bounces(force=True)
                return self.report
            elapsed = (now - started).total_seconds()
            if max_seconds is not None and elapsed >= max_seconds:
                return self.report
            until = wake if wake is not None else now + self.settings.idle_poll
            pause = max(0.0, (until - now).total_seconds())
            if max_seconds is not None:
                pause = min(pause, max(max_seconds - elapsed, 0.0))
            self.clock.sleep(pause)

    def tick(self, scan_bounces: bool = True) -> datetime | None:
        """Do everything due now; when the next thing will be due (None: nothing pending)."""
        self.report.ticks += 1
        now = self.clock.now()
        with self.sessions() as session:
            start_due(session, now)
            session.commit()
            senders = senders_with_work(session)
        wake: datetime | None = None
        for member_id in senders:
            until = self._work_sender(member_id)
            if until is not None and (wake is None or until < wake):
                wake = until
        if scan_bounces:
            self.scan_bounces()
        return wake

    # -- one sender -------------------------------------------------------------------

    def _sender(self, session: Session, member: Member) -> Sender:
        found = self._senders.get(member.id)
        if found is None:
            found = self.sender_for(session, member)
            self._senders[member.id] = found
        return found

    def _work_sender(self, member_id: int) -> datetime | None:
        with self.sessions() as session:
            member = session.get(Member, member_id)
            assert member is not None
            try:
                sender = self._sender(session, member)
            except GrantRevoked as exc:
                self._pause_sender(session, member, str(exc))
                return None
            while True:
                now = self.clock.now()
                hold = self._not_before.get(member_id)
                if hold is not None and hold > now:
                    return hold
                claimed = claim(
                    session,
                    worker_id=self.settings.worker_id,
                    now=now,
                    sender_member_id=member_id,
                    limit=self.settings.batch,
                    lease=self.settings.lease,
                )
                session.commit()
                if not claimed:
                    self.record_in_ledger(session, member)
                    for campaign in session.scalars(
                        select(Campaign).where(
                            Campaign.sender_member_id == member_id, Campaign.status == RUNNING
                        )
                    ):
                        finish_if_done(session, campaign, now)
                    session.commit()
                    return next_due_at(session, member_id, now)
                try:
                    self._work_batch(session, member, sender, claimed)
                except _Stop as stop:
                    session.rollback()
                    release(session, claimed, self.settings.worker_id)
                    session.commit()
                    self.record_in_ledger(session, member)
                    return stop.until
                self.record_in_ledger(session, member)

    def _work_batch(
        self, session: Session, member: Member, sender: Sender, claimed: list[CampaignRecipient]
    ) -> None:
        values_by_campaign: dict[int, dict[int, dict[str, str | None]]] = {}
        for recipient in claimed:
            campaign = session.get(Campaign, recipient.campaign_id)
            assert campaign is not None
            if campaign.status != RUNNING:
                release(session, [recipient], self.settings.worker_id)
                session.commit()
                continue
            if campaign.id not in values_by_campaign:
                ids = [r.record_id for r in claimed if r.campaign_id == campaign.id and r.record_id]
                values_by_campaign[campaign.id] = merge_values(
                    session, campaign.workspace_id, ids, member, clock=self.clock.now
                )
            self._deliver(session, member, sender, campaign, recipient, values_by_campaign)

    def _deliver(
        self,
        session: Session,
        member: Member,
        sender: Sender,
        campaign: Campaign,
        recipient: CampaignRecipient,
        values: dict[int, dict[int, dict[str, str | None]]],
    ) -> None:
        now = self.clock.now()
        if recipient.state == SENDING and not self._reconcile(session, sender, member, recipient):
            return
        if recipient.state != QUEUED:
            return
        template = session.get(MailTemplate, campaign.template_id)
        record_values = values.get(campaign.id, {}).get(recipient.record_id or 0)
        if template is None or record_values is None:
            self._finish(session, recipient, SKIPPED, "the record or template was deleted")
            return
        rendered = self.composer.render(template, record_values)
        if isinstance(rendered, MissingValues):
            self._finish(session, recipient, SKIPPED, rendered.message)
            return
        if not self._reserve(session, member, campaign, recipient):
            return
        now = self.clock.now()
        try:
            raw = self.composer.build(
                member=member, campaign=campaign, recipient=recipient, rendered=rendered, date=now
            )
        except MessageError as exc:
            self._unreserve(session, recipient)
            self._finish(session, recipient, RECIPIENT_FAILED, str(exc))
            return
        try:
            gmail_id = sender.send(raw)
        except RateLimited as exc:
            self._unreserve(session, recipient)
            recipient.state = QUEUED
            wait = self._retry(recipient, exc.retry_after)
            self._not_before[member.id] = wait
            session.commit()
            raise _Stop(wait) from exc
        except RecipientRejected as exc:
            self._unreserve(session, recipient)
            self._finish(session, recipient, RECIPIENT_FAILED, str(exc))
            return
        except OutcomeUnknown as exc:
            # Keep the reservation and state `sending`: the message may be out.
            self._touch_reservation(session, recipient)
            self._retry(recipient, exc.retry_after)
            self.report.retried += 1
            session.commit()
            return
        except GrantRevoked as exc:
            self._unreserve(session, recipient)
            recipient.state = QUEUED
            session.commit()
            self._pause_sender(session, member, str(exc))
            raise _Stop(None) from exc
        self._mark_sent(session, member, campaign, recipient, gmail_id, rendered.subject)

    # -- steps ------------------------------------------------------------------------

    def _reconcile(
        self, session: Session, sender: Sender, member: Member, recipient: CampaignRecipient
    ) -> bool:
        """Settle an attempt of unknown outcome; True when the recipient is queued again."""
        try:
            gmail_id = sender.find_by_message_id(recipient.message_id)
        except GrantRevoked as exc:
            self._pause_sender(session, member, str(exc))
            raise _Stop(None) from exc
        except SendError as exc:
            retry_after = getattr(exc, "retry_after", None)
            self._retry(recipient, retry_after)
            session.commit()
            return False
        if gmail_id is not None:
            campaign = session.get(Campaign, recipient.campaign_id)
            assert campaign is not None
            self.report.reconciled += 1
            self._mark_sent(
                session, member, campaign, recipient, gmail_id, recipient.rendered_subject or ""
            )
            return False
        # Not in the mailbox: never sent. Its reservation goes; the send reserves anew.
        self._unreserve(session, recipient)
        if recipient.attempts >= self.settings.max_attempts:
            self._finish(
                session,
                recipient,
                RECIPIENT_FAILED,
                f"gave up after {recipient.attempts} attempts without an answer from Gmail",
            )
            return False
        recipient.state = QUEUED
        session.commit()
        return True

    def _reserve(
        self, session: Session, member: Member, campaign: Campaign, recipient: CampaignRecipient
    ) -> bool:
        """Wait for the quota and rate, then commit `sending` with a send-log reservation.

        False when the message can never fit (it is failed with the reason).
        """
        gap = human_gap(recipient.message_id) if campaign.human_gaps else timedelta(0)
        while True:
            now = self.clock.now()
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(Member.id).where(Member.id == member.id).with_for_update())
            try:
                at = earliest_send(
                    session,
                    member,
                    now,
                    recipient.recipients_count,
                    gap,
                    min_interval=self.settings.min_interval,
                    outside=self._outside_of(session, member, now),
                )
            except QuotaError as exc:
                session.commit()
                self._finish(session, recipient, RECIPIENT_FAILED, str(exc))
                return False
            if at <= now:
                break
            # Ends the transaction (and the lock) without expiring the loaded rows.
            session.commit()
            if at - now > self.settings.short_wait:
                raise _Stop(at)
            self.clock.sleep((at - now).total_seconds())
        # Only while this worker still holds the lease (one that ran out may have passed
        # the row to another worker, which then owns the send), the row is still queued
        # (not unsubscribed meanwhile) and the campaign still running.
        lease_end = now + self.settings.lease
        taken = session.execute(
            update(CampaignRecipient)
            .where(
                CampaignRecipient.id == recipient.id,
                CampaignRecipient.claimed_by == self.settings.worker_id,
                CampaignRecipient.state == QUEUED,
                # A pause or cancel made while the batch was claimed takes effect here.
                CampaignRecipient.campaign_id.in_(
                    select(Campaign.id).where(Campaign.status == RUNNING)
                ),
            )
            .values(
                state=SENDING, attempts=CampaignRecipient.attempts + 1, claimed_until=lease_end
            ),
            execution_options={"synchronize_session": False},
        )
        if getattr(taken, "rowcount", 0) != 1:
            session.rollback()
            return False
        session.add(
            SendLog(
                workspace_id=recipient.workspace_id,
                sender_member_id=member.id,
                sent_at=now,
                recipients=recipient.recipients_count,
                campaign_id=campaign.id,
                source=SOURCE_CAMPAIGN,
                message_key=_key(recipient.message_id),
            )
        )
        session.commit()
        set_committed_value(recipient, "state", SENDING)
        set_committed_value(recipient, "attempts", recipient.attempts + 1)
        set_committed_value(recipient, "claimed_until", lease_end)
        return True

    def _outside_of(self, session: Session, member: Member, now: datetime) -> list[Event]:
        """The member's mail sent outside the add-on, reloaded at most once a refresh period."""
        cached = self._outside.get(member.id)
        if cached is None or now - cached[0] >= self.settings.outside_refresh or cached[0] > now:
            cached = (now, outside_events(session, member, now - WINDOW))
            self._outside[member.id] = cached
        return cached[1]

    def _reservation(self, session: Session, recipient: CampaignRecipient) -> SendLog | None:
        return session.scalar(
            select(SendLog).where(
                SendLog.campaign_id == recipient.campaign_id,
                SendLog.message_key == _key(recipient.message_id),
            )
        )

    def _unreserve(self, session: Session, recipient: CampaignRecipient) -> None:
        session.execute(
            delete(SendLog).where(
                SendLog.campaign_id == recipient.campaign_id,
                SendLog.message_key == _key(recipient.message_id),
            )
        )

    def _touch_reservation(self, session: Session, recipient: CampaignRecipient) -> None:
        # The message may have left at any moment up to now: count it from now.
        found = self._reservation(session, recipient)
        if found is not None:
            found.sent_at = self.clock.now()

    def _retry(self, recipient: CampaignRecipient, retry_after: float | None) -> datetime:
        """Schedule the next attempt: exponential backoff with jitter, Retry-After honoured."""
        now = self.clock.now()
        step = self.settings.backoff_base * (2 ** max(0, recipient.attempts - 1))
        step = min(step, self.settings.backoff_max)
        delay = step * (0.5 + self.rng.random() / 2)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        recipient.next_attempt_at = now + delay
        recipient.claimed_by = None
        recipient.claimed_until = None
        return recipient.next_attempt_at

    def _finish(
        self, session: Session, recipient: CampaignRecipient, state: str, reason: str
    ) -> None:
        recipient.state = state
        if state == SKIPPED:
            recipient.skip_reason = reason[:200]
            self.report.skipped += 1
        else:
            recipient.fail_reason = reason[:500]
            self.report.failed += 1
        recipient.claimed_by = None
        recipient.claimed_until = None
        session.commit()

    def _mark_sent(
        self,
        session: Session,
        member: Member,
        campaign: Campaign,
        recipient: CampaignRecipient,
        gmail_id: str,
        subject: str,
    ) -> None:
        now = self.clock.now()
        recipient.state = SENT
        recipient.gmail_message_id = gmail_id
        recipient.sent_at = now
        recipient.claimed_by = None
        recipient.claimed_until = None
        recipient.next_attempt_at = None
        if subject and not recipient.rendered_subject:
            recipient.rendered_subject = subject[:998]
        self._touch_reservation(session, recipient)
        session.commit()
        self.report.sent += 1

    def record_in_ledger(self, session: Session, member: Member) -> int:
        """Enter the member's sent campaign messages the ledger lacks, in one batch.

        Runs after each batch of sends (and so after a crash too): sending never waits for
        the ledger, and the ledger ignores a Message-ID it already holds.
        """
        if not self.settings.record_ledger:
            return 0
        rows = session.execute(
            select(CampaignRecipient, Campaign.cc, Campaign.bcc)
            .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            .where(
                Campaign.sender_member_id == member.id,
                CampaignRecipient.state == SENT,
                CampaignRecipient.recorded_at.is_(None),
            )
            .order_by(CampaignRecipient.id)
            .limit(1000)
        ).all()
        if not rows:
            return 0
        record_messages(
            session,
            member,
            [
                LedgerInput(
                    message_id=r.message_id,
                    gmail_id=r.gmail_message_id or "",
                    gmail_thread_id=r.gmail_message_id or "",
                    sender=member.email,
                    to=r.email,
                    cc=cc,
                    bcc=bcc,
                    date=format_datetime(aware(r.sent_at)) if r.sent_at else "",
                    subject=r.rendered_subject or "",
                    label_ids=("SENT",),
                    internal_date=aware(r.sent_at) if r.sent_at else None,
                )
                for r, cc, bcc in rows
            ],
            clock=self.clock.now,
        )
        now = self.clock.now()
        for recipient, _cc, _bcc in rows:
            recipient.recorded_at = now
        session.commit()
        return len(rows)

    def _pause_sender(self, session: Session, member: Member, reason: str) -> None:
        """Pause the member's running campaigns, saying why."""
        self._senders.pop(member.id, None)
        now = self.clock.now()
        for campaign in session.scalars(
            select(Campaign).where(
                Campaign.sender_member_id == member.id, Campaign.status == RUNNING
            )
        ):
            campaign.status = PAUSED
            campaign.status_reason = (
                f"Sending paused: {reason}. Grant Gmail sending permission again, then resume."
            )[:500]
            campaign.updated_at = now
            self.report.paused_campaigns += 1
        session.commit()

    # -- bounces ----------------------------------------------------------------------

    def scan_bounces(self, force: bool = False) -> int:
        """Mark recipients cited by delivery-failure reports bounced and suppress them."""
        now = self.clock.now()
        found = 0
        with self.sessions() as session:
            member_ids = list(
                session.scalars(
                    select(Campaign.sender_member_id)
                    .where(
                        Campaign.started_at.is_not(None),
                        Campaign.started_at > now - timedelta(days=7),
                    )
                    .distinct()
                )
            )
            for member_id in member_ids:
                last = self._last_bounce_scan.get(member_id)
                if not force and last is not None and now - last < self.settings.bounce_scan_every:
                    continue
                self._last_bounce_scan[member_id] = now
                found += self._scan_member(session, member_id, now)
        self.report.bounced += found
        return found

    def _scan_member(self, session: Session, member_id: int, now: datetime) -> int:
        member = session.get(Member, member_id)
        assert member is not None
        campaigns = list(
            session.scalars(
                select(Campaign).where(
                    Campaign.sender_member_id == member_id,
                    Campaign.started_at > now - timedelta(days=7),
                )
            )
        )
        try:
            reports = self._sender(session, member).bounce_reports(since_started(campaigns, now))
        except GrantRevoked as exc:
            self._pause_sender(session, member, str(exc))
            return 0
        except SendError as exc:
            log.warning("bounce scan for member %s failed: %s", member_id, exc)
            return 0
        cited = {mid for report in reports for mid in report.cited_message_ids}
        if not cited:
            return 0
        marked = 0
        campaign_ids = [c.id for c in campaigns]
        for recipient in session.scalars(
            select(CampaignRecipient).where(
                CampaignRecipient.campaign_id.in_(campaign_ids),
                CampaignRecipient.message_id.in_(sorted(cited)),
                CampaignRecipient.bounced_at.is_(None),
            )
        ):
            recipient.bounced_at = now
            suppress(
                session, recipient.workspace_id, recipient.email, BOUNCED, recipient.campaign_id
            )
            marked += 1
        session.commit()
        return marked


def _key(message_id: str) -> str:
    """The ledger key of a Message-ID (no angle brackets, long ones hashed)."""
    keys = message_ids(message_id)
    return keys[0] if keys else message_id
