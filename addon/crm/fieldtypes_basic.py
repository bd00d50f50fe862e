"""Scalar field types: text, numbers, money, yes/no, choices, dates and computed values.

Every type has four functions: `parse_*` (form input -> stored value, FieldError when
refused), `render_*` (stored value -> text for a card), `input_*` (stored value -> form
input that parses back to the same value) and `keys_*` (stored value -> index keys).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from addon.crm.fieldtypes_base import (
    MAX_VALUES,
    MONTHS,
    FieldError,
    IndexKeys,
    Options,
    RenderContext,
    collapse,
    comma_is_decimal,
    decimal_text,
    format_date,
    format_decimal,
    format_time,
    int_option,
    items_of,
    list_key,
    locale_style,
    nonblank_items,
    parse_decimal,
    single_item,
    split_values,
    strip_controls,
    text_key,
    to_decimal,
    utc_iso,
    words,
    zone,
)
from addon.crm.fieldtypes_data import CURRENCIES, CURRENCY_MINOR_UNITS, CURRENCY_SYMBOLS

# ----------------------------------------------------------------------------- text


def parse_text(raw: Any, options: Options) -> str | None:
    """Single-line text: controls dropped, NFC-normalised, whitespace collapsed, length-limited."""
    text = collapse(unicodedata.normalize("NFC", strip_controls(" ".join(items_of(raw)))))
    limit = int_option(options.get("max_length"), 300)
    if len(text) > limit:
        raise FieldError(f"is longer than {limit} characters")
    return text or None


def parse_multiline(raw: Any, options: Options) -> str | None:
    """Multi-line text: line breaks kept, trailing spaces and outer blank lines trimmed."""
    text = unicodedata.normalize("NFC", strip_controls("\n".join(items_of(raw))))
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    limit = int_option(options.get("max_length"), 20000)
    if len(text) > limit:
        raise FieldError(f"is longer than {limit} characters")
    return text or None


def render_plain(value: Any, ctx: RenderContext) -> str:
    """The value as it is stored."""
    return str(value)


def input_plain(value: Any) -> list[str]:
    """The stored text itself."""
    return [] if value is None else [str(value)]


def keys_text(value: Any, options: Options) -> IndexKeys:
    """Text key only."""
    return text_key(str(value)), None


# -------------------------------------------------------------------- number, percent


def parse_number(raw: Any, options: Options) -> str | None:
    """A decimal number, stored as canonical text ("1200.5") so no precision is lost."""
    text = single_item(raw, "number")
    if text is None:
        return None
    return decimal_text(parse_decimal(text, comma_decimal=comma_is_decimal(options)))


def parse_percent(raw: Any, options: Options) -> str | None:
    """A percentage as the decimal text of its number of percent: "12,5 %" -> "12.5"."""
    text = single_item(raw, "percentage")
    if text is None:
        return None
    number = text.removesuffix("%").rstrip(" \u00a0\u202f")
    return decimal_text(parse_decimal(number, comma_decimal=comma_is_decimal(options)))


def _decimals(options: Options) -> int | None:
    value = options.get("decimals")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def render_number(value: Any, ctx: RenderContext) -> str:
    """Grouped per locale, rounded to the field's `decimals` when set."""
    number = to_decimal(value)
    if number is None:
        return str(value)
    return format_decimal(number, ctx.style, _decimals(ctx.options))


def render_percent(value: Any, ctx: RenderContext) -> str:
    """ "12.5%" in English, "12,5 %" in German and French."""
    return render_number(value, ctx) + ctx.style.percent_gap + "%"


def keys_number(value: Any, options: Options) -> IndexKeys:
    """Canonical text and the number itself."""
    number = to_decimal(value)
    if number is None:
        return text_key(str(value)), None
    return decimal_text(number), float(number)


# ---------------------------------------------------------------------------- currency

# Currencies written with a bare "$": the field's default wins when it is one of them.
_DOLLAR_CURRENCIES = words(
    "USD CAD AUD NZD HKD SGD MXN ARS CLP COP TWD BSD BBD BZD BMD FJD JMD LRD NAD SBD SRD "
    "TTD XCD GYD KYD BND CUP DOP UYU"
)
_CODE_RE = re.compile(r"(?<![A-Z])[A-Z]{3}(?![A-Z])")


def _symbol_pattern(symbol: str) -> str:
    # Alphabetic symbols ("KR", "FT") only count as whole words, never inside "KRW".
    escaped = re.escape(symbol)
    return rf"(?<![A-Z]){escaped}(?![A-Z])" if symbol[-1].isalpha() else escaped


