"""CSV import: columns mapped to fields, every row checked as the sidebar checks it, batch writes.

An import is one pass over the file in batches of `BATCH_SIZE` rows:

1. every row becomes a form (column -> field key; a full-name column split into first and
   last name) and goes through `records.FormChecker`, the validation save_record runs, so
   field rules, required fields and their messages are those of every other way in;
2. link titles (a contact's company) and duplicates are looked up for the whole batch at once:
   one query per kind of key (emails, phones, domains, company names, link titles);
3. valid rows that duplicate nothing are written with Core executemany inserts: exactly the
   rows save_record writes (records, field values with their view keys, the email / phone /
   domain indexes, links, one audit entry per record). Rows matching an existing record, or
   an earlier row of the file, are skipped, updated through save_record, or created anyway.

Each batch runs in a savepoint. When the database refuses a batch, the batch is replayed row
by row, so only the rows it refuses are rejected and no row is ever half-written. Services
flush only: the caller commits (or rolls back, for a dry run).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Table, and_, func, insert, or_, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from addon.collector import fewer_collections

# _jsonable is the audit log's own value cleaning; batch-written entries must match it.
from addon.crm.audit import _jsonable, record_audit
from addon.crm.csvio import (
    FULL_NAME_KEY,
    MAX_IMPORT_BYTES,
    CsvRow,
    FieldChoice,
    RowProblem,
    decode_csv_bytes,
    guess_mapping,
    read_rows,
)
from addon.crm.fields import FieldError, field_type
from addon.crm.fieldtypes_base import collapse, items_of
from addon.crm.hygiene import normalised_company_name
from addon.crm.models import (
    AuditEntry,
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordDomain,
    RecordEmail,
    RecordPhone,
    RecordRelation,
    utcnow,
)
from addon.crm.records import (
    OWNER_KEY,
    FieldRule,
    FormChecker,
    FormResolver,
    IndexPlan,
    LookupKeys,
    PreparedForm,
    ValidationError,
    compute_formula,
    is_blank,
    keys_for,
    load_values,
    record_title,
    save_record,
    take_numbers,
)
from addon.crm.workspaces import folder_fields
from addon.digits import ascii_digits
from addon.gmail.addresses import canonical_email
from addon.ledger.relink import link_addresses
from addon.ledger.sql import insert_many, is_postgresql

OnDuplicate = Literal["skip", "update", "create"]
ON_DUPLICATE: tuple[OnDuplicate, ...] = ("skip", "update", "create")

# Rows per batch: large enough that statements are few, small enough that a batch the
# database refuses is cheap to replay row by row.
BATCH_SIZE = 2000
# Values per IN (...) list: a whole batch's keys in one query, well under the
# bind-parameter limits (SQLite 32,766; PostgreSQL 65,535).
_IN_CHUNK = 10_000
# Distinct raw inputs remembered per import (dropdown choices, job titles repeat a lot).
_PARSE_CACHE_SIZE = 50_000
# Files of at least this many rows are parsed ahead in worker processes (when the machine
# has an idle core); starting the workers costs about a second.
PARSE_AHEAD_MIN_ROWS = 20_000
_MAX_WORKERS = 3
# PostgreSQL: the tables of the duplicate lookups are analyzed once this many records were
# saved, then each time that number doubled (see _Importer._refresh_statistics).
ANALYZE_FIRST_AT = 10_000
ANALYZED_TABLES = ("records", "record_emails", "record_phones", "record_domains")
# Chunks of rows queued to the workers ahead of the batch writer.
_AHEAD = 3
FULL_NAME_LABEL = "Full name (first + last name)"
# Why a row duplicates a record, by kind of key; keys are checked in this order, the
# order of find_duplicates_for.
_REASONS = {
    "email": "same email",
    "phone": "same phone",
    "domain": "same domain",
    "name": "same name",
}

# What csvio.escape_cell puts a quote before (after any leading whitespace).
_FORMULA_STARTS = ("=", "+", "-", "@")

_T = TypeVar("_T")


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


_RECORDS = _table(Record)
_VALUES = _table(FieldValue)
_EMAILS = _table(RecordEmail)
_PHONES = _table(RecordPhone)
_DOMAINS = _table(RecordDomain)
_RELATIONS = _table(RecordRelation)
_AUDIT = _table(AuditEntry)


class _Rows:
    """Plain INSERTs of many rows of one table, each row a tuple in `columns` order."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)

    def insert(self, session: Session, rows: list[tuple[Any, ...]]) -> None:
        """Insert the rows in as few round trips as the database allows."""
        if not rows:
            return
        if is_postgresql(session):
            # Core's executemany (many rows per statement). insert_many's one array per
            # column cannot carry JSON lists (emails, phones): PostgreSQL would read a
            # list of lists as a two-dimensional array.
            params = [dict(zip(self.columns, row, strict=True)) for row in rows]
            session.execute(insert(self.table), params)
            return
        insert_many(session, self.table, rows, columns=self.columns)


def _field_of_value(row: tuple[Any, ...]) -> int:
    return int(row[2])


_VALUE_ROWS = _Rows(
    _VALUES, ("workspace_id", "record_id", "field_id", "value", "text_key", "num_key")
)
_EMAIL_ROWS = _Rows(_EMAILS, ("workspace_id", "record_id", "email"))
_PHONE_ROWS = _Rows(_PHONES, ("workspace_id", "record_id", "phone"))
_DOMAIN_ROWS = _Rows(_DOMAINS, ("workspace_id", "record_id", "domain"))
_RELATION_ROWS = _Rows(_RELATIONS, ("workspace_id", "field_id", "from_record_id", "to_record_id"))
_RECORD_ROWS = _Rows(
    _RECORDS,
    (
        "id",
        "workspace_id",
        "folder_id",
        "title",
        "search_key",
        "created_by_id",
        "owner_member_id",
        "created_at",
        "updated_at",
    ),
)
_AUDIT_ROWS = _Rows(
    _AUDIT,
    (
        "workspace_id",
        "actor_id",
        "action",
        "record_id",
        "folder_id",
        "summary",
        "before",
        "after",
        "created_at",
    ),
)


