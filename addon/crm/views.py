"""Saved views: filters over one folder's records, compiled to indexed SQL on both databases.

A view is data: `{"match": "all" | "any", "conditions": [{"field", "op", "value"}],
"sort": {"field", "desc"}}`. Each condition becomes a test of the rows of field_values (or
record_relations) of one field, `[NOT] EXISTS (SELECT ... WHERE field_id = :f AND <key
test>)`, which the (field_id, text_key, record_id) and (field_id, num_key, record_id) indexes
answer without touching JSON or the table. Views are the segments that mass update, export
and mail merge work on.

At a million records the shape of the SQL decides the time (bench/hygiene.py):
- counts start from the rows of one condition's field (a field's values belong to records
  of its folder, so the folder scope holds by construction) and never scan `records` when a
  condition can drive; "any" views count the union of each condition's records;
- negations are NOT EXISTS, an anti-join: NOT IN over a large set is a per-row subplan on
  PostgreSQL once the set outgrows work_mem;
- a page sorted by a field walks that field's index and fills up with the records without
  a value only when the valued ones run out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    false,
    func,
    or_,
    select,
    text,
    true,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from addon.crm.audit import record_audit
from addon.crm.fields import FieldError, field_type, text_key
from addon.crm.models import (
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordRelation,
    SavedView,
)
from addon.crm.records import find_member_id
from addon.crm.workspaces import folder_fields
from addon.digits import ascii_digits
from addon.ledger.models import RecordStats
from addon.ledger.sql import is_postgresql
from addon.ledger.stats import METRIC_COLUMNS

# Record columns every folder has, usable like fields.
BUILTIN_FIELDS = {
    "_title": ("Name", "builtin_text"),
    "_created": ("Created", "builtin_datetime"),
    "_updated": ("Updated", "builtin_datetime"),
}

OPERATOR_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "greater than",
    "lt": "less than",
    "before": "before",
    "after": "after",
    "last_n_days": "in the last N days",
    "in_list": "is one of",
}
_NO_VALUE = frozenset({"is_empty", "is_not_empty"})
_NUMERIC_TYPES = frozenset({"number", "percent", "currency", "autonumber"})
_DATE_TYPES = frozenset({"date", "datetime", "builtin_datetime"})
_MULTI_TYPES = frozenset({"email", "phone", "multidropdown", "social"})
_TEXT_OPS = frozenset(
    {"equals", "not_equals", "contains", "not_contains", "is_empty", "is_not_empty", "in_list"}
)
_NUMBER_OPS = frozenset({"equals", "not_equals", "gt", "lt", "is_empty", "is_not_empty", "in_list"})
_DATE_OPS = frozenset({"equals", "before", "after", "last_n_days", "is_empty", "is_not_empty"})
_REFERENCE_OPS = frozenset({"equals", "not_equals", "is_empty", "is_not_empty", "in_list"})
_CHECKBOX_OPS = frozenset({"equals", "is_empty", "is_not_empty"})

MAX_CONDITIONS = 20
PAGE_SIZE = 20
# Beyond this many records the sidebar shows "10,000+" (see count_view_capped).
COUNT_CAP = 10_000


class ViewError(ValueError):
    """A view definition that cannot be used; the message says which condition and why."""


@dataclass(frozen=True)
class Condition:
    """One validated condition: a field (or built-in column), an operator and its operand."""

    field_key: str
    op: str
    value: str = ""


@dataclass
class ViewDefinition:
    """A validated view over one folder."""

    conditions: list[Condition] = field(default_factory=list)
    match_any: bool = False
    sort_field: str = "_title"
    sort_desc: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "match": "any" if self.match_any else "all",
            "conditions": [
                {"field": c.field_key, "op": c.op, "value": c.value} for c in self.conditions
            ],
            "sort": {"field": self.sort_field, "desc": self.sort_desc},
        }


def _kind(fdef: FieldDef | None, key: str) -> str:
    if fdef is None:
        return BUILTIN_FIELDS[key][1]
    if fdef.type == "stats":
        metric = str(fdef.options.get("metric", ""))
        if metric.startswith("days_since"):
            return "days_since"
        return "builtin_datetime" if metric.startswith(("first_", "last_")) else "number"
    if fdef.type == "formula":
        return "number"
    return fdef.type


def operators_for(kind: str) -> frozenset[str]:
    """The operators that make sense for a field type (or built-in column kind)."""
    if kind in _NUMERIC_TYPES or kind in ("number", "days_since"):
        return _NUMBER_OPS
    if kind in _DATE_TYPES:
        return _DATE_OPS
    if kind in ("user", "link"):
        return _REFERENCE_OPS
    if kind == "checkbox":
        return _CHECKBOX_OPS
    return _TEXT_OPS


def parse_definition(fields: list[FieldDef], raw: Any) -> ViewDefinition:
    """Validate a stored or submitted definition against the folder's fields."""
    if not isinstance(raw, dict):
        raise ViewError("a view definition must be an object")
    by_key = {f.key: f for f in fields}
    conditions_raw = raw.get("conditions") or []
    if not isinstance(conditions_raw, list):
        raise ViewError("conditions must be a list")
    if len(conditions_raw) > MAX_CONDITIONS:
        raise ViewError(f"a view takes at most {MAX_CONDITIONS} conditions")
    conditions: list[Condition] = []
    for number, item in enumerate(conditions_raw, start=1):
        if not isinstance(item, dict):
            raise ViewError(f"condition {number} must be an object")
        key, op = str(item.get("field", "")), str(item.get("op", ""))
        value = item.get("value", "")
        value = "" if value is None else str(value).strip()
        if key not in by_key and key not in BUILTIN_FIELDS:
            raise ViewError(f"condition {number}: unknown field “{key}”")
        fdef = by_key.get(key)
        label = fdef.label if fdef is not None else BUILTIN_FIELDS[key][0]
        if op not in operators_for(_kind(fdef, key)):
            raise ViewError(f"condition {number}: “{label}” cannot use the operator “{op}”")
        if op not in _NO_VALUE and not value:
            raise ViewError(f"condition {number}: “{label}” {OPERATOR_LABELS[op]} what?")
        if op == "last_n_days" and not (ascii_digits(value) and 0 < int(value) <= 36500):
            raise ViewError(f"condition {number}: the number of days must be 1 to 36500")
        conditions.append(Condition(key, op, "" if op in _NO_VALUE else value))
    sort = raw.get("sort") or {}
    sort_field = str(sort.get("field") or "_title") if isinstance(sort, dict) else "_title"
    if sort_field not in by_key and sort_field not in BUILTIN_FIELDS:
        raise ViewError(f"cannot sort by unknown field “{sort_field}”")
    return ViewDefinition(
        conditions=conditions,
        match_any=raw.get("match") == "any",
        sort_field=sort_field,
        sort_desc=bool(sort.get("desc")) if isinstance(sort, dict) else False,
    )


