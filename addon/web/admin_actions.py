"""Admin actions: members and invitations, domain settings, audit log, privacy requests.

Thin handlers over addon.admin; every one needs the "admin" permission. Ids in parameters
are looked up in the caller's workspace only. Refused input redraws the same card with the
admin's values and the message, and rolls the transaction back.
"""

from __future__ import annotations

from typing import Any

from flask import g

from addon.admin import auditlog, domain, members, privacy
from addon.cards import admin as cards
from addon.cards.records import error_card
from addon.cards.responses import navigate, pop_and_update, push, update
from addon.digits import bounded_int
from addon.ledger.policy import SettingsError
from addon.web.admin_downloads import DownloadRefused, download_url
from addon.web.events import AddonRequest
from addon.web.registry import Result, action

Card = dict[str, Any]


def _typed(req: AddonRequest) -> dict[str, str]:
    return {name: values[0] if values else "" for name, values in req.form.items()}


def _refused(response: dict[str, Any]) -> dict[str, Any]:
    g.db_rollback = True
    return response


def _page(req: AddonRequest) -> int:
    text = req.param("page", "0")
    return bounded_int(text, 5) or 0


def _shown(req: AddonRequest, built: Card, *, notify: str | None = None) -> dict[str, Any]:
    return (
        update(built, notify=notify) if req.param("nav") == "update" else push(built, notify=notify)
    )


def _sentence(text: str) -> str:
    # An address at the start keeps its case ("ann@x.example is …").
    first = text.split(" ", 1)[0]
    head = text if "@" in first else text[:1].upper() + text[1:]
    return head + ("" if text.endswith(".") else ".")


def _open_link(url: str, note: str) -> dict[str, Any]:
    return {
        "renderActions": {
            "action": {
                "link": {"url": url, "openAs": "FULL_SIZE", "onClose": "NOTHING"},
                "notification": {"text": note},
            }
        },
        "stateChanged": False,
    }


# ------------------------------------------------------------------------------ members


def _members_card(req: AddonRequest, *, error: str | None = None) -> Card:
    ws = req.member.workspace_id
    return cards.members_card(
        req.actions,
        req.member,
        members.list_members(req.session, ws),
        members.list_invitations(req.session, ws),
        page=_page(req),
        error=_sentence(error) if error else None,
        values=_typed(req) if error else None,
    )


@action("admin_members", "admin")
def admin_members(req: AddonRequest) -> Result:
    """Members, pending invitations and the invite form."""
    return _shown(req, _members_card(req))


@action("admin_member", "admin")
def admin_member(req: AddonRequest) -> Result:
    """One member's role card."""
    try:
        target = members.get_member(req.session, req.member.workspace_id, req.param("member_id"))
    except members.AdminError as exc:
        return _refused(push(error_card("Member not found", _sentence(str(exc)))))
    return push(cards.member_card(req.actions, req.member, target))


@action("admin_set_role", "admin")
def admin_set_role(req: AddonRequest) -> Result:
    """Change a member's role; the last admin keeps theirs."""
    try:
        target = members.get_member(req.session, req.member.workspace_id, req.param("member_id"))
    except members.AdminError as exc:
        return _refused(push(error_card("Member not found", _sentence(str(exc)))))
    try:
        changed = members.change_role(req.session, req.member, target, req.text("role"))
    except members.AdminError as exc:
        return _refused(
            update(
                cards.member_card(
                    req.actions, req.member, target, error=_sentence(str(exc)), values=_typed(req)
                )
            )
        )
    note = f"{target.email} is now {target.role}" if changed else "Role unchanged"
    if changed and target.id == req.member.id:
        # An admin who stepped down may no longer see the admin cards: back to the start.
        return navigate({"popToRoot": True}, state_changed=True, notify=note)
    return pop_and_update(_members_card(req), notify=note)


@action("admin_invite", "admin")
def admin_invite(req: AddonRequest) -> Result:
    """Invite an address with a role."""
    try:
        invitation = members.invite(req.session, req.member, req.text("email"), req.text("role"))
    except members.AdminError as exc:
        return _refused(update(_members_card(req, error=str(exc))))
    return update(
        _members_card(req),
        state_changed=True,
        notify=f"Invited {invitation.email} as {invitation.role}",
    )


@action("admin_revoke_invitation", "admin")
def admin_revoke_invitation(req: AddonRequest) -> Result:
    """Withdraw a pending invitation."""
    try:
        invitation = members.get_invitation(
            req.session, req.member.workspace_id, req.param("invitation_id")
        )
    except members.AdminError as exc:
        return _refused(update(_members_card(req, error=str(exc))))
    email = invitation.email
    members.revoke(req.session, req.member, invitation)
    return update(_members_card(req), state_changed=True, notify=f"Invitation of {email} withdrawn")


# ----------------------------------------------------------------------------- settings


def _domain_card(req: AddonRequest, *, error: str | None = None) -> Card:
    workspace = req.member.workspace
    return cards.domain_card(
        req.actions,
        domain.current(workspace.settings, workspace.is_consumer),
        is_consumer=workspace.is_consumer,
        error=_sentence(error) if error else None,
        values=_typed(req) if error else None,
    )


@action("admin_domain", "admin")
def admin_domain(req: AddonRequest) -> Result:
    """The domain settings card."""
    return push(_domain_card(req))


