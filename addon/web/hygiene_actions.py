"""Duplicates in the sidebar: the warning before creating one, finding and merging them.

`create_record` (addon/web/actions.py) asks `duplicate_warning` after validating and
writing a new record; when it matches existing ones the request is rolled back and the
warning card offers "Open existing" or "Create anyway" (`force=1`, the form carried as
JSON in the `values` parameter). Merging needs the "merge" permission; every id is looked
up in the caller's workspace, so another workspace's record answers like an unknown one.
"""

from __future__ import annotations

import json
from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.roles import can
from addon.cards import hygiene as cards
from addon.cards import records as record_cards
from addon.cards.responses import pop_and_update, push, update
from addon.crm.hygiene import MAX_MERGE, find_duplicates_for, merge_records
from addon.crm.models import Folder, Record, RecordDomain, RecordEmail, RecordPhone
from addon.crm.records import (
    ValidationError,
    load_detail,
    search_records,
)
from addon.crm.workspaces import folder_fields
from addon.web.events import AddonRequest
from addon.web.helpers import (
    context_params,
    folder_for,
    members_of,
    record_card_for,
    record_for,
    scope,
)
from addon.web.registry import Result, action

# Folders whose new records are checked for duplicates before they are saved.
_NOT_CHECKED = frozenset({"deals"})
MAX_FORM_JSON = 50_000


# ------------------------------------------------------------------------------ matching


def _keys(session: Session, record: Record) -> tuple[list[str], list[str], str | None]:
    """The record's canonical emails, E.164 phones and registrable domain, as indexed."""
    emails = list(
        session.execute(select(RecordEmail.email).where(RecordEmail.record_id == record.id))
        .scalars()
        .all()
    )
    phones = list(
        session.execute(select(RecordPhone.phone).where(RecordPhone.record_id == record.id))
        .scalars()
        .all()
    )
    domain = session.execute(
        select(RecordDomain.domain).where(RecordDomain.record_id == record.id).limit(1)
    ).scalar_one_or_none()
    return emails, phones, domain


def duplicates_of(session: Session, record: Record) -> list[cards.Candidate]:
    """Other records of the record's folder sharing its email, phone, domain or company name."""
    # The record's indexed values are what save_record validated and normalised, so
    # the comparison never depends on how the user typed them.
    emails, phones, domain = _keys(session, record)
    matches = find_duplicates_for(
        session,
        record.folder,
        emails=emails,
        phones=phones,
        domain=domain,
        name=record.title if record.folder.key == "companies" else None,
        exclude_id=record.id,
    )
    if not matches:
        return []
    ids = [m.record.id for m in matches]
    email_of: dict[int, str] = {}
    if emails:
        for rid, email in session.execute(
            select(RecordEmail.record_id, RecordEmail.email)
            .where(RecordEmail.record_id.in_(ids), RecordEmail.email.in_(emails))
            .order_by(RecordEmail.id)
        ):
            email_of.setdefault(rid, email)
    phone_of: dict[int, str] = {}
    if phones:
        for rid, phone in session.execute(
            select(RecordPhone.record_id, RecordPhone.phone)
            .where(RecordPhone.record_id.in_(ids), RecordPhone.phone.in_(phones))
            .order_by(RecordPhone.id)
        ):
            phone_of.setdefault(rid, phone)
    found: list[cards.Candidate] = []
    for match in matches:
        rid = match.record.id
        if match.reason == "same email" and rid in email_of:
            why = f"same email {email_of[rid]}"
        elif match.reason == "same phone" and rid in phone_of:
            why = f"same phone {phone_of[rid]}"
        elif match.reason == "same domain" and domain:
            why = f"same domain {domain}"
        elif match.reason == "same name":
            why = f"same name “{match.record.title}”"
        else:
            why = match.reason
        found.append(cards.Candidate(match.record, why))
    return found


def _visible(req: AddonRequest, candidates: list[cards.Candidate]) -> list[cards.Candidate]:
    """The candidates the caller may see (a restricted rep is not shown others' records)."""
    visible = scope(req)
    if visible is None or not candidates:
        return candidates
    ids = [c.record.id for c in candidates]
    shown = set(req.session.execute(select(Record.id).where(Record.id.in_(ids), visible)).scalars())
    return [c for c in candidates if c.record.id in shown]


# ------------------------------------------------------------------------------ on create


def restore_form(req: AddonRequest) -> bool:
    """Put the form carried by "Create anyway" back into the request; False if unreadable."""
    try:
        data = json.loads(req.param("values"))
    except ValueError:
        return False
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
        for k, v in data.items()
    ):
        return False
    req.form = {k: list(v) for k, v in data.items()}
    return True


def _carried(req: AddonRequest, folder: Folder) -> dict[str, str]:
    """Parameters that resubmit the same form with its context."""
    return {
        "folder": folder.key,
        "values": json.dumps(req.form, ensure_ascii=False, separators=(",", ":")),
        **context_params(req),
    }


def duplicate_warning(req: AddonRequest, folder: Folder, record: Record) -> Result | None:
    """The warning answer when the just-written record duplicates others, else None.

    The caller has written the record in the request's transaction; the answer rolls
    that back, so nothing is saved until the user chooses "Create anyway".
    """
    if folder.key in _NOT_CHECKED:
        return None
    candidates = _visible(req, duplicates_of(req.session, record))
    if not candidates:
        return None
    params = _carried(req, folder)
    if len(params["values"]) > MAX_FORM_JSON:
        # Too large to carry on buttons: save rather than lose what was typed.
        return None
    g.db_rollback = True
    return update(cards.duplicate_warning_card(req.actions, folder, candidates, params))


