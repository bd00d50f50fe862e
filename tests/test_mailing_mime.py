"""Merge messages as RFC 5322 bytes: every shape parses back with the email package."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from addon.mailing.mime import MessageError, build_message, encoded_words, subject_header
from addon.mailing.templates import Rendered, compile_template

URL = "https://addon.test/u/abc.def"


def build(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "sender": "Rex Sender <rex@acme.test>",
        "to": "ada@client.test",
        "cc": [],
        "bcc": [],
        "subject": "Hello",
        "text": "Hi Ada,\nsee you.",
        "html": "<p>Hi Ada</p>",
        "message_id": "<m1.campaign7@acme.test>",
        "unsubscribe_url": URL,
    }
    args.update(overrides)
    return build_message(**args)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects, message.defects
    for part in message.walk():
        assert not part.defects, part.defects
    return message


def body_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_headers_and_alternative_parts_parse_back() -> None:
    when = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
    raw = build(cc=["Cy <cy@acme.test>"], bcc=["audit@acme.test"], date=when)
    message = parse(raw)
    assert message["From"] == "Rex Sender <rex@acme.test>"
    assert message["To"] == "ada@client.test"
    assert message["Cc"] == "Cy <cy@acme.test>"
    assert message["Bcc"] == "audit@acme.test"
    assert message["Subject"] == "Hello"
    assert message["Message-ID"] == "<m1.campaign7@acme.test>"
    assert message["Date"].datetime == when
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert body_of(message, "plain").startswith("Hi Ada,\nsee you.")
    assert body_of(message, "html").startswith("<p>Hi Ada</p>")
    # CRLF line ends throughout, and headers are pure ASCII.
    assert b"\n" not in raw.replace(b"\r\n", b"")
    raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def test_one_click_unsubscribe_headers_and_footer() -> None:
    message = parse(build(unsubscribe_mailto="unsubscribe@acme.test"))
    assert message["List-Unsubscribe"] == f"<{URL}>, <mailto:unsubscribe@acme.test>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe: {URL}" in body_of(message, "plain")
    assert f'<a href="{URL}">Unsubscribe</a>' in body_of(message, "html")
    only_https = parse(build())
    assert only_https["List-Unsubscribe"] == f"<{URL}>"


def test_no_footer_when_the_template_places_the_link() -> None:
    template = compile_template(
        "s", "Bye: {{unsubscribe_url}}", '<body><a href="{{unsubscribe_url}}">out</a></body>'
    )
    out = template.render({"unsubscribe_url": URL})
    assert isinstance(out, Rendered)
    message = parse(build(text=out.text, html=out.html))
    assert body_of(message, "plain") == f"Bye: {URL}"
    assert body_of(message, "html").count(URL) == 1


def test_footer_goes_before_the_closing_body_tag() -> None:
    html = body_of(parse(build(html="<html><body><p>x</p></BODY></html>")), "html")
    assert html.index("Unsubscribe") < html.index("</BODY>")


def test_text_only_message_is_a_single_text_part() -> None:
    message = parse(build(html=None))
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert body_of(message, "plain").startswith("Hi Ada,")


@pytest.mark.parametrize(
    "subject",
    [
        "Grüße aus Köln",
        "日本語の件名です" * 8,
        "Emoji 🎉 party and a long tail " * 6,
        "=?utf-8?q?looks_encoded?=",
        "A plain ASCII subject that is rather long and has to be folded over " * 3,
        "x" * 300,
        "two  spaces",
        "",
    ],
)
def test_subjects_round_trip(subject: str) -> None:
    raw = build(subject=subject)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert parse(raw)["Subject"] == subject


def test_non_ascii_subject_uses_encoded_words_of_legal_length() -> None:
    header = subject_header("Привет, " * 20)
    assert header.startswith("Subject: =?utf-8?b?")
    for line in header.split("\r\n"):
        word = line.strip().removeprefix("Subject: ")
        assert len(word) <= 75
    assert encoded_words("") == "=?utf-8?b??="


def test_non_ascii_bodies_and_display_names_round_trip() -> None:
    text = "Zoë,\n\nthe café costs 5 €. " + "ünï " * 60 + "\ntrailing space \nend"
    html = "<p>日本語 &amp; ü</p>\n" + "<span>x</span>" * 100
    raw = build(
        sender="Zoë Ändersen <zoe@acme.test>", to="Åsa <asa@client.test>", text=text, html=html
    )
    message = parse(raw)
    assert message["From"] == "Zoë Ändersen <zoe@acme.test>"
    assert message["To"] == "Åsa <asa@client.test>"
    assert body_of(message, "plain").startswith(text)
    assert body_of(message, "html").startswith(html)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_long_ascii_lines_and_boundary_lookalikes_stay_intact() -> None:
    text = "--=_\n" + "y" * 2000 + "\n.\nFrom here"
    message = parse(build(text=text, html="<p>" + "z" * 1500 + "</p>"))
    assert body_of(message, "plain").startswith(text)
    assert body_of(message, "html").startswith("<p>" + "z" * 1500 + "</p>")


def test_display_names_with_specials_are_quoted() -> None:
    message = parse(build(cc=['"Doe, Jane" <jane@client.test>', "Bob <bob@client.test>"]))
    assert message["Cc"].addresses[0].display_name == "Doe, Jane"
    assert [a.addr_spec for a in message["Cc"].addresses] == [
        "jane@client.test",
        "bob@client.test",
    ]


def test_message_id_without_brackets_is_wrapped() -> None:
    assert parse(build(message_id="m9@acme.test"))["Message-ID"] == "<m9@acme.test>"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"to": "ada@client.test, bob@client.test"}, "exactly one recipient"),
        ({"to": "ada@client.test\r\nBcc: all@client.test"}, "line break"),
        ({"subject": "Hi\r\nBcc: all@client.test"}, "line break"),
        ({"sender": "rex@acme.test\nX-Evil: 1"}, "line break"),
        ({"cc": ["ok@acme.test", "bad\n@x.test"]}, "line break"),
        ({"bcc": ["not an address"]}, "not an email address"),
        ({"message_id": "<a@b>\r\nX: y"}, "line break"),
        ({"message_id": "no-at-sign"}, "not a Message-ID"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "http(s) URL"),
        ({"unsubscribe_url": URL + "\r\nX: y"}, "line break"),
        ({"unsubscribe_mailto": "u@acme.test>, <https://evil.test"}, "mailto"),
    ],
)
def test_header_injection_and_bad_arguments_are_refused(
    overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MessageError) as caught:
        build(**overrides)
    assert reason in str(caught.value)


def test_each_message_gets_its_own_boundary() -> None:
    first, second = build(), build()
    assert parse(first).get_boundary() != parse(second).get_boundary()
