"""Deleting a record from its card: a confirmation card, then the delete (permission "delete")."""

from __future__ import annotations

from addon.cards.responses import navigate, push
from addon.cards.widgets import button, card, decorated, esc, paragraph, section
from addon.crm.deletion import delete_record, deletion_counts
from addon.web.events import AddonRequest
from addon.web.helpers import record_for
from addon.web.registry import Result, action


@action("confirm_delete_record", "delete")
def confirm_delete_record(req: AddonRequest) -> Result:
    """Ask before deleting a record, saying what goes with it."""
    record = record_for(req, req.param("record_id"))
    notes, links = deletion_counts(req.session, record)
    return push(
        card(
            f"Delete {record.title or record.folder.singular}?",
            [
                section(
                    [
                        decorated(esc(record.title or f"#{record.id}"), top=record.folder.singular),
                        paragraph(
                            f"Its values, {notes} note(s) and {links} thread link(s) are deleted. "
                            "The audit log keeps a copy of its values."
                        ),
                    ]
                )
            ],
            name="confirm-delete-record",
            footer=button(
                "Delete",
                req.actions.on_click("delete_record", record_id=record.id, confirm="yes"),
                filled=True,
            ),
        )
    )


@action("delete_record", "delete")
def delete(req: AddonRequest) -> Result:
    """Delete the record named on the confirmation card; back to the start."""
    record = record_for(req, req.param("record_id"))
    if req.param("confirm") != "yes":
        return confirm_delete_record(req)
    title = record.title or record.folder.singular
    delete_record(req.session, req.member, record)
    return navigate({"popToRoot": True}, state_changed=True, notify=f"Deleted {title}")