_SYMBOLS = {
    **CURRENCY_SYMBOLS,
    "$": "$",
    "¥": "¥",
    "￥": "¥",
    "KR": "KR",
}
_SYMBOL_RE = re.compile(
    "|".join(_symbol_pattern(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
)


def _symbol_code(symbol: str, default: str) -> str:
    """The currency an ambiguous symbol means for a field with this default currency."""
    if symbol == "$":
        return default if default in _DOLLAR_CURRENCIES else "USD"
    if symbol == "¥":
        return default if default in ("JPY", "CNY") else "JPY"
    if symbol == "KR":
        if default in ("SEK", "NOK", "DKK", "ISK"):
            return default
        raise FieldError("“kr” could be SEK, NOK, DKK or ISK: add the currency code")
    return _SYMBOLS[symbol]


def minor_units(code: str) -> int:
    """Digits after the decimal point for a currency (JPY 0, EUR 2, KWD 3)."""
    return CURRENCY_MINOR_UNITS.get(code, 2)


def parse_currency(raw: Any, options: Options) -> dict[str, str] | None:
    """An amount and an ISO 4217 code: "1200 EUR", "EUR 1,200.50", "€1.200,50" or a bare amount."""
    text = collapse(" ".join(nonblank_items(raw)))
    if not text:
        return None
    default = str(options.get("default_currency") or "USD").upper()
    if default not in CURRENCIES:
        default = "USD"
    rest = text.upper()
    found: list[str] = []
    codes = _CODE_RE.findall(rest)
    rest = _CODE_RE.sub(" ", rest)
    for code in codes:
        if code not in CURRENCIES:
            raise FieldError(f"“{code}” is not a supported currency code")
        found.append(code)
    symbols = _SYMBOL_RE.findall(rest)
    rest = _SYMBOL_RE.sub(" ", rest)
    found.extend(_symbol_code(symbol, default) for symbol in symbols)
    if len(set(found)) > 1:
        raise FieldError(f"“{text}” names more than one currency")
    code = found[0] if found else default
    amount = parse_decimal(rest.strip(), comma_decimal=comma_is_decimal(options))
    places = Decimal(1).scaleb(-minor_units(code))
    amount = amount.quantize(places, rounding=ROUND_HALF_UP) + 0  # "+ 0" turns -0.00 into 0.00
    return {"amount": format(amount, "f"), "currency": code}


def _money(value: Any) -> tuple[Decimal, str] | None:
    if not isinstance(value, dict):
        return None
    amount, code = to_decimal(value.get("amount")), value.get("currency")
    if amount is None or not isinstance(code, str):
        return None
    return amount, code


def render_currency(value: Any, ctx: RenderContext) -> str:
    """ "1,200.50 EUR" (grouping and decimal separator per locale, code last)."""
    money = _money(value)
    if money is None:
        return str(value)
    amount, code = money
    return f"{format_decimal(amount, ctx.style, minor_units(code))} {code}"


def input_currency(value: Any) -> list[str]:
    """ "1200.50 EUR"."""
    money = _money(value)
    if money is None:
        return [] if value is None else [str(value)]
    return [f"{format(money[0], 'f')} {money[1]}"]


def keys_currency(value: Any, options: Options) -> IndexKeys:
    """Text "1200.50 eur" and the amount (amounts of different currencies are not converted)."""
    money = _money(value)
    if money is None:
        return None, None
    return text_key(f"{format(money[0], 'f')} {money[1]}"), float(money[0])


# ------------------------------------------------------------------------- autonumber


def parse_autonumber(raw: Any, options: Options) -> None:
    """Refuses input: the records service assigns the next number of the folder's sequence."""
    if nonblank_items(raw):
        raise FieldError("is assigned automatically")
    return None


def next_autonumber(last: int | None, options: Options) -> int:
    """The number after `last` in a folder's sequence (the `start` option when there is none)."""
    if last is None:
        return int_option(options.get("start"), 1)
    return last + 1


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,30}", value.strip()):
        return int(value)
    return None


def render_autonumber(value: Any, ctx: RenderContext) -> str:
    """The number with the field's `prefix`: "T-12" (never grouped: it is an identifier)."""
    number = _as_int(value)
    prefix = str(ctx.options.get("prefix") or "")
    return prefix + (str(number) if number is not None else str(value))


def input_int(value: Any) -> list[str]:
    """The number as digits."""
    number = _as_int(value)
    if number is None:
        return [] if value is None else [str(value)]
    return [str(number)]


def keys_autonumber(value: Any, options: Options) -> IndexKeys:
    """Text with the prefix ("t-12") and the number."""
    number = _as_int(value)
    if number is None:
        return None, None
    return text_key(f"{options.get('prefix') or ''}{number}"), float(number)


# --------------------------------------------------------------------------- checkbox

_TRUE_WORDS = words("true yes y 1 on x ✓ ✔ ☑ checked ja oui si sí")
_FALSE_WORDS = words("false no n 0 off ☐ unchecked nein non")


def parse_checkbox(raw: Any, options: Options) -> bool | None:
    """Yes/no. An absent input ([]) is an unticked box: False. A blank text is unknown: None.

    Google omits an unticked checkbox from formInputs, so the records service sees []
    for it; a blank cell in an import means "not known" and must not overwrite a value
    with False.
    """
    items = items_of(raw)
    if not items:
        return False
    results: set[bool] = set()
    for item in items:
        word = item.strip().casefold()
        if not word:
            continue
        if word in _TRUE_WORDS:
            results.add(True)
        elif word in _FALSE_WORDS:
            results.add(False)
        else:
            raise FieldError(f"“{item.strip()}” is not yes or no")
    if len(results) > 1:
        raise FieldError("is both yes and no")
    return results.pop() if results else None


def render_checkbox(value: Any, ctx: RenderContext) -> str:
    """ "Yes"/"No" in the locale's language."""
    if not isinstance(value, bool):
        return str(value)
    return ctx.style.yes if value else ctx.style.no


def input_checkbox(value: Any) -> list[str]:
    """ "true", "false", or "" (unknown) - never [], which would mean False."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [""]


def keys_checkbox(value: Any, options: Options) -> IndexKeys:
    """ "true"/"false" and 1/0."""
    if not isinstance(value, bool):
        return None, None
    return ("true", 1.0) if value else ("false", 0.0)


# ------------------------------------------------------------------ dropdown, multi

_CHOICE_SPLIT = r"[,;\n]"


def choices_of(options: Options) -> list[str]:
    """The admin-defined choices of a dropdown."""
    return [str(c) for c in options.get("choices") or []]


def _match_choice(text: str, choices: list[str]) -> str | None:
    if text in choices:
        return text
    # Case and spacing are forgiven ("Qualified " finds "qualified"); validate_options
    # refuses choices that differ only in case, so the match is unique.
    folded = collapse(text).casefold()
    return next((c for c in choices if collapse(c).casefold() == folded), None)


def _not_a_choice(text: str, choices: list[str]) -> FieldError:
    listed = ", ".join(choices[:10]) + (", …" if len(choices) > 10 else "")
    return FieldError(f"“{text}” is not one of: {listed}")


def parse_dropdown(raw: Any, options: Options) -> str | None:
    """One choice out of the field's admin-defined `choices`."""
    text = single_item(raw, "choice")
    if text is None:
        return None
    choices = choices_of(options)
    match = _match_choice(text, choices)
    if match is None:
        raise _not_a_choice(text, choices)
    return match


def keys_dropdown(value: Any, options: Options) -> IndexKeys:
    """The choice, and its position among the choices so views sort in the admin's order."""
    choices = choices_of(options)
    position = float(choices.index(value)) if value in choices else None
    return text_key(str(value)), position


def parse_multidropdown(raw: Any, options: Options) -> list[str] | None:
    """Several choices, duplicates dropped, kept in the order of the field's choices."""
    choices = choices_of(options)
    picked: set[str] = set()
    for item in nonblank_items(raw):
        match = _match_choice(item, choices)
        if match is not None:
            picked.add(match)
            continue
        # One text may list several choices; a choice containing a comma matched above.
        for part in re.split(_CHOICE_SPLIT, item):
            if not part.strip():
                continue
            match = _match_choice(part, choices)
            if match is None:
                raise _not_a_choice(part.strip(), choices)
            picked.add(match)
    return [c for c in choices if c in picked] or None


def render_list(value: Any, ctx: RenderContext) -> str:
    """Values separated by commas."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def input_list(value: Any) -> list[str]:
    """One input per value."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def keys_list(value: Any, options: Options) -> IndexKeys:
    """ "|a|b|" for LIKE '%|a|%' queries."""
    if isinstance(value, list):
        return list_key(str(v) for v in value), None
    return list_key([str(value)]), None


# ------------------------------------------------------------------- date, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FULL_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")  # fmt: skip
_MONTH_NUMBERS = {
    **{m.lower(): i + 1 for i, m in enumerate(MONTHS)},
    **{name: i + 1 for i, name in enumerate(_FULL_MONTHS)},
    "sept": 9,
}
_DMY_DOTS_RE = re.compile(r"(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})\.?")
_YMD_SLASH_RE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_NUMERIC_RE = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})")
_MONTH_DAY_YEAR_RE = re.compile(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DAY_MONTH_YEAR_RE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\.?\s+([a-z]+)\.?,?\s+(\d{4})")
_TIME_RE = re.compile(
    r"(?P<date>.+?)[,\s]+(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?(?:\s*(?P<utc>utc|gmt|z))?"
)


def _from_epoch_ms(ms: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise FieldError("is out of range") from None


def _make_date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise FieldError(f"“{text}” is not a valid date") from None


def _month_first(options: Options) -> bool:
    # 6/2/2025 is June 2 in the US and 6 February almost everywhere else.
    return locale_style(str(options.get("_locale") or "en-US")).date == "us"


def _written_date(text: str, options: Options) -> date | None:
    """Dates written the way people and our own displays write them."""
    lowered = text.lower()
    if m := _DMY_DOTS_RE.fullmatch(lowered):
        return _make_date(int(m[3]), int(m[2]), int(m[1]), text)
    if m := _YMD_SLASH_RE.fullmatch(lowered):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), text)
    if m := _NUMERIC_RE.fullmatch(lowered):
        first, second = int(m[1]), int(m[2])
        month, day = (first, second) if _month_first(options) else (second, first)
        return _make_date(int(m[3]), month, day, text)
    if (m := _MONTH_DAY_YEAR_RE.fullmatch(lowered)) and m[1] in _MONTH_NUMBERS:
        return _make_date(int(m[3]), _MONTH_NUMBERS[m[1]], int(m[2]), text)
    if (m := _DAY_MONTH_YEAR_RE.fullmatch(lowered)) and m[2] in _MONTH_NUMBERS:
        return _make_date(int(m[3]), _MONTH_NUMBERS[m[2]], int(m[1]), text)
    return None


