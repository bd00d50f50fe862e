"""Contact field types: email, phone, url, postal address, Skype name, social profiles."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from addon.crm.fieldtypes_base import (
    MAX_VALUES,
    FieldError,
    IndexKeys,
    Options,
    RenderContext,
    clean_line,
    items_of,
    list_key,
    single_item,
    split_values,
    text_key,
)
from addon.crm.fieldtypes_data import COUNTRY_ALIASES, COUNTRY_CODES
from addon.gmail.addresses import canonical_email

# ------------------------------------------------------------------------------ email

_ANGLE_RE = re.compile(r"<([^<>]*)>\s*$")


def _email_parts(raw: Any) -> list[str]:
    """Addresses from inputs that may hold several, or "Name <address>" forms."""
    parts: list[str] = []
    for item in items_of(raw):
        for chunk in re.split(r"[,;\n]", item):
            angle = _ANGLE_RE.search(chunk)
            parts.extend([angle.group(1)] if angle else chunk.split())
            if len(parts) > MAX_VALUES:
                raise FieldError(f"has more than {MAX_VALUES} values")
    return [p.strip() for p in parts if p.strip()]


# Canonical addresses email-validator always accepts: a dot-atom of common characters, LDH
# labels without "--" (so no Punycode and no reserved "ab--" labels), an alphabetic TLD,
# within its length limits. Recognising them here skips its per-character Unicode checks,
# a quarter of a CSV import's CPU; anything else still goes through it.
_PLAIN_EMAIL_RE = re.compile(
    r"(?!.*--)(?=[^@]{1,64}@)(?=.{1,254}\Z)"
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z"
)
# email-validator's special-use names, less "test" (allowed by test_environment below).
_RESERVED_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion"})


def plainly_valid_email(email: str) -> bool:
    """True for a canonical address that email-validator is known to accept unchanged."""
    return bool(_PLAIN_EMAIL_RE.match(email)) and email.rpartition(".")[2] not in _RESERVED_TLDS


def valid_email(text: str) -> str:
    """The canonical form of one address, refused unless email-validator accepts it too."""
    email = canonical_email(text)
    if email is None:
        raise FieldError(f"“{text}” is not a valid email address")
    if plainly_valid_email(email):
        return email
    try:
        # test_environment also allows *.test, the reserved domain our own dev workspace
        # and fixtures use; .local, .localhost, .invalid, .onion and .arpa stay refused.
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        raise FieldError(
            f"“{text}” is not a valid email address ({reason[:1].lower()}{reason[1:]})"
        ) from None
    return email


def parse_emails(raw: Any, options: Options) -> list[str] | None:
    """Email addresses: canonical form, duplicates dropped, each validated."""
    emails: list[str] = []
    for part in _email_parts(raw):
        email = valid_email(part)
        if email not in emails:
            emails.append(email)
    return emails or None


def _readable_email(email: str) -> str:
    local, _, domain = email.partition("@")
    if "xn--" not in domain:
        return email  # only punycode labels read differently in Unicode
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError, ValueError):
        return email


def render_emails(value: Any, ctx: RenderContext) -> str:
    """Addresses separated by commas, internationalised domains shown in Unicode."""
    if not isinstance(value, list):
        return str(value)
    return ", ".join(_readable_email(str(v)) for v in value)


# ------------------------------------------------------------------------------ phone

# ";" separates numbers, except in ";ext=" (RFC 3966), the form extensions are stored in.
_PHONE_SPLIT = r"[,\n]|;(?!\s*ext=)"


def phone_region(options: Options) -> str:
    """The region national numbers are read in: options `_region`, default US."""
    region = str(options.get("_region") or "US").upper()
    region = COUNTRY_ALIASES.get(region, region)
    return region if region in phonenumbers.SUPPORTED_REGIONS else "US"


def parse_phones(raw: Any, options: Options) -> list[str] | None:
    """Phone numbers in E.164 ("+4930123456"), extensions as ";ext=12"; invalid ones refused."""
    region = phone_region(options)
    phones: list[str] = []
    for part in split_values(raw, _PHONE_SPLIT):
        try:
            number = phonenumbers.parse(part, region)
        except phonenumbers.NumberParseException:
            raise FieldError(f"“{part}” is not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            hint = "" if part.startswith(("+", "00")) else f" in {region} (add the country code)"
            raise FieldError(f"“{part}” is not a valid phone number{hint}")
        phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if number.extension:
            phone += f";ext={number.extension}"
        if phone not in phones:
            phones.append(phone)
    return phones or None


@functools.lru_cache(maxsize=4096)
def _readable_phone(phone: str) -> str:
    # Formatting walks phonenumbers' metadata; cards show the same numbers again and again.
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def render_phones(value: Any, ctx: RenderContext) -> str:
    """International format: "+49 30 123456", "+1 650-253-0000 ext. 12"."""
    if not isinstance(value, list):
        return str(value)
    return ", ".join(_readable_phone(str(v)) for v in value)


# -------------------------------------------------------------------------------- url

MAX_URL_CHARS = 2048
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters RFC 3986 allows unescaped in a path, query and fragment; "%" is kept so
# existing escapes survive and a second pass changes nothing.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


def _host(host: str, bracketed: bool) -> str:
    """A lowercase ASCII host name, or an IP address; refused when malformed."""
    if bracketed:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise FieldError("has an invalid IPv6 address") from None
    host = host.rstrip(".")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise FieldError(f"“{host}” is not a valid address") from None
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise FieldError(f"“{host}” is not a valid host name") from None
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise FieldError(f"“{host}” is not a valid host name")
    if labels[-1].isdigit():
        raise FieldError(f"“{host}” is not a valid host name")
    return ascii_host


def split_url(text: str) -> SplitResult:
    """A normalised http(s) URL: https:// added when missing, IDNA lowercase host."""
    if len(text) > MAX_URL_CHARS:
        raise FieldError(f"is longer than {MAX_URL_CHARS} characters")
    if any(ch.isspace() for ch in text):
        raise FieldError("must not contain spaces")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise FieldError("contains control characters")
    scheme = _SCHEME_RE.match(text)
    # "example.com:8080/x" has no scheme: a scheme is followed by "//" or by no digit.
    if scheme and (text[scheme.end() :].startswith("//") or not text[scheme.end() :][:1].isdigit()):
        name = scheme.group(1).lower()
        if name not in ("http", "https"):
            raise FieldError(f"“{name}:” links are not allowed (only http and https)")
        if not text[scheme.end() :].startswith("//"):
            raise FieldError(f"“{text}” is not a link")
        text = name + ":" + text[scheme.end() :]
    else:
        text = "https:" + text if text.startswith("//") else "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise FieldError(f"“{text}” is not a link") from None
    if "@" in parts.netloc:
        # "https://bank.com@evil.example" shows one host and opens another.
        raise FieldError("must not contain a user name or password")
    if not parts.hostname:
        raise FieldError(f"“{text}” is not a link")
    host = _host(parts.hostname, parts.netloc.startswith("["))
    netloc = host if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
    return SplitResult(
        parts.scheme,
        netloc,
        quote(parts.path, safe=_SAFE_PATH),
        quote(parts.query, safe=_SAFE_QUERY),
        quote(parts.fragment, safe=_SAFE_QUERY),
    )


