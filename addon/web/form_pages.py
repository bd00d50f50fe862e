"""The public web form as plain, accessible HTML: pure functions of the form and its input.

No JavaScript: the browser posts the form and the server answers with the page again
(with messages) or the thank-you page. Labels are bound to their inputs, required fields
say so in text, and each message is linked to its input with aria-describedby and listed
in a summary at the top that receives focus order first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from addon.crm.webforms import FormField

_AUTOCOMPLETE = {
    "first_name": "given-name",
    "last_name": "family-name",
    "job_title": "organization-title",
    "emails": "email",
    "phones": "tel",
}
_INPUT_TYPES = {"email": "email", "phone": "tel", "url": "url", "date": "date"}
_HINTS = {
    "currency": "An amount, optionally with its currency, e.g. 1250.50 USD.",
    "date": "A date, e.g. 2026-12-31.",
    "phone": "Include the country code if you are outside our region, e.g. +44 20 7946 0958.",
    "email": "For example name@example.com.",
    "number": "A number, e.g. 1200.5.",
    "percent": "A percentage, e.g. 12.5.",
    "url": "A web address, e.g. https://example.com.",
}

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f1f1f}
main{max-width:36rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border-radius:8px}
h1{font-size:1.5rem;margin-top:0}
.field{margin:1.1rem 0}
label,legend{display:block;font-weight:600}
fieldset{border:0;padding:0;margin:0}
fieldset label,.check label{display:inline;font-weight:normal}
.box{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;
border:1px solid #80868b;border-radius:4px}
[aria-invalid=true]{border:2px solid #b3261e}
.hint{color:#5f6368;font-size:.9rem;margin:.1rem 0}
.error{color:#b3261e;font-weight:600;margin:.1rem 0}
.summary{border:2px solid #b3261e;padding:.5rem 1rem;border-radius:4px}
.summary a{color:#b3261e}
button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:4px;background:#1a73e8;color:#fff}
:focus{outline:3px solid #f9ab00;outline-offset:2px}
.trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>{{ style }}</style>
</head>
<body>
<main>
{{ body }}
</main>
</body>
</html>
"""

_MESSAGE = """<h1>{{ title }}</h1>
{% for line in lines %}<p>{{ line }}</p>
{% endfor %}"""

_FORM = """<h1>{{ name }}</h1>
{% if problems %}
<div class="summary" role="alert" aria-labelledby="summary-title">
<h2 id="summary-title">{{ problems|length }} problem{{ "" if problems|length == 1 else "s" }} \
with what was sent</h2>
<ul>
{% for target, text in problems %}<li>{% if target %}<a href="#{{ target }}">{{ text }}</a>\
{% else %}{{ text }}{% endif %}</li>
{% endfor %}</ul>
</div>
{% endif %}
<p>Fields marked “(required)” must be filled in.</p>
<form method="post" action="{{ action }}" novalidate accept-charset="utf-8">
<input type="hidden" name="csrf_token" value="{{ token }}">
<div class="trap" aria-hidden="true">
<label for="website">Leave this field empty</label>
<input type="text" id="website" name="website" value="" tabindex="-1" autocomplete="off">
</div>
{% for f in fields %}
{% set mark = " (required)" if f.required else "" %}
{% set error %}{% if f.error %}<p class="error" id="{{ f.id }}-error">{{ f.error }}</p>\
{% endif %}{% endset %}
<div class="field{{ ' check' if f.kind == 'checkbox' else '' }}">
{% if f.kind == 'choices' %}
<fieldset id="{{ f.id }}"{{ f.aria }}>
<legend>{{ f.label }}{{ mark }}</legend>
{{ error }}
{% for value, checked in f.choices %}
<div><input type="checkbox" id="{{ f.id }}-{{ loop.index }}" name="{{ f.name }}" \
value="{{ value }}"{{ " checked" if checked else "" }}> \
<label for="{{ f.id }}-{{ loop.index }}">{{ value }}</label></div>
{% endfor %}
</fieldset>
{% elif f.kind == 'checkbox' %}
{{ error }}
<input type="checkbox" id="{{ f.id }}" name="{{ f.name }}" value="yes"\
{{ " checked" if f.value else "" }}{{ f.aria }}>
<label for="{{ f.id }}">{{ f.label }}{{ mark }}</label>
{% else %}
<label for="{{ f.id }}">{{ f.label }}{{ mark }}</label>
{% if f.hint %}<p class="hint" id="{{ f.id }}-hint">{{ f.hint }}</p>{% endif %}
{{ error }}
{% if f.kind == 'select' %}
<select class="box" id="{{ f.id }}" name="{{ f.name }}"{{ f.aria }}>
<option value="">—</option>
{% for value, selected in f.choices %}\
<option{{ " selected" if selected else "" }}>{{ value }}</option>
{% endfor %}</select>
{% elif f.kind == 'textarea' %}
<textarea class="box" id="{{ f.id }}" name="{{ f.name }}" rows="4" maxlength="{{ f.limit }}"\
{{ f.aria }}>{{ f.value }}</textarea>
{% else %}
<input class="box" type="{{ f.kind }}" id="{{ f.id }}" name="{{ f.name }}" \
value="{{ f.value }}" maxlength="{{ f.limit }}"{{ f.aria }}>
{% endif %}
{% endif %}
</div>
{% endfor %}
<button type="submit">Send</button>
</form>
"""

