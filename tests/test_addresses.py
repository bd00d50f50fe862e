"""Tests for addon.gmail.addresses: header parsing, canonicalisation and classification."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.header import Header
from email.headerregistry import HeaderRegistry
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.gmail import addresses as addr_mod
from addon.gmail.addresses import (
    FREE_MAIL_DOMAINS,
    Address,
    canonical_email,
    email_domain,
    is_automated_sender,
    is_free_mail,
    is_mailing_list,
    parse_address_list,
    registrable_domain,
    split_display_name,
)

DATA_DIR = Path(__file__).parent / "data" / "messages"
CPYTHON_DATA_DIR = Path(email.__file__).parent.parent / "test" / "test_email" / "data"


def A(name: str, addr: str) -> Address:
    """Shorthand for building expected Address values."""
    return Address(name=name, email=addr)


# --- Address -------------------------------------------------------------------------


def test_address_is_frozen_and_hashable() -> None:
    a = A("Ann", "ann@example.com")
    with pytest.raises(AttributeError):
        a.email = "x@example.com"  # type: ignore[misc]
    assert {a, A("Ann", "ann@example.com")} == {a}


# --- canonical_email -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@example.com", "john@example.com"),
        ("  John.Smith@Example.COM  ", "john.smith@example.com"),
        ("<john@example.com>", "john@example.com"),
        (" < John@Example.com > ", "john@example.com"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("jose@bücher.de", "jose@xn--bcher-kva.de"),
        ("JOSE@BÜCHER.DE", "jose@xn--bcher-kva.de"),
        ("info@xn--bcher-kva.de", "info@xn--bcher-kva.de"),
        ("kunde@münchen.example", "kunde@xn--mnchen-3ya.example"),
        ("user@пример.рф", "user@xn--e1afmkfd.xn--p1ai"),
        ("user@例え.jp", "user@xn--r8jz45g.jp"),
        ("a@example.com.", "a@example.com"),
    ],
)
def test_canonical_email_valid(raw: str, expected: str) -> None:
    assert canonical_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "<>",
        "plainaddress",
        "@example.com",
        "john@",
        "john@localhost",
        "a@b@example.com",
        "john doe@example.com",
        "jo\nhn@example.com",
        "john@exa mple.com",
        "john@example..com",
        "john@.example.com",
        "john@-example.com",
        "john@example_host.com",
        "john@1.2.3.4",
        "john@[1.2.3.4]",
        '"john doe"@example.com',
        "josé@example.com",
        "john@exam\x00ple.com",
        "x" * 65 + "@example.com",
        "john@" + "a" * 64 + ".com",
        "john@\udcff.com",
    ],
)
def test_canonical_email_invalid(raw: str) -> None:
    assert canonical_email(raw) is None


def test_canonical_email_never_raises_on_non_string() -> None:
    assert canonical_email(None) is None  # type: ignore[arg-type]
    assert canonical_email(42) is None  # type: ignore[arg-type]


def test_canonical_email_falls_back_to_idna2003(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(domain: str, uts46: bool = False) -> bytes:
        raise addr_mod.idna.IDNAError("rejected")

    monkeypatch.setattr(addr_mod.idna, "encode", boom)
    assert canonical_email("jose@bücher.de") == "jose@xn--bcher-kva.de"
    assert canonical_email("a@example.com") == "a@example.com"


@settings(max_examples=500)
@given(st.text(alphabet="abcxyz019-._", min_size=1, max_size=30))
def test_plain_ascii_domains_skip_idna_without_changing_the_answer(domain: str) -> None:
    # The fast path must return exactly what the IDNA encoders would, or defer to them.
    fast = addr_mod._plain_ascii_domain(domain)
    if fast is not None:
        assert fast == addr_mod._idna_domain(domain) == domain


def test_punycode_labels_still_go_through_idna() -> None:
    assert addr_mod._plain_ascii_domain("xn--bcher-kva.de") is None
    assert canonical_email("x@xn--bcher-kva.de") == "x@xn--bcher-kva.de"


@pytest.mark.parametrize("raw", ["A@B.com", "jose@bücher.de", "x@xn--bcher-kva.de", "<a@b.co>"])
def test_canonical_email_idempotent_examples(raw: str) -> None:
    once = canonical_email(raw)
    assert once is not None
    assert canonical_email(once) == once


# --- parse_address_list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, []),
        ("", []),
        ("   ", []),
        ("john@example.com", [A("", "john@example.com")]),
        ("<john@example.com>", [A("", "john@example.com")]),
        ("John Smith <John@Example.com>", [A("John Smith", "john@example.com")]),
        ('"Doe, John" <j@x.com>', [A("Doe, John", "j@x.com")]),
        (
            '"Doe, John" <j@x.com>, Jane Roe <jane@y.org>',
            [A("Doe, John", "j@x.com"), A("Jane Roe", "jane@y.org")],
        ),
        ("=?utf-8?q?Doe=2C_John?= <j@x.com>", [A("Doe, John", "j@x.com")]),
        (
            "=?UTF-8?B?RG9lLCBKb2hu?= <j@x.com>, b@y.com",
            [A("Doe, John", "j@x.com"), A("", "b@y.com")],
        ),
        ("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@x.de>", [A("Jürgen Müller", "jm@x.de")]),
        ("=?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@x.de>", [A("Jürgen Müller", "jm@x.de")]),
        ("=?ISO-8859-1?B?Suly9G1l?= <j@x.fr>", [A("Jérôme", "j@x.fr")]),
        # Adjacent encoded words join without the whitespace between them (RFC 2047 6.2),
        # even when a multi-byte character is split across them.
        ("=?utf-8?q?J=C3?= =?utf-8?q?=BCrgen?= <j@x.de>", [A("Jürgen", "j@x.de")]),
        ("=?UTF-8?B?5bGx55Sw?=\r\n =?UTF-8?B?5aSq6YOO?= <y@x.jp>", [A("山田太郎", "y@x.jp")]),
        ("=?utf-8?q?Anna?= Smith <a@x.com>", [A("Anna Smith", "a@x.com")]),
        # Encoded words inside quotes are illegal but common; decode them anyway.
        ('"=?utf-8?q?J=C3=BCrgen?=" <j@x.de>', [A("Jürgen", "j@x.de")]),
        ("=?bogus-charset?q?Ann?= <a@x.com>", [A("Ann", "a@x.com")]),
        ("José <jose@BÜCHER.de>", [A("José", "jose@xn--bcher-kva.de")]),
        ("Team: a@x.com, b@y.com;", [A("", "a@x.com"), A("", "b@y.com")]),
        (
            'Sales: "Bob B." <bob@x.com>, carol@x.com;, dave@y.com',
            [A("Bob B.", "bob@x.com"), A("", "carol@x.com"), A("", "dave@y.com")],
        ),
        ("undisclosed-recipients:;", []),
        ("IETF-Announce:;", []),
        ("bbb@ddd.com (John X. Doe)", [A("John X. Doe", "bbb@ddd.com")]),
        ("  John   \t Smith  <j@x.com>", [A("John Smith", "j@x.com")]),
        ("\"'Quoted'\" <q@x.com>", [A("Quoted", "q@x.com")]),
        ("'Single Quoted' <q@x.com>", [A("Single Quoted", "q@x.com")]),
        ('"O\'Brien" <ob@x.ie>', [A("O'Brien", "ob@x.ie")]),
        ("A <a@x.com>, B <A@X.COM>, a@x.com", [A("A", "a@x.com")]),
        ("a@x.com,\r\n\tb@y.com", [A("", "a@x.com"), A("", "b@y.com")]),
        # A bare newline is not a separator; the second address is lost, not mangled.
        ("a@x.com\nb@y.com", [A("", "a@x.com")]),
        ("MAILER DAEMON <>", [A("MAILER DAEMON", "")]),
        ("foo", []),
        ("a@b.com, , c@d", [A("", "a@b.com")]),
        ("a@b@c.com", []),
        ("<>, @nodomain, user@localhost, good@x.com", [A("", "good@x.com")]),
        (",,,", []),
        ("x <a@b.com> junk <c@d.com>", [A("x", "a@b.com"), A("junk", "c@d.com")]),
        # Raw 8-bit UTF-8 bytes, surrogate-escaped as the compat32 parser leaves them.
        ("Zo\udcc3\udcab <z@x.se>", [A("Zoë", "z@x.se")]),
        ("Zo\udceb <z@x.se>", [A("Zoë", "z@x.se")]),
    ],
)
def test_parse_address_list(header: str | None, expected: list[Address]) -> None:
    assert parse_address_list(header) == expected


def test_parse_address_list_accepts_compat32_header_objects() -> None:
    raw = "Zoë Ångström <zoe@example.se>".encode().decode("ascii", "surrogateescape")
    header = Header(raw, charset="unknown-8bit", errors="replace")
    assert parse_address_list(header) == [A("Zoë Ångström", "zoe@example.se")]  # type: ignore[arg-type]


def test_parse_address_list_survives_parser_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("parser bug")

    # Encoded words keep these headers off the plain fast path, so the stdlib parsers run.
    monkeypatch.setattr(HeaderRegistry, "__call__", boom)
    assert parse_address_list("=?utf-8?q?Doe=2C_John?= <j@x.com>") == [A("Doe, John", "j@x.com")]
    monkeypatch.setattr(addr_mod.email.utils, "getaddresses", boom)
    assert parse_address_list("=?utf-8?q?J?= <j@x.com>") == []


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?q?unterminated <a@x.com>",
        "=?utf-8?b?!!!?= <a@x.com>",
        '"unterminated <a@x.com>',
        "<<<<>>>>",
        "(((((",
        ":;:;:;",
        "a@x.com (unclosed comment",
        "\x00\x01\x02",
        "\udcff\udcfe",
        "=?utf-8*en?q?Ann?= <a@x.com>",
        "x" * 10_000,
        "a@x.com, " * 500,
    ],
)
def test_parse_address_list_malformed_never_raises(header: str) -> None:
    result = parse_address_list(header)
    for item in result:
        assert isinstance(item, Address)
        assert item.email == "" or canonical_email(item.email) == item.email


def test_parse_address_list_bulk_dedupes() -> None:
    assert parse_address_list("a@x.com, " * 500) == [A("", "a@x.com")]


# --- split_display_name --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "addr", "expected"),
    [
        ("John Smith", "j@x.com", ("John", "Smith")),
        ("Smith, John", "j@x.com", ("John", "Smith")),
        ('"Smith, John"', "j@x.com", ("John", "Smith")),
        ("Jean-Luc de la Tour", "jl@x.fr", ("Jean-Luc", "de la Tour")),
        ("John X. Doe", "j@x.com", ("John", "Doe")),
        ("John Smith (Acme Corp)", "j@x.com", ("John", "Smith")),
        ("John Smith, Jr.", "j@x.com", ("John", "Smith Jr.")),
        ("  'Anna   Karenina'  ", "a@x.ru", ("Anna", "Karenina")),
        ("Madonna", "m@x.com", ("Madonna", "")),
        ("山田太郎", "y@x.jp", ("山田太郎", "")),
        ("", "john.smith@x.com", ("John", "Smith")),
        ("john.smith@x.com", "john.smith@x.com", ("John", "Smith")),
        ("JOHN.SMITH@X.COM", "john.smith@x.com", ("John", "Smith")),
        ("", "john_smith+news@x.com", ("John", "Smith")),
        ("", "mary-jane@x.com", ("Mary", "Jane")),
        ("", "john.smith42@x.com", ("John", "Smith")),
        ("", "jsmith@x.com", ("", "")),
        ("", "j.smith@x.com", ("", "")),
        ("", "john.q.public@x.com", ("", "")),
        ("", "no-reply@x.com", ("", "")),
        ("", "", ("", "")),
        ('""', "", ("", "")),
    ],
)
def test_split_display_name(name: str, addr: str, expected: tuple[str, str]) -> None:
    assert split_display_name(name, addr) == expected


# --- domains -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("john@example.com", "example.com"),
        ("John@Example.COM", "example.com"),
        ("x@mail.eu.acme.co.uk", "mail.eu.acme.co.uk"),
        ("no-at-sign", ""),
        ("", ""),
    ],
)
def test_email_domain(value: str, expected: str) -> None:
    assert email_domain(value) == expected


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("mail.eu.acme.co.uk", "acme.co.uk"),
        ("acme.co.uk", "acme.co.uk"),
        ("example.com", "example.com"),
        ("WWW.Example.COM.", "example.com"),
        ("a.b.c.example.org", "example.org"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("shop.xn--80ak6aa92e.xn--p1ai", "xn--80ak6aa92e.xn--p1ai"),
        ("1.2.3.4", None),
        ("[1.2.3.4]", None),
        ("localhost", None),
        ("foo.invalidtld", None),
        ("co.uk", None),
        ("", None),
    ],
)
def test_registrable_domain(domain: str, expected: str | None) -> None:
    assert registrable_domain(domain) == expected


def test_registrable_domain_never_touches_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert registrable_domain("deep.sub.example.com.au") == "example.com.au"
    assert addr_mod._TLD_EXTRACT.suffix_list_urls == ()


# --- free mail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.co.jp", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "mail.ru",
        "yandex.ru", "qq.com", "163.com", "126.com", "zoho.com", "hey.com", "fastmail.com",
        "t-online.de", "orange.fr", "free.fr", "libero.it",
    ],
)  # fmt: skip
def test_free_mail_domains_listed(domain: str) -> None:
    assert domain in FREE_MAIL_DOMAINS
    assert is_free_mail(domain)
    assert is_free_mail(f"Someone@{domain.upper()}")


@pytest.mark.parametrize(
    "value", ["john@acme.com", "acme.com", "mail.gmail.com", "gmail.com.evil.io", "", "@"]
)
def test_is_free_mail_negative(value: str) -> None:
    assert not is_free_mail(value)


def test_is_free_mail_extra_domains() -> None:
    assert not is_free_mail("a@corp-mail.example")
    assert is_free_mail("a@corp-mail.example", extra=frozenset({"Corp-Mail.example"}))
    assert is_free_mail("corp-mail.example.", extra=frozenset({"corp-mail.example"}))


def test_free_mail_domains_are_canonical() -> None:
    assert all(d == d.lower().strip() and "." in d for d in FREE_MAIL_DOMAINS)


# --- automated senders ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "noreply@x.com", "no-reply@x.com", "no_reply@x.com", "NoReply@X.com",
        "donotreply@x.com", "do-not-reply@x.com", "do_not_reply@x.com",
        "mailer-daemon@x.com", "MAILER-DAEMON@x.com", "postmaster@x.com",
        "bounce@x.com", "bounces@x.com", "bounces+abc=def@x.com", "bounce-123@x.com",
        "notifications@github.com", "notification@x.com", "auto-confirm@amazon.com",
        "noreply+tracking@x.com", "noreply-shipping@x.com", "no-reply-alerts@x.com",
        "noreplyinvoices@x.com", "<noreply@x.com>",
    ],
)  # fmt: skip
def test_is_automated_sender_positive(value: str) -> None:
    assert is_automated_sender(value)


@pytest.mark.parametrize(
    "value",
    ["john@x.com", "norah@x.com", "bouncer.jones@x.com", "info@x.com", "reply@x.com", "", "@x"],
)
def test_is_automated_sender_negative(value: str) -> None:
    assert not is_automated_sender(value)


# --- mailing lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"List-Id": "<dev.lists.example.com>"}, True),
        ({"list-unsubscribe": "<mailto:u@x.com>"}, True),
        ({"LIST-ID": ""}, True),
        ({"Precedence": "bulk"}, True),
        ({"precedence": " List "}, True),
        ({"PRECEDENCE": "junk"}, True),
        ({"Precedence": "first-class"}, False),
        ({"Precedence": ""}, False),
        ({"From": "a@x.com", "Subject": "List-Id in subject"}, False),
        ({}, False),
    ],
)
def test_is_mailing_list(headers: dict[str, str], expected: bool) -> None:
    assert is_mailing_list(headers) is expected


def test_is_mailing_list_accepts_message_objects() -> None:
    msg = Message()
    msg["From"] = "a@x.com"
    assert not is_mailing_list(msg)  # type: ignore[arg-type]
    msg["List-Unsubscribe"] = "<https://x.com/u>"
    assert is_mailing_list(msg)  # type: ignore[arg-type]


# --- corpus --------------------------------------------------------------------------


def _corpus_files() -> Iterator[Path]:
    yield from sorted(DATA_DIR.glob("*.eml"))
    if CPYTHON_DATA_DIR.is_dir():
        yield from sorted(CPYTHON_DATA_DIR.glob("msg_*.txt"))


def _parse_message_headers(path: Path) -> dict[str, list[Address]]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    found: dict[str, list[Address]] = {"from": [], "to": [], "cc": []}
    # raw_items keeps surrogate-escaped 8-bit bytes; msg[...] would wrap them in Header.
    for name, value in msg.raw_items():
        key = name.lower()
        if key in found:
            found[key].extend(parse_address_list(value))
    return found


def _assert_well_formed(result: list[Address]) -> None:
    for item in result:
        assert isinstance(item, Address)
        assert isinstance(item.name, str)
        if item.email:
            assert item.email == item.email.lower()
            assert item.email.count("@") == 1
            assert item.email.isascii()
            assert canonical_email(item.email) == item.email
        else:
            assert item.name


CORPUS = list(_corpus_files())


def test_corpus_is_present() -> None:
    assert len(list(DATA_DIR.glob("*.eml"))) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_parses_cleanly(path: Path) -> None:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    for header in ("From", "To", "Cc"):
        # Also exercise the compat32 accessor, which returns Header objects for 8-bit data.
        for value in msg.get_all(header) or []:
            _assert_well_formed(parse_address_list(value))
    for result in _parse_message_headers(path).values():
        _assert_well_formed(result)


LOCAL_EXPECTED: dict[str, dict[str, list[Address]]] = {
    "encoded_utf8_q.eml": {
        "from": [A("Jürgen Müller", "juergen.mueller@example.de")],
        "to": [A("Smith, Anna", "anna.smith@example.com"), A("", "bob@example.org")],
        "cc": [],
    },
    "encoded_latin1_b.eml": {
        "from": [A("Jérôme Délange", "jerome@exemple.fr")],
        "to": [A("François Lefèvre", "francois@exemple.fr")],
        "cc": [A("Renée", "renee@exemple.fr")],
    },
    "encoded_split_words.eml": {
        "from": [A("山田太郎", "yamada@example.jp")],
        "to": [A("Zoë Quinn", "zoe@example.com")],
        "cc": [],
    },
    "encoded_comma.eml": {
        "from": [A("Doe, Jane", "jane.doe@example.com")],
        "to": [A("Иванов, Иван", "ivanov@example.ru"), A("", "team@example.com")],
        "cc": [],
    },
    "group_syntax.eml": {
        "from": [A("Alerts", "alerts@example.com")],
        "to": [
            A("", "alice@example.com"),
            A("Bob B.", "bob@example.com"),
            A("", "carol@example.com"),
        ],
        "cc": [],
    },
    "undisclosed.eml": {"from": [A("", "newsletter@shop.example")], "to": [], "cc": []},
    "idn_domain.eml": {
        "from": [A("Bücher Händler", "info@xn--bcher-kva.de")],
        "to": [A("", "kunde@xn--mnchen-3ya.example")],
        "cc": [],
    },
    "missing_from.eml": {"from": [], "to": [A("", "someone@example.com")], "cc": []},
    "malformed_from.eml": {"from": [], "to": [A("", "good@example.com")], "cc": []},
    "multiple_mixed_case.eml": {
        "from": [A("O'Brien, Pat", "pat.obrien@example.ie")],
        "to": [A("A One", "a.one@example.com"), A("", "b.two@example.com")],
        "cc": [A("Åsa Lind", "asa@example.se"), A("Quoted Single", "qs@example.com")],
    },
    "raw_8bit_utf8.eml": {
        "from": [A("Zoë Ångström", "zoe@example.se")],
        "to": [A("José Núñez", "jose@example.es")],
        "cc": [],
    },
    "raw_8bit_latin1.eml": {
        "from": [A("Zoë Ångström", "zoe@example.se")],
        "to": [A("", "noreply@example.com")],
        "cc": [],
    },
    "comment_names.eml": {
        "from": [A("Pat Example", "pat@example.com")],
        "to": [A("Lee", "lee@example.com"), A("", "kim@example.com")],
        "cc": [],
    },
    "greek_gb2312.eml": {
        "from": [A("Νίκος", "nikos@example.gr")],
        "to": [A("张三", "zhang@example.cn")],
        "cc": [],
    },
    "bounce.eml": {
        "from": [A("Mail Delivery Subsystem", "mailer-daemon@mx.example.com")],
        "to": [A("", "sender@example.com")],
        "cc": [],
    },
}


@pytest.mark.parametrize("filename", sorted(LOCAL_EXPECTED))
def test_local_corpus_expected(filename: str) -> None:
    assert _parse_message_headers(DATA_DIR / filename) == LOCAL_EXPECTED[filename]


def test_local_corpus_fully_covered() -> None:
    assert {p.name for p in DATA_DIR.glob("*.eml")} == set(LOCAL_EXPECTED)


CPYTHON_EXPECTED: dict[str, dict[str, list[Address]]] = {
    "msg_01.txt": {
        "from": [A("John X. Doe", "bbb@ddd.com")],
        "to": [A("", "bbb@zzz.org")],
        "cc": [],
    },
    "msg_05.txt": {"from": [], "to": [], "cc": []},
    "msg_07.txt": {
        "from": [A("Barry", "barry@digicool.com")],
        "to": [A("Dingus Lovers", "cravindogs@cravindogs.com")],
        "cc": [],
    },
    "msg_15.txt": {"from": [A("", "xx@xx.dk")], "to": [], "cc": []},
    "msg_16.txt": {
        "from": [A("Internet Mail Delivery", "postmaster@ucla.edu")],
        "to": [A("", "scr-admin@socal-raves.org")],
        "cc": [],
    },
    "msg_20.txt": {
        "from": [A("John X. Doe", "bbb@ddd.com")],
        "to": [A("", "bbb@zzz.org")],
        "cc": [A("", "ccc@zzz.org"), A("", "ddd@zzz.org"), A("", "eee@zzz.org")],
    },
    "msg_25.txt": {
        "from": [A("Mail Delivery Subsystem", "mailer-daemon@zinfandel.lacita.com")],
        "to": [
            A("", "linuxuser-admin@www.linux.org.uk"),
            A("", "postmaster@zinfandel.lacita.com"),
        ],
        "cc": [],
    },
    "msg_27.txt": {
        "from": [A("Anne P. Erson", "aperson@dom.ain")],
        "to": [A("Barney P. Erson", "bperson@dom.ain")],
        "cc": [],
    },
    "msg_36.txt": {"from": [A("", "internet-drafts@ietf.org")], "to": [], "cc": []},
    "msg_41.txt": {
        "from": [A("Allison Dunlap", "xxx@example.com")],
        "to": [A("", "yyy@example.com")],
        "cc": [],
    },
    "msg_43.txt": {
        "from": [A("MAILER DAEMON", "")],
        "to": [A("", "webmaster@python.org")],
        "cc": [],
    },
    "msg_45.txt": {"from": [A("", "foo@bar.baz")], "to": [A("", "baz@bar.foo")], "cc": []},
    "msg_46.txt": {
        "from": [A("Sender", "sender@example.net")],
        "to": [A("", "someone@example.com")],
        "cc": [],
    },
}


@pytest.mark.skipif(not CPYTHON_DATA_DIR.is_dir(), reason="CPython email test data not installed")
@pytest.mark.parametrize("filename", sorted(CPYTHON_EXPECTED))
def test_cpython_corpus_expected(filename: str) -> None:
    assert _parse_message_headers(CPYTHON_DATA_DIR / filename) == CPYTHON_EXPECTED[filename]


# --- properties ----------------------------------------------------------------------

_HEADER_ALPHABET = st.sampled_from([*"abcXYZ019 @.,;:<>\"()[]\\=?_-+'\t\r\n", "=?utf-8?q?", "?="])


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(), st.lists(_HEADER_ALPHABET).map("".join)))
def test_parse_address_list_never_raises(header: str) -> None:
    result = parse_address_list(header)
    assert isinstance(result, list)
    _assert_well_formed(result)
    emails = [a.email for a in result if a.email]
    assert len(emails) == len(set(emails))


_LOCAL = st.text(alphabet="abcXYZ09._+-'", min_size=1, max_size=12)
_LABEL = st.text(alphabet="abcüéß-XYZ09", min_size=1, max_size=10)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda lo, labels: f"{lo}@{'.'.join(labels)}",
            _LOCAL,
            st.lists(_LABEL, min_size=2, max_size=4),
        ),
    )
)
def test_canonical_email_idempotent(raw: str) -> None:
    once = canonical_email(raw)
    if once is not None:
        assert once.isascii()
        assert once == once.lower()
        assert canonical_email(once) == once


# --- the plain-header fast path ----------------------------------------------------------


def _agrees_with_full_parse(header: str) -> bool:
    """True when the fast path applies; asserts it gives what both stdlib parsers give."""
    simple = addr_mod._simple_pairs(header)
    if simple is None:
        return False
    assert addr_mod._unique_addresses(simple) == addr_mod._full_parse(header), header
    return True


def test_fast_path_agrees_with_full_parse_on_corpus() -> None:
    applied = 0
    for path in CORPUS:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        for name in ("From", "To", "Cc"):
            for value in msg.get_all(name) or []:
                if isinstance(value, str):
                    applied += _agrees_with_full_parse(" ".join(value.split()))
    # The corpus is mostly plain headers; the fast path must actually be exercised.
    assert applied > 20


@pytest.mark.parametrize(
    "header",
    [
        '"Doe, John" <j@x.com>, Jane Roe <jane@y.org>',
        "John Smith <John@Example.com>",
        "'Single Quoted' <q@x.com>",
        "José <jose@BÜCHER.de>",
        "A <a@x.com>, B <A@X.COM>, a@x.com",
        "  John   \t Smith  <j@x.com>",
        "<john@example.com>",
    ],
)
def test_fast_path_takes_plain_headers(header: str) -> None:
    assert _agrees_with_full_parse(header)


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?q?Anna?= Smith <a@x.com>",
        "Team: a@x.com, b@y.com;",
        "bbb@ddd.com (John X. Doe)",
        "x <a@b.com> junk <c@d.com>",
        "MAILER DAEMON <>",
        "a@b.com, , c@d",
        '"Esc\\"aped" <e@x.com>',
    ],
)
def test_fast_path_defers_unusual_headers(header: str) -> None:
    assert addr_mod._simple_pairs(header) is None


_PLAIN_NAME = st.text(alphabet="abcXYZ éü'.-,", max_size=15)
_PLAIN_ITEM = st.one_of(
    st.builds(lambda n, a: f'"{n}" <{a}>', _PLAIN_NAME, st.sampled_from(["a@x.com", "B@Y.ORG"])),
    st.builds(lambda n, a: f"{n} <{a}>", _PLAIN_NAME, st.sampled_from(["c@z.de", "d@ü.de"])),
    st.sampled_from(["e@x.com", "F@X.COM", "g@h.co.uk"]),
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(_PLAIN_ITEM, min_size=1, max_size=4).map(", ".join))
def test_fast_path_agrees_with_full_parse_on_generated_headers(header: str) -> None:
    _agrees_with_full_parse(header)