def _digits_moment(text: str) -> datetime | date | None:
    """Epoch milliseconds (date pickers) or a basic ISO date "20250602"."""
    if not re.fullmatch(r"-?\d+", text):
        return None
    digits = text.lstrip("-")
    if len(digits) == 8 and digits == text:
        return _make_date(int(text[:4]), int(text[4:6]), int(text[6:]), text)
    # Fewer than 9 digits of milliseconds would be the first day of 1970: far more
    # likely a mistyped date than a real pick.
    if 9 <= len(digits) <= 16:
        return _from_epoch_ms(int(text))
    raise FieldError(f"“{text}” is not a date (use YYYY-MM-DD)")


def _iso_moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def date_of(text: str, options: Options) -> date:
    """A calendar date from ISO text, epoch milliseconds, an ISO date-time or a written date."""
    text = collapse(text)
    digits = _digits_moment(text)
    if isinstance(digits, datetime):
        # A date picker sends midnight UTC of the picked day.
        return digits.date()
    if digits is not None:
        return digits
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    moment = _iso_moment(text)
    if moment is not None:
        if moment.tzinfo is not None:
            moment = moment.astimezone(zone(options.get("_tz")))
        return moment.date()
    written = _written_date(text, options)
    if written is None:
        raise FieldError(f"“{text}” is not a date (use YYYY-MM-DD)")
    return written


