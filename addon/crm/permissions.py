"""Changing who may do what: folder permissions, locked fields, the own-records option.

Admin-only services (the caller checks "admin"); each flushes, audits, and refuses bad
input with PermissionsError before writing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from addon.auth.roles import (
    FOLDER_ACTIONS,
    OWN_RECORDS_ONLY,
    check_folder_permissions,
    folder_roles,
    forget_hidden_folders,
    require,
)
from addon.crm.audit import record_audit
from addon.crm.models import ROLES, FieldDef, Folder, Member
from addon.crm.records import RecordNotFound


class PermissionsError(ValueError):
    """A permission change that cannot be made; the message says why."""


def _own(member: Member, row: Folder | FieldDef) -> None:
    require(member, "admin")
    if row.workspace_id != member.workspace_id:
        raise RecordNotFound(row.id)


def effective_permissions(folder: Folder) -> dict[str, list[str]]:
    """Who may view, create, edit and delete in the folder, defaults filled in."""
    return {
        action: [r for r in ROLES if r in folder_roles(folder, action)] for action in FOLDER_ACTIONS
    }


def set_folder_permissions(
    session: Session, member: Member, folder: Folder, permissions: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Store which roles may view, create, edit, delete in the folder; audited."""
    _own(member, folder)
    try:
        clean = check_folder_permissions(permissions)
    except ValueError as exc:
        raise PermissionsError(str(exc)) from None
    before = effective_permissions(folder)
    folder.permissions = {**(folder.permissions or {}), **clean}
    after = effective_permissions(folder)
    session.flush()
    forget_hidden_folders(session)
    record_audit(
        session,
        member,
        "permission_change",
        workspace_id=member.workspace_id,
        folder_id=folder.id,
        summary=f"Changed who may do what in {folder.name}",
        before=before,
        after=after,
    )
    return after


def set_field_locked(session: Session, member: Member, fdef: FieldDef, locked: bool) -> None:
    """Lock a field (editable by admins only) or unlock it; audited."""
    _own(member, fdef)
    if fdef.locked == locked:
        return
    fdef.locked = locked
    session.flush()
    record_audit(
        session,
        member,
        "field_change",
        workspace_id=member.workspace_id,
        folder_id=fdef.folder_id,
        summary=f"{'Locked' if locked else 'Unlocked'} field {fdef.label}",
        before={"locked": not locked},
        after={"locked": locked},
    )


def set_own_records_only(session: Session, member: Member, enabled: bool) -> None:
    """Turn on or off "reps see only the records they own or are assigned"; audited."""
    require(member, "admin")
    workspace = member.workspace
    settings = dict(workspace.settings or {})
    before = bool(settings.get(OWN_RECORDS_ONLY))
    if before == enabled:
        return
    # A new dict: the JSON column notices reassignment, not mutation in place.
    settings[OWN_RECORDS_ONLY] = enabled
    workspace.settings = settings
    session.flush()
    record_audit(
        session,
        member,
        "settings_change",
        workspace_id=member.workspace_id,
        summary=("Reps now see only their own records" if enabled else "Reps see all records"),
        before={OWN_RECORDS_ONLY: before},
        after={OWN_RECORDS_ONLY: enabled},
    )
