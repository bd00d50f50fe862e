"""Mail-merge templates: compile once, render many.

Syntax: `{{first_name}}`, dotted names such as `{{company.name}}` or `{{owner.first_name}}`,
and a fallback after a bar, `{{first_name|there}}`, used when the value is missing or blank.
Names are case-insensitive and may be padded with spaces (`{{ First_Name }}`). Anything
else between `{{` and `}}`, or a `{{` that is never closed, is a TemplateError naming the
part (subject, text body, HTML body), the line and the column.

Rendering: values go into the text body as they are, into the HTML body HTML-escaped
(fallbacks too: they stand for a value), and into the subject with line breaks and other
control characters turned into spaces, so no value can add a header. A field that is
missing, with no fallback, makes `render` answer MissingValues naming every such field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

# A field name: identifiers joined by dots (field keys are [a-z_][a-z0-9_]*).
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# What a subject may not carry: line breaks (header injection) and other controls.
_SUBJECT_BREAKS_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
MAX_FALLBACK_CHARS = 200

Part = str | tuple[str, str | None]


class TemplateError(ValueError):
    """A template that cannot be compiled; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template rendered for one recipient."""

    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class MissingValues:
    """The fields a recipient has no value for, and the template gives no fallback."""

    fields: tuple[str, ...]

    @property
    def message(self) -> str:
        """A sentence for the user: which values are missing."""
        names = ", ".join(self.fields)
        return f"missing merge value{'s' if len(self.fields) > 1 else ''}: {names}"


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _parse(source: str, where: str) -> list[Part]:
    """Literal texts and (name, fallback) slots of one part of a template."""
    parts: list[Part] = []
    pos = 0

    def fail(index: int, why: str) -> TemplateError:
        line, column = _position(source, index)
        return TemplateError(f"{where}, line {line}, column {column}: {why}")

    while True:
        start = source.find("{{", pos)
        if start < 0:
            break
        match = _TAG_RE.match(source, start)
        if match is None:
            raise fail(start, "“{{” is never closed by “}}”")
        inner = match.group(1)
        if "{{" in inner:
            raise fail(start, "“{{” is never closed by “}}”")
        name_text, bar, fallback = inner.partition("|")
        name = name_text.strip()
        if not name:
            raise fail(start, f"the tag “{match.group(0)}” names no field")
        if not _NAME_RE.fullmatch(name):
            raise fail(
                start,
                f"“{name[:60]}” is not a field name (letters, digits, _ and dots, "
                "like {{first_name}} or {{company.name}})",
            )
        if bar:
            fallback = fallback.strip()
            if "\n" in fallback or len(fallback) > MAX_FALLBACK_CHARS:
                raise fail(start, f"the fallback of {{{{{name}}}}} must be one short line")
        if start > pos:
            parts.append(source[pos:start])
        parts.append((name.lower(), fallback if bar else None))
        pos = match.end()
    if pos < len(source):
        parts.append(source[pos:])
    return parts


def subject_line(text: str) -> str:
    """One header-safe line: line breaks and controls become a space, ends trimmed."""
    return _SUBJECT_BREAKS_RE.sub(" ", text).strip()


def _format_string(parts: list[Part], slots: dict[tuple[str, str | None], int]) -> str:
    """The part as a str.format pattern over the slot values (formatting runs in C)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part.replace("{", "{{").replace("}", "}}"))
        else:
            out.append(f"{{{slots.setdefault(part, len(slots))}}}")
    return "".join(out)


class CompiledTemplate:
    """A parsed template (subject, text body, optional HTML body), ready to render many times."""

    __slots__ = ("_html", "_slots", "_subject", "_text", "fields")

    def __init__(self, subject: list[Part], text: list[Part], html: list[Part] | None) -> None:
        slots: dict[tuple[str, str | None], int] = {}
        subject = [_SUBJECT_BREAKS_RE.sub(" ", p) if isinstance(p, str) else p for p in subject]
        self._subject = _format_string(subject, slots)
        self._text = _format_string(text, slots)
        self._html = _format_string(html, slots) if html is not None else None
        # Each distinct (name, fallback) once, in order of first use.
        self._slots = tuple(slots)
        # Every field name the template uses, in order of first use.
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(name for name, _ in self._slots))

    def render(self, values: Mapping[str, str | None]) -> Rendered | MissingValues:
        """The message for one recipient, or the fields it lacks (no fallback given)."""
        resolved: list[str] = []
        missing: list[str] = []
        for name, fallback in self._slots:
            value = values.get(name)
            if value is None or not value or value.isspace():
                if fallback is None:
                    missing.append(name)
                    continue
                value = fallback
            resolved.append(value)
        if missing:
            return MissingValues(tuple(dict.fromkeys(missing)))
        subject = subject_line(self._subject.format(*resolved))
        text = self._text.format(*resolved)
        html = None
        if self._html is not None:
            html = self._html.format(*[escape(value) for value in resolved])
        return Rendered(subject, text, html)


def compile_template(subject: str, text: str, html: str | None) -> CompiledTemplate:
    """Parse a template once; TemplateError names the part, line and column of a bad tag."""
    subject_parts = _parse(subject, "subject")
    text_parts = _parse(text, "text body")
    html_parts = _parse(html, "HTML body") if html is not None and html.strip() else None
    return CompiledTemplate(subject_parts, text_parts, html_parts)