def parse_url(raw: Any, options: Options) -> str | None:
    """One web link (http or https), normalised; "example.com" becomes "https://example.com"."""
    text = single_item(raw, "link")
    if text is None:
        return None
    url = urlunsplit(split_url(text))
    if len(url) > MAX_URL_CHARS:
        raise FieldError(f"is longer than {MAX_URL_CHARS} characters")
    return url


# ---------------------------------------------------------------------------- address

ADDRESS_PARTS = ("street", "city", "region", "postal_code", "country")
_PART_LIMITS = {"street": 200, "city": 100, "region": 100, "postal_code": 20, "country": 100}


def _country(text: str) -> str:
    # Two letters are a code: valid ones are uppercased, others refused; longer text
    # ("Germany") is kept as written.
    if len(text) == 2 and text.isascii() and text.isalpha():
        code = COUNTRY_ALIASES.get(text.upper(), text.upper())
        if code not in COUNTRY_CODES:
            raise FieldError(f"“{text}” is not an ISO 3166 country code")
        return code
    return text


def _address_from_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise FieldError("is not a valid address") from None
    if not isinstance(data, dict):
        raise FieldError("is not a valid address")
    unknown = sorted(set(data) - set(ADDRESS_PARTS))
    if unknown:
        raise FieldError(f"has unknown address parts: {', '.join(map(str, unknown))}")
    if not all(isinstance(v, str) or v is None for v in data.values()):
        raise FieldError("is not a valid address")
    return data


