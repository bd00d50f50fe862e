"""Shared helpers of the field types: errors, raw input, decimals, locales and index keys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RawInput = list[str]
Options = Mapping[str, Any]
IndexKeys = tuple[str | None, float | None]

# One form input never legitimately carries more than this; refusing early keeps every
# regular expression below linear-time on small inputs.
MAX_RAW_CHARS = 100_000
# Multi-valued fields (emails, phones, choices, profiles) hold at most this many values.
MAX_VALUES = 100
# Saved-view index columns are VARCHAR(255).
MAX_KEY_CHARS = 255
# Numbers keep 10 decimal places and stay below 10**18 so they survive a round trip
# through float sort keys and PostgreSQL NUMERIC(28, 10).
DECIMAL_PLACES = 10
MAX_INTEGER_DIGITS = 18

_WHITESPACE_RE = re.compile(r"\s+")
_DECIMAL_CONTEXT = Context(prec=60)


class FieldError(ValueError):
    """A value a field refuses, with a message for the user."""


def items_of(raw: Any) -> list[str]:
    """The strings of a form input, refusing other shapes and oversized input."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise FieldError("has the wrong shape (expected a list of texts)")
    if not all(isinstance(item, str) for item in raw):
        raise FieldError("has the wrong shape (expected a list of texts)")
    if sum(len(item) for item in raw) > MAX_RAW_CHARS:
        raise FieldError(f"is longer than {MAX_RAW_CHARS} characters")
    for item in raw:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (possible in JSON input) would make encoders further down
            # (IDNA, URL quoting, the database driver) raise something other than FieldError.
            raise FieldError("contains invalid characters") from None
    return list(raw)


def nonblank_items(raw: Any) -> list[str]:
    """The non-blank strings of a form input, stripped."""
    return [item.strip() for item in items_of(raw) if item.strip()]


def single_item(raw: Any, what: str = "value") -> str | None:
    """The one non-blank value of a single-valued input (None when blank)."""
    values = nonblank_items(raw)
    if not values:
        return None
    if len(set(values)) > 1:
        raise FieldError(f"takes one {what} only")
    return values[0]


def collapse(text: str) -> str:
    """Whitespace runs turned into one space, ends trimmed."""
    return _WHITESPACE_RE.sub(" ", text).strip()


def strip_controls(text: str) -> str:
    """Control characters removed; whitespace (tabs, line breaks) kept."""
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")


def clean_line(text: str) -> str:
    """One line of text: controls removed, NFC-normalised, whitespace collapsed."""
    # Controls go before NFC (removing one can bring a combining mark next to its base)
    # and collapsing comes last, so a second pass changes nothing.
    return collapse(unicodedata.normalize("NFC", strip_controls(text)))


def split_values(raw: Any, pattern: str = r"[,;\n]") -> list[str]:
    """Several values given as several inputs or as one separated text."""
    parts: list[str] = []
    for item in items_of(raw):
        parts.extend(p for p in re.split(pattern, item) if p.strip())
        if len(parts) > MAX_VALUES:
            raise FieldError(f"has more than {MAX_VALUES} values")
    return [collapse(p) for p in parts]


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a text, as a set."""
    return frozenset(text.split())


def int_option(value: Any, default: int) -> int:
    """An int option read leniently: `default` unless it is an int (bools excluded)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


# ---------------------------------------------------------------------------- decimals

# Languages that write 1.234,5: with these a lone comma is always the decimal separator.
_COMMA_DECIMAL_LANGUAGES = words(
    "bg cs da de el es et fi fr hr hu id it lt lv nb nl nn no pl pt ro ru sk sl sr sv tr uk vi"
)
_GROUPING_CHARS = " \u00a0\u202f\u2009'\u2019_"
_NUMBER_CHARS_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def comma_is_decimal(options: Options) -> bool:
    """Whether the user's locale (options `_locale`) writes decimals with a comma."""
    locale = str(options.get("_locale") or "en").replace("_", "-").lower()
    return locale.split("-", 1)[0] in _COMMA_DECIMAL_LANGUAGES


