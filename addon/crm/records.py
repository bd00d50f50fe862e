"""Creating, updating, reading and finding records; services flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, contains_eager, lazyload

from addon.crm.audit import changed_values, record_audit
from addon.crm.defaults import CLOSED_DEAL_STAGES
from addon.crm.fields import FieldError, field_type, formula_operand, parse_formula
from addon.crm.models import (
    FieldDef,
    FieldValue,
    Folder,
    Member,
    MergedRecord,
    Note,
    RecentView,
    Record,
    RecordDomain,
    RecordEmail,
    RecordPhone,
    RecordRelation,
    ThreadLink,
    utcnow,
)
from addon.crm.workspaces import folder_fields
from addon.digits import ascii_digits
from addon.gmail.addresses import canonical_email, registrable_domain
from addon.ledger.linking import (
    conversation_for_thread,
    lock_conversations,
    manual_link_added,
    unlink_manually,
)
from addon.ledger.models import RecordStats
from addon.ledger.relink import emails_changed
from addon.ledger.stats import STATS_COLUMNS, stats_field_value, stats_field_values, stats_of_row

FormData = Mapping[str, list[str]]
# The member field Record.owner_member_id mirrors (see Record).
OWNER_KEY = "owner"


class RecordNotFound(LookupError):
    """The record does not exist in the caller's workspace."""


class ValidationError(ValueError):
    """Input that breaks field rules; `errors` maps field keys to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class RecordDetail:
    """Everything a record card shows, loaded in a fixed number of statements."""

    record: Record
    fields: list[FieldDef]
    values: dict[str, Any]
    links: dict[str, list[Record]]
    related: dict[str, list[Record]] = field(default_factory=dict)
    threads: list[ThreadLink] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)


def get_record(session: Session, workspace_id: int, record_id: int | str) -> Record:
    """The record with this id in this workspace, or RecordNotFound."""
    try:
        rid = int(record_id)
    except (TypeError, ValueError):
        raise RecordNotFound(record_id) from None
    # Keys are 32-bit integers on PostgreSQL; larger ids cannot exist and asking
    # the database about them would raise an out-of-range error.
    if not 0 < rid < 2**31:
        raise RecordNotFound(record_id)
    record = session.get(Record, rid)
    if record is None:
        # A merged-away id keeps working: it stands for the record it was merged into.
        merged = session.get(MergedRecord, rid)
        record = session.get(Record, merged.survivor_id) if merged is not None else None
    if record is None or record.workspace_id != workspace_id:
        # Another workspace's record is reported exactly like a missing one.
        raise RecordNotFound(record_id)
    return record


def normalise_domain(text: str) -> str | None:
    """A bare lowercase host from a domain, URL or email-ish text."""
    host = text.strip().lower()
    host = host.split("://", 1)[-1].split("/", 1)[0].split("@")[-1].split(":")[0]
    host = host.removeprefix("www.")
    if not host or "." not in host:
        return None
    email = canonical_email(f"x@{host}")
    return email.split("@", 1)[1] if email else None


def _title_for(folder_key: str, values: Mapping[str, Any]) -> str:
    if folder_key == "contacts":
        name = " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
        return name or (values.get("emails") or [""])[0]
    return str(values.get("name") or "")


def record_title(folder_key: str, values: Mapping[str, Any]) -> str:
    """The display title a record of this folder gets from its values (at most 300 chars)."""
    return _title_for(folder_key, values)[:300]


@dataclass(frozen=True)
class FieldRule:
    """One field as form checking reads it, taken off the ORM object once per checker."""

    fdef: FieldDef
    id: int
    key: str
    type: str
    read_only: bool
    required: bool
    locked: bool
    # The field's options with the workspace context its type reads (see runtime_options).
    options: dict[str, Any]


class FormResolver:
    """How a form's link and user inputs find records and members: one lookup per value.

    save_record uses this one. The importer passes a subclass answering from per-batch
    caches; the rules and messages stay here, so both ways in refuse the same input.
    """

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self._folders: dict[str, Folder] = {}

    def parse(self, rule: FieldRule, raw: list[str]) -> Any:
        """The field type's normalised value of the raw input (FieldError when refused)."""
        return field_type(rule.type).parse(raw, rule.options)

    def target_folder(self, fdef: FieldDef) -> Folder:
        """The folder a link field points at."""
        key = str(fdef.options.get("folder"))
        if key not in self._folders:
            self._folders[key] = self.session.execute(
                select(Folder).where(Folder.workspace_id == self.workspace_id, Folder.key == key)
            ).scalar_one()
        return self._folders[key]

    def record_by_id(self, text: str) -> tuple[int, int] | None:
        """(id, folder id) of the workspace's record with this id (merged ids resolve)."""
        try:
            record = get_record(self.session, self.workspace_id, text)
        except RecordNotFound:
            return None
        return record.id, record.folder_id

    def record_by_title(self, folder_id: int, title: str) -> int | None:
        """The id of a record of the folder with this title (case-insensitive), or None."""
        return self.session.execute(
            select(Record.id)
            .where(
                Record.workspace_id == self.workspace_id,
                Record.folder_id == folder_id,
                Record.search_key == title.lower(),
            )
            .limit(1)
        ).scalar_one_or_none()

    def member_id(self, text: str) -> int | None:
        """The id of the member named by "#id" or email address, or None."""
        return find_member_id(self.session, self.workspace_id, text)