def parse_address(raw: Any, options: Options) -> dict[str, str] | None:
    """A postal address: one free-text line ({"street": ...}), 5 positional parts or JSON."""
    items = items_of(raw)
    if not any(item.strip() for item in items):
        return None
    if len(items) == 1 and items[0].strip().startswith("{"):
        given = _address_from_json(items[0].strip())
    elif len(items) == 1:
        given = {"street": ", ".join(line for line in items[0].splitlines() if line.strip())}
    elif len(items) <= len(ADDRESS_PARTS):
        given = dict(zip(ADDRESS_PARTS, items, strict=False))
    else:
        raise FieldError(f"has more than {len(ADDRESS_PARTS)} parts")
    address: dict[str, str] = {}
    for key in ADDRESS_PARTS:
        value = clean_line(given.get(key) or "")
        if not value:
            continue
        if key == "postal_code":
            value = value.upper()
        elif key == "country":
            value = _country(value)
        # Checked after normalising: upper-casing can lengthen text ("ß" -> "SS"), and a
        # stored value must parse again unchanged.
        if len(value) > _PART_LIMITS[key]:
            raise FieldError(f"has a {key.replace('_', ' ')} longer than {_PART_LIMITS[key]}")
        address[key] = value
    return address or None


def address_line(value: dict[str, str], postal_code_first: bool) -> str:
    """One line: "1 Main St, Springfield, IL 62701, US" or "Hauptstr. 1, 10115 Berlin, DE"."""
    street, city = value.get("street", ""), value.get("city", "")
    region, postal = value.get("region", ""), value.get("postal_code", "")
    country = value.get("country", "")
    if postal_code_first:
        parts = [street, f"{postal} {city}", region, country]
    else:
        parts = [street, city, f"{region} {postal}", country]
    return ", ".join(p.strip() for p in parts if p.strip())


def render_address(value: Any, ctx: RenderContext) -> str:
    """One line; postal code before the city except in English-speaking locales."""
    if not isinstance(value, dict):
        return str(value)
    return address_line(value, postal_code_first=ctx.style.date not in ("us", "gb"))


def input_address(value: Any) -> list[str]:
    """A street-only address as its text, anything else as one JSON object."""
    if not isinstance(value, dict):
        return [] if value is None else [str(value)]
    street = value.get("street", "")
    if set(value) == {"street"} and not street.startswith("{"):
        return [street]
    return [json.dumps(value, ensure_ascii=False, separators=(",", ":"))]


def keys_address(value: Any, options: Options) -> IndexKeys:
    """The one-line form, lowercased."""
    if not isinstance(value, dict):
        return None, None
    return text_key(address_line(value, postal_code_first=False)), None


# ------------------------------------------------------------------------------ skype

_SKYPE_NAME_RE = re.compile(r"[a-z][a-z0-9.,_-]{5,31}")
_SKYPE_LIVE_RE = re.compile(r"live:[a-z0-9._-]{1,64}")


def parse_skype(raw: Any, options: Options) -> str | None:
    """A Skype name (6-32 chars, letter first) or a "live:" id, lowercased."""
    text = single_item(raw, "Skype name")
    if text is None:
        return None
    name = text.lower()
    name = name.removeprefix("skype:").split("?", 1)[0].strip()
    if _SKYPE_NAME_RE.fullmatch(name) or _SKYPE_LIVE_RE.fullmatch(name):
        return name
    raise FieldError(f"“{text}” is not a Skype name")