def parse_date(raw: Any, options: Options) -> str | None:
    """A calendar date stored as "YYYY-MM-DD"."""
    text = single_item(raw, "date")
    if text is None:
        return None
    try:
        return date_of(text, options).isoformat()
    except OverflowError:
        raise FieldError("is out of range") from None


def moment_of(text: str, options: Options) -> datetime:
    """An aware datetime; input without an offset is read in the `_tz` zone."""
    text = collapse(text)
    tz = zone(options.get("_tz"))
    digits = _digits_moment(text)
    if isinstance(digits, datetime):
        return digits
    if digits is not None:
        return datetime.combine(digits, datetime.min.time(), tzinfo=tz)
    moment = _iso_moment(text)
    if moment is not None:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    match = _TIME_RE.fullmatch(text.lower())
    if match is None:
        day = _written_date(text, options)
        if day is None:
            raise FieldError(f"“{text}” is not a date and time (use YYYY-MM-DD HH:MM)")
        return datetime.combine(day, datetime.min.time(), tzinfo=tz)
    day = _written_date(match["date"], options)
    if day is None:
        raise FieldError(f"“{text}” is not a date and time (use YYYY-MM-DD HH:MM)")
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise FieldError(f"“{text}” has an invalid time")
        hour = hour % 12 + (12 if match["ampm"].startswith("p") else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise FieldError(f"“{text}” has an invalid time")
    return datetime.combine(
        day,
        datetime.min.time().replace(hour=hour, minute=minute, second=second),
        tzinfo=UTC if match["utc"] else tz,
    )


def parse_datetime(raw: Any, options: Options) -> str | None:
    """A moment stored as ISO 8601 UTC "2025-06-02T10:00:00Z" (seconds precision)."""
    text = single_item(raw, "date and time")
    if text is None:
        return None
    try:
        return utc_iso(moment_of(text, options))
    except OverflowError:
        raise FieldError("is out of range") from None


def render_date(value: Any, ctx: RenderContext) -> str:
    """The locale's date format."""
    return format_date(date.fromisoformat(str(value)), ctx.style)


def render_datetime(value: Any, ctx: RenderContext) -> str:
    """Date and time in the viewer's zone, with the zone's abbreviation."""
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ctx.tz)
    when = f"{format_date(local.date(), ctx.style)} {format_time(local, ctx.style)}"
    return f"{when} {local.tzname()}"


