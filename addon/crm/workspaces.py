"""Workspaces and members: created on first sight, with default folders and fields."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from addon.admin.members import accept_invitation
from addon.crm.defaults import DEFAULT_FOLDERS
from addon.crm.models import FieldDef, Folder, Member, Workspace


def provision_workspace(session: Session, domain: str, *, is_consumer: bool) -> Workspace:
    """Create a workspace with the default folders and fields; flushes only."""
    workspace = Workspace(domain=domain, is_consumer=is_consumer)
    session.add(workspace)
    session.flush()
    for position, (key, name, singular, fields) in enumerate(DEFAULT_FOLDERS):
        folder = Folder(
            workspace_id=workspace.id, key=key, name=name, singular=singular, position=position
        )
        session.add(folder)
        session.flush()
        for field_position, (fkey, label, ftype, options, required) in enumerate(fields):
            session.add(
                FieldDef(
                    workspace_id=workspace.id,
                    folder_id=folder.id,
                    key=fkey,
                    label=label,
                    type=ftype,
                    options=dict(options),
                    required=required,
                    position=field_position,
                )
            )
    session.flush()
    return workspace


# Runs on every request, so it is built once.
_MEMBER_BY_EMAIL = (
    select(Member)
    .join(Member.workspace)
    # The join that filters by domain also loads the workspace (a second, eager join
    # of the same table otherwise).
    .options(contains_eager(Member.workspace))
    .where(Workspace.domain == bindparam("domain"), Member.email == bindparam("email"))
)


def resolve_member(session: Session, domain: str, email: str, *, is_consumer: bool) -> Member:
    """Find or create the member for a verified user; the first member is the admin."""
    params = {"domain": domain, "email": email}
    member = session.execute(_MEMBER_BY_EMAIL, params).scalar_one_or_none()
    if member is not None:
        return member
    # Two first requests of one workspace can race; a savepoint lets the loser
    # retry the lookup instead of failing the request.
    try:
        with session.begin_nested():
            workspace = session.execute(
                select(Workspace).where(Workspace.domain == domain)
            ).scalar_one_or_none()
            first = workspace is None
            if workspace is None:
                workspace = provision_workspace(session, domain, is_consumer=is_consumer)
            member = Member(
                workspace_id=workspace.id, email=email, role="admin" if first else "rep"
            )
            session.add(member)
            session.flush()
            if not first:
                accept_invitation(session, member)
    except IntegrityError:
        return resolve_member(session, domain, email, is_consumer=is_consumer)
    return member


def folders_by_key(session: Session, workspace_id: int) -> dict[str, Folder]:
    """The workspace's folders keyed by their key."""
    rows = session.execute(
        select(Folder).where(Folder.workspace_id == workspace_id).order_by(Folder.position)
    ).scalars()
    return {folder.key: folder for folder in rows}


def folder_fields(session: Session, folder_id: int) -> list[FieldDef]:
    """Active fields of a folder in display order."""
    return list(
        session.execute(
            select(FieldDef)
            .where(FieldDef.folder_id == folder_id, FieldDef.active.is_(True))
            .order_by(FieldDef.position)
        ).scalars()
    )
