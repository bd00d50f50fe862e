"""The registry of field types: each parses form input, validates, normalises and displays.

A field type turns the strings a form input delivers into a stored (JSON) value, shows a
stored value, gives back the form input of a stored value (`to_input`, for edit forms and
CSV export) and the keys saved views filter and sort on (`index_keys`). The types live in
`fieldtypes_*` modules; this module assembles them and validates field options.

Stored shapes: text, multiline, dropdown, url, skype -> str; number, percent -> decimal
text ("1200.5", "12.5" for 12.5 %); currency -> {"amount": "1200.00", "currency": "EUR"};
autonumber -> int; checkbox -> bool; multidropdown, email, phone -> list[str]; date ->
"YYYY-MM-DD"; datetime -> "YYYY-MM-DDTHH:MM:SSZ"; address -> dict of street, city, region,
postal_code, country; social -> {network: url}; link -> list of ids/titles; user -> the
member id (resolved by the records service); formula -> decimal text or ISO date; stats ->
int, ISO datetime text or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from addon.crm.fieldtypes_base import (
    FieldError,
    IndexKeys,
    Options,
    RawInput,
    RenderContext,
    clean_line,
    list_key,
    locale_style,
    text_key,
    zone,
)
from addon.crm.fieldtypes_basic import (
    STATS_METRICS,
    input_checkbox,
    input_computed,
    input_currency,
    input_int,
    input_list,
    input_plain,
    input_reference,
    keys_autonumber,
    keys_checkbox,
    keys_computed,
    keys_currency,
    keys_dropdown,
    keys_list,
    keys_moment,
    keys_number,
    keys_reference,
    keys_text,
    minor_units,
    next_autonumber,
    parse_autonumber,
    parse_checkbox,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_dropdown,
    parse_formula_value,
    parse_multidropdown,
    parse_multiline,
    parse_number,
    parse_percent,
    parse_reference,
    parse_stats,
    parse_text,
    render_autonumber,
    render_checkbox,
    render_currency,
    render_date,
    render_datetime,
    render_formula,
    render_list,
    render_number,
    render_percent,
    render_plain,
    render_stats,
)
from addon.crm.fieldtypes_contact import (
    ADDRESS_PARTS,
    SOCIAL_NETWORKS,
    input_address,
    input_social,
    keys_address,
    keys_social,
    parse_address,
    parse_emails,
    parse_phones,
    parse_skype,
    parse_social,
    parse_url,
    render_address,
    render_emails,
    render_phones,
    render_social,
)
from addon.crm.fieldtypes_data import COUNTRY_CODES, CURRENCIES
from addon.crm.fieldtypes_formula import (
    FORMULA_INPUT_TYPES,
    FUNCTIONS,
    Formula,
    check_formula_references,
    formula_operand,
    parse_formula,
)

__all__ = [
    "ADDRESS_PARTS",
    "COUNTRY_CODES",
    "CURRENCIES",
    "FIELD_TYPES",
    "FORMULA_INPUT_TYPES",
    "FUNCTIONS",
    "SOCIAL_NETWORKS",
    "STATS_METRICS",
    "FieldError",
    "FieldType",
    "Formula",
    "IndexKeys",
    "RawInput",
    "check_formula_references",
    "convert_value",
    "field_type",
    "formula_operand",
    "list_key",
    "minor_units",
    "next_autonumber",
    "parse_address",
    "parse_autonumber",
    "parse_checkbox",
    "parse_currency",
    "parse_date",
    "parse_datetime",
    "parse_dropdown",
    "parse_emails",
    "parse_formula",
    "parse_multidropdown",
    "parse_multiline",
    "parse_number",
    "parse_percent",
    "parse_phones",
    "parse_reference",
    "parse_skype",
    "parse_social",
    "parse_text",
    "parse_url",
    "text_key",
    "validate_options",
]

Parser = Callable[[RawInput, Options], Any]
Renderer = Callable[[Any, RenderContext], str]
Serialiser = Callable[[Any], list[str]]
KeyMaker = Callable[[Any, Options], IndexKeys]
OptionRule = Callable[[Any], Any]

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True)
class FieldType:
    """How one type of field reads input, shows a value and indexes it."""

    name: str
    parser: Parser
    renderer: Renderer
    multi: bool = False
    read_only: bool = False
    serialiser: Serialiser = input_plain
    key_maker: KeyMaker = keys_text
    option_rules: Mapping[str, OptionRule] = field(default_factory=dict)
    required_options: frozenset[str] = frozenset()

    def parse(self, raw: RawInput, options: Options | None = None) -> Any:
        """Validate and normalise form input (a list of strings) into the stored value."""
        return self.parser(raw, options or _EMPTY)

    def display_for(
        self, value: Any, locale: str = "en", tz: str = "UTC", options: Options | None = None
    ) -> str:
        """A stored value as text for a card, in the viewer's locale and time zone."""
        if value is None or value == "" or value == [] or value == {}:
            return ""
        ctx = RenderContext(locale_style(locale), zone(tz), options or _EMPTY)
        try:
            return self.renderer(value, ctx)
        except (ValueError, TypeError, KeyError, ArithmeticError, OverflowError):
            # A value stored before a type change or by an older version still shows.
            return str(value)

    def display(self, value: Any, options: Options | None = None) -> str:
        """A stored value as text with the default locale (en) and time zone (UTC)."""
        return self.display_for(value, options=options)

    def to_input(self, value: Any) -> list[str]:
        """The form input of a stored value: parse(to_input(v)) == v for editable types."""
        return self.serialiser(value)

    def index_keys(self, value: Any, options: Options | None = None) -> IndexKeys:
        """(text key <= 255 chars, numeric key) a saved view filters and sorts on."""
        if value is None or value == "" or value == [] or value == {}:
            return None, None
        try:
            return self.key_maker(value, options or _EMPTY)
        except (ValueError, TypeError, KeyError, ArithmeticError, OverflowError):
            return text_key(str(value)), None