def _resolve_links(
    resolver: FormResolver, rule: FieldRule, raw: list[str], errors: dict[str, str]
) -> list[int | str]:
    """Ids of existing target records ("#12") or titles to find or create later."""
    target = resolver.target_folder(rule.fdef)
    resolved: list[int | str] = []
    for item in raw:
        if item.startswith("#"):
            found = resolver.record_by_id(item[1:])
            if found is None:
                errors[rule.key] = f"record {item} was not found"
                continue
            if found[1] != target.id:
                errors[rule.key] = f"record {item} is not in {target.name}"
                continue
            resolved.append(found[0])
        else:
            existing = resolver.record_by_title(target.id, item)
            resolved.append(existing if existing is not None else item)
    if not rule.options.get("many") and len(resolved) > 1:
        errors[rule.key] = "takes one record only"
    return resolved


def find_member_id(session: Session, workspace_id: int, text: str) -> int | None:
    """The id of a workspace member named by "#id" or email address, or None."""
    query = select(Member.id).where(Member.workspace_id == workspace_id)
    if text.startswith("#") and ascii_digits(text[1:]):
        query = query.where(Member.id == int(text[1:]))
    else:
        query = query.where(Member.email == (canonical_email(text) or text))
    return session.execute(query).scalar_one_or_none()


def _resolve_user(
    resolver: FormResolver, raw: list[str], errors: dict[str, str], key: str
) -> int | None:
    text = raw[0]
    member_id = resolver.member_id(text)
    if member_id is None:
        errors[key] = f"“{text}” is not a member of this workspace"
    return member_id


