"""Members, roles and invitations of a workspace; every change is audit-logged.

An invitation names an address and a role. The invited person becomes a member with that
role the first time they open the add-on (addon.crm.workspaces.resolve_member calls
`accept_invitation`). Members join through the verified `hd` claim of their Google account,
so only addresses of the workspace's own domain can be invited.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.admin.models import Invitation
from addon.crm.audit import record_audit
from addon.crm.models import ROLES, Member, Workspace
from addon.digits import bounded_int
from addon.gmail.addresses import canonical_email, email_domain

MAX_PENDING_INVITATIONS = 500


class AdminError(ValueError):
    """Refused admin input; the message names what was wrong."""


def list_members(session: Session, workspace_id: int) -> list[Member]:
    """The workspace's members, by address."""
    return list(
        session.execute(
            select(Member).where(Member.workspace_id == workspace_id).order_by(Member.email)
        ).scalars()
    )


def get_member(session: Session, workspace_id: int, member_id: str | int) -> Member:
    """A member of this workspace by id; AdminError for any other id."""
    text = str(member_id)
    number = bounded_int(text, 11)
    found = session.get(Member, number) if number is not None else None
    if found is None or found.workspace_id != workspace_id:
        raise AdminError("that member is not in this workspace")
    return found


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AdminError(f"“{role[:40]}” is not a role (choose {', '.join(ROLES)})")
    return role


def admin_count(session: Session, workspace_id: int) -> int:
    """How many admins the workspace has."""
    return session.execute(
        select(func.count())
        .select_from(Member)
        .where(Member.workspace_id == workspace_id, Member.role == "admin")
    ).scalar_one()


def change_role(session: Session, actor: Member, target: Member, role: str) -> bool:
    """Give a member another role; False when it is already theirs. Flushes only."""
    _check_role(role)
    if target.workspace_id != actor.workspace_id:
        raise AdminError("that member is not in this workspace")
    if target.role == role:
        return False
    # Row lock on PostgreSQL: two admins demoting each other at once must not leave none.
    session.execute(
        select(Member.id)
        .where(Member.workspace_id == actor.workspace_id, Member.role == "admin")
        .with_for_update()
    ).all()
    if target.role == "admin" and admin_count(session, actor.workspace_id) <= 1:
        who = "you are" if target.id == actor.id else f"{target.email} is"
        raise AdminError(f"{who} the last admin; make another member admin first")
    before = target.role
    target.role = role
    session.flush()
    record_audit(
        session,
        actor,
        "role_change",
        workspace_id=actor.workspace_id,
        summary=f"Role of {target.email}: {before} → {role}",
        before={"member": target.email, "role": before},
        after={"member": target.email, "role": role},
    )
    return True


def list_invitations(session: Session, workspace_id: int) -> list[Invitation]:
    """Pending invitations, newest first."""
    return list(
        session.execute(
            select(Invitation)
            .where(Invitation.workspace_id == workspace_id)
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        ).scalars()
    )


def invite(session: Session, actor: Member, email_text: str, role: str) -> Invitation:
    """Invite an address of the workspace's domain with a role (again: updates the role)."""
    _check_role(role)
    workspace = session.get(Workspace, actor.workspace_id)
    assert workspace is not None
    raw = email_text.strip()
    if not raw:
        raise AdminError("enter the address to invite")
    email = canonical_email(raw)
    if email is None:
        raise AdminError(f"“{raw[:80]}” is not an email address")
    if workspace.is_consumer:
        raise AdminError("a personal Gmail workspace has one member; invitations need a domain")
    domain = email_domain(email)
    if domain != workspace.domain.lower():
        raise AdminError(
            f"“{email}” is not an address of {workspace.domain}; only people who sign in "
            f"with a {workspace.domain} account can join"
        )
    member = session.execute(
        select(Member).where(Member.workspace_id == workspace.id, Member.email == email)
    ).scalar_one_or_none()
    if member is not None:
        raise AdminError(f"already a member: {email} ({member.role}); change their role instead")
    found = session.execute(
        select(Invitation).where(Invitation.workspace_id == workspace.id, Invitation.email == email)
    ).scalar_one_or_none()
    before = None
    if found is None:
        pending = len(list_invitations(session, workspace.id))
        if pending >= MAX_PENDING_INVITATIONS:
            raise AdminError(f"at most {MAX_PENDING_INVITATIONS} pending invitations")
        found = Invitation(
            workspace_id=workspace.id, email=email, role=role, invited_by_id=actor.id
        )
        session.add(found)
    else:
        before = {"email": email, "role": found.role}
        found.role = role
        found.invited_by_id = actor.id
    session.flush()
    record_audit(
        session,
        actor,
        "invite",
        workspace_id=workspace.id,
        summary=f"Invited {email} as {role}",
        before=before,
        after={"email": email, "role": role},
    )
    return found


def get_invitation(session: Session, workspace_id: int, invitation_id: str | int) -> Invitation:
    """A pending invitation of this workspace by id; AdminError for any other id."""
    text = str(invitation_id)
    number = bounded_int(text, 11)
    found = session.get(Invitation, number) if number is not None else None
    if found is None or found.workspace_id != workspace_id:
        raise AdminError("that invitation is no longer pending")
    return found


def revoke(session: Session, actor: Member, invitation: Invitation) -> None:
    """Withdraw a pending invitation; flushes only."""
    record_audit(
        session,
        actor,
        "revoke_invitation",
        workspace_id=actor.workspace_id,
        summary=f"Withdrew the invitation of {invitation.email}",
        before={"email": invitation.email, "role": invitation.role},
    )
    session.delete(invitation)
    session.flush()


def accept_invitation(session: Session, member: Member) -> None:
    """On a member's first sign-in: take the invited role and drop the invitation."""
    found = session.execute(
        select(Invitation).where(
            Invitation.workspace_id == member.workspace_id, Invitation.email == member.email
        )
    ).scalar_one_or_none()
    if found is None:
        return
    member.role = _check_role(found.role)
    session.delete(found)
    session.flush()
    record_audit(
        session,
        member,
        "join",
        workspace_id=member.workspace_id,
        summary=f"{member.email} joined as {member.role} (invited)",
        after={"member": member.email, "role": member.role},
    )
