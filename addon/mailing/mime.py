"""Building one merge message as RFC 5322 bytes, fast.

The message is written by hand (the stdlib email package's generator costs more than the
rest of sending one message) and tests parse every shape back with the email package.
Lines end in CRLF; headers are ASCII (non-ASCII subjects and display names as RFC 2047
encoded words); bodies are 7bit when they are short-lined ASCII, else quoted-printable
UTF-8. Every header value is checked for line breaks, so no argument can add a header;
`to` must name exactly one recipient (a merge message never goes to everyone at once).

Unsubscribing: the List-Unsubscribe header carries the signed https link (and a mailto:
when given) and List-Unsubscribe-Post makes it one-click (RFC 8058). The link is also
in the body: when a template does not place it (`{{unsubscribe_url}}`), a short footer
is added to the text and HTML bodies.
"""

from __future__ import annotations

import binascii
import re
import secrets
from base64 import b64encode
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from functools import lru_cache
from html import escape

MAX_LINE = 998
_FOLD_AT = 78
# Characters of UTF-8 bytes per encoded word: 45 bytes make 60 base64 characters, so
# "=?utf-8?b?" + 60 + "?=" stays within the 75 RFC 2047 allows.
_WORD_BYTES = 45
_BREAKS = re.compile(r"[\r\n]")
_NEWLINES = re.compile(r"\r\n?")
_NON_ASCII = re.compile(r"[^\x20-\x7e\t\r\n]")
# A bare address with nothing to parse (the usual recipient): no name, comment or list.
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class MessageError(ValueError):
    """Arguments that cannot make a safe message (a line break in a header, two recipients)."""


def _single_line(value: str, what: str) -> str:
    if _BREAKS.search(value):
        raise MessageError(f"the {what} contains a line break")
    return value


def encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words of a text, folded one word per line."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(f"=?utf-8?b?{b64encode(chunk).decode('ascii')}?=")
            chunk = bytearray()
        chunk += data
    if chunk or not words:
        words.append(f"=?utf-8?b?{b64encode(chunk).decode('ascii')}?=")
    return "\r\n ".join(words)


def _fold_ascii(name: str, value: str) -> str:
    """A header line folded at spaces so lines stay near 78 characters."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > _FOLD_AT and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return "\r\n".join(lines)


def subject_header(subject: str) -> str:
    """The Subject header line: folded ASCII, or encoded words for anything else."""
    subject = _single_line(subject, "subject")
    # Text that looks like an encoded word must be encoded itself, or readers decode it.
    # So are runs of spaces and words too long for a line, which folding cannot carry.
    if (
        _NON_ASCII.search(subject)
        or "=?" in subject
        or "  " in subject
        or subject != subject.strip()
        or any(len(word) > _FOLD_AT - len("Subject: ") for word in subject.split(" "))
    ):
        return "Subject: " + encoded_words(subject)
    return _fold_ascii("Subject", subject)


@lru_cache(maxsize=4096)
def address_header(address: str) -> str:
    """One mailbox ("Name <a@b>" or "a@b") as header text, the name encoded if needed."""
    _single_line(address, "address")
    name, addr = parseaddr(address)
    if not addr or "@" not in addr or _NON_ASCII.search(addr):
        raise MessageError(f"“{address}” is not an email address")
    if not name:
        return addr
    if _NON_ASCII.search(name):
        return f"{encoded_words(name)} <{addr}>"
    return formataddr((name, addr))


def _one_recipient(to: str) -> str:
    _single_line(to, "recipient")
    if _BARE_ADDRESS.fullmatch(to):
        return to
    found = [pair for pair in getaddresses([to]) if pair[1]]
    if len(found) != 1:
        raise MessageError("a merge message goes to exactly one recipient")
    return address_header(to)


def _address_list(name: str, addresses: Sequence[str]) -> str | None:
    if not addresses:
        return None
    return f"{name}: " + ",\r\n ".join(address_header(a) for a in addresses)


def _body(text: str) -> tuple[str, bytes]:
    """(transfer encoding, CRLF body bytes) of a text part."""
    text = _NEWLINES.sub("\n", text)
    if text.isascii() and all(len(line) <= MAX_LINE for line in text.split("\n")):
        body = text.encode("ascii")
        if not _NON_ASCII.search(text) and b"\x00" not in body:
            return "7bit", body.replace(b"\n", b"\r\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


def _part(subtype: str, text: str) -> bytes:
    encoding, body = _body(text)
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + body


def with_unsubscribe_footer(
    text: str, html: str | None, unsubscribe_url: str
) -> tuple[str, str | None]:
    """The bodies with an unsubscribe line added where the template did not place the link."""
    if unsubscribe_url not in text:
        text = f"{text.rstrip()}\n\n--\nUnsubscribe: {unsubscribe_url}\n"
    if html is not None and escape(unsubscribe_url) not in html and unsubscribe_url not in html:
        footer = (
            '<p style="font-size:12px;color:#666">'
            f'<a href="{escape(unsubscribe_url)}">Unsubscribe</a></p>'
        )
        at = html.lower().rfind("</body>")
        html = html[:at] + footer + html[at:] if at >= 0 else html + footer
    return text, html


def build_message(
    *,
    sender: str,
    to: str,
    cc: Sequence[str],
    bcc: Sequence[str],
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """One RFC 5322 message (CRLF, ASCII headers) for one recipient, with one-click unsubscribe."""
    message_id = _single_line(message_id.strip(), "Message-ID")
    if not (message_id.startswith("<") and message_id.endswith(">")):
        message_id = f"<{message_id}>"
    if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", message_id):
        raise MessageError(f"“{message_id}” is not a Message-ID")
    url = _single_line(unsubscribe_url, "unsubscribe link")
    if not url.startswith(("https://", "http://")) or ">" in url or " " in url:
        raise MessageError("the unsubscribe link must be an http(s) URL")
    unsubscribe = f"<{url}>"
    if unsubscribe_mailto:
        mailto = _single_line(unsubscribe_mailto, "unsubscribe address")
        if ">" in mailto or " " in mailto:
            raise MessageError("the unsubscribe address is not a mailto: URL")
        unsubscribe += f",\r\n <{mailto if mailto.startswith('mailto:') else 'mailto:' + mailto}>"
    headers = [
        f"From: {address_header(sender)}",
        f"To: {_one_recipient(to)}",
    ]
    for line in (_address_list("Cc", cc), _address_list("Bcc", bcc)):
        if line is not None:
            headers.append(line)
    headers += [
        subject_header(subject),
        f"Date: {format_datetime(date or datetime.now(UTC))}",
        f"Message-ID: {message_id}",
        f"List-Unsubscribe: {unsubscribe}",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
    ]
    text, html = with_unsubscribe_footer(text, html, url)
    if html is None:
        return ("\r\n".join(headers) + "\r\n").encode("ascii") + _part("plain", text)
    # "=_" never occurs in quoted-printable text, and 7bit parts are checked below.
    boundary = "=_" + secrets.token_hex(12)
    parts = [_part("plain", text), _part("html", html)]
    while any(boundary.encode("ascii") in part for part in parts):
        boundary = "=_" + secrets.token_hex(12)
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return (
        ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
        + f"--{boundary}\r\n".encode("ascii")
        + delimiter.join(parts)
        + f"\r\n--{boundary}--\r\n".encode("ascii")
    )