def runtime_options(fdef: FieldDef, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A field's options plus the workspace context its type reads (phone region, zone)."""
    context = settings or {}
    return {
        **fdef.options,
        "_region": str(context.get("default_region") or "US"),
        "_tz": str(context.get("timezone") or "UTC"),
    }


@dataclass
class PreparedForm:
    """A form checked against a folder's fields: what save_record writes, before writing.

    `parsed` holds the normalised value of every field the form sets (on create: every
    editable field); link values are ids of existing records or titles of records still
    to create. `current` holds the stored values of the record being updated.
    """

    fields: list[FieldDef]
    parsed: dict[str, Any]
    current: dict[str, Any]

    @property
    def merged(self) -> dict[str, Any]:
        """The record's values once saved (before auto-numbers and formulas)."""
        return {**self.current, **self.parsed}


class FormChecker:
    """A folder's field rules, loaded once, checking forms as save_record checks them.

    `check` validates and normalises one form and writes nothing. An importer checks
    thousands of forms with one checker; save_record makes one per call (prepare_form).
    """

    def __init__(
        self,
        session: Session,
        member: Member,
        folder: Folder,
        *,
        fields: list[FieldDef] | None = None,
        resolver: FormResolver | None = None,
    ) -> None:
        if folder.workspace_id != member.workspace_id:
            raise RecordNotFound(folder.id)
        self.session = session
        self.folder_key = folder.key
        self.fields = fields if fields is not None else folder_fields(session, folder.id)
        self.resolver = resolver or FormResolver(session, member.workspace_id)
        # Locked fields are the admins' to change; anyone else's input for one is refused.
        self.may_edit_locked = member.role == "admin"
        settings = member.workspace.settings
        self.rules = [
            FieldRule(
                f,
                f.id,
                f.key,
                f.type,
                field_type(f.type).read_only,
                f.required,
                f.locked,
                runtime_options(f, settings),
            )
            for f in self.fields
        ]

    def check(self, form: FormData, record: Record | None = None) -> PreparedForm:
        """The form's values normalised for the record (None: a new one), or ValidationError."""
        resolver = self.resolver
        errors: dict[str, str] = {}
        parsed: dict[str, Any] = {}
        for rule in self.rules:
            key = rule.key
            if key not in form and (record is not None or rule.read_only):
                continue
            raw = [str(v) for v in form.get(key, [])]
            if rule.locked and not self.may_edit_locked:
                if key in form and any(v.strip() for v in raw):
                    errors[key] = "is locked: only admins can change it"
                continue
            try:
                value = resolver.parse(rule, raw)
            except FieldError as exc:
                errors[key] = str(exc)
                continue
            if value is not None and rule.type == "link":
                value = _resolve_links(resolver, rule, value, errors)
            elif value is not None and rule.type == "user":
                value = _resolve_user(resolver, value, errors, key)
            elif value is not None and key == "domain":
                domain = normalise_domain(str(value))
                if domain is None:
                    errors[key] = f"“{value}” is not a domain"
                    continue
                value = domain
            parsed[key] = value

        current = load_values(self.session, record, self.fields) if record is not None else {}
        merged = {**current, **parsed}
        for rule in self.rules:
            if not rule.required or rule.key in errors or rule.read_only:
                continue
            if rule.type == "link":
                # Links live outside `current`: missing when sent empty, or not sent on create.
                missing = (rule.key in parsed or record is None) and not parsed.get(rule.key)
            else:
                missing = not merged.get(rule.key)
            if missing:
                errors[rule.key] = "is required"
        if self.folder_key == "contacts" and not errors and not _title_for("contacts", merged):
            errors["first_name"] = "enter a name or an email address"
        if errors:
            raise ValidationError(errors)
        return PreparedForm(self.fields, parsed, current)


def prepare_form(
    session: Session,
    member: Member,
    folder: Folder,
    form: FormData,
    record: Record | None = None,
    *,
    fields: list[FieldDef] | None = None,
    resolver: FormResolver | None = None,
) -> PreparedForm:
    """Validate and normalise a form against the folder's fields; ValidationError lists all.

    Writes nothing. `fields` (the folder's active fields) and `resolver` let a caller
    answer lookups from caches; FormChecker checks many forms with one set of rules.
    """
    checker = FormChecker(session, member, folder, fields=fields, resolver=resolver)
    return checker.check(form, record)


def save_record(
    session: Session,
    member: Member,
    folder: Folder,
    form: FormData,
    record: Record | None = None,
    *,
    company_domain: str | None = None,
    source: str = "sidebar",
    fields: list[FieldDef] | None = None,
    resolver: FormResolver | None = None,
) -> Record:
    """Validate the form against the folder's fields and create or update the record.

    Only fields present in `form` are changed on update. Nothing is written when any
    field is invalid: ValidationError lists every problem at once. Every way in (sidebar,
    import, web form, mass update) comes through here or through prepare_form, so the
    field rules hold for all. `fields` (the folder's active fields) spares callers that
    save many records a query per record.
    """
    prepared = prepare_form(session, member, folder, form, record, fields=fields, resolver=resolver)
    fields, parsed, current = prepared.fields, prepared.parsed, prepared.current
    merged = prepared.merged
    workspace_id = member.workspace_id

    created = record is None
    if record is None:
        record = Record(
            workspace_id=workspace_id,
            folder_id=folder.id,
            created_by_id=member.id,
            owner_member_id=member.id,
        )
        session.add(record)
        session.flush()
        for fdef in fields:
            if fdef.type == "autonumber":
                parsed[fdef.key] = merged[fdef.key] = take_numbers(session, fdef, 1)[0]
    by_key = {f.key: f for f in fields}
    for fdef in fields:
        if fdef.type == "formula":
            parsed[fdef.key] = merged[fdef.key] = compute_formula(fdef, fields, merged)
    for key, value in parsed.items():
        fdef = by_key[key]
        if fdef.type == "link":
            _write_links(session, member, record, fdef, value or [], company_domain, source)
            continue
        if created or current.get(key) != value:
            write_value(session, record, fdef, value)
    record.updated_at = utcnow()
    _index_record(session, record, folder.key, fields, merged, changed=set(parsed))
    session.flush()
    index = IndexPlan(fields)
    if index.touched(set(parsed))[0]:
        before_emails, after_emails = index.keys(current).emails, index.keys(merged).emails
        if before_emails != after_emails:
            # The email ledger: past mail of new addresses is linked, stats follow.
            emails_changed(session, record, before_emails, after_emails)
    before, after = changed_values(
        {k: current.get(k) for k in parsed}, {k: merged.get(k) for k in parsed}
    )
    if created or after:
        record_audit(
            session,
            member,
            "create" if created else "update",
            workspace_id=workspace_id,
            record=record,
            summary=f"{'Created' if created else 'Updated'} {record.title} ({source})",
            before=None if created else before,
            after=after,
        )
    return record


def take_numbers(session: Session, fdef: FieldDef, count: int) -> list[int]:
    """The next `count` numbers of an auto-number field's sequence, taken in one statement."""
    # UPDATE ... RETURNING takes the field's row lock, so concurrent creators get
    # distinct numbers; a rolled-back record gives its number back with the transaction.
    taken = session.execute(
        update(FieldDef)
        .where(FieldDef.id == fdef.id)
        .values(next_number=FieldDef.next_number + count)
        .returning(FieldDef.next_number)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return list(range(int(taken) - count, int(taken)))


def compute_formula(fdef: FieldDef, fields: list[FieldDef], values: Mapping[str, Any]) -> Any:
    """A formula field's stored result from a record's values (None when it cannot compute)."""
    # Operands as the formula sees them: a percent field's 12.5 is the fraction 0.125.
    types = {f.key: f.type for f in fields}
    operands = {k: formula_operand(types.get(k, ""), v) for k, v in values.items()}
    try:
        result = parse_formula(fdef.options.get("expression", "")).evaluate(operands)
    except FieldError:
        return None
    # Plain decimal text without trailing zeros: 250, not 250.0000 or 2.5E+2.
    return format(result.normalize(), "f") if isinstance(result, Decimal) else result


def value_keys(fdef: FieldDef, value: Any) -> tuple[str | None, float | None]:
    """The (text_key, num_key) a stored value is filtered and sorted on by saved views."""
    return keys_for(fdef.type, fdef.options, value)


def keys_for(
    type_name: str, options: Mapping[str, Any], value: Any
) -> tuple[str | None, float | None]:
    """value_keys from a field's type name and options (for loops over many values)."""
    if type_name == "user":
        # A member id: views compare it as a number.
        return (str(value), float(value)) if isinstance(value, int) else (None, None)
    text, number = field_type(type_name).index_keys(value, options)
    return (text[:255] if text else text), number


def is_blank(value: Any) -> bool:
    """Whether a value is stored as no row at all (None, "" or an empty list)."""
    return value is None or value == [] or value == ""


def write_value(session: Session, record: Record, fdef: FieldDef, value: Any) -> None:
    """Store (or clear) one field value with its view keys; flushes nothing."""
    if fdef.key == OWNER_KEY and fdef.type == "user":
        # No owner named: the record is its creator's.
        record.owner_member_id = value if isinstance(value, int) else record.created_by_id
    existing = session.execute(
        select(FieldValue).where(FieldValue.record_id == record.id, FieldValue.field_id == fdef.id)
    ).scalar_one_or_none()
    if is_blank(value):
        if existing is not None:
            session.delete(existing)
        return
    text_key, num_key = value_keys(fdef, value)
    if existing is None:
        session.add(
            FieldValue(
                workspace_id=record.workspace_id,
                record_id=record.id,
                field_id=fdef.id,
                value=value,
                text_key=text_key,
                num_key=num_key,
            )
        )
    else:
        existing.value = value
        existing.text_key = text_key
        existing.num_key = num_key


@dataclass(frozen=True)
class LookupKeys:
    """What a record is found and matched by: canonical emails, E.164 phones, domains."""

    emails: list[str]
    phones: list[str]
    domains: list[str]


class IndexPlan:
    """Which of a folder's fields feed the email, phone and domain indexes."""

    def __init__(self, fields: list[FieldDef]) -> None:
        self.email_keys = [f.key for f in fields if f.type == "email"]
        self.phone_keys = [f.key for f in fields if f.type == "phone"]

    def keys(self, values: Mapping[str, Any]) -> LookupKeys:
        """The unique emails, phones and registrable domains of a record's values."""
        emails = [e for k in self.email_keys for e in values.get(k) or []]
        phones = [p for k in self.phone_keys for p in values.get(k) or []]
        domains = [d for d in [registrable_domain(str(values.get("domain") or ""))] if d]
        return LookupKeys(
            list(dict.fromkeys(emails)),
            list(dict.fromkeys(phones)),
            list(dict.fromkeys(domains)),
        )

    def touched(self, changed: set[str] | None) -> tuple[bool, bool, bool]:
        """Whether saving `changed` keys (None: all) rewrites the email, phone, domain index."""
        if changed is None:
            return True, True, True
        return (
            any(k in changed for k in self.email_keys),
            any(k in changed for k in self.phone_keys),
            "domain" in changed,
        )


def _index_record(
    session: Session,
    record: Record,
    folder_key: str,
    fields: list[FieldDef],
    values: Mapping[str, Any],
    *,
    changed: set[str] | None = None,
) -> None:
    """Title, search key and the email/phone/domain indexes from the record's values."""
    record.title = record_title(folder_key, values)
    record.search_key = record.title.lower()
    plan = IndexPlan(fields)
    keys = plan.keys(values)
    emails, phones, domains = plan.touched(changed)
    if emails:
        _sync_index(session, RecordEmail, record, "email", keys.emails)
    if phones:
        _sync_index(session, RecordPhone, record, "phone", keys.phones)
    if domains:
        _sync_index(session, RecordDomain, record, "domain", keys.domains)


def reindex_record(session: Session, record: Record) -> None:
    """Recompute a record's title, indexes and view keys from its stored values."""
    fields = folder_fields(session, record.folder_id)
    values = load_values(session, record, fields)
    by_id = {f.id: f for f in fields}
    for row in session.execute(
        select(FieldValue).where(FieldValue.record_id == record.id)
    ).scalars():
        fdef = by_id.get(row.field_id)
        if fdef is not None:
            row.text_key, row.num_key = value_keys(fdef, row.value)
    _index_record(session, record, record.folder.key, fields, values)
    session.flush()


def _write_links(
    session: Session,
    member: Member,
    record: Record,
    fdef: FieldDef,
    targets: list[int | str],
    company_domain: str | None,
    source: str,
) -> None:
    ids: list[int] = []
    for target in targets:
        if isinstance(target, int):
            ids.append(target)
            continue
        # A name that matches nothing creates the linked record, as a rep typing a
        # new company name for a new contact expects.
        folder = session.execute(
            select(Folder).where(
                Folder.workspace_id == record.workspace_id,
                Folder.key == str(fdef.options.get("folder")),
            )
        ).scalar_one()
        form: dict[str, list[str]] = {"name": [target]}
        if folder.key == "companies" and company_domain:
            form["domain"] = [company_domain]
        ids.append(save_record(session, member, folder, form, source=source).id)
    session.execute(
        delete(RecordRelation).where(
            RecordRelation.from_record_id == record.id, RecordRelation.field_id == fdef.id
        )
    )
    for target_id in dict.fromkeys(ids):
        session.add(
            RecordRelation(
                workspace_id=record.workspace_id,
                field_id=fdef.id,
                from_record_id=record.id,
                to_record_id=target_id,
            )
        )


def _sync_index(
    session: Session,
    model: type[RecordEmail] | type[RecordDomain] | type[RecordPhone],
    record: Record,
    column: str,
    values: Iterable[str],
) -> None:
    session.execute(delete(model).where(model.record_id == record.id))
    for value in dict.fromkeys(values):
        session.add(model(workspace_id=record.workspace_id, record_id=record.id, **{column: value}))


def load_values(session: Session, record: Record | None, fields: list[FieldDef]) -> dict[str, Any]:
    """Values of a record keyed by field key (link fields excluded; stats fields read
    from the record's email stats)."""
    if record is None:
        return {}
    by_id = {f.id: f.key for f in fields}
    rows = session.execute(
        select(FieldValue.field_id, FieldValue.value).where(FieldValue.record_id == record.id)
    )
    values = {by_id[fid]: value for fid, value in rows if fid in by_id}
    stats = stats_field_values(session, fields, [record.id]).get(record.id, {})
    values.update((by_id[fid], value) for fid, value in stats.items())
    return values


def every_value(session: Session, record: Record) -> dict[str, Any]:
    """Every value of a record by field key, inactive fields and stats fields included
    (the values of a field no longer defined are keyed by its id)."""
    fields = list(
        session.execute(select(FieldDef).where(FieldDef.folder_id == record.folder_id)).scalars()
    )
    keys = {f.id: f.key for f in fields}
    stored = session.execute(
        select(FieldValue.field_id, FieldValue.value).where(FieldValue.record_id == record.id)
    ).all()
    stats = stats_field_values(session, fields, [record.id]).get(record.id, {})
    return {keys.get(fid, str(fid)): value for fid, value in [*stored, *stats.items()]}


# Statements of the hot read paths (contextual trigger, record card) are built once:
# constructing a select() and its cache key costs more than running it on an index.
# The fields the contextual card summarises a contact with; only these are loaded there,
# so a folder with many custom fields costs the sidebar nothing more.
SUMMARY_FIELDS = ("job_title", "company", "phones", "emails", "lifecycle_stage", "owner")
# The email stats shown there too, when the folder has them (keys of ensure_stats_fields).
SUMMARY_STATS_FIELDS = ("email_last_contacted", "email_days_since_last_reply", "email_threads")


def _detail_statement(summary: bool = False) -> Select[Any]:
    # One row per field (per link target for link fields), with the stored value, the
    # linked record, for user fields the member and for stats fields the record's email
    # stats: a record's summary in one statement.
    target, relation = aliased(Record), aliased(RecordRelation)
    keys = FieldDef.key.in_(SUMMARY_FIELDS + SUMMARY_STATS_FIELDS) if summary else true()
    return (
        select(FieldDef, FieldValue.value, target, Member, *STATS_COLUMNS)
        .outerjoin(
            FieldValue,
            and_(
                FieldValue.field_id == FieldDef.id, FieldValue.record_id == bindparam("record_id")
            ),
        )
        .outerjoin(
            relation,
            and_(
                FieldDef.type == "link",
                relation.field_id == FieldDef.id,
                relation.from_record_id == bindparam("record_id"),
            ),
        )
        .outerjoin(target, target.id == relation.to_record_id)
        .outerjoin(
            RecordStats,
            and_(FieldDef.type == "stats", RecordStats.record_id == bindparam("record_id")),
        )
        .outerjoin(
            Member,
            and_(
                FieldDef.type == "user",
                Member.workspace_id == FieldDef.workspace_id,
                # A user value is a member id stored as a JSON number: '7' as text on
                # both databases, so the comparison never casts arbitrary JSON to int.
                cast(Member.id, Text) == cast(FieldValue.value, Text),
            ),
        )
        .where(FieldDef.folder_id == bindparam("folder_id"), FieldDef.active.is_(True), keys)
        .order_by(FieldDef.position, target.title)
        # A user field's member belongs to the caller's workspace, already in the session.
        .options(lazyload(Member.workspace))
    )


_DETAIL = _detail_statement()
_SUMMARY = _detail_statement(summary=True)


def load_detail(session: Session, record: Record, *, full: bool = True) -> RecordDetail:
    """All a record card needs: values, links both ways, threads, notes, members.

    With full=False only values, outgoing links and members are loaded (one
    statement).
    """
    return _load_detail(session, record, _DETAIL, full=full)


def load_summary(session: Session, record: Record) -> RecordDetail:
    """The SUMMARY_FIELDS of a record with their links and members: the contextual card's."""
    return _load_detail(session, record, _SUMMARY, full=False)


def _load_detail(
    session: Session,
    record: Record,
    statement: Select[Any],
    *,
    full: bool,
) -> RecordDetail:
    fields: list[FieldDef] = []
    values: dict[str, Any] = {}
    links: dict[str, list[Record]] = {}
    members: dict[int, Member] = {}
    params = {"record_id": record.id, "folder_id": record.folder_id}
    for fdef, value, target, user, *stats in session.execute(statement, params):
        if not fields or fields[-1].id != fdef.id:
            fields.append(fdef)
        if fdef.type == "stats":
            value = stats_field_value(fdef, stats_of_row(stats))
        if fdef.type == "link":
            targets = links.setdefault(fdef.key, [])
            if target is not None:
                targets.append(target)
        elif value is not None:
            values[fdef.key] = value
        if user is not None:
            members[user.id] = user
    related: dict[str, list[Record]] = {}
    threads: list[ThreadLink] = []
    notes: list[Note] = []
    if not full:
        return RecordDetail(record, fields, values, links, related, threads, notes, members)
    owner_id = record.owner_member_id
    if owner_id is not None and owner_id not in members:
        # Shown on the card when no owner field names the owner (e.g. a custom folder).
        owner = session.get(Member, owner_id)
        if owner is not None and owner.workspace_id == record.workspace_id:
            members[owner_id] = owner
    incoming = session.execute(
        select(Record)
        .join(RecordRelation, Record.id == RecordRelation.from_record_id)
        .where(RecordRelation.to_record_id == record.id)
        .order_by(Record.created_at.desc())
        .limit(50)
    ).scalars()
    for source in incoming:
        related.setdefault(source.folder.key, []).append(source)
    threads = list(
        session.execute(
            select(ThreadLink)
            .where(ThreadLink.record_id == record.id)
            .order_by(ThreadLink.linked_at.desc())
            .limit(20)
        ).scalars()
    )
    notes = list(
        session.execute(
            select(Note)
            .where(Note.record_id == record.id)
            .order_by(Note.created_at.desc())
            .limit(20)
        ).scalars()
    )
    return RecordDetail(record, fields, values, links, related, threads, notes, members)


def _contacts_statement() -> Select[str, Record, bool]:
    # Whether each contact is already linked to the open thread comes along as a
    # correlated EXISTS on the thread-link index, saving a statement per message. A link
    # made from a teammate's copy of the thread is known by its ledger conversation.
    linked = (
        select(ThreadLink.id)
        .where(
            ThreadLink.workspace_id == bindparam("workspace_id"),
            or_(
                ThreadLink.thread_id == bindparam("thread_id"),
                ThreadLink.conversation_id == bindparam("conversation_id"),
            ),
            ThreadLink.record_id == Record.id,
        )
        .exists()
    )
    return (
        select(RecordEmail.email, Record, linked)
        .join(Record, Record.id == RecordEmail.record_id)
        .where(
            RecordEmail.workspace_id == bindparam("workspace_id"),
            RecordEmail.email.in_(bindparam("emails", expanding=True)),
        )
        .order_by(Record.id)
    )


_CONTACTS_BY_EMAIL = _contacts_statement()


def find_contacts_by_email(
    session: Session, workspace_id: int, emails: Iterable[str]
) -> dict[str, Record]:
    """Contacts whose emails include any of these addresses, by address (one statement)."""
    return find_contacts_on_thread(session, workspace_id, emails, "")[0]


def find_contacts_on_thread(
    session: Session,
    workspace_id: int,
    emails: Iterable[str],
    thread_id: str,
    conversation_id: int | None = None,
    *,
    scope: ColumnElement[bool] | None = None,
) -> tuple[dict[str, Record], set[int]]:
    """Contacts by address (that `scope` lets the caller see), and which of them the thread
    (or its ledger conversation) is linked to. One statement."""
    wanted = list(dict.fromkeys(e for e in emails if e))
    if not wanted:
        return {}, set()
    params = {
        "workspace_id": workspace_id,
        "emails": wanted,
        "thread_id": thread_id,
        "conversation_id": conversation_id,
    }
    found: dict[str, Record] = {}
    linked: set[int] = set()
    statement = _CONTACTS_BY_EMAIL if scope is None else _CONTACTS_BY_EMAIL.where(scope)
    for email, record, is_linked in session.execute(statement, params):
        found.setdefault(email, record)
        if is_linked:
            linked.add(record.id)
    return found, linked


def find_company_by_domain(session: Session, workspace_id: int, domain: str) -> Record | None:
    """The oldest company record with this registrable domain."""
    return session.execute(
        select(Record)
        .join(RecordDomain, Record.id == RecordDomain.record_id)
        .where(RecordDomain.workspace_id == workspace_id, RecordDomain.domain == domain)
        .order_by(Record.id)
        .limit(1)
    ).scalar_one_or_none()


def _open_deals_statement() -> Select[Record, Any, Any, bool]:
    stage_def, amount_def = aliased(FieldDef), aliased(FieldDef)
    stage, amount = aliased(FieldValue), aliased(FieldValue)
    linked = select(RecordRelation.from_record_id).where(
        RecordRelation.to_record_id.in_(bindparam("ids", expanding=True))
    )
    # Whether the deal is linked to the open thread (or its ledger conversation).
    on_thread = (
        select(ThreadLink.id)
        .where(
            ThreadLink.record_id == Record.id,
            or_(
                ThreadLink.thread_id == bindparam("thread_id"),
                ThreadLink.conversation_id == bindparam("conversation_id"),
            ),
        )
        .exists()
    )
    return (
        select(Record, stage.value, amount.value, on_thread)
        .join(Folder, Folder.id == Record.folder_id)
        .outerjoin(stage_def, and_(stage_def.folder_id == Folder.id, stage_def.key == "stage"))
        .outerjoin(stage, and_(stage.record_id == Record.id, stage.field_id == stage_def.id))
        .outerjoin(amount_def, and_(amount_def.folder_id == Folder.id, amount_def.key == "amount"))
        .outerjoin(amount, and_(amount.record_id == Record.id, amount.field_id == amount_def.id))
        .where(
            Record.id.in_(linked),
            Folder.key == "deals",
            # Closed deals are excluded before the limit, so a long history of won and
            # lost deals never hides an open one. JSON text is '"won"' on both databases.
            or_(
                stage.value.is_(None),
                cast(stage.value, Text).not_in([f'"{s}"' for s in sorted(CLOSED_DEAL_STAGES)]),
            ),
        )
        .order_by(Record.id.desc())
        .limit(20)
        # The deals folder is joined for the filter already; no second join to load it.
        .options(contains_eager(Record.folder))
    )


_OPEN_DEALS = _open_deals_statement()


def open_deals_for(
    session: Session,
    record_ids: Iterable[int],
    *,
    scope: ColumnElement[bool] | None = None,
) -> list[tuple[Record, Any, Any]]:
    """Open deals linked to these contacts or companies, with stage and amount (one
    statement); `scope` keeps those the caller may see."""
    return open_deals_on_thread(session, record_ids, "", scope=scope)[0]


def open_deals_on_thread(
    session: Session,
    record_ids: Iterable[int],
    thread_id: str,
    conversation_id: int | None = None,
    *,
    scope: ColumnElement[bool] | None = None,
) -> tuple[list[tuple[Record, Any, Any]], set[int]]:
    """Open deals of these records (with stage and amount) that `scope` lets the caller
    see, and which are linked to the thread. One statement."""
    ids = list(record_ids)
    if not ids:
        return [], set()
    params = {"ids": ids, "thread_id": thread_id, "conversation_id": conversation_id}
    statement = _OPEN_DEALS if scope is None else _OPEN_DEALS.where(scope)
    deals: list[tuple[Record, Any, Any]] = []
    linked: set[int] = set()
    for deal, stage, amount, on_thread in session.execute(statement, params):
        deals.append((deal, stage, amount))
        if on_thread:
            linked.add(deal.id)
    return deals, linked


def search_records(
    session: Session,
    workspace_id: int,
    query: str,
    limit: int = 20,
    *,
    scope: ColumnElement[bool] | None = None,
) -> list[Record]:
    """Records whose name starts with the query, or with this email or domain.

    `scope` (addon.auth.roles.record_scope) keeps only the records the caller may see.
    """
    text = " ".join(query.split()).lower()
    if not text:
        return []
    visible = true() if scope is None else scope
    found: dict[int, Record] = {}
    email = canonical_email(text) if "@" in text else None
    if email:
        contacts, _linked = find_contacts_on_thread(session, workspace_id, [email], "", scope=scope)
        found.update((r.id, r) for r in contacts.values())
    domain = normalise_domain(text) if "." in text and " " not in text else None
    if domain:
        registrable = registrable_domain(domain) or domain
        by_domain = session.execute(
            select(Record)
            .join(RecordDomain, Record.id == RecordDomain.record_id)
            .where(
                RecordDomain.workspace_id == workspace_id,
                RecordDomain.domain == registrable,
                visible,
            )
            .limit(limit)
        ).scalars()
        found.update((r.id, r) for r in by_domain)
        by_email_domain = session.execute(
            select(Record)
            .join(RecordEmail, Record.id == RecordEmail.record_id)
            .where(
                RecordEmail.workspace_id == workspace_id,
                RecordEmail.email.like(f"%@{domain}"),
                visible,
            )
            .limit(limit)
        ).scalars()
        found.update((r.id, r) for r in by_email_domain)
    # A range on the lowercased title uses the (workspace, search_key) index on both databases.
    by_name = session.execute(
        select(Record)
        .where(
            Record.workspace_id == workspace_id,
            Record.search_key >= text,
            Record.search_key < text + "\uffff",
            visible,
        )
        .order_by(Record.search_key)
        .limit(limit)
    ).scalars()
    found.update((r.id, r) for r in by_name)
    # Searching by a company's name or domain also finds the people who work there.
    company_ids = [r.id for r in found.values() if r.folder.key == "companies"]
    if company_ids and len(found) < limit:
        people = session.execute(
            select(Record)
            .join(RecordRelation, Record.id == RecordRelation.from_record_id)
            .join(Folder, Folder.id == Record.folder_id)
            .where(RecordRelation.to_record_id.in_(company_ids), Folder.key == "contacts", visible)
            .order_by(Record.search_key)
            .limit(limit)
        ).scalars()
        for person in people:
            found.setdefault(person.id, person)
    return list(found.values())[:limit]


def recent_records(
    session: Session,
    member: Member,
    limit: int = 5,
    *,
    scope: ColumnElement[bool] | None = None,
) -> list[Record]:
    """Records this member opened most recently (that `scope` still lets them see)."""
    return list(
        session.execute(
            select(Record)
            .join(RecentView, RecentView.record_id == Record.id)
            .where(RecentView.member_id == member.id, true() if scope is None else scope)
            .order_by(RecentView.viewed_at.desc())
            .limit(limit)
        ).scalars()
    )


def recently_created(
    session: Session,
    workspace_id: int,
    limit: int = 5,
    *,
    scope: ColumnElement[bool] | None = None,
) -> list[Record]:
    """The workspace's newest records (of those `scope` lets the caller see)."""
    return list(
        session.execute(
            select(Record)
            .where(Record.workspace_id == workspace_id, true() if scope is None else scope)
            .order_by(Record.created_at.desc(), Record.id.desc())
            .limit(limit)
        ).scalars()
    )


def mark_viewed(session: Session, member: Member, record: Record) -> None:
    """Remember that the member opened the record."""
    view = session.execute(
        select(RecentView).where(
            RecentView.member_id == member.id, RecentView.record_id == record.id
        )
    ).scalar_one_or_none()
    if view is not None:
        view.viewed_at = utcnow()
        session.flush()
        return
    try:
        # The same member opening the record twice at once (two sidebars) races here.
        with session.begin_nested():
            session.add(
                RecentView(
                    workspace_id=member.workspace_id, member_id=member.id, record_id=record.id
                )
            )
    except IntegrityError:
        session.execute(
            update(RecentView)
            .where(RecentView.member_id == member.id, RecentView.record_id == record.id)
            .values(viewed_at=utcnow())
        )


def link_thread(
    session: Session, member: Member, record: Record, thread_id: str, subject: str
) -> bool:
    """Link a Gmail thread to a record; False when it was already linked."""
    if not thread_id or len(thread_id) > 64:
        raise ValidationError({"thread": "no email thread is open"})
    # A teammate may have linked the same conversation from their copy of the thread.
    conversation_id = conversation_for_thread(session, record.workspace_id, thread_id, member)
    # Before the link is written: a concurrent ingest of the conversation then either
    # sees this link or is seen by the stats refresh (addon.ledger.linking).
    lock_conversations(session, [conversation_id])
    same_thread = ThreadLink.thread_id == thread_id
    if conversation_id is not None:
        same_thread = or_(same_thread, ThreadLink.conversation_id == conversation_id)
    exists = session.execute(
        select(func.count())
        .select_from(ThreadLink)
        .where(
            ThreadLink.workspace_id == record.workspace_id,
            same_thread,
            ThreadLink.record_id == record.id,
        )
    ).scalar_one()
    if exists:
        return False
    session.add(
        ThreadLink(
            workspace_id=record.workspace_id,
            record_id=record.id,
            thread_id=thread_id,
            conversation_id=conversation_id,
            subject=subject[:500],
            reason="manual",
            linked_by_id=member.id,
        )
    )
    session.flush()
    manual_link_added(session, record, thread_id, conversation_id)
    record_audit(
        session,
        member,
        "link_thread",
        workspace_id=record.workspace_id,
        record=record,
        summary=f"Linked the thread “{subject[:200]}” to {record.title}",
        after={"thread_id": thread_id, "subject": subject[:500]},
    )
    return True


def unlink_thread(
    session: Session, record: Record, thread_id: str, member: Member | None = None
) -> bool:
    """Remove a thread link; False when there was none. Automatic linking never redoes it."""
    removed = unlink_manually(session, record, thread_id, member)
    if removed:
        record_audit(
            session,
            member,
            "unlink_thread",
            workspace_id=record.workspace_id,
            record=record,
            summary=f"Unlinked a thread from {record.title}",
            before={"thread_id": thread_id},
        )
    return removed


def add_note(session: Session, member: Member, record: Record, body: str) -> Note:
    """Add a note to a record; empty or oversized notes are refused."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": "write something first"})
    if len(text) > 10000:
        raise ValidationError({"body": "is longer than 10000 characters"})
    note = Note(
        workspace_id=record.workspace_id, record_id=record.id, author_id=member.id, body=text
    )
    session.add(note)
    session.flush()
    record_audit(
        session,
        member,
        "note",
        workspace_id=record.workspace_id,
        record=record,
        summary=f"Added a note to {record.title}",
        after={"note_id": note.id, "body": text[:2000]},
    )
    return note
