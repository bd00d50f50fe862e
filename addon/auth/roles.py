"""Roles and the one authorization check every action goes through.

`require(member, action, folder=..., record=...)` is that check. The role table says what
a role may do anywhere; a folder's `permissions` narrows who may view, create, edit and
delete its records; the workspace option OWN_RECORDS_ONLY hides from reps the records they
neither own nor are named in. Lists use `record_scope` so they show only what `require`
would let the member open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from addon.crm.models import ROLES, FieldDef, FieldValue, Folder, Member, Record

# What each role may do. Per-folder and per-field rules extend this table.
#  merge       combine duplicate records (the merged-away ids become aliases)
#  bulk_edit   mass update every record of a view in one go
#  import      CSV import into a folder
#  export      CSV export of a view or folder
#  share_view  save views every member of the workspace sees
#  send_mail   send mail from their own Gmail through Inbox CRM (grant gmail.send)
#  send_campaigns  mail merge: templates, campaigns, sending from one's own Gmail account
_REP = frozenset({"view", "create", "edit", "link", "note", "export", "send_mail"})
_MANAGER = _REP | {"delete", "merge", "bulk_edit", "import", "share_view", "send_campaigns"}
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": _MANAGER | {"admin"},
    "manager": _MANAGER,
    "rep": _REP,
    "viewer": frozenset({"view"}),
}

# The actions a folder's permissions name, and what each permission needs of the folder
# it touches: a note or a link is added to a record one can see; merging edits the
# survivor and deletes the others.
FOLDER_ACTIONS = ("view", "create", "edit", "delete")
FOLDER_NEEDS: dict[str, tuple[str, ...]] = {
    "view": ("view",),
    "create": ("create",),
    "edit": ("edit",),
    "delete": ("delete",),
    "link": ("view",),
    "note": ("view",),
    "merge": ("edit", "delete"),
    "bulk_edit": ("edit",),
    "import": ("create", "edit"),
    "export": ("view",),
    "share_view": ("view",),
}

# Workspace setting: reps see only the records they own or a member field names them in.
OWN_RECORDS_ONLY = "reps_see_own_records_only"

# How a denial names what was refused ("does not allow you to …").
_ACTION_PHRASES = {
    "link": "link threads to records",
    "note": "add notes to records",
    "merge": "merge records",
    "bulk_edit": "mass update records",
    "import": "import records",
    "export": "export records",
    "share_view": "share views with the workspace",
    "send_campaigns": "send mail merge campaigns",
    "admin": "manage the workspace",
    "send_mail": "send mail from your mailbox",
}


class PermissionDenied(Exception):
    """The caller's role does not allow the action."""

    def __init__(self, action: str, role: str, folder: Folder | None = None) -> None:
        phrase = _ACTION_PHRASES.get(action, f"{action} records")
        where = f" in {folder.name}" if folder is not None else ""
        super().__init__(f"your role ({role}) does not allow you to {phrase}{where}")
        self.action = action
        self.role = role


class RecordHidden(PermissionDenied):
    """A rep restricted to their own records asked for someone else's."""

    def __init__(self, role: str) -> None:
        Exception.__init__(
            self,
            "this workspace shows reps only the records they own or are assigned; "
            "ask the record's owner or an admin",
        )
        self.action = "view"
        self.role = role


def default_folder_roles(action: str) -> list[str]:
    """The roles the role table lets do a folder action, in ROLES order."""
    return [role for role in ROLES if action in PERMISSIONS[role]]


def folder_roles(folder: Folder, action: str) -> frozenset[str]:
    """Roles that may do a folder action in this folder; admins always may."""
    stored = folder.permissions if isinstance(folder.permissions, dict) else {}
    roles = stored.get(action)
    if not isinstance(roles, list):
        roles = default_folder_roles(action)
    return frozenset(r for r in roles if isinstance(r, str)) | {"admin"}