# --------------------------------------------------------------------------- compiling


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_key(text: str) -> str:
    # The same key the field types store, "" standing for no text.
    return text_key(text) or ""


def _keys_of(fdef: FieldDef, raw: str) -> tuple[str | None, float | None]:
    """The index keys of a comparison value, normalised exactly as stored values are."""
    ftype = field_type(fdef.type)
    try:
        parsed = ftype.parse([raw], dict(fdef.options))
    except FieldError as exc:
        raise ViewError(f"“{fdef.label}”: {exc}") from None
    if parsed is None:
        raise ViewError(f"“{fdef.label}”: enter a value to compare with")
    return ftype.index_keys(parsed, dict(fdef.options))


@dataclass(frozen=True)
class _Test:
    """One compiled condition.

    Either `rows`, a select of the field_values or record_relations rows (their record id
    column is `id_column`) whose presence makes it true (absence when `negated`), or
    `on_record`, a test of the records table's own columns (the built-in fields).
    """

    rows: Select[Any] | None = None
    id_column: Any = None
    negated: bool = False
    on_record: ColumnElement[bool] | None = None
    # The rows belong to the folder's records only (a field's values or links); record_stats
    # rows are the whole workspace's.
    scoped: bool = True

    @property
    def drives(self) -> bool:
        """True when it selects field_values rows: at most one per record, so counts start here."""
        return self.rows is not None and not self.negated and self.id_column is FieldValue.record_id

    def holds(self, subject: Any, scope: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
        """The test on a record-id column: `records.id`, or the id of a driving row."""
        if self.on_record is not None:
            if subject is Record.id:
                return self.on_record
            # The scope is known true here; it lets a range on a built-in column use the
            # (workspace, folder, column) indexes.
            return (
                select(Record.id)
                .where(
                    Record.id == subject, *([scope] if scope is not None else []), self.on_record
                )
                .correlate_except(Record)
                .exists()
            )
        assert self.rows is not None
        # Correlated on the subject only, whatever query the test ends up in.
        found = (
            self.rows.where(self.id_column == subject)
            .correlate_except(self.id_column.class_)
            .exists()
        )
        return ~found if self.negated else found

    def record_ids(self, scope: ColumnElement[bool]) -> Select[Any]:
        """The ids of the records of the scope that pass, for a union of conditions."""
        if self.rows is not None and not self.negated and self.scoped:
            return self.rows
        return select(Record.id).where(scope, self.holds(Record.id))


def _values_test(fdef: FieldDef, *tests: ColumnElement[bool], negated: bool = False) -> _Test:
    rows = select(FieldValue.record_id).where(FieldValue.field_id == fdef.id, *tests)
    return _Test(rows, FieldValue.record_id, negated)


def _links_test(fdef: FieldDef, *tests: ColumnElement[bool], negated: bool = False) -> _Test:
    rows = select(RecordRelation.from_record_id).where(RecordRelation.field_id == fdef.id, *tests)
    return _Test(rows, RecordRelation.from_record_id, negated)


def _day(raw: str, label: str) -> date:
    text = raw.strip()
    try:
        if ascii_digits(text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date()
        return date.fromisoformat(text[:10])
    except (ValueError, OverflowError, OSError):
        raise ViewError(f"“{label}”: “{raw}” is not a date (use YYYY-MM-DD)") from None


def _date_test(
    column: Any, op: str, raw: str, label: str, *, as_text: bool, today: date
) -> ColumnElement[bool]:
    # Dates are ISO text in text_key ("2025-06-02", "2025-06-02T10:00:00Z"), so string
    # comparison is chronological; built-in columns compare as timestamps.
    def bound(day: date) -> Any:
        return day.isoformat() if as_text else datetime(day.year, day.month, day.day, tzinfo=UTC)

    if op == "last_n_days":
        start = today - timedelta(days=int(raw))
        return and_(column >= bound(start), column < bound(today + timedelta(days=1)))
    day = _day(raw, label)
    next_day = day + timedelta(days=1)
    if op == "before":
        return column < bound(day)
    if op == "after":
        return column >= bound(next_day)
    return and_(column >= bound(day), column < bound(next_day))  # equals: on that day


def _member_ids(session: Session, workspace_id: int, raw: str) -> list[int]:
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        found = find_member_id(session, workspace_id, part)
        if found is None:
            raise ViewError(f"“{part}” is not a member of this workspace")
        ids.append(found)
    return ids


def _link_targets(session: Session, workspace_id: int, fdef: FieldDef, raw: str) -> Select[int]:
    target_folder = select(Folder.id).where(
        Folder.workspace_id == workspace_id, Folder.key == str(fdef.options.get("folder"))
    )
    text = raw.strip()
    # Never correlated: these look up other records, whatever query they end up in.
    if text.startswith("#") and ascii_digits(text[1:]):
        return (
            select(Record.id)
            .where(Record.id == int(text[1:]), Record.workspace_id == workspace_id)
            .correlate(None)
        )
    return (
        select(Record.id)
        .where(
            Record.workspace_id == workspace_id,
            Record.folder_id.in_(target_folder.correlate(None)),
            Record.search_key == _text_key(text),
        )
        .correlate(None)
    )


def _condition_clause(
    session: Session,
    workspace_id: int,
    by_key: dict[str, FieldDef],
    condition: Condition,
    today: date,
) -> _Test:
    key, op, raw = condition.field_key, condition.op, condition.value
    if key in BUILTIN_FIELDS:
        label = BUILTIN_FIELDS[key][0]
        if key == "_title":
            return _Test(on_record=_builtin_text_clause(op, raw))
        column = Record.created_at if key == "_created" else Record.updated_at
        if op == "is_empty":
            return _Test(on_record=false())
        if op == "is_not_empty":
            return _Test(on_record=true())
        return _Test(on_record=_date_test(column, op, raw, label, as_text=False, today=today))

    fdef = by_key[key]
    kind = _kind(fdef, key)
    if fdef.type == "stats":
        return _stats_clause(workspace_id, fdef, kind, op, raw, today)
    if op == "is_empty" or op == "is_not_empty":
        present = _links_test if fdef.type == "link" else _values_test
        return present(fdef, negated=op == "is_empty")

    if fdef.type == "link":
        targets: list[Select[int]] = [
            _link_targets(session, workspace_id, fdef, part)
            for part in (raw.split(",") if op == "in_list" else [raw])
            if part.strip()
        ]
        return _links_test(
            fdef,
            or_(*(RecordRelation.to_record_id.in_(t) for t in targets)),
            negated=op == "not_equals",
        )

    if fdef.type == "user":
        ids = _member_ids(session, workspace_id, raw)
        return _values_test(
            fdef, FieldValue.num_key.in_([float(i) for i in ids]), negated=op == "not_equals"
        )

    if kind in _DATE_TYPES:
        return _values_test(
            fdef, _date_test(FieldValue.text_key, op, raw, fdef.label, as_text=True, today=today)
        )

    numeric = kind in _NUMERIC_TYPES or kind == "number"
    if op in ("contains", "not_contains"):
        pattern = f"%{_like_escape(_text_key(raw))}%"
        return _values_test(
            fdef, FieldValue.text_key.like(pattern, escape="\\"), negated=op == "not_contains"
        )

    parts = [p for p in raw.split(",") if p.strip()] if op == "in_list" else [raw]
    tests: list[ColumnElement[bool]] = []
    # Equalities go into one IN list: an index condition, where OR-ed equalities make
    # PostgreSQL filter every key of the field.
    same_numbers: list[float] = []
    same_texts: list[str] = []
    for part in parts:
        text_key: str | None
        num_key: float | None
        if fdef.type == "formula":
            text_key, num_key = None, _number(fdef, part)
        else:
            text_key, num_key = _keys_of(fdef, part)
        if numeric:
            if num_key is None:
                raise ViewError(f"“{fdef.label}”: “{part}” is not a number")
            if op == "gt":
                tests.append(FieldValue.num_key > num_key)
            elif op == "lt":
                tests.append(FieldValue.num_key < num_key)
            else:
                same_numbers.append(num_key)
        elif fdef.type in _MULTI_TYPES and text_key:
            # A list field "is" a value when the value is one of its items.
            for item in text_key.strip("|").split("|"):
                tests.append(FieldValue.text_key.like(f"%|{_like_escape(item)}|%", escape="\\"))
        elif text_key is not None:
            same_texts.append(text_key)
        else:
            tests.append(FieldValue.text_key.is_(None))
    if same_numbers:
        tests.append(FieldValue.num_key.in_(same_numbers))
    if same_texts:
        tests.append(FieldValue.text_key.in_(same_texts))
    return _values_test(fdef, or_(*tests), negated=op == "not_equals")


def _number(fdef: FieldDef, part: str) -> float:
    """A computed field's comparison value (a decimal comma is read as a point)."""
    try:
        return float(part.replace(",", "."))
    except ValueError:
        raise ViewError(f"“{fdef.label}”: “{part}” is not a number") from None


def _stats_clause(
    workspace_id: int, fdef: FieldDef, kind: str, op: str, raw: str, today: date
) -> _Test:
    """A condition on a stats field, tested on its record_stats column (stats fields store
    no values of their own; a record without email activity has no row, so no value)."""
    column = METRIC_COLUMNS[str(fdef.options.get("metric"))]

    def rows(*tests: ColumnElement[bool], negated: bool = False) -> _Test:
        found = select(RecordStats.record_id).where(
            RecordStats.workspace_id == workspace_id, column.is_not(None), *tests
        )
        return _Test(found, RecordStats.record_id, negated, scoped=False)

    if op in _NO_VALUE:
        return rows(negated=op == "is_empty")
    if kind == "builtin_datetime":
        return rows(_date_test(column, op, raw, fdef.label, as_text=False, today=today))
    parts = [p.strip() for p in (raw.split(",") if op == "in_list" else [raw]) if p.strip()]
    tests: list[ColumnElement[bool]] = []
    if kind == "days_since":
        # "More than N days since" a moment is a moment before a bound computed from
        # today, so the stored moment never goes stale.
        for part in parts:
            try:
                day = today - timedelta(days=int(part))
            except (ValueError, OverflowError):
                raise ViewError(f"“{fdef.label}”: “{part}” is not a whole number of days") from None
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            if op == "gt":
                tests.append(column < start)
            elif op == "lt":
                tests.append(column >= end)
            else:
                tests.append(and_(column >= start, column < end))
        return rows(or_(*tests), negated=op == "not_equals")
    same: list[float] = []
    for part in parts:
        number = _number(fdef, part)
        if op == "gt":
            tests.append(column > number)
        elif op == "lt":
            tests.append(column < number)
        else:
            same.append(number)
    if same:
        tests.append(column.in_(same))
    return rows(or_(*tests), negated=op == "not_equals")


def _builtin_text_clause(op: str, raw: str) -> ColumnElement[bool]:
    key = _text_key(raw)
    if op == "equals":
        return Record.search_key == key
    if op == "not_equals":
        return Record.search_key != key
    if op == "contains":
        return Record.search_key.like(f"%{_like_escape(key)}%", escape="\\")
    if op == "not_contains":
        return ~Record.search_key.like(f"%{_like_escape(key)}%", escape="\\")
    if op == "in_list":
        return Record.search_key.in_([_text_key(p) for p in raw.split(",") if p.strip()])
    if op == "is_empty":
        return Record.search_key == ""
    return Record.search_key != ""


def view_filter(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    today: date | None = None,
    visible: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    """The WHERE clause selecting the view's records (always scoped to the folder, and to
    `visible`: addon.auth.roles.record_scope of who is looking)."""
    return _where(folder, definition, _compile(session, folder, definition, today), visible)


def _where(
    folder: Folder,
    definition: ViewDefinition,
    tests: list[_Test],
    visible: ColumnElement[bool] | None,
) -> ColumnElement[bool]:
    scope = _scope(folder, visible)
    if not tests:
        return scope
    clauses = [t.holds(Record.id) for t in tests]
    combined = or_(*clauses) if definition.match_any else and_(*clauses)
    return and_(scope, combined)


def _scope(folder: Folder, visible: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    extra = [visible] if visible is not None else []
    return and_(Record.workspace_id == folder.workspace_id, Record.folder_id == folder.id, *extra)


def _compile(
    session: Session, folder: Folder, definition: ViewDefinition, today: date | None
) -> list[_Test]:
    fields = {f.key: f for f in folder_fields(session, folder.id)}
    day = today or datetime.now(UTC).date()
    return [
        _condition_clause(session, folder.workspace_id, fields, c, day)
        for c in definition.conditions
    ]


def view_record_ids(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    today: date | None = None,
    visible: ColumnElement[bool] | None = None,
) -> Select[int]:
    """A select of the ids of the view's records, for mass update, export and mail merge."""
    return select(Record.id).where(
        view_filter(session, folder, definition, today=today, visible=visible)
    )


def _matching_ids(
    folder: Folder,
    definition: ViewDefinition,
    tests: list[_Test],
    visible: ColumnElement[bool] | None,
) -> Select[Any] | CompoundSelect[Any]:
    """A select of the ids of the records passing the compiled tests, built for counting
    (no order)."""
    scope = _scope(folder, visible)
    if visible is not None:
        # The fast paths below start from field rows, outside the records table the
        # visibility condition reads: count from the records instead.
        return select(Record.id).where(_where(folder, definition, tests, visible))
    if len(tests) > 1 and definition.match_any:
        # The union of each condition's records: set operations, no per-record OR.
        return union(*(t.record_ids(scope) for t in tests))
    if driver := next((t for t in tests if t.drives), None):
        # Start from one field's rows (its values belong to records of this folder) and
        # test the others on their record ids: `records` is never scanned.
        assert driver.rows is not None
        rows = driver.rows.subquery()
        subject = rows.c[0]
        return select(subject).where(*(t.holds(subject, scope) for t in tests if t is not driver))
    return select(Record.id).where(scope, *(t.holds(Record.id) for t in tests))


def count_view(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    today: date | None = None,
    cap: int | None = None,
    visible: ColumnElement[bool] | None = None,
) -> int:
    """How many records the view holds (of those `visible` lets the caller see); with a
    cap, counting stops at cap + 1."""
    ids = _matching_ids(folder, definition, _compile(session, folder, definition, today), visible)
    if cap is not None:
        # Counting stops early: the sidebar says "10,000+" instead of walking every
        # matching index entry of a view that holds a large part of the folder.
        ids = ids.limit(cap + 1)
    query = select(func.count()).select_from(ids.subquery())
    return int(session.execute(query).scalar_one())


def count_view_capped(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    today: date | None = None,
    cap: int | None = None,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, bool]:
    """The view's record count up to `cap` (COUNT_CAP), and whether it holds more than that."""
    cap = COUNT_CAP if cap is None else cap
    counted = count_view(session, folder, definition, today=today, cap=cap, visible=visible)
    return min(counted, cap), counted > cap


def _id_among(session: Session, ids: Sequence[int]) -> ColumnElement[bool]:
    """records.id is one of these (up to COUNT_CAP + 1 of them)."""
    if is_postgresql(session):
        # One array parameter: ten thousand separate ones cost more to bind and plan
        # than the page costs to read.
        return Record.id == any_(bindparam("within_ids", list(ids), type_=ARRAY(Integer)))
    return Record.id.in_(ids)


@contextmanager
def _serial_plans(session: Session) -> Iterator[None]:
    """Statements in the block run without parallel workers (PostgreSQL).

    A page of a large view walks the sort order and stops at the page's last match. In
    parallel, each worker walks its own share of the order ahead of the merge, and what
    the page does not take is thrown away: at 1M contacts a "stage and job title
    contains" page read 6,000 records in 3 processes (118 ms) where one walk reads 600
    (18 ms). The setting is local to the transaction and put back after the block.
    """
    if not is_postgresql(session):
        yield
        return
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    # Not in a `finally`: after an error the transaction is aborted and only rolling it
    # back (which drops the setting) is allowed; another statement would hide the error.
    yield
    session.execute(text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))


@dataclass
class ViewPage:
    """A page of a view with the view's count (up to the cap) as the view card shows them."""

    records: list[Record]
    count: int
    more: bool
    page: int


def view_page(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    page: int = 0,
    page_size: int = PAGE_SIZE,
    today: date | None = None,
    visible: ColumnElement[bool] | None = None,
    cap: int | None = None,
) -> ViewPage:
    """The view's count (stopping past `cap`) and one page of its records.

    The matching ids are read once, up to cap + 1 of them. When the view holds no more
    than that, its page is sorted out of those ids: walking the sort order and testing
    each record against the conditions, the way a page of a large view is found, reads
    far more rows when matches are rare (a "name contains" view walked a quarter of a
    million titles for twenty names). A page past the end shows the last one.
    """
    cap = COUNT_CAP if cap is None else cap
    # The conditions are compiled once (their field, member and record lookups) for both
    # statements.
    tests = _compile(session, folder, definition, today)
    ids = list(
        session.execute(_matching_ids(folder, definition, tests, visible).limit(cap + 1)).scalars()
    )
    if len(ids) > cap:
        where = _where(folder, definition, tests, visible)
        with _serial_plans(session):
            records = _sorted_page(session, folder, definition, where, page, page_size)
        return ViewPage(records, cap, True, page)
    page = min(max(0, page), max(0, (len(ids) - 1) // page_size))
    records = (
        _sorted_page(session, folder, definition, _id_among(session, ids), page, page_size)
        if ids
        else []
    )
    return ViewPage(records, len(ids), False, page)


def list_view(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    *,
    page: int = 0,
    page_size: int = PAGE_SIZE,
    today: date | None = None,
    visible: ColumnElement[bool] | None = None,
) -> list[Record]:
    """One page of the view's records in its sort order (ties broken by id)."""
    where = view_filter(session, folder, definition, today=today, visible=visible)
    return _sorted_page(session, folder, definition, where, page, page_size)


def _sorted_page(
    session: Session,
    folder: Folder,
    definition: ViewDefinition,
    where: ColumnElement[bool],
    page: int,
    page_size: int,
) -> list[Record]:
    """The records matching `where`, in the view's sort order, one page."""
    query = select(Record).where(where)
    offset = max(0, page) * page_size
    key = definition.sort_field
    if key in BUILTIN_FIELDS:
        column: Any = {
            "_title": Record.search_key,
            "_created": Record.created_at,
            "_updated": Record.updated_at,
        }[key]
        query = query.order_by(column.desc() if definition.sort_desc else column.asc())
    else:
        fdef = next((f for f in folder_fields(session, folder.id) if f.key == key), None)
        if fdef is not None:
            return _list_by_field(session, query, fdef, definition.sort_desc, offset, page_size)
    query = query.order_by(Record.id).limit(page_size).offset(offset)
    return list(session.execute(query).scalars())


def _list_by_field(
    session: Session, query: Select[Any], fdef: FieldDef, desc: bool, offset: int, size: int
) -> list[Record]:
    # Empty values last in both directions, as spreadsheets show them. In two steps, so
    # the records with a value come from walking the field's index in order (a page costs
    # what it shows) and the empty ones, by id, only once the valued ones run out.
    kind = _kind(fdef, fdef.key)
    numeric = kind in _NUMERIC_TYPES or kind == "number"
    # More days since a moment is an earlier moment: the stored one sorts reversed.
    descending = desc != (kind == "days_since")
    has_value: ColumnElement[bool]
    if fdef.type == "stats":
        # Read from the record's email stats (indexed by workspace for the common moments).
        stats = aliased(RecordStats)
        metric = METRIC_COLUMNS[str(fdef.options.get("metric"))]
        column: Any = getattr(stats, metric.key)
        on = and_(
            stats.record_id == Record.id,
            stats.workspace_id == fdef.workspace_id,
            column.is_not(None),
        )
        valued = query.join(stats, on)
        has_value = (
            select(RecordStats.record_id)
            .where(RecordStats.record_id == Record.id, metric.is_not(None))
            .correlate_except(RecordStats)
            .exists()
        )
    else:
        sort_value = aliased(FieldValue)
        column = sort_value.num_key if numeric else sort_value.text_key
        valued = query.join(
            sort_value,
            and_(
                sort_value.record_id == Record.id,
                sort_value.field_id == fdef.id,
                column.is_not(None),
            ),
        )
        has_value = (
            select(FieldValue.id)
            .where(
                FieldValue.record_id == Record.id,
                FieldValue.field_id == fdef.id,
                (FieldValue.num_key if numeric else FieldValue.text_key).is_not(None),
            )
            .correlate_except(FieldValue)
            .exists()
        )
    ordered = valued.order_by(column.desc() if descending else column.asc(), Record.id)
    found = list(session.execute(ordered.limit(size).offset(offset)).scalars())
    if len(found) == size:
        return found
    if found or offset == 0:
        skip = 0  # this page holds the last valued records, or there are none
    else:
        valued_count = select(func.count()).select_from(
            valued.with_only_columns(Record.id).subquery()
        )
        skip = offset - int(session.execute(valued_count).scalar_one())
    empty = (
        query.where(~has_value).order_by(Record.id).limit(size - len(found)).offset(max(0, skip))
    )
    return found + list(session.execute(empty).scalars())


# --------------------------------------------------------------------------- saved views


def visible_views(
    session: Session, member: Member, folder: Folder | None = None
) -> list[SavedView]:
    """Views shared with the workspace plus the member's own, by name."""
    query = select(SavedView).where(
        SavedView.workspace_id == member.workspace_id,
        or_(SavedView.owner_id.is_(None), SavedView.owner_id == member.id),
    )
    if folder is not None:
        query = query.where(SavedView.folder_id == folder.id)
    return list(session.execute(query.order_by(SavedView.name, SavedView.id)).scalars())


def get_view(session: Session, member: Member, view_id: str | int) -> SavedView:
    """A view the member may see, or ViewError (another workspace's view looks missing)."""
    try:
        vid = int(view_id)
    except (TypeError, ValueError):
        raise ViewError("this view does not exist") from None
    view = session.get(SavedView, vid) if 0 < vid < 2**31 else None
    if (
        view is None
        or view.workspace_id != member.workspace_id
        or (view.owner_id is not None and view.owner_id != member.id)
    ):
        raise ViewError("this view does not exist")
    return view


def save_view(
    session: Session,
    member: Member,
    folder: Folder,
    name: str,
    raw_definition: Any,
    *,
    shared: bool,
    view: SavedView | None = None,
) -> SavedView:
    """Validate and store a view (new or edited); flushes only."""
    if folder.workspace_id != member.workspace_id:
        raise ViewError("this folder does not exist")
    clean_name = " ".join(name.split())
    if not clean_name:
        raise ViewError("give the view a name")
    if len(clean_name) > 100:
        raise ViewError("the name is longer than 100 characters")
    definition = parse_definition(folder_fields(session, folder.id), raw_definition)
    created = view is None
    if view is None:
        view = SavedView(workspace_id=member.workspace_id, folder_id=folder.id)
        view.created_by_id = member.id
        session.add(view)
        before = None
    else:
        before = {"name": view.name, "shared": view.owner_id is None, **view.definition}
    view.name = clean_name
    view.owner_id = None if shared else member.id
    view.definition = definition.to_json()
    session.flush()
    after = {"name": view.name, "shared": view.owner_id is None, **view.definition}
    if before != after:
        record_audit(
            session,
            member,
            "create_view" if created else "update_view",
            workspace_id=view.workspace_id,
            folder_id=view.folder_id,
            summary=f"{'Created' if created else 'Changed'} view {view.name}",
            before=before,
            after={**after, "view_id": view.id},
        )
    return view


def delete_view(session: Session, member: Member, view: SavedView) -> None:
    """Delete a view (its records stay) and leave an audit entry with its definition."""
    if view.workspace_id != member.workspace_id:
        raise ViewError("this view does not exist")
    record_audit(
        session,
        member,
        "delete_view",
        workspace_id=view.workspace_id,
        folder_id=view.folder_id,
        summary=f"Deleted view {view.name}",
        before={"name": view.name, "shared": view.owner_id is None, **view.definition},
    )
    session.delete(view)
    session.flush()


def load_definition(session: Session, view: SavedView) -> ViewDefinition:
    """A stored view's definition, re-validated against the folder's current fields."""
    return parse_definition(folder_fields(session, view.folder_id), view.definition)
