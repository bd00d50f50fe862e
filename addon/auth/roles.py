"""Roles and the one authorization check every action goes through."""

from __future__ import annotations

from addon.crm.models import Member

# What each role may do to records. Per-folder and per-field rules extend this table.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"view", "create", "edit", "delete", "link", "note", "admin"}),
    "manager": frozenset({"view", "create", "edit", "delete", "link", "note"}),
    "rep": frozenset({"view", "create", "edit", "link", "note"}),
    "viewer": frozenset({"view"}),
}


class PermissionDenied(Exception):
    """The caller's role does not allow the action."""

    def __init__(self, action: str, role: str) -> None:
        super().__init__(f"your role ({role}) does not allow you to {action} records")
        self.action = action
        self.role = role


def can(member: Member, action: str) -> bool:
    """Whether the member's role allows the action."""
    return action in PERMISSIONS.get(member.role, frozenset())


def require(member: Member, action: str) -> None:
    """Raise PermissionDenied unless the member's role allows the action."""
    if not can(member, action):
        raise PermissionDenied(action, member.role)
