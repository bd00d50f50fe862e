"""LedgerInput, what every source hands the ledger, and its normalised form.

The sidebar (MessageMeta of the open message and threads.get metadata), mail merge (the
message it just sent) and mailbox sync all produce LedgerInput; parse_input turns one into
a ParsedMessage: its key, conversation root, date in UTC, direction and participants.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from addon.gmail.addresses import decode_header_text, parse_address_list
from addon.gmail.client import MessageMeta
from addon.ledger.models import INTERNAL, RECEIVED, SENT
from addon.ledger.policy import LinkPolicy

KEY_CHARS = 255
THREAD_ID_CHARS = 64
SUBJECT_CHARS = 500
# Labels of messages that were never sent or received as such.
SKIPPED_LABELS = {"DRAFT": "a draft", "SPAM": "spam"}


@dataclass(frozen=True)
class LedgerInput:
    """One message as a source saw it: ids plus raw header values ("" when absent)."""

    message_id: str
    gmail_id: str = ""
    gmail_thread_id: str = ""
    sender: str = ""  # From
    to: str = ""
    cc: str = ""
    bcc: str = ""
    date: str = ""
    subject: str = ""
    references: str = ""
    in_reply_to: str = ""
    label_ids: tuple[str, ...] = ()
    # Gmail's internalDate, used when the Date header is missing or unreadable.
    internal_date: datetime | None = None

    @classmethod
    def from_meta(cls, meta: MessageMeta, internal_date: datetime | None = None) -> LedgerInput:
        """The input of a message fetched with format=metadata (headers keyed lowercase)."""
        return cls(
            message_id=meta.header("message-id"),
            gmail_id=meta.id,
            gmail_thread_id=meta.thread_id,
            sender=meta.header("from"),
            to=meta.header("to"),
            cc=meta.header("cc"),
            bcc=meta.header("bcc"),
            date=meta.header("date"),
            subject=meta.header("subject"),
            references=meta.header("references"),
            in_reply_to=meta.header("in-reply-to"),
            label_ids=meta.label_ids,
            internal_date=internal_date or meta.internal_date,
        )


@dataclass(slots=True)
class ParsedMessage:
    """A message ready for the ledger; `participants` are (role, canonical email) pairs."""

    key: str
    conversation_key: str  # the root of its conversation (its own key when it starts one)
    parent_key: str | None
    gmail_thread_id: str
    sent_at: datetime
    direction: str
    subject: str
    from_email: str
    participants: list[tuple[str, str]] = field(default_factory=list)


_MSGID_RE = re.compile(r"<([^<>\s]+)>")
# RFC 5322 date: optional weekday, day, month name, year, time, numeric zone.
_DATE_RE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-])(\d{2})(\d{2})(?:\s*\(.*\))?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}


def _fit(key: str) -> str:
    # Message-IDs may legally be up to a header line long; longer ones are hashed so the
    # key still fits the indexed column and stays the same for every copy.
    if len(key) <= KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def message_ids(header: str) -> list[str]:
    """The Message-IDs of a Message-ID / References / In-Reply-To value, in order."""
    found = _MSGID_RE.findall(header or "")
    if not found:
        # Some mailers omit the angle brackets; a bare token with an "@" still identifies.
        bare = (header or "").strip()
        if bare and "@" in bare and not any(c.isspace() for c in bare):
            found = [bare]
    return [_fit(k) for k in found]


def edge_ids(header: str) -> tuple[str | None, str | None]:
    """The first and last Message-ID of a header (all a conversation needs of References)."""
    if not header:
        return None, None
    # Well-formed lists are split with str.find; anything else goes through the regex.
    start, end = header.find("<"), header.find(">")
    last_start, last_end = header.rfind("<"), header.rfind(">")
    if 0 <= start < end and last_start < last_end:
        first, last = header[start + 1 : end], header[last_start + 1 : last_end]
        if first and last and not _SPACE_OR_BRACKET.search(first + last):
            return _fit(first), _fit(last)
    ids = message_ids(header)
    return (ids[0], ids[-1]) if ids else (None, None)


_SPACE_OR_BRACKET = re.compile(r"[\s<>]")


def _subject(raw: str) -> str:
    # Plain one-line subjects (nearly all) need no unfolding or RFC 2047 decoding.
    if (
        "=?" not in raw
        and "  " not in raw
        and "\n" not in raw
        and "\r" not in raw
        and "\t" not in raw
    ):
        return raw.strip()[:SUBJECT_CHARS]
    return decode_header_text(raw)[:SUBJECT_CHARS]


def synthetic_key(sender: str, date: str, subject: str, gmail_id: str = "") -> str:
    """A stable key for a message without a Message-ID.

    Gmail ids differ per mailbox, but every copy of a message (the sender's, each
    teammate's, each re-open) carries the same From, Date and Subject headers, so a hash
    of those counts the message once. Without a Date header the copies cannot be told
    apart from other mail of that sender and subject, so the mailbox's Gmail id is added:
    re-opens still count once; only teammates' copies of such a message may count twice.
    """
    parts = [sender.strip().lower(), " ".join(date.split()), " ".join(subject.split())]
    if not date.strip():
        parts.append(gmail_id)
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"synthetic:{digest[:40]}"


def message_key(item: LedgerInput) -> str:
    """The ledger key of an input: its Message-ID, else the synthetic key."""
    return edge_ids(item.message_id)[0] or synthetic_key(
        item.sender, item.date, item.subject, item.gmail_id
    )


def parse_date(header: str) -> datetime | None:
    """The Date header as an aware UTC datetime, or None when unreadable."""
    match = _DATE_RE.match(header)
    if match is not None:
        # The common shape without the stdlib parser (which costs several microseconds).
        day, month, year, hour, minute, second, sign, zh, zm = match.groups()
        month_number = _MONTHS.get(month.lower())
        if month_number is not None:
            try:
                # The wall time read as UTC, less the zone's offset, is the UTC moment.
                wall = datetime(
                    int(year),
                    month_number,
                    int(day),
                    int(hour),
                    int(minute),
                    int(second or 0),
                    tzinfo=UTC,
                )
                return wall - _offset(sign, zh, zm)
            except (ValueError, OverflowError):
                return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        # "-0000" and zone-less dates: RFC 5322 says the zone is unknown; UTC is the
        # reading every copy agrees on.
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_OFFSETS: dict[tuple[str, str, str], timedelta] = {}
_DAY = timedelta(days=1)


def _offset(sign: str, hours: str, minutes: str) -> timedelta:
    """A numeric zone's offset from UTC (a mailbox's dates share a handful of zones)."""
    key = (sign, hours, minutes)
    offset = _OFFSETS.get(key)
    if offset is None:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        if offset >= _DAY:
            # As datetime.timezone refuses it: no zone is a day or more off UTC.
            raise ValueError(f"zone offset out of range: {sign}{hours}{minutes}")
        if sign == "-":
            offset = -offset
        if len(_OFFSETS) < 10_000:
            _OFFSETS[key] = offset
    return offset


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive values, as SQLite returns them, are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def direction_of(
    from_email: str,
    participants: list[tuple[str, str]],
    label_ids: tuple[str, ...],
    policy: LinkPolicy,
) -> str:
    """sent (by the workspace to someone outside), received (from outside) or internal."""
    # The SENT label marks the mailbox owner's own message, even from a send-as alias.
    from_inside = "SENT" in label_ids or (bool(from_email) and policy.is_internal(from_email))
    if not from_inside:
        return RECEIVED
    for role, email in participants:
        if role != "from" and not policy.is_internal(email):
            return SENT
    return INTERNAL


@functools.lru_cache(maxsize=65536)
def header_emails(header: str) -> tuple[str, ...]:
    """The canonical addresses of an address header, in order, each once (cached)."""
    return tuple(a.email for a in parse_address_list(header) if a.email)


@functools.lru_cache(maxsize=65536)
def role_pairs(role: str, header: str) -> tuple[tuple[str, str], ...]:
    """(role, canonical address) per address of a header, in order, each address once.

    Cached: a mailbox's From and To values recur a lot, the same value in either role
    (a contact's "Name <address>" is the From of their mail and the To of replies).
    """
    return tuple((role, email) for email in header_emails(header))


def parse_input(item: LedgerInput, policy: LinkPolicy) -> ParsedMessage | str:
    """The normalised message, or the reason it is not recorded."""
    for label in item.label_ids:
        if label in SKIPPED_LABELS:
            return f"skipped: {SKIPPED_LABELS[label]}"
    if len(item.gmail_thread_id) > THREAD_ID_CHARS:
        return "the Gmail thread id is too long"
    # Each header lists an address once (parse_address_list), and the role differs between
    # headers, so the pairs are distinct without a check.
    participants: list[tuple[str, str]] = []
    for role, header in (
        ("from", item.sender),
        ("to", item.to),
        ("cc", item.cc),
        ("bcc", item.bcc),
    ):
        if header:
            participants += role_pairs(role, header)
    if not participants:
        return "no sender or recipient address"
    sent_at = parse_date(item.date) if item.date else None
    if sent_at is None and item.internal_date is not None:
        sent_at = as_utc(item.internal_date)
    if sent_at is None:
        return "no readable date"
    # From comes first when it has an address.
    from_email = participants[0][1] if participants[0][0] == "from" else ""
    key = message_key(item)
    first_ref, last_ref = edge_ids(item.references)
    in_reply_to = edge_ids(item.in_reply_to)[0]
    root = first_ref or in_reply_to or key
    parent = in_reply_to or last_ref
    return ParsedMessage(
        key=key,
        conversation_key=root,
        parent_key=parent if parent != key else None,
        gmail_thread_id=item.gmail_thread_id,
        sent_at=sent_at,
        direction=direction_of(from_email, participants, item.label_ids, policy),
        subject=_subject(item.subject) if item.subject else "",
        from_email=from_email,
        participants=participants,
    )
