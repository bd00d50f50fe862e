"""Gmail sending quota arithmetic: pure functions over a rolling 24-hour window of recipients.

Google counts recipients (to + cc + bcc) per user over a rolling 24 hours: Workspace 2,000
(trial 500), consumer accounts about 500. We leave headroom by default (1,500 and 400) as
the tools users compare us with do; an admin may set a lower cap, never a higher one.

An event (sent_at, recipients) counts at instant t when t - 24 h < sent_at, so it stops
counting at exactly sent_at + 24 h. The same rule is enforced by the fake Gmail server.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WINDOW = timedelta(hours=24)
MAX_RECIPIENTS_PER_MESSAGE = 100
# Gmail API: 250 quota units per user per second, messages.send costs 100.
SENDS_PER_SECOND = 2.5
MIN_SEND_INTERVAL = timedelta(seconds=1 / SENDS_PER_SECOND)
# Human-like gaps between two sends of one sender, when a campaign asks for them.
HUMAN_GAP_SECONDS = (20.0, 75.0)

WORKSPACE, TRIAL, CONSUMER = "workspace", "trial", "consumer"
GOOGLE_LIMITS = {WORKSPACE: 2000, TRIAL: 500, CONSUMER: 500}
DEFAULT_CAPS = {WORKSPACE: 1500, TRIAL: 400, CONSUMER: 400}
# Workspace.settings keys an admin sets (addon.admin.domain edits them).
ACCOUNT_TYPE_SETTING = "gmail_plan"
CAP_SETTING = "daily_send_cap"

Event = tuple[datetime, int]


class QuotaError(ValueError):
    """A message that can never be sent under the quota; the message says why."""


@dataclass(frozen=True)
class QuotaPolicy:
    """The limits one sender works under."""

    account_type: str
    google_limit: int
    cap: int
    min_interval: timedelta = MIN_SEND_INTERVAL


def policy_for(is_consumer: bool, settings: Mapping[str, Any] | None) -> QuotaPolicy:
    """The sender's policy from the workspace kind and admin settings (never above Google's)."""
    settings = settings or {}
    if is_consumer:
        kind = CONSUMER
    else:
        kind = TRIAL if settings.get(ACCOUNT_TYPE_SETTING) == TRIAL else WORKSPACE
    limit = GOOGLE_LIMITS[kind]
    cap = DEFAULT_CAPS[kind]
    raw = settings.get(CAP_SETTING)
    if raw not in (None, ""):
        try:
            wanted = int(raw)
        except (TypeError, ValueError):
            wanted = cap
        # An admin may lower the cap, or raise it up to Google's limit, never beyond.
        cap = max(0, min(wanted, limit))
    return QuotaPolicy(account_type=kind, google_limit=limit, cap=cap)


def used_at(events: Iterable[Event], at: datetime) -> int:
    """Recipients counted at an instant: events with at - 24 h < sent_at <= at."""
    start = at - WINDOW
    return sum(n for when, n in events if start < when <= at)


def check_message_size(recipients: int, cap: int) -> None:
    """Refuse a message Gmail or the cap can never accept."""
    if recipients < 1:
        raise QuotaError("a message needs at least one recipient")
    if recipients > MAX_RECIPIENTS_PER_MESSAGE:
        raise QuotaError(
            f"{recipients} recipients in one message; Gmail accepts at most "
            f"{MAX_RECIPIENTS_PER_MESSAGE} (to + cc + bcc)"
        )
    if recipients > cap:
        raise QuotaError(f"{recipients} recipients in one message exceed the daily cap of {cap}")


def next_send_time(
    *,
    now: datetime,
    recipients: int,
    cap: int,
    window_events: Sequence[Event],
    used: int | None = None,
    last_send_at: datetime | None = None,
    min_interval: timedelta = MIN_SEND_INTERVAL,
    gap: timedelta = timedelta(0),
) -> datetime:
    """The earliest instant at or after `now` when a message to `recipients` fits.

    `window_events` are the events counted at `now`, oldest first; a prefix of them is
    enough (the answer is then a lower bound the caller re-checks). `used` is the total
    counted at `now` when only a prefix is given. Pacing: at least `min_interval` plus
    `gap` after the sender's last send.
    """
    check_message_size(recipients, cap)
    total = sum(n for _, n in window_events) if used is None else used
    at = now
    if last_send_at is not None:
        at = max(at, last_send_at + min_interval + gap)
    start = at - WINDOW
    # Events that have already left the window by `at` no longer count.
    for when, n in window_events:
        if when <= start:
            total -= n
    if total + recipients <= cap:
        return at
    for when, n in window_events:
        if when <= start:
            continue
        total -= n
        if total + recipients <= cap:
            return when + WINDOW
    # Only a prefix was given: the last expiry seen is a safe lower bound.
    return window_events[-1][0] + WINDOW if window_events else at


def schedule(
    *,
    now: datetime,
    counts: Sequence[int],
    cap: int,
    window_events: Sequence[Event],
    last_send_at: datetime | None = None,
    min_interval: timedelta = MIN_SEND_INTERVAL,
    gaps: Sequence[timedelta] | None = None,
) -> list[datetime]:
    """Send times of messages with these recipient counts, in order (for forecasts)."""
    window: deque[Event] = deque(sorted(e for e in window_events if e[0] > now - WINDOW))
    total = sum(n for _, n in window)
    times: list[datetime] = []
    last = last_send_at
    for index, count in enumerate(counts):
        check_message_size(count, cap)
        at = now if last is None else max(now, last + min_interval)
        if gaps and index > 0:
            at += gaps[index % len(gaps)]
        while window and window[0][0] <= at - WINDOW:
            total -= window.popleft()[1]
        while total + count > cap:
            expired_at, n = window.popleft()
            total -= n
            at = max(at, expired_at + WINDOW)
        while window and window[0][0] <= at - WINDOW:
            total -= window.popleft()[1]
        window.append((at, count))
        total += count
        times.append(at)
        last = at
    return times


def human_gap(key: str) -> timedelta:
    """A human-like pause after the message with this key; derived from the key so every
    worker computes the same one without shared state."""
    low, high = HUMAN_GAP_SECONDS
    fraction = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return timedelta(seconds=low + (high - low) * fraction)
