"""The contextual card beside an open message, and the homepage card."""

from __future__ import annotations

from typing import Any

from addon.auth.roles import can
from addon.cards.records import FOLDER_ICONS, display_value, record_line
from addon.cards.views import ViewLine, homepage_views_sections
from addon.cards.widgets import (
    Actions,
    Widget,
    button,
    button_list,
    card,
    decorated,
    esc,
    paragraph,
    section,
    text_input,
)
from addon.crm.fields import field_type
from addon.crm.models import Member, Record
from addon.crm.records import SUMMARY_FIELDS, SUMMARY_STATS_FIELDS
from addon.crm.sidebar import MessageContext, Participant


def _add_contact(actions: Actions, ctx: MessageContext, person: Participant) -> dict[str, Any]:
    """The action opening the Add contact form pre-filled for one participant."""
    return actions.on_click(
        "new_contact",
        email=person.address.email,
        name=person.address.name,
        thread_id=ctx.thread_id,
        subject=ctx.subject,
    )


def _participant_line(actions: Actions, ctx: MessageContext, person: Participant) -> Widget:
    address = person.address
    label = esc(address.name or address.email)
    bottom = esc(address.email) + (" · automated" if person.automated else "")
    if person.contact is not None:
        return decorated(
            esc(person.contact.title or address.email),
            top=person.role.upper(),
            bottom=bottom,
            icon="PERSON",
            on_click=actions.on_click(
                "open_record", record_id=person.contact.id, thread_id=ctx.thread_id
            ),
        )
    side = None
    if person.suggestible:
        side = button("Add", _add_contact(actions, ctx, person))
    return decorated(label, top=person.role.upper(), bottom=bottom, icon="EMAIL", side_button=side)


def _known_contact_sections(
    actions: Actions, ctx: MessageContext, locale: str, tz: str
) -> list[dict[str, Any]]:
    detail = ctx.detail
    assert detail is not None
    record = detail.record
    by_key = {f.key: f for f in detail.fields}
    widgets: list[Widget] = []
    for key in SUMMARY_FIELDS + SUMMARY_STATS_FIELDS:
        fdef = by_key.get(key)
        if fdef is None:
            continue
        if fdef.type == "link":
            widgets.extend(record_line(actions, target) for target in detail.links.get(key, []))
            continue
        text = display_value(fdef, detail.values.get(key), detail.members, locale=locale, tz=tz)
        if text:
            widgets.append(decorated(esc(text), top=esc(fdef.label)))
    buttons = [
        button(
            "Open", actions.on_click("open_record", record_id=record.id, thread_id=ctx.thread_id)
        ),
        button("Edit", actions.on_click("edit_record", record_id=record.id)),
    ]
    if record.id in ctx.linked_ids:
        buttons.append(
            button(
                "Unlink thread",
                actions.on_click("unlink_thread", record_id=record.id, thread_id=ctx.thread_id),
            )
        )
    else:
        buttons.append(
            button(
                "Link thread",
                actions.on_click(
                    "link_thread", record_id=record.id, thread_id=ctx.thread_id, subject=ctx.subject
                ),
                filled=True,
            )
        )
    buttons.append(button("Add note", actions.on_click("new_note", record_id=record.id)))
    widgets.append(button_list(*buttons))
    return [
        section(widgets, record.folder.singular),
        section(_deal_widgets(actions, ctx, locale, tz), "Open deals", collapsible=True),
    ]


def _deal_widgets(actions: Actions, ctx: MessageContext, locale: str, tz: str) -> list[Widget]:
    """Open deals; each not linked to the thread offers a Link button.

    With several open deals and none linked, the card asks which one the thread is about
    (automatic linking only ever links a single open deal).
    """
    currency = field_type("currency")
    widgets: list[Widget] = []
    if ctx.deal_suggestions:
        widgets.append(paragraph("Several open deals: link this thread to the one it is about."))
    for deal, stage, amount in ctx.open_deals:
        linked = deal.id in ctx.linked_deal_ids
        bottom = [currency.display_for(amount, locale, tz)] if amount else []
        if linked:
            bottom.append("Linked to this thread")
        side = None
        if not linked and ctx.thread_id:
            side = button(
                "Link",
                actions.on_click(
                    "link_thread", record_id=deal.id, thread_id=ctx.thread_id, subject=ctx.subject
                ),
            )
        widgets.append(
            decorated(
                esc(deal.title),
                top=esc(str(stage or "new").capitalize()),
                bottom=esc(" · ".join(bottom)) if bottom else None,
                icon="DOLLAR",
                on_click=actions.on_click(
                    "open_record", record_id=deal.id, thread_id=ctx.thread_id
                ),
                side_button=side,
            )
        )
    return widgets