def parse_decimal(text: str, *, comma_decimal: bool = False) -> Decimal:
    """A finite decimal from "1,200.50", "1.200,50", "1 200,5", "-3", "1e3" and the like."""
    original = text
    cleaned = text.strip().replace("\u2212", "-")
    for ch in _GROUPING_CHARS:
        cleaned = cleaned.replace(ch, "")
    commas, dots = cleaned.count(","), cleaned.count(".")
    if commas and dots:
        # Both present: the last one separates the decimals, the other groups thousands.
        decimal_sep = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        group_sep = "." if decimal_sep == "," else ","
        cleaned = _drop_groups(cleaned, group_sep, original, before=decimal_sep)
        if cleaned.count(decimal_sep) > 1:
            raise FieldError(f"“{original}” is not a number")
        cleaned = cleaned.replace(decimal_sep, ".")
    elif commas > 1 or dots > 1:
        cleaned = _drop_groups(cleaned, "," if commas else ".", original)
    elif commas == 1:
        whole, _, fraction = cleaned.partition(",")
        # "1,234" is a thousand and more in English but 1.234 in German; a canonical
        # stored value never contains a comma, so this guess cannot break a round trip.
        if len(fraction) == 3 and fraction.isdigit() and whole.strip("+-") and not comma_decimal:
            cleaned = whole + fraction
        else:
            cleaned = whole + "." + fraction
    if not _NUMBER_CHARS_RE.fullmatch(cleaned):
        raise FieldError(f"“{original}” is not a number")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above rules it out
        raise FieldError(f"“{original}” is not a number") from exc
    return bounded(value, original)


def _drop_groups(text: str, sep: str, original: str, before: str | None = None) -> str:
    """Remove thousands separators, checking they sit every three digits."""
    whole, dec, rest = text.partition(before) if before else (text, "", "")
    groups = whole.split(sep)
    if len(groups) > 1 and not all(len(g) == 3 and g.isdigit() for g in groups[1:]):
        raise FieldError(f"“{original}” is not a number")
    return "".join(groups) + dec + rest


def bounded(value: Decimal, original: str) -> Decimal:
    """The value if finite and within the supported range; rounded to 10 places."""
    if not value.is_finite():
        raise FieldError(f"“{original}” is not a number")
    if value and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise FieldError(f"“{original}” is too large")
    with localcontext(_DECIMAL_CONTEXT):
        return value.quantize(Decimal(1).scaleb(-DECIMAL_PLACES), rounding=ROUND_HALF_EVEN)


def decimal_text(value: Decimal) -> str:
    """Canonical stored text of a number: plain notation, no trailing zeros, no "-0"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "", "-") else text


def to_decimal(value: Any) -> Decimal | None:
    """A stored number (text, int, float or Decimal) as a Decimal, None if it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = Decimal(str(value)) if isinstance(value, int | float | str) else value
    except InvalidOperation:
        return None
    if not isinstance(result, Decimal) or not result.is_finite():
        return None
    return result


# ------------------------------------------------------------------------------ locales


@dataclass(frozen=True)
class LocaleStyle:
    """How one locale writes numbers, dates, times and yes/no."""

    decimal: str
    group: str
    date: str  # "us" Jun 2, 2025 | "gb" 2 Jun 2025 | "de" 02.06.2025 | "fr" 02/06/2025 | "iso"
    hour12: bool
    percent_gap: str
    yes: str
    no: str


