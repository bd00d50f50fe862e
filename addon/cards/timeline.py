"""The timeline section of a record card, and how thread links say why they exist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from addon.cards.widgets import Actions, Widget, button, button_list, decorated, esc, section
from addon.crm.fields import field_type
from addon.crm.fieldtypes_base import utc_iso
from addon.crm.timeline import CHANGE, NOTE, THREAD, TimelineEntry, TimelinePage

# Why a thread is linked (ThreadLink.reason), as the record card says it.
REASON_TEXT = {
    "manual": "Linked by hand",
    "matched_email": "Matched by email address",
    "matched_domain": "Matched by company domain",
    "single_open_deal": "The only open deal",
}
DIRECTION_TEXT = {"sent": "last sent", "received": "last received", "internal": "internal"}
_ICONS = {THREAD: "EMAIL", NOTE: "DESCRIPTION", CHANGE: "CLOCK"}


def reason_text(reason: str) -> str:
    """A link's reason in words."""
    return REASON_TEXT.get(reason, reason)


def _when(moment: datetime, locale: str, tz: str) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return field_type("datetime").display_for(utc_iso(moment), locale, tz)


def _entry(entry: TimelineEntry, locale: str, tz: str) -> Widget:
    when = _when(entry.at, locale, tz)
    if entry.kind == THREAD:
        parts = []
        if entry.emails:
            parts.append(f"{entry.emails} email{'s' if entry.emails != 1 else ''}")
        if entry.direction:
            parts.append(DIRECTION_TEXT.get(entry.direction, entry.direction))
        parts.append(reason_text(entry.reason))
        return decorated(
            esc(entry.text or "(no subject)"),
            top=f"Email · {esc(when)}",
            bottom=esc(" · ".join(parts)),
            icon=_ICONS[THREAD],
        )
    if entry.kind == NOTE:
        author = f" · {entry.author}" if entry.author else ""
        return decorated(
            esc(entry.text[:500]), top=f"Note · {esc(when)}{esc(author)}", icon=_ICONS[NOTE]
        )
    return decorated(esc(entry.text), top=f"Change · {esc(when)}", icon=_ICONS[CHANGE])


def timeline_section(
    actions: Actions, timeline: TimelinePage, *, locale: str = "en", tz: str = "UTC"
) -> dict[str, Any]:
    """Linked threads (subject, date, direction), notes and changes, newest first, paged."""
    widgets = [_entry(entry, locale, tz) for entry in timeline.entries]
    if not widgets:
        widgets.append(decorated("Nothing yet", bottom="Emails, notes and changes show here"))
    nav: list[Widget] = []
    if timeline.page > 0:
        nav.append(
            button(
                "Newer",
                actions.on_click(
                    "record_timeline", record_id=timeline.record_id, page=timeline.page - 1
                ),
            )
        )
    if timeline.has_more:
        nav.append(
            button(
                "More",
                actions.on_click(
                    "record_timeline", record_id=timeline.record_id, page=timeline.page + 1
                ),
            )
        )
    if nav:
        widgets.append(button_list(*nav))
    title = "Timeline" if timeline.page == 0 else f"Timeline · page {timeline.page + 1}"
    # Not collapsible: the paging buttons must stay in sight.
    return section(widgets, title)