def _unknown_sender_sections(actions: Actions, ctx: MessageContext) -> list[dict[str, Any]]:
    person = ctx.primary
    assert person is not None
    address = person.address
    widgets: list[Widget] = [
        decorated(esc(address.name or address.email), bottom=esc(address.email), icon="PERSON")
    ]
    if person.suggestible:
        widgets.append(paragraph("This person is not in your CRM yet."))
        if ctx.company is not None:
            if ctx.company.existing is not None:
                widgets.append(
                    record_line(actions, ctx.company.existing, bottom="Matched by domain")
                )
            else:
                widgets.append(
                    decorated(
                        esc(ctx.company.suggested_name),
                        top="Suggested company",
                        bottom=esc(ctx.company.domain),
                        icon="MEMBERSHIP",
                    )
                )
        widgets.append(
            button_list(
                button(
                    "Add contact",
                    _add_contact(actions, ctx, person),
                    filled=True,
                ),
                button(
                    "Link thread to…",
                    actions.on_click("link_search", thread_id=ctx.thread_id, subject=ctx.subject),
                ),
            )
        )
    else:
        reason = "a mailing list" if ctx.mailing_list else "an automated sender"
        widgets.append(
            paragraph(f"This message comes from {reason}; it is not suggested as a contact.")
        )
    return [section(widgets, "Sender" if not ctx.user_is_sender else "Recipient")]


def message_card(
    actions: Actions, ctx: MessageContext, *, locale: str = "en", tz: str = "UTC"
) -> dict[str, Any]:
    """The card shown beside an open message, values shown in the user's locale and zone."""
    sections: list[dict[str, Any]] = []
    if ctx.primary is None:
        sections.append(section([paragraph("No one outside your team is on this message.")]))
    elif ctx.detail is not None:
        sections.extend(_known_contact_sections(actions, ctx, locale, tz))
    else:
        sections.extend(_unknown_sender_sections(actions, ctx))
    rest = [p for p in ctx.focus[1:] + ctx.others]
    sections.append(
        section(
            [_participant_line(actions, ctx, p) for p in rest[:40]],
            "Also on this thread",
            collapsible=True,
        )
    )
    title = (
        ctx.detail.record.title
        if ctx.detail is not None
        else (ctx.primary.address.name or ctx.primary.address.email if ctx.primary else "Inbox CRM")
    )
    return card(title or "Inbox CRM", sections, subtitle=ctx.subject or None, name="message")


def homepage_card(
    actions: Actions,
    member: Member,
    *,
    query: str = "",
    results: list[Record] | None = None,
    recent: list[Record] | None = None,
    created: list[Record] | None = None,
    views: list[ViewLine] | None = None,
    more_views: bool = False,
) -> dict[str, Any]:
    """The homepage: search, saved views (with counts), recent records and create buttons."""
    search_widgets: list[Widget] = [
        text_input("query", "Search by name, email, company or domain", query),
        button_list(button("Search", actions.on_click("search"), filled=True)),
    ]
    if results is not None:
        if not results:
            search_widgets.append(paragraph(f"No records match “{esc(query)}”."))
        search_widgets.extend(record_line(actions, r) for r in results)
    create = button_list(
        button("New contact", actions.on_click("new_record", folder="contacts")),
        button("New company", actions.on_click("new_record", folder="companies")),
        button("New deal", actions.on_click("new_record", folder="deals")),
    )
    sections = [
        section(search_widgets, "Search"),
        *(homepage_views_sections(actions, views, more=more_views) if views is not None else []),
        section(
            [record_line(actions, r) for r in recent or []], "Recently viewed", collapsible=True
        ),
        section(
            [record_line(actions, r) for r in created or []], "Recently created", collapsible=True
        ),
        section([create], "Create"),
    ]
    if can(member, "send_campaigns"):
        sections.append(
            section(
                [button_list(button("Mail merge", actions.on_click("mailing_home")))], "Mail merge"
            )
        )
    return card("Inbox CRM", sections, subtitle=member.email, name="home")


__all__ = ["FOLDER_ICONS", "homepage_card", "message_card"]
