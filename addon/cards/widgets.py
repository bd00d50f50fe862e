"""Small builders for card JSON; user text is escaped because cards render basic HTML."""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

Widget = dict[str, Any]
MAX_WIDGETS = 100
MAX_ITEMS = 100  # items of one selection input
ERROR_COLOR = "#d93025"


def esc(text: object) -> str:
    """Escape user text for widgets that interpret formatting tags."""
    return html.escape(str(text), quote=False)


@dataclass(frozen=True)
class Actions:
    """Builds callback actions whose URLs all come from the configured base URL."""

    base_url: str

    def action(self, name: str, /, **params: object) -> dict[str, Any]:
        """An action calling /actions/<name> with string parameters."""
        result: dict[str, Any] = {"function": f"{self.base_url}/actions/{name}"}
        parameters = [{"key": k, "value": str(v)} for k, v in params.items() if v is not None]
        if parameters:
            result["parameters"] = parameters
        return result

    def on_click(self, name: str, /, **params: object) -> dict[str, Any]:
        """An onClick running the named action."""
        return {"action": self.action(name, **params)}


def button(
    text: str, on_click: dict[str, Any], *, filled: bool = False, disabled: bool = False
) -> Widget:
    """A text button."""
    result: Widget = {"text": text, "onClick": on_click}
    if filled:
        result["type"] = "FILLED"
    if disabled:
        result["disabled"] = True
    return result


def button_list(*buttons: Widget) -> Widget:
    """A row of buttons."""
    return {"buttonList": {"buttons": list(buttons)}}


def decorated(
    text: str,
    *,
    top: str | None = None,
    bottom: str | None = None,
    icon: str | None = None,
    on_click: dict[str, Any] | None = None,
    side_button: Widget | None = None,
) -> Widget:
    """A decoratedText line; text arguments must already be escaped."""
    body: dict[str, Any] = {"text": text or "—", "wrapText": True}
    if top:
        body["topLabel"] = top
    if bottom:
        body["bottomLabel"] = bottom
    if icon:
        body["startIcon"] = {"knownIcon": icon}
    if on_click:
        body["onClick"] = on_click
    if side_button:
        body["button"] = side_button
    return {"decoratedText": body}


def paragraph(text: str) -> Widget:
    """A textParagraph; text must already be escaped."""
    return {"textParagraph": {"text": text}}


def error_line(message: str) -> Widget:
    """A red message under a form field."""
    return paragraph(f'<font color="{ERROR_COLOR}">{esc(message)}</font>')


def text_input(
    name: str, label: str, value: str = "", *, hint: str | None = None, multiline: bool = False
) -> Widget:
    """A text input."""
    body: dict[str, Any] = {"name": name, "label": label}
    if value:
        body["value"] = value
    if hint:
        body["hintText"] = hint
    if multiline:
        body["type"] = "MULTIPLE_LINE"
    return {"textInput": body}


def dropdown(
    name: str,
    label: str,
    choices: Sequence[tuple[str, str]],
    selected: str | None,
    *,
    on_change: dict[str, Any] | None = None,
    blank: bool = True,
) -> Widget:
    """A dropdown, with an empty first choice unless `blank` is False; choices are (value, text).

    `on_change` (an action, not an onClick) submits the form when the choice changes.
    """
    items = [{"text": "—", "value": "", "selected": not selected}] if blank else []
    # Google refuses items without text; long texts are cut as the sidebar would.
    items += [
        {"text": text[:100] or "—", "value": value, "selected": value == selected}
        for value, text in choices
    ]
    body: dict[str, Any] = {"name": name, "label": label, "type": "DROPDOWN", "items": items[:100]}
    if on_change:
        body["onChangeAction"] = on_change
    return {"selectionInput": body}


def radio_buttons(
    name: str, label: str, choices: list[tuple[str, str]], selected: str | None
) -> Widget:
    """Radio buttons (one choice); choices are (value, text) pairs."""
    items = [
        {"text": text, "value": value, "selected": value == selected} for value, text in choices
    ]
    return {
        "selectionInput": {"name": name, "label": label, "type": "RADIO_BUTTON", "items": items}
    }


def multi_select(
    name: str, label: str, choices: list[tuple[str, str]], selected: Collection[str]
) -> Widget:
    """A multiselect menu over a fixed list of at most 100 (value, text) choices."""
    items = [
        {"text": text, "value": value, "selected": value in selected}
        for value, text in choices[:MAX_ITEMS]
    ]
    return {
        "selectionInput": {
            "name": name,
            "label": label,
            "type": "MULTI_SELECT",
            "items": items,
            # Google's default is 3 selected items; a multi-choice field allows them all.
            "multiSelectMaxSelectedItems": max(1, len(items)),
            "multiSelectMinQueryLength": 0,
        }
    }


def checkbox(name: str, label: str, checked: bool, *, value: str = "true") -> Widget:
    """A labelled checkbox; when ticked the form carries `value`, when not the input is absent."""
    return {
        "decoratedText": {
            "text": label,
            "wrapText": True,
            "switchControl": {
                "name": name,
                "value": value,
                "selected": checked,
                "controlType": "CHECK_BOX",
            },
        }
    }


def date_picker(name: str, label: str, value_ms: int | None) -> Widget:
    """A date-only picker; its value is midnight UTC of the day."""
    body: dict[str, Any] = {"name": name, "label": label, "type": "DATE_ONLY"}
    if value_ms is not None:
        body["valueMsEpoch"] = str(value_ms)
    return {"dateTimePicker": body}


def date_time_picker(
    name: str, label: str, value_ms: int | None, offset_minutes: int | None = None
) -> Widget:
    """A date and time picker; `offset_minutes` is the UTC offset it shows and reads times in.

    Without an offset Google uses the user's own time zone setting.
    """
    body: dict[str, Any] = {"name": name, "label": label, "type": "DATE_AND_TIME"}
    if value_ms is not None:
        body["valueMsEpoch"] = str(value_ms)
    if offset_minutes is not None:
        body["timezoneOffsetDate"] = offset_minutes
    return {"dateTimePicker": body}


def divider() -> Widget:
    """A horizontal rule."""
    return {"divider": {}}


def section(
    widgets: list[Widget], header: str | None = None, *, collapsible: bool = False, visible: int = 3
) -> dict[str, Any]:
    """A card section; collapsible ones show `visible` widgets until expanded."""
    result: dict[str, Any] = {"widgets": widgets}
    if header:
        result["header"] = header
    if collapsible and len(widgets) > visible:
        result["collapsible"] = True
        result["uncollapsibleWidgetsCount"] = visible
    return result


def card(
    title: str,
    sections: list[dict[str, Any]],
    *,
    subtitle: str | None = None,
    name: str | None = None,
    footer: Widget | None = None,
) -> dict[str, Any]:
    """A card; sections without widgets are dropped, since Google rejects them."""
    header: dict[str, Any] = {"title": title[:200] or "Inbox CRM"}
    if subtitle:
        header["subtitle"] = subtitle[:200]
    result: dict[str, Any] = {"header": header, "sections": [s for s in sections if s["widgets"]]}
    if name:
        result["name"] = name
    if footer:
        result["fixedFooter"] = {"primaryButton": footer}
    return result


def showing(shown: int, total: int, what: str) -> Widget:
    """The note under a list cut to what a card can hold: "Showing 50 of 80 fields."."""
    return paragraph(f"<i>Showing {shown} of {total} {what}.</i>")
