"""Admin cards: members and invitations, domain settings, the audit log, privacy requests.

Pure functions of domain objects; `values` (the form as typed) wins over stored values, so
a refused form comes back with what the admin typed and a line naming the bad entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from addon.admin.auditlog import AuditFilter
from addon.admin.domain import PLAN_LABELS, DomainSettings
from addon.admin.models import Invitation
from addon.admin.privacy import ErasePlan
from addon.cards.widgets import (
    Actions,
    button,
    button_list,
    card,
    decorated,
    dropdown,
    error_line,
    esc,
    paragraph,
    section,
    showing,
    text_input,
)
from addon.crm.models import ROLES, AuditEntry, Member
from addon.mailing.quota import GOOGLE_LIMITS

Card = dict[str, Any]
Widget = dict[str, Any]
FormValues = Mapping[str, str]

MEMBERS_PER_PAGE = 25
MAX_INVITATION_LINES = 25
ROLE_TEXT = {
    "admin": "Admin — everything, including these settings",
    "manager": "Manager — also delete, merge, mass update, import",
    "rep": "Rep — view, create, edit, link, note, export",
    "viewer": "Viewer — read only",
}


def _roles(name: str, label: str, selected: str) -> Widget:
    return dropdown(name, label, [(r, ROLE_TEXT[r]) for r in ROLES], selected, blank=False)


def _when(value: datetime, timezone: str) -> str:
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _pager(actions: Actions, name: str, page: int, more: bool, **params: object) -> list[Widget]:
    buttons: list[Widget] = []
    if page > 0:
        buttons.append(
            button("Previous", actions.on_click(name, page=page - 1, nav="update", **params))
        )
    if more:
        buttons.append(
            button("Next", actions.on_click(name, page=page + 1, nav="update", **params))
        )
    return [button_list(*buttons)] if buttons else []


def admin_links(actions: Actions) -> Widget:
    """The Settings card's section opening the admin cards."""
    return section(
        [
            button_list(
                button("Members and invitations", actions.on_click("admin_members")),
                button("Domain settings", actions.on_click("admin_domain")),
            ),
            button_list(
                button("Audit log", actions.on_click("admin_audit")),
                button("Privacy requests", actions.on_click("admin_privacy")),
            ),
        ],
        "Administration",
    )


# ------------------------------------------------------------------------------ members