def check_folder_permissions(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """Folder permissions as stored, or ValueError saying what is wrong.

    A folder narrows the role table; it cannot let a role do what the role table refuses
    everywhere (a viewer never edits), and it never locks admins out.
    """
    clean: dict[str, list[str]] = {}
    for action, roles in raw.items():
        if action not in FOLDER_ACTIONS:
            raise ValueError(f"“{action}” is not a folder permission (view, create, edit, delete)")
        if not isinstance(roles, Iterable) or isinstance(roles, str | bytes):
            raise ValueError(f"{action}: give a list of roles")
        chosen = set()
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"{action}: “{role}” is not a role")
            if action not in PERMISSIONS[role]:
                raise ValueError(f"{action}: the {role} role cannot {action} records anywhere")
            chosen.add(role)
        clean[action] = [r for r in ROLES if r in chosen or r == "admin"]
    return clean


def restricted(member: Member) -> bool:
    """Whether the member sees only the records they own or are assigned."""
    settings = member.workspace.settings if isinstance(member.workspace.settings, dict) else {}
    return member.role == "rep" and bool(settings.get(OWN_RECORDS_ONLY))


def _mine(member: Member) -> ColumnElement[bool]:
    # A member field stores the member id; its num_key is that id (the views' index).
    named = (
        select(FieldValue.id)
        .join(FieldDef, FieldDef.id == FieldValue.field_id)
        .where(
            FieldValue.record_id == Record.id,
            FieldDef.type == "user",
            FieldValue.num_key == float(member.id),
        )
        .exists()
    )
    return or_(Record.owner_member_id == member.id, named)


HIDDEN_FOLDERS = "addon.hidden_folders"


def _hidden_folder_ids(session: Session, member: Member) -> list[int]:
    if member.role == "admin":
        # No folder hides anything from admins: spare the lists a query.
        return []
    # A request asks for this once per list it shows (the homepage: three): the answer
    # is kept on its session until folder permissions change (forget_hidden_folders).
    key = (HIDDEN_FOLDERS, member.id, member.role)
    cached: list[int] | None = session.info.get(key)
    if cached is None:
        folders = session.execute(
            select(Folder).where(
                Folder.workspace_id == member.workspace_id, Folder.permissions.is_not(None)
            )
        ).scalars()
        cached = [f.id for f in folders if member.role not in folder_roles(f, "view")]
        session.info[key] = cached
    return list(cached)


def forget_hidden_folders(session: Session) -> None:
    """Drop the session's remembered hidden folders (folder permissions changed)."""
    for key in [k for k in session.info if isinstance(k, tuple) and k[:1] == (HIDDEN_FOLDERS,)]:
        del session.info[key]


def record_scope(session: Session, member: Member) -> ColumnElement[bool] | None:
    """What narrows a list of the workspace's records to those the member may see.

    None when nothing does. Lists add it to their own workspace condition.
    """
    clauses: list[ColumnElement[bool]] = []
    hidden = _hidden_folder_ids(session, member)
    if hidden:
        clauses.append(Record.folder_id.not_in(hidden))
    if restricted(member):
        clauses.append(_mine(member))
    if not clauses:
        return None
    return and_(*clauses) if len(clauses) > 1 else clauses[0]


def can(
    member: Member,
    action: str,
    folder: Folder | None = None,
    *,
    session: Session | None = None,
    record: Record | None = None,
) -> bool:
    """Whether the member may do the action (in the folder, on the record)."""
    try:
        require(member, action, folder, session=session, record=record)
    except PermissionDenied:
        return False
    return True


def require(
    member: Member,
    action: str,
    folder: Folder | None = None,
    *,
    session: Session | None = None,
    record: Record | None = None,
) -> None:
    """The authorization check: raise PermissionDenied unless the member may do it.

    With a record, its folder's rules apply, and (for restricted reps) the record must
    be theirs; that needs the session.
    """
    if action not in PERMISSIONS.get(member.role, frozenset()):
        raise PermissionDenied(action, member.role)
    if record is not None:
        folder = record.folder
    if folder is not None:
        needs = FOLDER_NEEDS.get(action, ())
        # A folder hidden from a role is hidden from every action: nobody edits, deletes
        # or merges records they may not see, whatever else the folder allows them.
        for needed in dict.fromkeys(("view", *needs) if needs else ()):
            if member.role not in folder_roles(folder, needed):
                raise PermissionDenied(needed if needed != "view" else action, member.role, folder)
    if record is not None and restricted(member):
        if session is None:
            raise ValueError("checking a restricted member's record needs the session")
        mine = session.execute(select(Record.id).where(Record.id == record.id, _mine(member)))
        if mine.first() is None:
            raise RecordHidden(member.role)