# ------------------------------------------------------------------------ option rules


def _int_rule(name: str, low: int, high: int) -> OptionRule:
    def rule(value: Any) -> int:
        """The value if it is an int in range."""
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(f"option “{name}” must be a whole number from {low} to {high}")
        return value

    return rule


def _bool_rule(name: str) -> OptionRule:
    def rule(value: Any) -> bool:
        """The value if it is a bool."""
        if not isinstance(value, bool):
            raise FieldError(f"option “{name}” must be true or false")
        return value

    return rule


def _choices_rule(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise FieldError("option “choices” must be a non-empty list")
    # A card selection input shows at most 100 items.
    if len(value) > 100:
        raise FieldError("option “choices” has more than 100 entries")
    choices: list[str] = []
    seen: set[str] = set()
    for choice in value:
        if not isinstance(choice, str) or not clean_line(choice):
            raise FieldError("every choice must be a non-empty text")
        text = clean_line(choice)
        if len(text) > 100:
            raise FieldError(f"choice “{text[:20]}…” is longer than 100 characters")
        if "|" in text:
            # "|" delimits values in the index key of multi-choice fields.
            raise FieldError(f"choice “{text}” must not contain “|”")
        if text.casefold() in seen:
            raise FieldError(f"choice “{text}” appears twice")
        seen.add(text.casefold())
        choices.append(text)
    return choices


def _currency_rule(value: Any) -> str:
    code = value.strip().upper() if isinstance(value, str) else None
    if code not in CURRENCIES:
        raise FieldError(f"option “default_currency”: “{value}” is not an ISO 4217 code")
    return code


def _folder_rule(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 100:
        raise FieldError("option “folder” must be a folder key")
    return value.strip()


def _prefix_rule(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 20 or clean_line(value) != value.strip():
        raise FieldError("option “prefix” must be a text of at most 20 characters")
    return value.strip()


def _expression_rule(value: Any) -> str:
    return parse_formula(value).expression


def _metric_rule(value: Any) -> str:
    if value not in STATS_METRICS:
        raise FieldError(f"option “metric” must be one of: {', '.join(STATS_METRICS)}")
    return str(value)


_DECIMALS = {"decimals": _int_rule("decimals", 0, 10)}
_CHOICES = {"choices": _choices_rule}

# --------------------------------------------------------------------------- registry

FIELD_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        FieldType(
            "text",
            parse_text,
            render_plain,
            option_rules={"max_length": _int_rule("max_length", 1, 10000)},
        ),
        FieldType(
            "multiline",
            parse_multiline,
            render_plain,
            option_rules={"max_length": _int_rule("max_length", 1, 20000)},
        ),
        FieldType(
            "number",
            parse_number,
            render_number,
            key_maker=keys_number,
            option_rules=_DECIMALS,
        ),
        FieldType(
            "autonumber",
            parse_autonumber,
            render_autonumber,
            read_only=True,
            serialiser=input_int,
            key_maker=keys_autonumber,
            option_rules={"prefix": _prefix_rule, "start": _int_rule("start", 0, 10**12)},
        ),
        FieldType(
            "percent",
            parse_percent,
            render_percent,
            key_maker=keys_number,
            option_rules=_DECIMALS,
        ),
        FieldType(
            "currency",
            parse_currency,
            render_currency,
            serialiser=input_currency,
            key_maker=keys_currency,
            option_rules={"default_currency": _currency_rule},
        ),
        FieldType("date", parse_date, render_date, key_maker=keys_moment),
        FieldType("datetime", parse_datetime, render_datetime, key_maker=keys_moment),
        FieldType(
            "checkbox",
            parse_checkbox,
            render_checkbox,
            serialiser=input_checkbox,
            key_maker=keys_checkbox,
        ),
        FieldType(
            "dropdown",
            parse_dropdown,
            render_plain,
            key_maker=keys_dropdown,
            option_rules=_CHOICES,
            required_options=frozenset({"choices"}),
        ),
        FieldType(
            "multidropdown",
            parse_multidropdown,
            render_list,
            multi=True,
            serialiser=input_list,
            key_maker=keys_list,
            option_rules=_CHOICES,
            required_options=frozenset({"choices"}),
        ),
        FieldType(
            "email",
            parse_emails,
            render_emails,
            multi=True,
            serialiser=input_list,
            key_maker=keys_list,
        ),
        FieldType(
            "phone",
            parse_phones,
            render_phones,
            multi=True,
            serialiser=input_list,
            key_maker=keys_list,
        ),
        FieldType("url", parse_url, render_plain),
        FieldType(
            "address",
            parse_address,
            render_address,
            serialiser=input_address,
            key_maker=keys_address,
        ),
        FieldType("skype", parse_skype, render_plain),
        FieldType(
            "social",
            parse_social,
            render_social,
            multi=True,
            serialiser=input_social,
            key_maker=keys_social,
        ),
        FieldType(
            "user",
            parse_reference,
            render_list,
            serialiser=input_reference,
            key_maker=keys_reference,
        ),
        FieldType(
            "link",
            parse_reference,
            render_list,
            multi=True,
            serialiser=input_reference,
            key_maker=keys_reference,
            option_rules={"folder": _folder_rule, "many": _bool_rule("many")},
            required_options=frozenset({"folder"}),
        ),
        FieldType(
            "formula",
            parse_formula_value,
            render_formula,
            read_only=True,
            serialiser=input_computed,
            key_maker=keys_computed,
            option_rules={"expression": _expression_rule, **_DECIMALS},
            required_options=frozenset({"expression"}),
        ),
        FieldType(
            "stats",
            parse_stats,
            render_stats,
            read_only=True,
            serialiser=input_computed,
            key_maker=keys_computed,
            option_rules={"metric": _metric_rule},
            required_options=frozenset({"metric"}),
        ),
    )
}


def field_type(name: str) -> FieldType:
    """Look up a field type, refusing unknown ones with a clear message."""
    try:
        return FIELD_TYPES[name]
    except (KeyError, TypeError):
        raise FieldError(f"unknown field type “{name}”") from None


def validate_options(type_name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a field's options for its type and return them normalised.

    Keys starting with "_" (`_region`, `_tz`, `_locale`) are runtime context added per
    request; they are stripped, never stored.
    """
    ftype = field_type(type_name)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise FieldError("options must be an object")
    result: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise FieldError(f"option name {key!r} is not a text")
        if key.startswith("_"):
            continue
        rule = ftype.option_rules.get(key)
        if rule is None:
            allowed = ", ".join(sorted(ftype.option_rules)) or "none"
            raise FieldError(f"unknown option “{key}” for {type_name} fields (allowed: {allowed})")
        result[key] = rule(value)
    missing = sorted(ftype.required_options - set(result))
    if missing:
        raise FieldError(f"{type_name} fields need the option “{missing[0]}”")
    return result


# -------------------------------------------------------------------------- conversion

_REFERENCE_TYPES = frozenset({"link", "user"})
_TEXT_TYPES = frozenset({"text", "multiline"})


def _conversion_input(value: Any, source: FieldType, target: str, options: Options) -> list[str]:
    """The raw input the target type parses when converting a value of the source type."""
    if target in _TEXT_TYPES:
        # Anything reads as text the way it is shown.
        return [source.display_for(value, options=options)]
    if source.name == "currency" and target in ("number", "percent"):
        return [str(value["amount"])]
    if source.name == "checkbox" and target in ("number", "percent"):
        return ["1" if value else "0"]
    if source.name == "formula" and isinstance(value, Decimal):
        return [format(value, "f")]
    return source.to_input(value)


def convert_value(
    value: Any,
    from_type: str,
    to_type: str,
    to_options: Options | None = None,
    *,
    from_options: Options | None = None,
) -> Any:
    """A stored value converted for a field changing type, or FieldError saying why not.

    The caller keeps the old value when conversion fails and reports the reason.
    """
    source, target = field_type(from_type), field_type(to_type)
    if value is None or value == "" or value == [] or value == {}:
        return None
    if target.read_only:
        raise FieldError(f"cannot convert to {to_type}: its values are computed, not entered")
    if (from_type in _REFERENCE_TYPES or to_type in _REFERENCE_TYPES) and from_type != to_type:
        raise FieldError(f"cannot convert {from_type} values to {to_type}")
    try:
        raw = _conversion_input(value, source, to_type, from_options or _EMPTY)
        return target.parse(raw, to_options or _EMPTY)
    except FieldError as exc:
        raise FieldError(f"cannot convert to {to_type}: {exc}") from None
    except (KeyError, TypeError, ValueError):
        # A stored value of the wrong shape (written before an earlier type change).
        raise FieldError(f"cannot convert to {to_type}: the stored value is malformed") from None