FormValues = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class _Shown:
    id: str
    name: str
    label: str
    required: bool
    kind: str
    value: str
    choices: list[tuple[str, bool]]
    hint: str
    error: str
    limit: int
    autocomplete: str

    @property
    def aria(self) -> Markup:
        """The input's required, autocomplete and ARIA attributes, escaped."""
        ids = [f"{self.id}-hint"] if self.hint else []
        if self.error:
            ids.append(f"{self.id}-error")
        attrs: list[tuple[str, str]] = []
        if self.required and self.kind != "choices":
            attrs += [("required", ""), ("aria-required", "true")]
        if self.autocomplete:
            attrs.append(("autocomplete", self.autocomplete))
        if ids:
            attrs.append(("aria-describedby", " ".join(ids)))
        if self.error:
            attrs.append(("aria-invalid", "true"))
        return Markup("").join(
            Markup(" {}").format(name) if value == "" else Markup(' {}="{}"').format(name, value)
            for name, value in attrs
        )


def input_name(key: str) -> str:
    """The HTML name (and id) of a field's input."""
    return f"field-{key}"


def _kind(field_type: str) -> str:
    if field_type in ("multiline", "address"):
        return "textarea"
    if field_type == "dropdown":
        return "select"
    if field_type == "multidropdown":
        return "choices"
    if field_type == "checkbox":
        return "checkbox"
    return _INPUT_TYPES.get(field_type, "text")


def _sentence(label: str, message: str) -> str:
    """A field's message as a sentence: "Work email is required." or the message itself."""
    text = f"{label} {message}" if message.startswith("is ") else message
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _summary_line(shown: _Shown) -> str:
    """A message in the summary names its field unless it already does."""
    if shown.error.startswith(shown.label):
        return shown.error
    return f"{shown.label}: {shown.error}"


def _shown(ff: FormField, values: Sequence[str], error: str) -> _Shown:
    ftype = ff.fdef.type
    name = input_name(ff.key)
    kind = _kind(ftype)
    choices: list[tuple[str, bool]] = []
    if kind in ("select", "choices"):
        picked = {v.strip() for v in values}
        choices = [(str(c), str(c) in picked) for c in ff.fdef.options.get("choices") or []]
    value = "\n".join(values) if kind == "textarea" else ", ".join(v for v in values if v)
    return _Shown(
        id=name,
        name=name,
        label=ff.label,
        required=ff.required,
        kind=kind,
        value=value,
        choices=choices,
        hint=_HINTS.get(ftype, ""),
        error=_sentence(ff.label, error) if error else "",
        limit=ff.limit,
        autocomplete=_AUTOCOMPLETE.get(ff.key, ""),
    )


def page(title: str, body: str) -> str:
    """A whole HTML page around a body that is already escaped."""
    return _ENV.from_string(_LAYOUT).render(title=title, style=Markup(_STYLE), body=Markup(body))


def message_page(title: str, *lines: str) -> str:
    """A page with a heading and a few lines of text (thank-you, not found, too many)."""
    return page(title, _ENV.from_string(_MESSAGE).render(title=title, lines=lines))


def form_page(
    name: str,
    fields: Sequence[FormField],
    *,
    action: str,
    token: str,
    values: FormValues | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str = "",
) -> str:
    """The form, with what the visitor typed and a message per refused field."""
    values = values or {}
    errors = errors or {}
    shown = [_shown(ff, values.get(ff.key, []), errors.get(ff.key, "")) for ff in fields]
    problems: list[tuple[str, str]] = [("", notice)] if notice else []
    problems += [(f.id, _summary_line(f)) for f in shown if f.error]
    on_form = {ff.key for ff in fields}
    # Rules of fields not on the form (the folder's own checks) still get a line.
    problems += [
        ("", f"{msg[:1].upper()}{msg[1:]}.") for key, msg in errors.items() if key not in on_form
    ]
    body = _ENV.from_string(_FORM).render(
        name=name, fields=shown, action=action, token=token, problems=problems
    )
    return page(f"{'Error: ' if problems else ''}{name}", body)
