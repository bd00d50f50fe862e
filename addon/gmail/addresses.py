"""Parsing and classification of e-mail addresses found in Gmail message headers."""

from __future__ import annotations

import codecs
import email.policy
import email.utils
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.header import Header, decode_header

import idna
import tldextract

__all__ = [
    "FREE_MAIL_DOMAINS",
    "Address",
    "canonical_email",
    "decode_header_text",
    "email_domain",
    "is_automated_sender",
    "is_free_mail",
    "is_mailing_list",
    "parse_address_list",
    "registrable_domain",
    "split_display_name",
]


@dataclass(frozen=True)
class Address:
    """A display name plus canonical e-mail address ("" when the address is unusable)."""

    name: str
    email: str


# An empty URL list plus no cache directory pins tldextract to the snapshot bundled
# with the package: this code runs inside request handlers and must never block on
# (or fail because of) a download of the public suffix list.
_TLD_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

# RFC 5322 atext plus dots. Quoted local parts are legal but so rare in real mail that
# accepting them would mostly let garbage through.
_LOCAL_PART_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_WHITESPACE_RE = re.compile(r"\s+")
_LINE_BREAK_RE = re.compile(r"[\r\n]+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"


def canonical_email(raw: str) -> str | None:
    """Return the lowercase, IDNA-encoded form of an address, or None if it is invalid."""
    # The same addresses recur in every header of a busy mailbox and IDNA encoding is
    # the costly part, so plausible-length strings go through a cache.
    if isinstance(raw, str) and len(raw) <= 400:
        return _cached_canonical_email(raw)
    return _safe_canonical_email(raw)


@functools.lru_cache(maxsize=65536)
def _cached_canonical_email(raw: str) -> str | None:
    return _safe_canonical_email(raw)


def _safe_canonical_email(raw: str) -> str | None:
    try:
        return _canonical_email(raw)
    except Exception:
        # Callers feed this arbitrary header junk; an exception here would lose a
        # whole message, whereas None merely drops one address.
        return None


def _canonical_email(raw: str) -> str | None:
    if not isinstance(raw, str):
        return None
    value = raw.strip().strip("<>").strip().lower()
    if value.count("@") != 1:
        return None
    local, _, domain = value.partition("@")
    # A single trailing dot is the DNS root; mail clients treat it as absent.
    if domain.endswith("."):
        domain = domain[:-1]
    if not local or len(local) > 64 or not _LOCAL_PART_RE.fullmatch(local):
        return None
    if "." not in domain:
        return None
    ascii_domain = _plain_ascii_domain(domain) or _idna_domain(domain)
    if ascii_domain is None or len(ascii_domain) > 253:
        return None
    labels = ascii_domain.split(".")
    if not all(len(label) <= 63 and _LABEL_RE.fullmatch(label) for label in labels):
        return None
    # An all-numeric TLD means a bare IPv4 address, which no real mailbox uses.
    if labels[-1].isdigit():
        return None
    return f"{local}@{ascii_domain}"


def _plain_ascii_domain(domain: str) -> str | None:
    """The domain itself when IDNA could not change it: lowercase LDH labels, no punycode."""
    # Nearly every address is like this, and the idna package costs tens of microseconds
    # per call even then; both of its paths return such a domain unchanged.
    if not domain.isascii():
        return None
    labels = domain.split(".")
    if all(_LABEL_RE.fullmatch(label) and not label.startswith("xn--") for label in labels):
        return domain
    return None


def _idna_domain(domain: str) -> str | None:
    try:
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    # IDNA 2008 rejects some names (emoji, symbols) that IDNA 2003 - and therefore
    # many real mail servers - still accept.
    try:
        return domain.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return None


def parse_address_list(header: str | None) -> list[Address]:
    """Parse a From/To/Cc header value into de-duplicated Address objects; never raises."""
    try:
        return _parse_address_list(header)
    except Exception:
        # Both stdlib parsers have raised on hostile input in past releases; one bad
        # header must not take down the sidebar.
        return []


def _parse_address_list(header: str | None) -> list[Address]:
    if header is None:
        return []
    if isinstance(header, Header):
        # compat32 wraps headers holding raw 8-bit bytes in a Header whose str() turns
        # those bytes into U+FFFD; its chunks still carry the original bytes.
        text = "".join(_decode_part(part, charset) for part, charset in decode_header(header))
    else:
        text = _repair_surrogates(str(header))
    # Unfold and neutralise stray CR/LF: the header registry refuses them outright.
    text = _LINE_BREAK_RE.sub(" ", text).strip()
    if not text:
        return []
    simple = _simple_pairs(text)
    if simple is not None:
        return _unique_addresses(simple)
    return _full_parse(text)


def _full_parse(text: str) -> list[Address]:
    # Both parsers split the structure before decoding encoded words, so an encoded
    # name that decodes to "Doe, John" stays one address.
    registry_pairs = _registry_pairs(text)
    raw_pairs = _getaddresses_pairs(text)

    # getaddresses keeps names the registry drops (RFC 822 comments such as
    # "a@b.com (Anne)") and leaves encoded words raw, letting _decode_words handle
    # multi-byte characters split across adjacent encoded words, which the registry
    # decodes word by word into surrogates.
    raw_names: dict[str, str] = {}
    for raw_name, raw_addr in raw_pairs:
        canonical = canonical_email(raw_addr)
        if canonical and raw_name.strip() and canonical not in raw_names:
            raw_names[canonical] = raw_name

    candidates: list[tuple[str, str]] = []
    for name, addr in registry_pairs:
        canonical = canonical_email(addr) or ""
        if canonical in raw_names:
            name = _decode_words(raw_names[canonical])
        candidates.append((name, canonical))
    # The registry gives up on the rest of a list after some syntax errors; anything
    # getaddresses still found is appended rather than lost.
    for raw_name, raw_addr in raw_pairs:
        canonical = canonical_email(raw_addr)
        if canonical or not registry_pairs:
            candidates.append((_decode_words(raw_name), canonical or ""))

    return _unique_addresses(candidates)


def _unique_addresses(candidates: Iterable[tuple[str, str]]) -> list[Address]:
    result: list[Address] = []
    seen: set[str] = set()
    for name, canonical in candidates:
        clean = _clean_name(name)
        if not canonical and not clean:
            continue
        key = canonical or "name:" + clean.casefold()
        if key in seen:
            continue
        seen.add(key)
        result.append(Address(name=clean, email=canonical))
    return result


# One address of the overwhelmingly common shapes: `"Name" <addr>`, `Name <addr>`, `addr`.
# Names hold no quotes, angle brackets, comments, colons, dots (obsolete phrase syntax the
# stdlib parsers treat specially) or encoded words; the address no spaces, quotes or
# brackets. Anything else goes through both stdlib parsers.
_PLAIN_ADDR = r"[^\s\"<>()\[\]\\,;:@]+@[^\s\"<>()\[\]\\,;:@]+"
_SIMPLE_ITEM_RE = re.compile(
    r'\s*(?:(?:"(?P<quoted>[^"\\]*)"|(?P<bare>[^"<>()\\,;:@=.]*?))\s*<(?P<angle>'
    + _PLAIN_ADDR
    + r")>|(?P<spec>"
    + _PLAIN_ADDR
    + r"))\s*(?:,|$)"
)


def _simple_pairs(text: str) -> list[tuple[str, str]] | None:
    """Name/canonical pairs of a header made only of plain addresses, else None.

    The full parse runs two stdlib parsers per header; this covers nearly every real
    header at a fraction of the cost and defers every unusual shape to them.
    """
    if "=?" in text:
        return None
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _SIMPLE_ITEM_RE.match(text, position)
        if match is None or match.end() == position:
            return None
        raw_addr = match.group("angle") or match.group("spec")
        canonical = canonical_email(raw_addr)
        if canonical is None:
            return None
        name = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
        pairs.append((name or "", canonical))
        position = match.end()
    # As in the full parse, a repeated address takes the first name given for it.
    first_names: dict[str, str] = {}
    for name, canonical in pairs:
        if name.strip():
            first_names.setdefault(canonical, name)
    return [(first_names.get(canonical, name), canonical) for name, canonical in pairs]


def _registry_pairs(text: str) -> list[tuple[str, str]]:
    try:
        parsed = email.policy.default.header_factory("To", text)
        addresses = parsed.addresses
        return [(str(a.display_name or ""), str(a.addr_spec or "")) for a in addresses]
    except Exception:
        return []


def _getaddresses_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return [(str(n), str(a)) for n, a in email.utils.getaddresses([text])]
    except Exception:
        return []


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _repair_surrogates(text: str) -> str:
    """Turn surrogate-escaped raw 8-bit header bytes back into text."""
    if text.isascii() or not _SURROGATE_RE.search(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Lone surrogates that were never bytes cannot be recovered.
        return text.encode("utf-8", "replace").decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Unlabelled 8-bit headers are overwhelmingly Windows-1252 when not UTF-8.
        return raw.decode("cp1252", "replace")


def decode_header_text(value: str) -> str:
    """An unstructured header (Subject) as display text: unfolded, encoded words decoded."""
    text = _WHITESPACE_RE.sub(" ", value).strip()
    return _WHITESPACE_RE.sub(" ", _decode_words(text)).strip() or text


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words, tolerating unknown charsets and bad bytes."""
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except Exception:
        return value
    return "".join(_decode_part(part, charset) for part, charset in parts)


def _decode_part(part: bytes | str, charset: str | None) -> str:
    if isinstance(part, str):
        return part
    # RFC 2231 allows a language suffix ("utf-8*en") that codecs do not understand.
    name = (charset or "ascii").split("*", 1)[0]
    try:
        codecs.lookup(name)
    except LookupError:
        name = "unknown-8bit"
    if name.lower() in {"ascii", "us-ascii", "unknown-8bit"}:
        # Unlabelled or mislabelled 8-bit text is usually UTF-8, else Windows-1252.
        try:
            return part.decode("utf-8")
        except UnicodeDecodeError:
            return part.decode("cp1252", "replace")
    return _repair_surrogates(part.decode(name, "replace"))


def _clean_name(name: str) -> str:
    name = _repair_surrogates(name)
    name = _WHITESPACE_RE.sub(" ", name).strip()
    # Strip only balanced-looking outer quotes so names like O'Brien survive.
    while len(name) >= 2 and name[0] in _QUOTES and name[-1] in _QUOTES:
        name = name[1:-1].strip()
    return name


_NAME_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "md", "esq"})
_INITIAL_RE = re.compile(r"\w\.?")
_BRACKETED_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def split_display_name(name: str, email: str) -> tuple[str, str]:
    """Guess (first, last) from a display name, falling back to the address's local part."""
    cleaned = _clean_name(_BRACKETED_RE.sub(" ", name or ""))
    cleaned = cleaned.strip(_QUOTES + " ,")
    if not cleaned or "@" in cleaned:
        return _split_local_part(email)

    if "," in cleaned:
        last, _, first = (p.strip() for p in cleaned.partition(","))
        if first and last and first.lower().strip(".") not in _NAME_SUFFIXES:
            # "Smith, John" is the directory (last, first) convention.
            return first, last
        cleaned = " ".join(p for p in (last, first) if p)

    tokens = cleaned.split()
    if len(tokens) == 1:
        return tokens[0], ""
    rest = tokens[1:]
    # Middle initials ("John X. Doe") belong to neither the first nor the last name.
    while len(rest) > 1 and _INITIAL_RE.fullmatch(rest[0]):
        rest = rest[1:]
    return tokens[0], " ".join(rest)


def _split_local_part(email: str) -> tuple[str, str]:
    if "@" not in (email or "") or is_automated_sender(email):
        return "", ""
    local = email.rpartition("@")[0].split("+", 1)[0]
    parts = [p.strip("0123456789") for p in re.split(r"[._-]+", local) if p]
    if len(parts) == 2 and all(len(p) >= 2 and p.isalpha() for p in parts):
        return parts[0].capitalize(), parts[1].capitalize()
    return "", ""


def email_domain(email: str) -> str:
    """Return the lowercase domain part of an address ("" when there is no "@")."""
    if "@" not in email:
        return ""
    return email.rpartition("@")[2].strip().strip(">").rstrip(".").lower()


@functools.lru_cache(maxsize=65536)
def registrable_domain(domain: str) -> str | None:
    """Return the domain registered under a public suffix (acme.co.uk), or None."""
    try:
        host = domain.strip().rstrip(".").lower()
        if not host:
            return None
        result = _TLD_EXTRACT(host)
    except Exception:
        return None
    # An empty suffix covers IP addresses, single-label hosts and unknown TLDs.
    if not result.suffix or not result.domain:
        return None
    return f"{result.domain}.{result.suffix}"


def _yahoo_domains() -> Iterable[str]:
    # Yahoo runs a separate free-mail domain per country.
    suffixes = """
        com co.uk co.in co.jp co.id co.nz co.za com.ar com.au com.br com.hk com.mx com.sg
        com.tw com.vn ca de dk es fr gr ie in it no pl ro se cn co.th com.ph
    """
    for suffix in suffixes.split():
        yield f"yahoo.{suffix}"


_FREE_MAIL_TEXT = """
    gmail.com googlemail.com outlook.com outlook.de outlook.fr outlook.es outlook.it
    hotmail.com hotmail.co.uk hotmail.de hotmail.fr hotmail.it hotmail.es live.com live.co.uk
    live.de live.fr live.nl msn.com ymail.com rocketmail.com aim.com aol.com aol.de icloud.com
    me.com mac.com proton.me protonmail.com protonmail.ch pm.me tutanota.com tutanota.de
    tuta.io gmx.de gmx.net gmx.at gmx.ch gmx.com web.de t-online.de freenet.de posteo.de
    mailbox.org mail.ru bk.ru inbox.ru list.ru yandex.ru yandex.com ya.ru rambler.ru qq.com
    163.com 126.com yeah.net sina.com sohu.com foxmail.com naver.com daum.net hanmail.net
    zoho.com zohomail.com hey.com fastmail.com fastmail.fm mail.com email.com inbox.com
    hushmail.com gmx.us orange.fr wanadoo.fr free.fr laposte.net sfr.fr libero.it virgilio.it
    tiscali.it alice.it btinternet.com sky.com virginmedia.com blueyonder.co.uk comcast.net
    verizon.net att.net sbcglobal.net cox.net bigpond.com seznam.cz wp.pl o2.pl interia.pl
    onet.pl uol.com.br bol.com.br terra.com.br rediffmail.com
"""
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(_FREE_MAIL_TEXT.split()) | frozenset(_yahoo_domains())


def is_free_mail(email_or_domain: str, extra: frozenset[str] = frozenset()) -> bool:
    """Tell whether an address or domain belongs to a consumer webmail provider."""
    value = email_or_domain.strip().lower()
    domain = email_domain(value) if "@" in value else value.rstrip(".")
    if not domain:
        return False
    return domain in FREE_MAIL_DOMAINS or domain in {d.strip().lower() for d in extra}


_AUTOMATED_TEXT = """
    noreply no-reply no_reply no.reply donotreply do-not-reply do_not_reply do.not.reply
    dontreply dont-reply mailer-daemon mailerdaemon mailer_daemon postmaster bounce bounces
    notification notifications notify auto-confirm autoconfirm auto-reply autoreply auto_reply
    automailer daemon mail-daemon
"""
_AUTOMATED_LOCAL_PARTS = frozenset(_AUTOMATED_TEXT.split())
_AUTOMATED_PREFIX_RE = re.compile(
    # VERP-style bounce addresses carry a token after the keyword ("bounces-123=x").
    r"(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?[-+._=]|mailer-daemon)"
)


def is_automated_sender(email: str) -> bool:
    """Tell whether an address belongs to a machine (no-reply, bounce, daemon) sender."""
    local = email.strip().strip("<>").rpartition("@")[0] if "@" in email else email
    local = local.strip().lower()
    if not local:
        return False
    if local.split("+", 1)[0] in _AUTOMATED_LOCAL_PARTS:
        return True
    return _AUTOMATED_PREFIX_RE.match(local) is not None


_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def is_mailing_list(headers: Mapping[str, str]) -> bool:
    """Tell whether message headers mark it as list or bulk mail."""
    for key, value in headers.items():
        name = str(key).strip().lower()
        if name in {"list-id", "list-unsubscribe"}:
            return True
        if name == "precedence":
            words = str(value).strip().lower().split()
            if words and words[0] in _BULK_PRECEDENCE:
                return True
    return False