def members_card(
    actions: Actions,
    me: Member,
    members: Sequence[Member],
    invitations: Sequence[Invitation],
    *,
    page: int = 0,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """Members (each opens its role card), pending invitations, and the invite form."""
    values = values or {}
    pages = max(1, -(-len(members) // MEMBERS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = members[page * MEMBERS_PER_PAGE : (page + 1) * MEMBERS_PER_PAGE]
    lines: list[Widget] = [
        decorated(
            esc(m.email) + (" (you)" if m.id == me.id else ""),
            bottom=m.role,
            icon="PERSON",
            on_click=actions.on_click("admin_member", member_id=m.id),
        )
        for m in shown
    ]
    if len(members) > len(shown):
        lines.append(
            paragraph(
                f"<i>Members {page * MEMBERS_PER_PAGE + 1} to "
                f"{page * MEMBERS_PER_PAGE + len(shown)} of {len(members)}.</i>"
            )
        )
    lines += _pager(actions, "admin_members", page, page < pages - 1)
    pending: list[Widget] = [
        decorated(
            esc(inv.email),
            bottom=f"invited as {inv.role}",
            icon="EMAIL",
            side_button=button(
                "Withdraw", actions.on_click("admin_revoke_invitation", invitation_id=inv.id)
            ),
        )
        for inv in invitations[:MAX_INVITATION_LINES]
    ]
    if len(invitations) > MAX_INVITATION_LINES:
        pending.append(showing(MAX_INVITATION_LINES, len(invitations), "invitations"))
    form: list[Widget] = []
    if error:
        form.append(error_line(error))
    form += [
        text_input("email", "Email address", values.get("email", ""), hint="name@your-domain"),
        _roles("role", "Role", values.get("role", "rep")),
        paragraph("The person gets this role the first time they open Inbox CRM."),
        button_list(button("Invite", actions.on_click("admin_invite"), filled=True)),
    ]
    return card(
        "Members and invitations",
        [
            section(lines, f"Members ({len(members)})"),
            section(pending, f"Pending invitations ({len(invitations)})"),
            section(form, "Invite"),
        ],
        subtitle="Admin settings",
        name="admin-members",
    )


def member_card(
    actions: Actions,
    me: Member,
    member: Member,
    *,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """One member's role, with the form to change it."""
    values = values or {}
    widgets: list[Widget] = []
    if error:
        widgets.append(error_line(error))
    widgets += [
        decorated(
            esc(member.email),
            top="Member" + (" (you)" if member.id == me.id else ""),
            bottom=f"Role: {member.role}",
            icon="PERSON",
        ),
        _roles("role", "Role", values.get("role", member.role)),
    ]
    if member.id == me.id and member.role == "admin":
        widgets.append(paragraph("<i>The last admin of a workspace cannot step down.</i>"))
    return card(
        member.email,
        [section(widgets)],
        subtitle="Member",
        name=f"admin-member-{member.id}",
        footer=button(
            "Save role", actions.on_click("admin_set_role", member_id=member.id), filled=True
        ),
    )


# ----------------------------------------------------------------------------- settings


def domain_card(
    actions: Actions,
    settings: DomainSettings,
    *,
    is_consumer: bool,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """Sending cap, exclusion lists, free-mail additions and default phone region."""
    values = values or {}
    sending: list[Widget] = []
    if error:
        sending.append(error_line(error))
    if is_consumer:
        sending.append(
            paragraph(
                f"Personal Gmail account: Google allows about "
                f"{GOOGLE_LIMITS['consumer']:,} recipients a day."
            )
        )
    else:
        sending.append(
            dropdown(
                "plan",
                "Google plan",
                [
                    (p, f"{label} (Google's limit {GOOGLE_LIMITS[p]:,} a day)")
                    for p, label in PLAN_LABELS.items()
                ],
                values.get("plan", settings.plan),
                blank=False,
            )
        )
    sending.append(
        text_input(
            "daily_send_cap",
            "Mail merge cap per member (recipients per 24 hours)",
            values.get("daily_send_cap", str(settings.daily_send_cap)),
            hint="Never above Google's limit; leave headroom for everyday mail",
        )
    )
    lists = [
        text_input(
            "excluded_addresses",
            "Addresses never linked",
            values.get("excluded_addresses", "\n".join(settings.excluded_addresses)),
            hint="One per line",
            multiline=True,
        ),
        text_input(
            "excluded_domains",
            "Domains never linked",
            values.get("excluded_domains", "\n".join(settings.excluded_domains)),
            hint="One per line; subdomains included",
            multiline=True,
        ),
        text_input(
            "free_mail_domains",
            "More free-mail domains",
            values.get("free_mail_domains", "\n".join(settings.free_mail_domains)),
            hint="Never matched to a company, like gmail.com",
            multiline=True,
        ),
    ]
    region = [
        text_input(
            "default_region",
            "Default phone region",
            values.get("default_region", settings.default_region),
            hint="Two letters (US, GB, DE) for numbers typed without +country code",
        )
    ]
    return card(
        "Domain settings",
        [section(sending, "Sending"), section(lists, "Exclusions"), section(region, "Phones")],
        subtitle="Admin settings",
        name="admin-domain",
        footer=button("Save settings", actions.on_click("admin_save_domain"), filled=True),
    )


# ---------------------------------------------------------------------------- audit log


def audit_card(
    actions: Actions,
    entries: Sequence[AuditEntry],
    actors: Mapping[int, str],
    known_actions: Sequence[str],
    flt: AuditFilter,
    *,
    page: int,
    more: bool,
    timezone: str,
    error: str | None = None,
    values: FormValues | None = None,
) -> Card:
    """A page of the audit log, its filters, and the export buttons."""
    values = values or {}
    form: list[Widget] = []
    if error:
        form.append(error_line(error))
    actor_text = actors.get(flt.actor_id, "") if flt.actor_id is not None else ""
    form += [
        text_input("actor", "Who (member address)", values.get("actor", actor_text)),
        text_input(
            "record",
            "Record number",
            values.get("record", str(flt.record_id) if flt.record_id is not None else ""),
        ),
        dropdown(
            "action",
            "Action",
            [(a, a.replace("_", " ")) for a in known_actions[:99]],
            values.get("action", flt.action or ""),
        ),
        button_list(
            button(
                "Filter", actions.on_click("admin_audit", nav="update", filter="1"), filled=True
            ),
            button(
                "Download CSV", actions.on_click("admin_audit_export", fmt="csv", **flt.params())
            ),
            button(
                "Download JSON lines",
                actions.on_click("admin_audit_export", fmt="jsonl", **flt.params()),
            ),
        ),
    ]
    lines: list[Widget] = []
    for entry in entries:
        who = actors.get(entry.actor_id, "system") if entry.actor_id is not None else "system"
        where = f" · record #{entry.record_id}" if entry.record_id is not None else ""
        lines.append(
            decorated(
                esc(entry.summary or entry.action),
                top=f"{_when(entry.created_at, timezone)} · {esc(entry.action)}{where}",
                bottom=esc(who),
                on_click=actions.on_click("admin_audit_entry", entry_id=entry.id),
            )
        )
    if not lines:
        lines.append(paragraph("<i>No entries match.</i>"))
    lines += _pager(actions, "admin_audit", page, more, **flt.params())
    return card(
        "Audit log",
        [section(form, "Filter"), section(lines, f"Entries (page {page + 1})")],
        subtitle="Admin settings",
        name="admin-audit",
    )


def _values_text(values: Mapping[str, Any] | None) -> str:
    if not values:
        return "—"
    lines = [
        f"<b>{esc(k)}</b>: {esc(json.dumps(v, ensure_ascii=False))[:300]}"
        for k, v in list(values.items())[:40]
    ]
    return "<br>".join(lines)


def audit_entry_card(entry: AuditEntry, actor: str, *, timezone: str) -> Card:
    """One audit entry: who, when, what, and the values before and after."""
    head = [
        decorated(
            esc(entry.summary or entry.action),
            top=f"{_when(entry.created_at, timezone)} · {esc(entry.action)}",
            bottom=esc(actor or "system"),
        )
    ]
    if entry.record_id is not None:
        head.append(paragraph(f"Record #{entry.record_id}"))
    return card(
        "Audit entry",
        [
            section(head),
            section([paragraph(_values_text(entry.before))], "Before"),
            section([paragraph(_values_text(entry.after))], "After"),
        ],
        subtitle=f"#{entry.id}",
        name=f"admin-audit-entry-{entry.id}",
    )


# ------------------------------------------------------------------------------ privacy


def privacy_card(
    actions: Actions, *, error: str | None = None, values: FormValues | None = None
) -> Card:
    """The privacy requests form: export or erase what is held about one address."""
    values = values or {}
    widgets: list[Widget] = []
    if error:
        widgets.append(error_line(error))
    widgets += [
        text_input("email", "The person's email address", values.get("email", "")),
        paragraph(
            "Export downloads everything this workspace holds about the address as JSON. "
            "Erase deletes the person's contacts, removes the address from other records "
            "and from the email history, and keeps only a one-way hash so they are never "
            "mailed again. You confirm before anything is erased."
        ),
        button_list(
            button("Export as JSON", actions.on_click("admin_privacy_export"), filled=True),
            button("Erase…", actions.on_click("admin_erase_confirm")),
        ),
    ]
    return card(
        "Privacy requests", [section(widgets)], subtitle="Admin settings", name="admin-privacy"
    )


def erase_confirm_card(actions: Actions, plan: ErasePlan) -> Card:
    """What erasing the address will do; the button erases."""
    lines: list[Widget] = [
        paragraph(f"Erase <b>{esc(plan.email)}</b>? This cannot be undone."),
    ]
    if plan.already_erased:
        lines.append(
            paragraph(
                "<i>This address was erased before; erasing again removes "
                "anything recorded since.</i>"
            )
        )
    for record in plan.delete[:20]:
        lines.append(
            decorated(
                esc(record.title or f"#{record.id}"),
                top="Deleted",
                bottom=esc(record.folder.singular),
            )
        )
    for record in plan.scrub[:20]:
        lines.append(
            decorated(
                esc(record.title or f"#{record.id}"),
                top="Address removed",
                bottom=esc(record.folder.singular),
            )
        )
    lines.append(
        paragraph(
            f"{len(plan.delete)} record(s) deleted, {len(plan.scrub)} record(s) lose the "
            f"address, {plan.ledger_rows} email(s) in the history keep only a hash, "
            f"{plan.audit_entries} audit entr{'y' if plan.audit_entries == 1 else 'ies'} scrubbed."
        )
    )
    return card(
        "Erase a person",
        [section(lines)],
        subtitle="Confirm",
        name="admin-erase-confirm",
        footer=button(
            "Erase permanently",
            actions.on_click("admin_erase", email=plan.email, confirm="yes"),
            filled=True,
        ),
    )