_EN_US = LocaleStyle(".", ",", "us", True, "", "Yes", "No")
_EN_GB = LocaleStyle(".", ",", "gb", False, "", "Yes", "No")
_DE = LocaleStyle(",", ".", "de", False, "\u00a0", "Ja", "Nein")
_DE_CH = LocaleStyle(".", "\u2019", "de", False, "\u00a0", "Ja", "Nein")
_FR = LocaleStyle(",", "\u202f", "fr", False, "\u202f", "Oui", "Non")
_OTHER = LocaleStyle(".", "", "iso", False, "", "Yes", "No")
# English outside North America writes the day first and uses a 24-hour clock.
_DAY_FIRST_ENGLISH = frozenset({"gb", "au", "nz", "ie", "in", "za", "sg"})
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def locale_style(locale: str | None) -> LocaleStyle:
    """The formatting conventions of a BCP 47 locale ("en-US", "de", "fr_CA" ...)."""
    parts = str(locale or "en").replace("_", "-").lower().split("-")
    language, region = parts[0], parts[1] if len(parts) > 1 else ""
    if language == "en":
        return _EN_GB if region in _DAY_FIRST_ENGLISH else _EN_US
    if language == "de":
        return _DE_CH if region in ("ch", "li") else _DE
    if language == "fr":
        return _FR
    return _OTHER


def format_decimal(value: Decimal, style: LocaleStyle, decimals: int | None = None) -> str:
    """A number with the locale's grouping and decimal separators."""
    if decimals is not None:
        with localcontext(_DECIMAL_CONTEXT):
            value = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        text = format(value, "f")
    else:
        text = decimal_text(value)
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    if style.group and len(whole) > 3:
        head = len(whole) % 3 or 3
        whole = whole[:head] + "".join(
            style.group + whole[i : i + 3] for i in range(head, len(whole), 3)
        )
    if sign and not (whole.strip("0" + style.group) or fraction.strip("0")):
        sign = ""  # rounding can leave "-0.00"
    return sign + whole + (style.decimal + fraction if fraction else "")


def format_date(day: date, style: LocaleStyle) -> str:
    """A calendar date the way the locale writes it."""
    if style.date == "us":
        return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"
    if style.date == "gb":
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    if style.date == "de":
        return f"{day.day:02d}.{day.month:02d}.{day.year:04d}"
    if style.date == "fr":
        return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
    return day.isoformat()


def format_time(moment: datetime, style: LocaleStyle) -> str:
    """A time of day (minutes precision) in the locale's clock."""
    if style.hour12:
        hour = moment.hour % 12 or 12
        return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
    return f"{moment.hour:02d}:{moment.minute:02d}"


def zone(name: Any) -> tzinfo:
    """The IANA time zone of that name; UTC when it is missing or unknown."""
    if not name or str(name).upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # The zone comes from the Gmail event or workspace settings; an odd value there
        # must not make every date input fail.
        return UTC


# --------------------------------------------------------------------------- index keys


def text_key(text: str | None) -> str | None:
    """The lowercased, whitespace-collapsed text a saved view filters and sorts on."""
    if text is None:
        return None
    key = collapse(text).lower()[:MAX_KEY_CHARS]
    return key or None


def list_key(values: Iterable[str]) -> str | None:
    """A "|"-wrapped list ("|a|b|") so LIKE '%|value|%' finds one member.

    A "|" inside a value becomes "¦" (the query side uses the same function). Values that
    no longer fit in 255 characters are left out rather than cut, so no partial value
    can match.
    """
    key = "|"
    for value in values:
        item = (text_key(value) or "").replace("|", "\u00a6")
        if not item:
            continue
        if len(key) + len(item) + 1 > MAX_KEY_CHARS:
            continue
        key += item + "|"
    return key if key != "|" else None


@dataclass(frozen=True)
class RenderContext:
    """What a display function needs besides the value: locale, time zone, field options."""

    style: LocaleStyle
    tz: tzinfo
    options: Options


def utc_iso(moment: datetime) -> str:
    """An aware datetime as stored: ISO 8601 in UTC, seconds precision, "Z" suffix."""
    utc = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat(timespec="seconds") + "Z"
