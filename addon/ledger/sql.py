"""SQL helpers shared by the ledger modules: prepared IN lists and fast bulk inserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Select,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import InternalTraversal

T = TypeVar("T")
# A SELECT of any columns.
AnySelect = Select[*tuple[Any, ...]]

# Well under SQLite's 32,766 bound parameters, and a size PostgreSQL plans well.
IN_CHUNK = 900
# Rows per INSERT ... SELECT FROM unnest(...) on PostgreSQL.
ARRAY_CHUNK = 10_000
# Bound parameters per multi-row INSERT on SQLite (its limit is 32,766).
SQLITE_PARAMETERS = 30_000

# The IN list of prepared statements (see in_values). Statements built once with it skip
# rebuilding and coercing a list of literals on every call.
IN_VALUES: BindParameter[Any] = bindparam("in_values", expanding=True)


class InValues(ColumnElement[bool]):
    """`column` is one of the values of the `in_values` parameter (see rows_in).

    SQLite gets an IN list of the values. PostgreSQL gets `= ANY(<one array>)`: a single
    parameter however many values, so a batch's lookup is one statement where IN lists
    under the bound-parameter limit took a round trip (and a plan) per 900 values.
    """

    # No Boolean type: SQLite (no native booleans) would compare it with 1, and then no
    # index serves it.
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = (
            column.__clause_element__() if hasattr(column, "__clause_element__") else column
        )


@compiles(InValues)
def _in_list(element: InValues, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(IN_VALUES), **kw))


@compiles(InValues, "postgresql")
def _in_array(element: InValues, compiler: Any, **kw: Any) -> str:
    values = bindparam("in_values", type_=postgresql.ARRAY(element.column.type))
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(values, **kw)})"


def in_values(column: Any) -> InValues:
    """The condition of the statements rows_in runs: `column` is one of the values."""
    return InValues(column)


def chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """The values in lists of at most `size`, for IN lists and executemany batches."""
    if isinstance(values, list):
        # Slices: a list is most callers' case, and copying it item by item costs more.
        for start in range(0, len(values), size):
            yield values[start : start + size]
        return
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def rows_in(
    session: Session,
    statement: AnySelect,
    values: Iterable[Any],
    **params: Any,
) -> Iterator[Any]:
    """The rows of a statement filtering with `in_values`, per chunk of the distinct values.

    The statement must be built once (a module constant): SQLite runs it from a cache of
    its compiled text, keyed by the statement.
    """
    distinct = sorted(set(values))
    if is_postgresql(session):
        for chunk in chunks(distinct, ARRAY_CHUNK):
            yield from session.execute(statement, {**params, "in_values": chunk})
        return
    yield from _sqlite_rows_in(session, statement, distinct, params)


@dataclass(frozen=True)
class _SqliteQuery:
    """A statement's SQL around its IN list, and how to bind and read it."""

    head: str
    tail: str
    names_before: tuple[str, ...]
    names_after: tuple[str, ...]
    # Values the statement itself binds (its literals), by parameter name.
    defaults: dict[str, Any]
    # Bound values the driver cannot take as they are, by parameter name.
    binders: dict[str, Callable[[Any], Any]]
    # Result columns the driver returns raw (DateTime as text), by position.
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]

    def bound(self, names: tuple[str, ...], params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of these parameters, ready for the driver."""
        return tuple(
            self.bind(name, params[name] if name in params else self.defaults[name])
            for name in names
        )

    def bind(self, name: str, value: Any) -> Any:
        """One value ready for the driver."""
        binder = self.binders.get(name)
        return value if binder is None else binder(value)


_SQLITE_QUERIES: dict[AnySelect, _SqliteQuery] = {}


def _sqlite_query(statement: AnySelect, dialect: Any) -> _SqliteQuery:
    query = _SQLITE_QUERIES.get(statement)
    if query is not None:
        return query
    compiled = statement.compile(dialect=dialect)
    marker = "(__[POSTCOMPILE_in_values])"
    sql = str(compiled)
    head, found, tail = sql.partition(marker)
    if not found or marker in tail:
        raise ValueError(f"rows_in needs one in_values condition: {sql}")
    names = list(compiled.positiontup or ())
    split = names.index("in_values")
    binders: dict[str, Callable[[Any], Any]] = {}
    for name in names:
        binder = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if binder is not None:
            binders[name] = binder
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(statement.selected_columns):
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if processor is not None:
            converters.append((i, processor))
    query = _SqliteQuery(
        head,
        tail,
        tuple(names[:split]),
        tuple(names[split + 1 :]),
        {name: bind.value for name, bind in compiled.binds.items() if name != "in_values"},
        binders,
        tuple(converters),
    )
    _SQLITE_QUERIES[statement] = query
    return query


def _sqlite_rows_in(
    session: Session,
    statement: AnySelect,
    values: list[Any],
    params: dict[str, Any],
) -> Iterator[Any]:
    # SQLAlchemy re-renders the expanding IN list and wraps every row on each call, about
    # as costly as the query itself for a batch's lookups; the driver's cursor runs the
    # compiled text directly. Pending ORM changes are flushed first, as execute would.
    if not values:
        return
    if session.autoflush:
        session.flush()
    connection = session.connection()
    query = _sqlite_query(statement, connection.dialect)
    before = query.bound(query.names_before, params)
    after = query.bound(query.names_after, params)
    if "in_values" in query.binders:
        values = [query.bind("in_values", value) for value in values]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in chunks(values, IN_CHUNK):
            sql = f"{query.head}({', '.join('?' * len(chunk))}){query.tail}"
            rows = cursor.execute(sql, (*before, *chunk, *after)).fetchall()
            if query.converters:
                rows = [_converted(row, query.converters) for row in rows]
            yield from rows
    finally:
        cursor.close()


def _converted(row: tuple[Any, ...], converters: Sequence[tuple[int, Callable[[Any], Any]]]) -> Any:
    values = list(row)
    for i, convert in converters:
        values[i] = convert(values[i])
    return tuple(values)


def is_postgresql(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def dialect_insert(session: Session, model: Any) -> Any:
    """The INSERT of the session's dialect, which has ON CONFLICT on both databases."""
    table: Table = model.__table__
    return postgresql.insert(table) if is_postgresql(session) else sqlite.insert(table)


def sqlite_datetime(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores for a UTC moment (wall time, µs)."""
    return cast(str, _sqlite_moments((moment,))[0])


def _sqlite_moments(moments: Sequence[datetime | None]) -> tuple[str | None, ...]:
    """A DateTime column's values as SQLAlchemy's SQLite DateTime stores them, each
    distinct one formatted once.

    Formatting an aware datetime costs a microsecond, and a batch repeats many (its
    timestamps, the moments a record's stats fields share). The formatting is written in
    the loop: a call per value would cost about as much as the formatting.
    """
    done: dict[datetime, str] = {}
    out: list[str | None] = []
    for moment in moments:
        if moment is None:
            out.append(None)
            continue
        text = done.get(moment)
        if text is None:
            # The first 26 characters leave out the "+00:00" of an aware value.
            text = done[moment] = moment.isoformat(" ", "microseconds")[:26]
        out.append(text)
    return tuple(out)


def _processed(values: Sequence[Any], processor: Callable[[Any], Any]) -> tuple[Any, ...]:
    """A column's values through its type's bind processor, each distinct value once.

    Keyed by type and value: 1, 1.0 and True are equal keys but serialise differently.
    A batch repeats values (names, stages, counts); unhashable ones (JSON objects and
    lists) are converted each time.
    """
    done: dict[tuple[type, Any], Any] = {}
    out = []
    for value in values:
        key = (value.__class__, value)
        try:
            converted = done[key]
        except KeyError:
            converted = done[key] = processor(value)
        except TypeError:
            converted = processor(value)
        out.append(converted)
    return tuple(out)


def insert_many(
    session: Session,
    model: Any,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    finish: Callable[[Any], Any] = lambda stmt: stmt,
    returning: Sequence[Any] = (),
    *,
    columns: Sequence[str] = (),
) -> list[Any]:
    """Insert rows into one table (a model or a Table) in as few round trips as the
    database allows.

    Rows are mappings by column name, or tuples of the values of `columns` in that order
    (cheaper to build for large batches). `finish` gets the dialect's INSERT and adds an
    ON CONFLICT clause; the `returning` columns of the rows inserted are returned.
    SQLAlchemy's executemany processes every value of every row in Python, most of the
    cost of a bulk insert, so PostgreSQL gets one INSERT ... SELECT FROM unnest(<one array
    per column>) per 10,000 rows and SQLite its driver's executemany of the compiled
    statement (SQLAlchemy's multi-row VALUES when rows come back). Values must be plain:
    ints, strings, None, aware UTC datetimes.
    """
    if not rows:
        return []
    table: Table = model if isinstance(model, Table) else model.__table__
    # Where each column's value is in a row: its name, or its position in `columns`.
    tuples = bool(columns)
    position: dict[str, Any] = (
        {name: i for i, name in enumerate(columns)} if tuples else {n: n for n in rows[0]}
    )
    columns = list(position)
    if is_postgresql(session):
        arrays = select(
            *[
                func.unnest(bindparam(f"c{i}", type_=postgresql.ARRAY(table.c[name].type)))
                for i, name in enumerate(columns)
            ]
        )
        stmt = finish(postgresql.insert(table).from_select(columns, arrays))
        if returning:
            stmt = stmt.returning(*returning)
        found: list[Any] = []
        for chunk in chunks(rows, ARRAY_CHUNK):
            params = {
                f"c{i}": [row[position[name]] for row in chunk]  # type: ignore[index]
                for i, name in enumerate(columns)
            }
            result = session.execute(stmt, params)
            if returning:
                found.extend(result.all())
        return found
    stmt = finish(sqlite.insert(table))
    if returning:
        stmt = stmt.returning(*returning)
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect, column_keys=columns)
    order = list(compiled.positiontup or ())
    # Values the driver cannot take as they are: DateTime as SQLAlchemy's stored text
    # (converted here, faster), anything else (JSON) through the type's own processor.
    processors: list[tuple[int, Callable[[Sequence[Any]], tuple[Any, ...]]]] = []
    for i, name in enumerate(order):
        column_type = table.c[name].type
        if isinstance(column_type, DateTime):
            processors.append((i, _sqlite_moments))
            continue
        processor = column_type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
        if processor is not None:
            processors.append((i, partial(_processed, processor=processor)))
    params_list: Sequence[Sequence[Any]]
    if tuples and order == columns:
        # Tuples already in the statement's order (the ingest's rows) go as they are (a
        # list: SQLAlchemy reads a tuple of tuples as one row's parameters).
        in_order = cast(Sequence[Sequence[Any]], rows)
        params_list = in_order if isinstance(in_order, list) else list(in_order)
    else:
        getter = itemgetter(*[position[name] for name in order])
        if len(order) == 1:
            params_list = [(getter(row),) for row in rows]
        else:
            params_list = [getter(row) for row in rows]
    if processors:
        # Column by column: each column's values go through one converter in one loop.
        values_of = list(zip(*params_list, strict=True))
        for i, process in processors:
            values_of[i] = process(values_of[i])
        params_list = list(zip(*values_of, strict=True))
    sql = str(compiled)
    if not returning:
        connection.exec_driver_sql(sql, params_list)
        return []
    # executemany returns no rows: one multi-row VALUES statement per chunk instead,
    # under SQLite's limit of bound parameters.
    one = "VALUES (" + ", ".join("?" * len(order)) + ")"
    head, _, tail = sql.partition(one)
    if not tail and not sql.endswith(one):
        raise ValueError(f"unexpected INSERT shape: {sql}")
    found = []
    per_statement = max(1, SQLITE_PARAMETERS // len(order))
    for group in chunks(params_list, per_statement):
        values_sql = "VALUES " + ", ".join([one[7:]] * len(group))
        flat = tuple(chain.from_iterable(group))
        found.extend(connection.exec_driver_sql(head + values_sql + tail, flat).all())
    return found
