"""Arranging CRM records directly in the test transaction, through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from addon.crm.models import FieldDef, Folder, Member, Record
from addon.crm.records import link_thread, save_record
from addon.crm.workspaces import folder_fields


@dataclass
class Crm:
    """Arranges records directly in the test transaction, as one member of a workspace."""

    db: Session
    member: Member
    folders: dict[str, Folder]

    def save(self, folder: str, **fields: str | list[str]) -> Record:
        """Create a record from form-like values (a string or a list of strings per field)."""
        form = {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
        record = save_record(self.db, self.member, self.folders[folder], form)
        self.db.flush()
        return record

    def link(self, record: Record, thread_id: str, subject: str = "") -> None:
        """Link a thread to a record."""
        link_thread(self.db, self.member, record, thread_id, subject)
        self.db.flush()


def add_field(db: Session, folder: Folder, key: str, ftype: str, **options: Any) -> FieldDef:
    """A custom field definition written directly, for tests of the services that read it."""
    fdef = FieldDef(
        workspace_id=folder.workspace_id,
        folder_id=folder.id,
        key=key,
        label=key.replace("_", " ").capitalize(),
        type=ftype,
        options=options,
        position=100 + len(folder_fields(db, folder.id)),
    )
    db.add(fdef)
    db.flush()
    return fdef