def _insert_records(session: Session, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert records (each row _RECORD_ROWS's columns but the id); their ids in row order."""
    if not is_postgresql(session):
        # SQLite gives a new row the largest rowid so far plus one, and this transaction
        # holds the database's only write lock (its audit entry is written), so naming
        # those ids stores exactly what a RETURNING insert would, through the driver's
        # executemany instead of a statement per row or a RETURNING batch built by Core.
        last = session.execute(select(func.max(Record.id))).scalar_one_or_none() or 0
        ids = list(range(last + 1, last + 1 + len(rows)))
        _RECORD_ROWS.insert(session, [(i, *row) for i, row in zip(ids, rows, strict=True)])
        return ids
    # PostgreSQL returns the ids in parameter order from its multi-row batches.
    columns = _RECORD_ROWS.columns[1:]
    statement = insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True)
    params = [dict(zip(columns, row, strict=True)) for row in rows]
    return list(session.execute(statement, params).scalars())


class ImportMappingError(ValueError):
    """An explicit column mapping that does not fit the file or the folder."""


@dataclass
class ReportLine:
    """What happened to one line of the file: rejected, skipped, or a warning about it."""

    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.message}"


@dataclass
class ImportReport:
    """The outcome of an import: counts, the mapping used, and a line per row not imported.

    `error` is set when the file could not be imported at all (unreadable, no usable
    column); nothing was written then. Every data row read is counted exactly once.
    """

    folder: str
    on_duplicate: str
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    mapping: list[tuple[str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    lines: list[ReportLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rows_seen(self) -> int:
        """Data rows of the file, whatever became of them."""
        return self.created + self.updated + self.skipped + self.rejected

    def summary(self) -> str:
        """One sentence for the user."""
        if self.error:
            return f"Nothing was imported: {self.error}"
        return (
            f"{self.created:,} created, {self.updated:,} updated, {self.skipped:,} skipped, "
            f"{self.rejected:,} rejected ({self.rows_seen:,} rows)"
        )


# ------------------------------------------------------------------------------ mapping


def importable_fields(fields: Iterable[FieldDef]) -> list[FieldDef]:
    """The fields a column can fill: the active fields whose values are entered, not computed."""
    return [f for f in fields if not field_type(f.type).read_only]


def _has_name_parts(fields: Iterable[FieldDef]) -> bool:
    return any(f.key in ("first_name", "last_name") for f in fields)


def guess_import_mapping(fields: Sequence[FieldDef], header: Sequence[str]) -> dict[int, str]:
    """Which field each column feeds, guessed from the column names (see csvio.guess_mapping)."""
    choices = [FieldChoice(f.key, f.label, f.type) for f in importable_fields(fields)]
    return guess_mapping(header, choices)


def read_header(data: bytes) -> list[str]:
    """The column names of a CSV file (empty when it has no readable header row)."""
    if len(data) > MAX_IMPORT_BYTES:
        return []
    return read_rows(decode_csv_bytes(data).text, max_rows=0).header


def check_mapping(
    fields: Sequence[FieldDef], header: Sequence[str], mapping: Mapping[int, str]
) -> dict[int, str]:
    """An explicit mapping, checked against the file's columns and the folder's fields."""
    by_key = {f.key: f for f in fields}
    checked: dict[int, str] = {}
    used: dict[str, int] = {}
    for column, key in sorted(mapping.items()):
        if not isinstance(column, int) or not 0 <= column < len(header):
            raise ImportMappingError(f"the file has no column {column!r}")
        if not key:
            continue
        name = header[column]
        if key == FULL_NAME_KEY:
            if not _has_name_parts(fields):
                raise ImportMappingError(f"“{name}”: this folder has no first or last name")
        elif key not in by_key:
            known = ", ".join(f.key for f in importable_fields(fields))
            raise ImportMappingError(f"“{name}”: no field “{key}” here (fields: {known})")
        elif field_type(by_key[key].type).read_only:
            raise ImportMappingError(
                f"“{name}”: {by_key[key].label} is computed; it cannot be imported"
            )
        multi = key in by_key and by_key[key].type in ("email", "phone")
        if key in used and not multi:
            raise ImportMappingError(
                f"“{header[used[key]]}” and “{name}” both map to {_label(key, by_key)}; pick one"
            )
        used.setdefault(key, column)
        checked[column] = key
    return checked


def _label(key: str, by_key: Mapping[str, FieldDef]) -> str:
    if key == FULL_NAME_KEY:
        return FULL_NAME_LABEL
    return by_key[key].label if key in by_key else key


def unescape_cell(cell: str) -> str:
    """A cell without the quote an export put before a formula-looking value ("'=1+2")."""
    # Spreadsheets read a leading quote as "this is text", not as part of the value.
    if cell[:1] == "'" and cell[1:].lstrip()[:1] in _FORMULA_STARTS:
        return cell[1:]
    return cell


def build_form(
    values: Sequence[str],
    mapping: Mapping[int, str],
    field_keys: frozenset[str],
    *,
    update: bool,
) -> dict[str, list[str]]:
    """The form of one row: each mapped cell under its field key, a full name split up."""
    form: dict[str, list[str]] = {}
    full_name = ""
    for column, key in mapping.items():
        cell = unescape_cell(values[column])
        if key == FULL_NAME_KEY:
            full_name = cell
        elif cell or not update:
            # A blank cell creates nothing; on update it leaves the stored value alone.
            form.setdefault(key, []).append(cell)
    if full_name:
        parts = zip(("first_name", "last_name"), split_full_name(full_name), strict=True)
        for key, part in parts:
            if key in field_keys and part and not any(v.strip() for v in form.get(key, [])):
                form[key] = [part]
    return form


def split_full_name(text: str) -> tuple[str, str]:
    """First and last name of a full name: "Ann Lee", "Ann van der Berg", "Lee, Ann"."""
    name = " ".join(text.split())
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.partition(" ")
    return first, last


# ----------------------------------------------------------------------------- resolver

_MISSING = object()


class _ImportResolver(FormResolver):
    """Lookups from caches filled once per import or per batch instead of once per value.

    While rows are validated, titles of linked records are only collected (`deferred`);
    `resolve_titles` then looks them all up in one query per folder. Resolution never
    changes whether a row is valid (an unknown title is a record to create), so checking
    first and resolving after gives the same result as save_record's lookups one by one.
    """

    def __init__(self, session: Session, workspace_id: int) -> None:
        super().__init__(session, workspace_id)
        self._member_by_email: dict[str, int] = {}
        self._member_ids: set[int] = set()
        for member_id, email in session.execute(
            select(Member.id, Member.email).where(Member.workspace_id == workspace_id)
        ):
            self._member_by_email[email] = member_id
            self._member_ids.add(member_id)
        self.titles: dict[tuple[int, str], int] = {}
        self.wanted: set[tuple[int, str]] = set()
        self.deferred = True
        self._by_id: dict[str, tuple[int, int] | None] = {}
        self._parsed: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Results parsed ahead by worker processes, each used once (see _ParseAhead).
        self._prefilled: dict[tuple[int, tuple[str, ...]], Any] = {}

    def prefill(self, results: Iterable[tuple[tuple[int, tuple[str, ...]], Any]]) -> None:
        """Take field values parsed elsewhere (same field types, same options)."""
        self._prefilled.update(results)

    def parse(self, rule: FieldRule, raw: list[str]) -> Any:
        """Parse like the field type, remembering results of repeated inputs."""
        key = (rule.id, tuple(raw))
        cached = self._prefilled.pop(key, _MISSING)
        if cached is _MISSING:
            cached = self._parsed.get(key, _MISSING)
        if cached is _MISSING:
            if rule.type == "link" and not rule.options.get("many"):
                # A cell of a one-record link names one record: "Acme, Inc." is one company.
                text = collapse(" ".join(items_of(raw)))
                cached = [text] if text else None
            else:
                # Links and users parse to the titles and addresses they name; those are
                # looked up after (by FormChecker, through this resolver).
                cached = parse_value(rule.type, rule.options, raw)
        if len(self._parsed) < _PARSE_CACHE_SIZE:
            self._parsed[key] = cached
        if isinstance(cached, FieldErrorText):
            raise FieldError(cached.text)
        # Rows must never share a mutable value.
        if isinstance(cached, list):
            return list(cached)
        if isinstance(cached, dict):
            return dict(cached)
        return cached

    def record_by_id(self, text: str) -> tuple[int, int] | None:
        """As for forms, remembered per import."""
        if text not in self._by_id:
            self._by_id[text] = super().record_by_id(text)
        return self._by_id[text]

    def record_by_title(self, folder_id: int, title: str) -> int | None:
        """A known id, else None while validating (the title is looked up per batch)."""
        key = (folder_id, title.lower())
        if key in self.titles:
            return self.titles[key]
        if self.deferred:
            self.wanted.add(key)
            return None
        return super().record_by_title(folder_id, title)

    def member_id(self, text: str) -> int | None:
        """From the workspace's members, loaded once."""
        if text.startswith("#") and ascii_digits(text[1:]):
            number = int(text[1:])
            return number if number in self._member_ids else None
        return self._member_by_email.get(canonical_email(text) or text)

    def resolve_titles(self) -> None:
        """Look up every title collected since the last call: one query per folder."""
        by_folder: dict[int, list[str]] = {}
        for folder_id, key in sorted(self.wanted):
            by_folder.setdefault(folder_id, []).append(key)
        self.wanted = set()
        for folder_id, keys in by_folder.items():
            for chunk in _chunks(keys, _IN_CHUNK):
                rows = self.session.execute(
                    select(Record.id, Record.search_key)
                    .where(
                        Record.workspace_id == self.workspace_id,
                        Record.folder_id == folder_id,
                        Record.search_key.in_(chunk),
                    )
                    .order_by(Record.id)
                )
                for record_id, search_key in rows:
                    self.titles.setdefault((folder_id, search_key), record_id)


@dataclass(frozen=True)
class FieldErrorText:
    """A remembered field error message."""

    text: str


def parse_value(type_name: str, options: Mapping[str, Any], raw: list[str]) -> Any:
    """A field type's value of raw input, or its refusal as FieldErrorText."""
    try:
        return field_type(type_name).parse(raw, options)
    except FieldError as exc:
        # The message, not the exception: re-raising one object grows its traceback.
        return FieldErrorText(str(exc))


# ------------------------------------------------------------------------ parse ahead


@dataclass(frozen=True)
class _ParseSpec:
    """What a worker process needs to parse rows as the checker will: plain data only."""

    mapping: dict[int, str]
    field_keys: frozenset[str]
    # (field id, key, type, runtime options) of the fields whose values parse without
    # the database (not links or users, which are looked up).
    fields: tuple[tuple[int, str, str, dict[str, Any]], ...]


def _parse_rows(
    spec: _ParseSpec, rows: list[list[str]]
) -> list[tuple[tuple[int, tuple[str, ...]], Any]]:
    """Every field value of these rows, keyed as _ImportResolver.parse looks them up."""
    results: dict[tuple[int, tuple[str, ...]], Any] = {}
    for values in rows:
        form = build_form(values, spec.mapping, spec.field_keys, update=False)
        for field_id, key, type_name, options in spec.fields:
            raw = [str(v) for v in form.get(key, [])]
            cache_key = (field_id, tuple(raw))
            if cache_key not in results:
                results[cache_key] = parse_value(type_name, options, raw)
    return list(results.items())


class _ParseAhead:
    """Parses the rows of coming batches in worker processes while batches are written.

    Field validation (email syntax, phone metadata) is most of an import's CPU time and
    needs no database, so it runs in parallel with the batch writer. The checker then finds
    each value already parsed; anything missing it parses itself, so a worker failing
    costs speed, never correctness. The first chunk is left to the main process: it runs
    while the workers start.
    """

    def __init__(self, spec: _ParseSpec, rows: list[CsvRow], workers: int) -> None:
        self._spec = spec
        self._rows = rows
        self._chunks = [
            (start, min(start + BATCH_SIZE, len(rows)))
            for start in range(BATCH_SIZE, len(rows), BATCH_SIZE)
        ]
        self._pending: deque[tuple[int, Future[Any]]] = deque()
        self._executor: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn")
        )
        self._fill()

    def _fill(self) -> None:
        while self._executor is not None and self._chunks and len(self._pending) < _AHEAD:
            start, end = self._chunks.pop(0)
            values = [row.values for row in self._rows[start:end]]
            self._pending.append((start, self._executor.submit(_parse_rows, self._spec, values)))

    def feed(self, resolver: _ImportResolver, upto: int) -> None:
        """Hand the resolver what was parsed for the rows before index `upto`."""
        while self._pending and self._pending[0][0] < upto:
            _, future = self._pending.popleft()
            try:
                resolver.prefill(future.result())
            except Exception:  # any failure of the pool: parse in-process instead
                self.close()
                return
        self._fill()

    def close(self) -> None:
        """Stop the workers; unfinished work is dropped."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pending.clear()


def _parse_workers(requested: int | None, rows: int) -> int:
    if requested is not None:
        return max(0, requested)
    if rows < PARSE_AHEAD_MIN_ROWS:
        return 0
    cores = _usable_cores()
    # One core stays with the batch writer, and only idle cores are worth a worker: on a
    # busy machine a worker takes CPU time from the batch writer, which then also waits
    # for it.
    idle = int(cores - 1 - _busy_elsewhere() + 0.5)
    return max(0, min(_MAX_WORKERS, cores - 1, idle))


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# How long the machine's CPU use is watched before choosing the workers.
_BUSY_SAMPLE_SECONDS = 0.1


def _busy_elsewhere() -> float:
    """Cores other processes keep busy right now (this one sleeps while it is measured).

    Read off the kernel's CPU counters over a tenth of a second: the load average is a
    one-minute mean, which still counts a process that ended seconds ago (an earlier
    import, a test run) and would leave an idle machine without workers.
    """
    first = _cpu_ticks()
    if first is None:
        try:
            # The load average counts this process too, once it runs.
            return max(0.0, os.getloadavg()[0] - 1)
        except (AttributeError, OSError):
            return 0.0
    time.sleep(_BUSY_SAMPLE_SECONDS)
    second = _cpu_ticks()
    if second is None:
        return 0.0
    total, idle = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return 0.0
    return _usable_cores() * (total - idle) / total


def _cpu_ticks() -> tuple[int, int] | None:
    """(all, idle) CPU time of the machine in clock ticks, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    # user nice system idle iowait ...: waiting for I/O leaves the core free for a worker.
    return sum(fields[:8]), fields[3] + fields[4]


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------------------ importer


@dataclass
class _Seen:
    """A record a later row may duplicate: the line that made it (if any) and its title."""

    title: str
    line: int | None
    record_id: int | None


@dataclass
class _Item:
    """One data row on its way in."""

    row: CsvRow
    prepared: PreparedForm | None = None
    title: str = ""
    keys: list[tuple[str, str]] = field(default_factory=list)
    # Its emails, phones and domains, from which `keys` were made.
    lookup: LookupKeys | None = None
    action: str = ""  # create | update | skip | reject
    target_id: int | None = None
    message: str = ""


@dataclass
class _NewRecord:
    """A validated record to insert: its values as save_record holds them, and link ids."""

    values: dict[str, Any]
    link_ids: dict[str, list[int]]
    # Its emails, phones and domains: known from the duplicate check, else made on insert.
    keys: LookupKeys | None = None


class _InsertPlan:
    """A folder's fields as the batch writer reads them, taken off the ORM objects once."""

    def __init__(self, fields: list[FieldDef]) -> None:
        self.columns = {f.key: (f.id, f.type, dict(f.options)) for f in fields}
        self.autonumbers = [f for f in fields if f.type == "autonumber"]
        self.formulas = [f for f in fields if f.type == "formula"]
        self.index = IndexPlan(fields)
        self._keys: dict[tuple[str, str], tuple[str | None, float | None]] = {}

    def value_keys(
        self, key: str, type_name: str, options: Mapping[str, Any], value: Any
    ) -> tuple[str | None, float | None]:
        """keys_for of one field's value, remembered for texts (names, titles, stages repeat)."""
        if type(value) is not str:
            return keys_for(type_name, options, value)
        found = self._keys.get((key, value))
        if found is None:
            found = keys_for(type_name, options, value)
            if len(self._keys) < _PARSE_CACHE_SIZE:
                self._keys[key, value] = found
        return found


@dataclass
class _NewTarget:
    """A linked record named in the file that does not exist yet (a new company)."""

    folder: Folder
    title: str
    prepared: PreparedForm | None
    error: str = ""


class _Importer:
    """Runs the batches of one import and fills its report."""

    def __init__(
        self,
        session: Session,
        member: Member,
        folder: Folder,
        fields: list[FieldDef],
        mapping: dict[int, str],
        on_duplicate: OnDuplicate,
        report: ImportReport,
    ) -> None:
        self.session = session
        self.member = member
        self.folder = folder
        self.fields = fields
        self.by_key = {f.key: f for f in fields}
        self.link_fields = [(f.key, f) for f in fields if f.type == "link"]
        self.field_keys = frozenset(self.by_key)
        self.mapping = mapping
        self.on_duplicate = on_duplicate
        self.report = report
        self.resolver = _ImportResolver(session, member.workspace_id)
        # Keys (kind, value) of every record this import created or updated.
        self.seen: dict[tuple[str, str], _Seen] = {}
        self._checkers = {folder.id: self._checker(folder, fields)}
        self._insert_plans: dict[int, _InsertPlan] = {}
        # Records saved when the lookup tables' statistics are next refreshed (PostgreSQL).
        self._analyze_at = ANALYZE_FIRST_AT

    # ----------------------------------------------------------------- one batch

    def run(self, rows: list[CsvRow], *, replay: bool = True) -> int:
        """Import a batch (or its first part); returns how many of its rows were handled."""
        items = [self._check(row) for row in rows]
        self.resolver.resolve_titles()
        targets = self._new_targets(items)
        consumed = self._plan(items, targets)
        items = items[:consumed]
        added: list[tuple[int, str]] = []
        try:
            with self.session.begin_nested():
                self._apply(items, targets, added)
        except SQLAlchemyError as exc:
            # Whatever the batch wrote is gone with its savepoint; so must be what we learnt.
            for key in added:
                self.resolver.titles.pop(key, None)
            if replay and len(items) > 1:
                for row in rows[:consumed]:
                    self.run([row], replay=False)
            else:
                for item in items:
                    if item.action in ("create", "update"):
                        item.action, item.message = "reject", _database_message(exc)
                self._record(items)
            return consumed
        self._record(items)
        self._refresh_statistics()
        return consumed

    def _refresh_statistics(self) -> None:
        """ANALYZE the duplicate lookups' tables each time the import's records doubled.

        PostgreSQL plans from statistics that do not know the rows an import adds to its
        workspace (a new workspace has none in them at all, and autovacuum waits for a
        tenth of the table to change): it then expects a few dozen index entries for the
        workspace and filters all of them for each batch's keys instead of looking the
        keys up, so each batch costs more than the last. A 100,000-row import took 204 s
        that way, where 60,000 rows took 35 s. ANALYZE samples a fixed number of rows and
        sees this transaction's own; a role that does not own the tables gets a warning
        and the import goes on.
        """
        saved = self.report.created + self.report.updated
        if saved < self._analyze_at or not is_postgresql(self.session):
            return
        for table in ANALYZED_TABLES:
            self.session.execute(text(f"ANALYZE {table}"))
        self._analyze_at = 2 * saved

    def _form(self, values: list[str], *, update: bool) -> dict[str, list[str]]:
        return build_form(values, self.mapping, self.field_keys, update=update)

    def parse_spec(self) -> _ParseSpec:
        """The plain-data description of this import's field parsing, for worker processes."""
        rules = self._checkers[self.folder.id].rules
        return _ParseSpec(
            dict(self.mapping),
            self.field_keys,
            tuple(
                (r.id, r.key, r.type, dict(r.options))
                for r in rules
                if r.type not in ("link", "user") and not r.read_only
            ),
        )

    def _check(self, row: CsvRow) -> _Item:
        item = _Item(row)
        try:
            prepared = self._checkers[self.folder.id].check(self._form(row.values, update=False))
        except ValidationError as exc:
            item.action, item.message = "reject", self._errors(exc.errors, self.by_key)
            return item
        item.prepared = prepared
        item.title = record_title(self.folder.key, prepared.merged)
        item.keys = self._dedup_keys(item)
        return item

    @staticmethod
    def _errors(errors: Mapping[str, str], by_key: Mapping[str, FieldDef]) -> str:
        return "; ".join(f"{_label(key, by_key)}: {message}" for key, message in errors.items())

    def _dedup_keys(self, item: _Item) -> list[tuple[str, str]]:
        """(kind, value) of every key the row is matched by, in the order of _REASONS."""
        assert item.prepared is not None
        keys = item.lookup = self._plan_of(self.folder, self.fields).index.keys(
            item.prepared.merged
        )
        found = [("email", e) for e in keys.emails] + [("phone", p) for p in keys.phones]
        found += [("domain", d) for d in keys.domains]
        if self.folder.key == "companies":
            name = normalised_company_name(item.title)
            if name:
                found.append(("name", name))
        return found

    # -------------------------------------------------------------- link targets

    def _checker(self, folder: Folder, fields: list[FieldDef] | None = None) -> FormChecker:
        return FormChecker(self.session, self.member, folder, fields=fields, resolver=self.resolver)

    def _fields_of(self, folder: Folder) -> list[FieldDef]:
        if folder.id not in self._checkers:
            self._checkers[folder.id] = self._checker(folder)
        return self._checkers[folder.id].fields

    def _unresolved(self, item: _Item) -> Iterator[tuple[FieldDef, str]]:
        """(link field, title) of each linked record the row names that was not found."""
        if item.prepared is None:
            return
        parsed = item.prepared.parsed
        for key, fdef in self.link_fields:
            for target in parsed.get(key) or ():
                if isinstance(target, str):
                    yield fdef, target

    def _new_targets(self, items: list[_Item]) -> dict[tuple[int, str], _NewTarget]:
        """Linked records to create, each checked as the form save_record would make for it."""
        targets: dict[tuple[int, str], _NewTarget] = {}
        for item in items:
            for fdef, title in self._unresolved(item):
                folder = self.resolver.target_folder(fdef)
                key = (folder.id, title.lower())
                if key in self.resolver.titles or key in targets:
                    continue
                target = _NewTarget(folder, title, None)
                fields = self._fields_of(folder)
                try:
                    target.prepared = self._checkers[folder.id].check({"name": [title]})
                except ValidationError as exc:
                    by_key = {f.key: f for f in fields}
                    target.error = (
                        f"could not create {folder.singular.lower()} “{title}” "
                        f"({self._errors(exc.errors, by_key)})"
                    )
                targets[key] = target
        for item in items:
            for fdef, title in self._unresolved(item):
                folder = self.resolver.target_folder(fdef)
                refused = targets.get((folder.id, title.lower()))
                if refused is not None and refused.error and item.action != "reject":
                    item.action = "reject"
                    item.message = f"{fdef.label}: {refused.error}"
        return targets

    # ---------------------------------------------------------------- duplicates

    def _existing(self, items: list[_Item]) -> dict[tuple[str, str], _Seen]:
        """Records of the folder holding any key of the batch: one query per kind of key."""
        wanted: dict[str, set[str]] = {"email": set(), "phone": set(), "domain": set()}
        names: set[str] = set()
        for item in items:
            if item.action != "reject":
                for kind, value in item.keys:
                    (names if kind == "name" else wanted[kind]).add(value)
        found: dict[tuple[str, str], _Seen] = {}
        ws = self.member.workspace_id
        indexes = (
            ("email", RecordEmail, RecordEmail.email),
            ("phone", RecordPhone, RecordPhone.phone),
            ("domain", RecordDomain, RecordDomain.domain),
        )
        # The index tables alone first, then the records: a join here lets PostgreSQL,
        # whose statistics do not see the rows this transaction added, pick a nested loop
        # over every record of the folder.
        hits: list[tuple[int, str, str]] = []
        for kind, model, column in indexes:
            for chunk in _chunks(sorted(wanted[kind]), _IN_CHUNK):
                rows = self.session.execute(
                    select(model.record_id, column).where(
                        model.workspace_id == ws, column.in_(chunk)
                    )
                )
                hits.extend((record_id, kind, value) for record_id, value in rows)
        titles: dict[int, str] = {}
        for ids in _chunks(sorted({hit[0] for hit in hits}), _IN_CHUNK):
            records = self.session.execute(
                select(Record.id, Record.title).where(
                    Record.id.in_(ids), Record.folder_id == self.folder.id
                )
            )
            titles.update((record_id, title) for record_id, title in records)
        for record_id, kind, value in sorted(hits):
            if record_id in titles:
                found.setdefault((kind, value), _Seen(titles[record_id], None, record_id))
        # Company names: a prefix range on the indexed search key per first word, then the
        # exact normalised comparison, as find_duplicates_for does for one name.
        first_words = sorted({name.split()[0] for name in names})
        for chunk in _chunks(first_words, 1000):
            ranges = [
                and_(Record.search_key >= word, Record.search_key < word + "\uffff")
                for word in chunk
            ]
            candidates = self.session.execute(
                select(Record.id, Record.title)
                .where(Record.workspace_id == ws, Record.folder_id == self.folder.id)
                .where(or_(*ranges))
                .order_by(Record.id)
            )
            for record_id, title in candidates:
                name = normalised_company_name(title)
                if name in names:
                    found.setdefault(("name", name), _Seen(title, None, record_id))
        return found

    def _match(
        self,
        item: _Item,
        batch: Mapping[tuple[str, str], _Seen],
        existing: Mapping[tuple[str, str], _Seen],
    ) -> tuple[_Seen, str, bool] | None:
        """The record (or earlier row) the row duplicates, why, and whether it is pending."""
        # The keys come in reporting order: emails, phones, domain, company name.
        for key in item.keys:
            found = batch.get(key)
            if found is not None:
                return found, _REASONS[key[0]], True
            found = self.seen.get(key) or existing.get(key)
            if found is not None:
                return found, _REASONS[key[0]], False
        return None

    def _plan(self, items: list[_Item], targets: Mapping[tuple[int, str], _NewTarget]) -> int:
        """Decide each row's fate; returns how many rows this batch handles.

        A batch stops before a row that must see an earlier row of the same batch written
        first (it updates that row's record, or links to a record that row creates); the
        rest goes to the next batch.
        """
        existing = self._existing(items) if self.on_duplicate != "create" else {}
        batch: dict[tuple[str, str], _Seen] = {}
        titles: set[str] = set()
        for index, item in enumerate(items):
            if item.action == "reject":
                continue
            item.action = "create"
            match = self._match(item, batch, existing) if self.on_duplicate != "create" else None
            if match is not None:
                seen, reason, pending = match
                where = f" on line {seen.line}" if seen.line is not None else ""
                if self.on_duplicate == "skip":
                    item.action = "skip"
                    item.message = f"duplicate of “{seen.title}”{where} ({reason})"
                    continue
                if pending:
                    return index
                item.action, item.target_id = "update", seen.record_id
            for fdef, title in self._unresolved(item):
                same_folder = self.resolver.target_folder(fdef).id == self.folder.id
                if same_folder and title.lower() in titles:
                    return index
            if item.action == "create":
                titles.add(item.title.lower())
            for key in item.keys:
                batch.setdefault(key, _Seen(item.title, item.row.line, item.target_id))
        return len(items)

    # --------------------------------------------------------------------- writes

    def _apply(
        self,
        items: list[_Item],
        targets: Mapping[tuple[int, str], _NewTarget],
        added: list[tuple[int, str]],
    ) -> None:
        saving = [i for i in items if i.action in ("create", "update")]
        # Linked records named by the rows being saved, created in order of first mention.
        first_mention: dict[tuple[int, str], _Item] = {}
        for item in saving:
            for fdef, title in self._unresolved(item):
                named = (self.resolver.target_folder(fdef).id, title.lower())
                if named not in self.resolver.titles:
                    first_mention.setdefault(named, item)
        by_folder: dict[int, list[tuple[int, str]]] = {}
        for mention in first_mention:
            by_folder.setdefault(mention[0], []).append(mention)
        for mentions in by_folder.values():
            folder = targets[mentions[0]].folder
            new = []
            for mention in mentions:
                prepared = targets[mention].prepared
                assert prepared is not None  # rows naming a refused target were rejected
                new.append(_NewRecord(dict(prepared.parsed), {}))
            created = self._insert(folder, self._fields_of(folder), new)
            for mention, record_id in zip(mentions, created, strict=True):
                self.resolver.titles[mention] = record_id
                added.append(mention)

        new_rows: list[_NewRecord] = []
        creating = [i for i in items if i.action == "create"]
        for item in creating:
            assert item.prepared is not None
            values = dict(item.prepared.parsed)
            link_ids: dict[str, list[int]] = {}
            for key, fdef in self.link_fields:
                value = item.prepared.parsed.get(key)
                if not value:
                    continue
                folder_id = self.resolver.target_folder(fdef).id
                ids: list[int] = []
                shown: list[int | str] = []
                for target in value:
                    if isinstance(target, int):
                        ids.append(target)
                        shown.append(target)
                        continue
                    title_key = (folder_id, target.lower())
                    ids.append(self.resolver.titles[title_key])
                    # save_record's audit shows the title for the row that created the
                    # linked record and the id for every later row naming it.
                    first = first_mention.get(title_key) is item
                    shown.append(target if first else self.resolver.titles[title_key])
                values[key] = shown
                link_ids[key] = ids
            # The row's lookup keys were made from these values for the duplicate check.
            new_rows.append(_NewRecord(values, link_ids, item.lookup))
        for item, record_id in zip(
            creating, self._insert(self.folder, self.fields, new_rows), strict=True
        ):
            item.target_id = record_id
        new_emails = [e for entry in new_rows if entry.keys for e in entry.keys.emails]
        if new_emails:
            # As save_record does: imported people pick up their past mail in the ledger.
            link_addresses(self.session, self.member.workspace, new_emails)

        self.resolver.deferred = False
        try:
            for item in items:
                if item.action == "update":
                    self._update(item)
        finally:
            self.resolver.deferred = True

    def _update(self, item: _Item) -> None:
        record = self.session.get(Record, item.target_id)
        assert record is not None
        form = self._form(item.row.values, update=True)
        stored = [f for f in self.fields if f.type in ("email", "phone") and f.key in form]
        current = load_values(self.session, record, stored) if stored else {}
        for key in (f.key for f in stored):
            # Emails and phones are added to the record's own: an import never loses one.
            form[key] = [*current.get(key, []), *form[key]]
        try:
            save_record(
                self.session,
                self.member,
                self.folder,
                form,
                record,
                source="import",
                fields=self.fields,
                resolver=self.resolver,
            )
        except ValidationError as exc:
            item.action, item.message = "reject", self._errors(exc.errors, self.by_key)
            return
        # Later rows matching this one name the record as it now is.
        item.title = record.title

    def _insert(self, folder: Folder, fields: list[FieldDef], new: list[_NewRecord]) -> list[int]:
        """Insert records exactly as save_record creates them; returns their ids in order."""
        if not new:
            return []
        session, member = self.session, self.member
        ws = member.workspace_id
        plan = self._plan_of(folder, fields)
        for fdef in plan.autonumbers:
            for entry, number in zip(new, take_numbers(session, fdef, len(new)), strict=True):
                entry.values[fdef.key] = number
        for fdef in plan.formulas:
            for entry in new:
                entry.values[fdef.key] = compute_formula(fdef, fields, entry.values)
        now = utcnow()
        titles = [record_title(folder.key, entry.values) for entry in new]
        owners = [_owner_id(entry.values, member.id) for entry in new]
        rows = [
            (ws, folder.id, title, title.lower(), member.id, owner_id, now, now)
            for title, owner_id in zip(titles, owners, strict=True)
        ]
        record_ids = _insert_records(session, rows)
        values: list[tuple[Any, ...]] = []
        emails: list[tuple[Any, ...]] = []
        phones: list[tuple[Any, ...]] = []
        domains: list[tuple[Any, ...]] = []
        relations: list[tuple[Any, ...]] = []
        audit: list[tuple[Any, ...]] = []
        columns, index = plan.columns, plan.index
        actor_id, folder_id = member.id, folder.id
        for record_id, title, entry in zip(record_ids, titles, new, strict=True):
            for key, value in entry.values.items():
                field_id, type_name, options = columns[key]
                if type_name == "link":
                    for target_id in dict.fromkeys(entry.link_ids.get(key, [])):
                        relations.append((ws, field_id, record_id, target_id))
                elif not is_blank(value):
                    text_key, num_key = plan.value_keys(key, type_name, options, value)
                    values.append((ws, record_id, field_id, value, text_key, num_key))
            # A new record's keys come from all its values (a field it lacks adds none);
            # autonumbers and formulas, added above, are never emails, phones or domains.
            keys = entry.keys
            if keys is None:
                keys = entry.keys = index.keys(entry.values)
            emails.extend((ws, record_id, email) for email in keys.emails)
            phones.extend((ws, record_id, phone) for phone in keys.phones)
            domains.extend((ws, record_id, domain) for domain in keys.domains)
            # changed_values from nothing: every value set.
            after = {k: v for k, v in entry.values.items() if v is not None}
            summary = f"Created {title} (import)"[:500]
            audit.append(
                (ws, actor_id, "create", record_id, folder_id, summary, None, _jsonable(after), now)
            )
        # One field's values side by side: the (field, key) indexes take them in order.
        values.sort(key=_field_of_value)
        for writer, rows in (
            (_VALUE_ROWS, values),
            (_EMAIL_ROWS, emails),
            (_PHONE_ROWS, phones),
            (_DOMAIN_ROWS, domains),
            (_RELATION_ROWS, relations),
            (_AUDIT_ROWS, audit),
        ):
            writer.insert(session, rows)
        return record_ids

    def _plan_of(self, folder: Folder, fields: list[FieldDef]) -> _InsertPlan:
        if folder.id not in self._insert_plans:
            self._insert_plans[folder.id] = _InsertPlan(fields)
        return self._insert_plans[folder.id]

    # -------------------------------------------------------------------- report

    def _record(self, items: list[_Item]) -> None:
        report = self.report
        for item in items:
            line = item.row.line
            if item.action == "create":
                report.created += 1
            elif item.action == "update":
                report.updated += 1
            elif item.action == "skip":
                report.skipped += 1
                report.lines.append(ReportLine(line, "skipped", item.message))
                continue
            else:
                report.rejected += 1
                report.lines.append(ReportLine(line, "rejected", item.message))
                continue
            for key in item.keys:
                self.seen.setdefault(key, _Seen(item.title, line, item.target_id))


def _database_message(exc: SQLAlchemyError) -> str:
    detail = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()
    reason = detail[0][:200] if detail else type(exc).__name__
    return f"the database refused this row ({reason})"


# -------------------------------------------------------------------------- entry point

# Messages of csvio.read_rows for rows it could not keep end like this; those rows count
# as rejected, its other problems (extra cells ignored, rows beyond the limit) are warnings.
_READER_SKIPPED_SUFFIX = "skipped."


def _file_problems(report: ImportReport, problems: list[RowProblem], kept: set[int]) -> None:
    for problem in problems:
        if problem.line not in kept and problem.message.endswith(_READER_SKIPPED_SUFFIX):
            report.rejected += 1
            report.lines.append(ReportLine(problem.line, "rejected", problem.message))
        else:
            report.lines.append(ReportLine(problem.line, "warning", problem.message))


def import_csv(
    session: Session,
    member: Member,
    folder: Folder,
    data: bytes,
    *,
    mapping: dict[int, str] | None = None,
    on_duplicate: OnDuplicate = "skip",
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import a CSV file into a folder as the member; never raises on the file's content.

    `mapping` maps column indexes to field keys (csvio.FULL_NAME_KEY for a full-name
    column); None guesses it from the header. Rows duplicating a record of the folder (or
    an earlier row) are skipped, update that record (blank cells leave its values alone;
    emails and phones are added), or are created anyway. `progress` is called with the
    number of rows handled after each batch. `workers` processes parse field values ahead
    of the batch writer (None: one per idle core, one core left to the writer, for files
    of PARSE_AHEAD_MIN_ROWS rows or more; 0: none). Flushes only.
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}")
    if folder.workspace_id != member.workspace_id:
        raise ValueError("the folder belongs to another workspace")
    report = ImportReport(folder=folder.name, on_duplicate=on_duplicate)
    if len(data) > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        report.error = f"the file is larger than {limit} MB; split it into smaller files"
        return report
    decoded = decode_csv_bytes(data)
    report.notes.extend(decoded.warnings)
    with fewer_collections():
        parsed = read_rows(decoded.text)
    if not parsed.header:
        report.lines.extend(ReportLine(p.line, "error", p.message) for p in parsed.problems)
        report.error = "; ".join(p.message for p in parsed.problems) or "no header row"
        return report

    fields = folder_fields(session, folder.id)
    by_key = {f.key: f for f in fields}
    if mapping is None:
        columns = guess_import_mapping(fields, parsed.header)
    else:
        columns = check_mapping(fields, parsed.header, mapping)
    report.mapping = [(parsed.header[c], _label(k, by_key)) for c, k in sorted(columns.items())]
    report.unmapped = [name for c, name in enumerate(parsed.header) if c not in columns]
    if not columns:
        report.lines.extend(ReportLine(p.line, "warning", p.message) for p in parsed.problems)
        report.error = (
            f"no column matches a field of {folder.name}; name the columns like the fields "
            f"({', '.join(f.label for f in importable_fields(fields)[:4])} …) or map them"
        )
        return report
    _file_problems(report, parsed.problems, {row.line for row in parsed.rows})

    # Written first: on SQLite the first write opens the transaction, so the batches'
    # savepoints nest inside it and a caller's rollback (a dry run) undoes all of them.
    entry = record_audit(
        session,
        member,
        "import",
        workspace_id=member.workspace_id,
        folder_id=folder.id,
        summary=f"Importing into {folder.name}",
    )
    importer = _Importer(session, member, folder, fields, columns, on_duplicate, report)
    rows = parsed.rows
    count = _parse_workers(workers, len(rows))
    ahead = _ParseAhead(importer.parse_spec(), rows, count) if count else None
    try:
        with fewer_collections():
            start = 0
            while start < len(rows):
                if ahead is not None:
                    ahead.feed(importer.resolver, start + BATCH_SIZE)
                handled = importer.run(rows[start : start + BATCH_SIZE])
                start += handled
                if progress is not None:
                    progress(handled)
    finally:
        if ahead is not None:
            ahead.close()
    report.lines.sort(key=lambda line: line.line)
    entry.summary = f"Imported into {folder.name}: {report.summary()}"[:500]
    entry.after = {
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
        "rejected": report.rejected,
        "on_duplicate": on_duplicate,
        "mapping": dict(report.mapping),
    }
    session.flush()
    return report


def _owner_id(values: dict[str, Any], creator_id: int) -> int | None:
    """Record.owner_member_id of a new record: its owner field, else its creator."""
    owner = values.get(OWNER_KEY)
    return owner if isinstance(owner, int) else creator_id