def unreadable_form() -> Result:
    """The answer when "Create anyway" carries a form that cannot be read."""
    g.db_rollback = True
    return update(
        record_cards.error_card(
            "Could not create the record", "The form could not be read back. Fill it in again."
        )
    )


@action("duplicate_edit", "create")
def duplicate_edit(req: AddonRequest) -> Result:
    """From the duplicate warning back to the create form, with what was typed."""
    folder = folder_for(req, req.param("folder"))
    if not restore_form(req):
        return unreadable_form()
    return update(
        record_cards.record_form(
            req.actions,
            folder,
            folder_fields(req.session, folder.id),
            members_of(req),
            hidden=context_params(req),
            typed=req.form,
            locale=req.locale,
            tz=req.timezone,
            edit_locked=can(req.member, "admin"),
        )
    )


# ------------------------------------------------------------------------------ merging


def _ids(values: list[str]) -> list[int]:
    """Record ids from parameters or ticked boxes; anything else is dropped."""
    found: list[int] = []
    for value in values:
        for part in value.split(","):
            text = part.strip().lstrip("#")
            if text.isdigit() and len(text) < 11 and int(text) not in found:
                found.append(int(text))
    return found


def _merge_set(req: AddonRequest, start: Record, ids: list[int]) -> list[Record]:
    """The start record and the others, each looked up in the caller's workspace."""
    records = [start]
    for rid in ids:
        # A merged-away id resolves to its survivor, which may already be in the set.
        other = record_for(req, str(rid))
        if all(other.id != r.id for r in records):
            records.append(other)
    if any(r.folder_id != start.folder_id for r in records):
        raise ValidationError({"records": "only records of the same folder can be merged"})
    if len(records) > MAX_MERGE:
        raise ValidationError({"records": f"merge at most {MAX_MERGE} records at once"})
    return records


def _refused(title: str, exc: ValidationError) -> Result:
    g.db_rollback = True
    message = next(iter(exc.errors.values()), "not possible")
    return update(record_cards.error_card(title, message[:1].upper() + message[1:] + "."))


def _finder(
    req: AddonRequest,
    record: Record,
    *,
    error: str | None = None,
    ticked: list[Record] | None = None,
) -> dict[str, Any]:
    query = req.text("merge_query").strip()
    results: list[Record] = []
    if query:
        results = [
            r
            for r in search_records(
                req.session, req.member.workspace_id, query, limit=40, scope=scope(req)
            )
            if r.folder_id == record.folder_id and r.id != record.id
        ][:20]
    if ticked is None:
        ticked = [
            r
            for r in (record_for(req, str(rid)) for rid in _ids(req.form.get("merge_ids", [])))
            if r.folder_id == record.folder_id and r.id != record.id
        ]
    return cards.duplicates_card(
        req.actions,
        record,
        _visible(req, duplicates_of(req.session, record)),
        query=query,
        results=results,
        ticked=ticked,
        error=error,
    )


@action("find_duplicates", "merge")
def find_duplicates(req: AddonRequest) -> Result:
    """Records that may duplicate this one, plus a search, to tick and merge (record_id)."""
    record = record_for(req, req.param("record_id"))
    built = _finder(req, record)
    return update(built) if req.param("nav") == "update" else push(built)


def _merge_card(
    req: AddonRequest,
    records: list[Record],
    start: Record,
    *,
    survivor_id: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    details = [load_detail(req.session, r, full=False) for r in records]
    survivor = survivor_id if survivor_id in {r.id for r in records} else start.id
    assert survivor is not None
    return cards.merge_card(
        req.actions,
        details,
        cards.merge_choices(details, survivor, locale=req.locale, tz=req.timezone),
        start_id=start.id,
        survivor_id=survivor,
        error=error,
    )


@action("merge_form", "merge")
def merge_form(req: AddonRequest) -> Result:
    """The merge card for the ticked records (record_id; form merge_ids)."""
    start = record_for(req, req.param("record_id"))
    ids = _ids(req.form.get("merge_ids", []))
    try:
        records = _merge_set(req, start, ids)
    except ValidationError as exc:
        return _refused("Cannot merge", exc)
    if len(records) < 2:
        return update(
            _finder(req, start, error="Tick at least one record to merge with this one.", ticked=[])
        )
    return update(_merge_card(req, records, start))


@action("merge_records", "merge")
def merge(req: AddonRequest) -> Result:
    """Merge the records (record_id, merge_ids) keeping the chosen record and values."""
    start = record_for(req, req.param("record_id"))
    try:
        records = _merge_set(req, start, _ids([req.param("merge_ids")]))
    except ValidationError as exc:
        return _refused("Cannot merge", exc)
    by_id = {r.id: r for r in records}
    chosen = _ids(req.form.get("survivor", []))
    survivor = by_id.get(chosen[0]) if chosen else start
    keys = {f.key for f in folder_fields(req.session, start.folder_id)}
    choices: dict[str, int] = {}
    for name, values in req.form.items():
        key = name.removeprefix("choice_")
        picked = _ids(values)
        if name.startswith("choice_") and key in keys and picked:
            choices[key] = picked[0]
    try:
        if survivor is None:
            raise ValidationError({"survivor": "keep one of the merged records"})
        merged = merge_records(
            req.session, req.member, survivor, [r for r in records if r.id != survivor.id], choices
        )
    except ValidationError as exc:
        g.db_rollback = True
        message = next(iter(exc.errors.values()), "not possible")
        return update(
            _merge_card(
                req,
                records,
                start,
                survivor_id=survivor.id if survivor is not None else None,
                error=message[:1].upper() + message[1:] + ". Nothing was merged.",
            )
        )
    count = len(records)
    return pop_and_update(
        record_card_for(req, merged), notify=f"Merged {count} records into {merged.title}"
    )