@action("admin_save_domain", "admin")
def admin_save_domain(req: AddonRequest) -> Result:
    """Validate and save the domain settings; a bad entry keeps the form as typed."""
    try:
        changed = domain.save_settings(req.session, req.member, _typed(req))
    except SettingsError as exc:
        return _refused(update(_domain_card(req, error=str(exc))))
    note = "Settings saved" if changed else "Nothing changed"
    return update(_domain_card(req), state_changed=bool(changed), notify=note)


# ---------------------------------------------------------------------------- audit log


def _filter_from_params(req: AddonRequest) -> auditlog.AuditFilter:
    ws = req.member.workspace_id
    actor = req.param("actor_id")
    record = req.param("record_id")
    return auditlog.parse_filter(req.session, ws, actor, record, req.param("action"))


@action("admin_audit", "admin")
def admin_audit(req: AddonRequest) -> Result:
    """The audit log: filters from the form (`filter`) or from paging parameters."""
    ws = req.member.workspace_id
    error = None
    try:
        if req.param("filter"):
            flt = auditlog.parse_filter(
                req.session, ws, req.text("actor"), req.text("record"), req.text("action")
            )
        else:
            flt = _filter_from_params(req)
    except auditlog.FilterError as exc:
        error, flt = _sentence(str(exc)), auditlog.AuditFilter()
    page = 0 if req.param("filter") else _page(req)
    entries, more = auditlog.entries_page(req.session, ws, flt, page)
    built = cards.audit_card(
        req.actions,
        entries,
        auditlog.actor_emails(req.session, ws),
        auditlog.known_actions(req.session, ws),
        flt,
        page=page,
        more=more,
        timezone=req.timezone,
        error=error,
        values=_typed(req) if error else None,
    )
    return _shown(req, built)


@action("admin_audit_entry", "admin")
def admin_audit_entry(req: AddonRequest) -> Result:
    """One audit entry with its before and after values."""
    entry = auditlog.get_entry(req.session, req.member.workspace_id, req.param("entry_id"))
    if entry is None:
        return _refused(
            push(error_card("Entry not found", "That audit entry is not in this workspace."))
        )
    actors = auditlog.actor_emails(req.session, req.member.workspace_id)
    actor = actors.get(entry.actor_id, "") if entry.actor_id is not None else ""
    return push(cards.audit_entry_card(entry, actor, timezone=req.timezone))


@action("admin_audit_export", "admin")
def admin_audit_export(req: AddonRequest) -> Result:
    """Open a download link for the (filtered) audit log as CSV or JSON lines."""
    fmt = req.param("fmt")
    try:
        if fmt not in ("csv", "jsonl"):
            raise auditlog.FilterError(f"“{fmt[:20]}” is not an export format (csv or jsonl)")
        flt = _filter_from_params(req)
        url = download_url(req.member, "audit", fmt=fmt, **_filter_values(flt))
    except (auditlog.FilterError, DownloadRefused) as exc:
        return _refused(push(error_card("Export unavailable", _sentence(str(exc)))))
    return _open_link(
        url, f"Downloading the audit log as {'CSV' if fmt == 'csv' else 'JSON lines'}"
    )


def _filter_values(flt: auditlog.AuditFilter) -> dict[str, Any]:
    return {"actor_id": flt.actor_id, "record_id": flt.record_id, "action": flt.action}


# ------------------------------------------------------------------------------ privacy


@action("admin_privacy", "admin")
def admin_privacy(req: AddonRequest) -> Result:
    """The privacy requests card."""
    return push(cards.privacy_card(req.actions))


def _privacy_refused(req: AddonRequest, message: str) -> dict[str, Any]:
    return _refused(
        update(cards.privacy_card(req.actions, error=_sentence(message), values=_typed(req)))
    )


@action("admin_privacy_export", "admin")
def admin_privacy_export(req: AddonRequest) -> Result:
    """Open a download link for everything held about an address, as JSON."""
    try:
        email = privacy.parse_email(req.text("email"))
        url = download_url(req.member, "person", email=email)
    except (privacy.PrivacyError, DownloadRefused) as exc:
        return _privacy_refused(req, str(exc))
    return _open_link(url, "Downloading the person's data as JSON")


@action("admin_erase_confirm", "admin")
def admin_erase_confirm(req: AddonRequest) -> Result:
    """Show what erasing the address would do, with the button that does it."""
    try:
        plan = privacy.plan_erase(req.session, req.member.workspace_id, req.text("email"))
    except privacy.PrivacyError as exc:
        return _privacy_refused(req, str(exc))
    return push(cards.erase_confirm_card(req.actions, plan))


@action("admin_erase", "admin")
def admin_erase(req: AddonRequest) -> Result:
    """Erase the person named on the confirmation card."""
    if req.param("confirm") != "yes":
        return _refused(push(error_card("Not erased", "Confirm the erase on its card first.")))
    try:
        plan = privacy.erase_person(req.session, req.member, req.param("email"))
    except privacy.PrivacyError as exc:
        return _refused(push(error_card("Not erased", _sentence(str(exc)))))
    note = f"Erased: {len(plan.delete)} record(s) deleted, {len(plan.scrub)} cleaned"
    return pop_and_update(cards.privacy_card(req.actions), notify=note)