# ----------------------------------------------------------------------------- social

# network -> (label, canonical host, hosts, profile-name pattern or None for any path)
SOCIAL_NETWORKS: dict[str, tuple[str, str, frozenset[str], str | None]] = {
    "linkedin": ("LinkedIn", "www.linkedin.com", frozenset({"linkedin.com"}), None),
    "twitter": (
        "X",
        "x.com",
        frozenset({"twitter.com", "x.com", "mobile.twitter.com", "mobile.x.com"}),
        r"[a-z0-9_]{1,15}",
    ),
    "facebook": (
        "Facebook",
        "www.facebook.com",
        frozenset({"facebook.com", "m.facebook.com", "web.facebook.com", "fb.com"}),
        None,
    ),
    "github": ("GitHub", "github.com", frozenset({"github.com"}), r"[a-z0-9-]{1,39}"),
    "instagram": (
        "Instagram",
        "www.instagram.com",
        frozenset({"instagram.com", "instagr.am"}),
        r"[a-z0-9._]{1,30}",
    ),
}


def _network_of(host: str) -> str | None:
    host = host.removeprefix("www.")
    for network, (_label, _canonical, hosts, _pattern) in SOCIAL_NETWORKS.items():
        # Any LinkedIn country subdomain (de.linkedin.com) is LinkedIn.
        if host in hosts or (network == "linkedin" and host.endswith(".linkedin.com")):
            return network
    return None


def social_profile(text: str) -> tuple[str, str]:
    """(network, canonical https URL) of a profile link; refused for other sites."""
    parts = split_url(text)
    network = _network_of(parts.hostname or "")
    if network is None:
        names = ", ".join(label for label, *_ in SOCIAL_NETWORKS.values())
        raise FieldError(f"“{text}” is not a profile on {names}")
    _label, host, _hosts, pattern = SOCIAL_NETWORKS[network]
    # Profile names are case-insensitive on every supported network.
    path = parts.path.lower().strip("/")
    query = ""
    if network == "facebook" and path == "profile.php":
        ident = re.search(r"(?:^|&)id=(\d+)", parts.query)
        if ident is None:
            raise FieldError(f"“{text}” is not a profile link")
        query = f"id={ident.group(1)}"
    elif pattern is not None:
        # X, GitHub and Instagram profiles are the first path segment (a status or
        # repository link still names its owner).
        path = path.split("/", 1)[0].lstrip("@")
        if not re.fullmatch(pattern, path):
            raise FieldError(f"“{text}” is not a profile link")
    if not path:
        raise FieldError(f"“{text}” is not a profile link")
    return network, urlunsplit(("https", host, "/" + path, query, ""))


def parse_social(raw: Any, options: Options) -> dict[str, str] | None:
    """Profile links, one per network: {"linkedin": "https://www.linkedin.com/in/ann", ...}."""
    found: dict[str, str] = {}
    for part in split_values(raw, r"[\s,;]+"):
        network, url = social_profile(part)
        if found.get(network, url) != url:
            raise FieldError(f"has two {SOCIAL_NETWORKS[network][0]} profiles")
        found[network] = url
    return {n: found[n] for n in SOCIAL_NETWORKS if n in found} or None


def render_social(value: Any, ctx: RenderContext) -> str:
    """The profile links, separated by commas."""
    if not isinstance(value, dict):
        return str(value)
    return ", ".join(str(v) for v in value.values())


def input_social(value: Any) -> list[str]:
    """One link per network (the network follows from the link)."""
    if not isinstance(value, dict):
        return [] if value is None else [str(value)]
    return [str(v) for v in value.values()]


def keys_social(value: Any, options: Options) -> IndexKeys:
    """The links as a "|"-wrapped list."""
    if not isinstance(value, dict):
        return None, None
    return list_key(str(v) for v in value.values()), None