def keys_moment(value: Any, options: Options) -> IndexKeys:
    """ISO text (lexical order is chronological); no numeric key."""
    return text_key(str(value)), None


# ------------------------------------------------------------------- computed values

STATS_METRICS = (
    "emails_sent",
    "emails_received",
    "threads",
    "first_email",
    "last_email",
    "last_sent",
    "last_received",
    "last_contacted",
    "days_since_last_contact",
    "days_since_last_reply",
)


def parse_stats(raw: Any, options: Options) -> None:
    """Refuses input: the email ledger computes these values."""
    if nonblank_items(raw):
        raise FieldError("is computed from email activity")
    return None


def parse_formula_value(raw: Any, options: Options) -> None:
    """Refuses input: the value comes from the field's formula."""
    if nonblank_items(raw):
        raise FieldError("is computed from a formula")
    return None


def _render_computed(value: Any, ctx: RenderContext, decimals: int | None) -> str:
    number = _as_int(value) if not isinstance(value, Decimal | float) else None
    if number is not None:
        return format_decimal(Decimal(number), ctx.style)
    amount = to_decimal(value)
    if amount is not None:
        return format_decimal(amount, ctx.style, decimals)
    moment = _iso_moment(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(ctx.tz)
    return format_date(moment.date(), ctx.style)


def render_stats(value: Any, ctx: RenderContext) -> str:
    """Counts as integers, moments as the date in the viewer's zone, "days since" as days."""
    if str(ctx.options.get("metric", "")).startswith("days_since"):
        # Stored as the moment counted from, so the number is never stale: whole UTC
        # days to today (the `_today` option, an ISO date, stands in for the clock).
        moment = _iso_moment(str(value))
        if moment is not None:
            today_text = ctx.options.get("_today")
            today = date.fromisoformat(str(today_text)) if today_text else datetime.now(UTC).date()
            utc = moment.astimezone(UTC) if moment.tzinfo else moment
            days = (today - utc.date()).days
            if days == 0:
                return "today"
            return "1 day" if days == 1 else f"{format_decimal(Decimal(days), ctx.style)} days"
    return _render_computed(value, ctx, None)


def render_formula(value: Any, ctx: RenderContext) -> str:
    """Numbers per locale (rounded to `decimals`), dates per locale."""
    return _render_computed(value, ctx, _decimals(ctx.options))


def input_computed(value: Any) -> list[str]:
    """The value as text (for export; computed fields refuse it as input)."""
    if value is None:
        return []
    if isinstance(value, Decimal):
        return [decimal_text(value)]
    return [str(value)]


def keys_computed(value: Any, options: Options) -> IndexKeys:
    """Numbers get both keys; moments and dates their ISO text."""
    if isinstance(value, bool):
        return None, None
    number = to_decimal(value)
    if number is not None:
        return decimal_text(number), float(number)
    return text_key(str(value)), None


# ------------------------------------------------------------------------ references


def parse_reference(raw: Any, options: Options) -> list[str] | None:
    """Links and users are resolved against the database by the records service."""
    values = split_values(raw)
    if len(values) > MAX_VALUES:
        raise FieldError(f"has more than {MAX_VALUES} values")
    return values or None


def input_reference(value: Any) -> list[str]:
    """ "#12" for resolved ids (what the records service accepts), titles as they are."""
    values = value if isinstance(value, list) else [value]
    return [f"#{v}" if isinstance(v, int) else str(v) for v in values if v is not None]


def keys_reference(value: Any, options: Options) -> IndexKeys:
    """Link ids (or unresolved titles) as a "|"-wrapped list; a user's member id as text."""
    if not isinstance(value, list):
        return text_key(str(value)), None
    return list_key(str(v) for v in value), None
