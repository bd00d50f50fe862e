"""The registry of field types: each parses form input, validates, normalises and displays."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from addon.gmail.addresses import canonical_email

RawInput = list[str]


class FieldError(ValueError):
    """A value a field refuses, with a message for the user."""


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _split_multi(raw: RawInput) -> list[str]:
    # Several values may arrive as several inputs or as one comma/semicolon separated text.
    parts: list[str] = []
    for item in raw:
        parts.extend(p for p in re.split(r"[,;\n]", item) if p.strip())
    return [_collapse(p) for p in parts]


def parse_text(raw: RawInput, options: dict[str, Any]) -> Any:
    """Single-line text: whitespace collapsed, length-limited."""
    text = _collapse(" ".join(raw))
    limit = int(options.get("max_length", 300))
    if len(text) > limit:
        raise FieldError(f"is longer than {limit} characters")
    return text or None


def parse_multiline(raw: RawInput, options: dict[str, Any]) -> Any:
    """Multi-line text: line breaks kept, trailing spaces trimmed."""
    text = "\n".join(line.rstrip() for line in "\n".join(raw).strip().splitlines())
    if len(text) > 20000:
        raise FieldError("is longer than 20000 characters")
    return text or None


def parse_emails(raw: RawInput, options: dict[str, Any]) -> Any:
    """Email addresses: canonical form, duplicates dropped, each validated."""
    emails: list[str] = []
    for part in _split_multi(raw):
        email = canonical_email(part)
        if email is None:
            raise FieldError(f"“{part}” is not a valid email address")
        if email not in emails:
            emails.append(email)
    return emails or None


_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ().\-/]{5,30}$")


def parse_phones(raw: RawInput, options: dict[str, Any]) -> Any:
    """Phone numbers: checked for plausible characters, spacing collapsed."""
    phones: list[str] = []
    for part in _split_multi(raw):
        if not _PHONE_ALLOWED.match(part) or sum(c.isdigit() for c in part) < 5:
            raise FieldError(f"“{part}” is not a phone number")
        if part not in phones:
            phones.append(part)
    return phones or None


def parse_dropdown(raw: RawInput, options: dict[str, Any]) -> Any:
    """One choice out of the field's admin-defined options."""
    choice = _collapse(" ".join(raw))
    if not choice:
        return None
    choices = [str(c) for c in options.get("choices", [])]
    if choice not in choices:
        raise FieldError(f"“{choice}” is not one of: {', '.join(choices)}")
    return choice


def _decimal(text: str) -> Decimal:
    cleaned = text.replace(" ", "").replace("\u00a0", "")
    # Accept a decimal comma ("1200,50") when there is no decimal point.
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise FieldError(f"“{text}” is not a number") from exc
    if not value.is_finite():
        raise FieldError(f"“{text}” is not a number")
    return value


def parse_number(raw: RawInput, options: dict[str, Any]) -> Any:
    """A decimal number, stored as text so no precision is lost."""
    text = _collapse(" ".join(raw))
    return str(_decimal(text)) if text else None


CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "INR")


def parse_currency(raw: RawInput, options: dict[str, Any]) -> Any:
    """An amount and an ISO 4217 code: "1200 EUR", "EUR 1,200.50" or a bare amount."""
    text = _collapse(" ".join(raw)).upper()
    if not text:
        return None
    code = str(options.get("default_currency", "USD"))
    match = re.search(r"\b([A-Z]{3})\b", text)
    if match:
        code = match.group(1)
        text = (text[: match.start()] + text[match.end() :]).strip()
    if code not in CURRENCIES:
        raise FieldError(f"“{code}” is not a supported currency code")
    amount = _decimal(text.replace("$", "").replace("€", "").replace("£", ""))
    return {"amount": str(amount.quantize(Decimal("0.01"))), "currency": code}


def parse_date(raw: RawInput, options: dict[str, Any]) -> Any:
    """A calendar date: ISO text or milliseconds since the epoch from a date picker."""
    text = _collapse(" ".join(raw))
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date().isoformat()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise FieldError(f"“{text}” is not a date (use YYYY-MM-DD)") from exc


def parse_reference(raw: RawInput, options: dict[str, Any]) -> Any:
    """Links and users are resolved against the database by the records service."""
    values = _split_multi(raw)
    return values or None


@dataclass(frozen=True)
class FieldType:
    """How one type of field reads input and shows a value."""

    name: str
    parse: Callable[[RawInput, dict[str, Any]], Any]
    display: Callable[[Any], str]
    multi: bool = False


def _display_plain(value: Any) -> str:
    return "" if value is None else str(value)


def _display_list(value: Any) -> str:
    return ", ".join(value or [])


def _display_currency(value: Any) -> str:
    if not value:
        return ""
    amount = Decimal(value["amount"])
    return f"{amount:,.2f} {value['currency']}"


FIELD_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        FieldType("text", parse_text, _display_plain),
        FieldType("multiline", parse_multiline, _display_plain),
        FieldType("email", parse_emails, _display_list, multi=True),
        FieldType("phone", parse_phones, _display_list, multi=True),
        FieldType("dropdown", parse_dropdown, _display_plain),
        FieldType("number", parse_number, _display_plain),
        FieldType("currency", parse_currency, _display_currency),
        FieldType("date", parse_date, _display_plain),
        FieldType("link", parse_reference, _display_plain),
        FieldType("user", parse_reference, _display_plain),
    )
}


def field_type(name: str) -> FieldType:
    """Look up a field type, refusing unknown ones with a clear message."""
    try:
        return FIELD_TYPES[name]
    except KeyError:
        raise FieldError(f"unknown field type “{name}”") from None
