"""Roles and the one authorization check every action goes through."""

from __future__ import annotations

from addon.crm.models import Member

# What each role may do. Per-folder and per-field rules extend this table.
#  merge       combine duplicate records (the merged-away ids become aliases)
#  bulk_edit   mass update every record of a view in one go
#  import      CSV import into a folder
#  export      CSV export of a view or folder
#  share_view  save views every member of the workspace sees
#  send_campaigns  mail merge: templates, campaigns, sending from one's own Gmail account
_REP = frozenset({"view", "create", "edit", "link", "note", "export"})
_MANAGER = _REP | {"delete", "merge", "bulk_edit", "import", "share_view", "send_campaigns"}
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": _MANAGER | {"admin"},
    "manager": _MANAGER,
    "rep": _REP,
    "viewer": frozenset({"view"}),
}


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
}


class PermissionDenied(Exception):
    """The caller's role does not allow the action."""

    def __init__(self, action: str, role: str) -> None:
        phrase = _ACTION_PHRASES.get(action, f"{action} records")
        super().__init__(f"your role ({role}) does not allow you to {phrase}")
        self.action = action
        self.role = role


def can(member: Member, action: str) -> bool:
    """Whether the member's role allows the action."""
    return action in PERMISSIONS.get(member.role, frozenset())


def require(member: Member, action: str) -> None:
    """Raise PermissionDenied unless the member's role allows the action."""
    if not can(member, action):
        raise PermissionDenied(action, member.role)
