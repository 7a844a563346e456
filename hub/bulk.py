"""Bulk writes with SQLAlchemy Core: executemany, and `COPY` on PostgreSQL.

The ORM bulk path costs more in Python than the statements themselves when a batch writes
hundreds of rows. On PostgreSQL an executemany is still one INSERT per row on the server;
`COPY … FROM STDIN` takes the batch in one command: ~1.5–2.5× less wall time and half the
client CPU for 200 source records (measured with a throwaway script against this machine's
PostgreSQL, docs/performance.md). On SQLite the rows go to the driver's executemany as
tuples: SQLAlchemy's per-row parameter processing cost more than SQLite's own work. The values go
through the same SQLAlchemy bind processors an INSERT would use, so JSON, dates and NULLs are
stored exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table, bindparam, insert, update
from sqlalchemy.orm import Session

COPY_FROM = 2  # rows from which PostgreSQL gets a COPY instead of an executemany


@dataclass(frozen=True)
class RenderedRows:
    """An INSERT's rows made ready before its transaction (`render_rows`): the columns it writes
    and each row's values through their bind processors, so that the transaction only sends them
    (`insert_rendered`). A bulk link's writer renders its next part while another holds SQLite's
    write lock. `rows` instead when the table's SQL defaults need SQLAlchemy's own INSERT."""

    table: Table
    columns: list[Column] = field(default_factory=list)
    values: list[tuple[Any, ...]] = field(default_factory=list)
    rows: Sequence[dict[str, Any]] = ()


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert every row in one command (column defaults apply to the columns the rows leave out)."""
    if rows:
        insert_rendered(session, render_rows(session.connection().dialect, table, rows))


def render_rows(dialect: Any, table: Table, rows: Sequence[dict[str, Any]]) -> RenderedRows:
    """These rows of `table` as `dialect`'s driver takes them (see `RenderedRows`)."""
    named = {key for row in rows for key in row}
    if dialect.name in ("postgresql", "sqlite") and len(rows) >= COPY_FROM and not _sql_defaults(table, named):
        columns, values = _values(dialect, table, rows, named)
        return RenderedRows(table, columns, list(values))
    return RenderedRows(table, rows=rows)


def insert_rendered(session: Session, rendered: RenderedRows) -> None:
    """`render_rows`' rows inserted in one command: `COPY` on PostgreSQL, an executemany of
    positional parameters on SQLite."""
    if rendered.rows:
        session.execute(insert(rendered.table), list(rendered.rows))
        return
    if not rendered.values:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        copy_rows(connection, rendered.table, rendered.columns, rendered.values)
    else:
        _sqlite_rows(connection, rendered.table, rendered.columns, rendered.values)


def copy_rows(connection: Any, table: Table, columns: Sequence[Column], values: Iterable[tuple[Any, ...]]) -> None:
    """`COPY table (columns) FROM STDIN` of these rendered values on the connection's psycopg
    connection, in its transaction."""
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {dialect.identifier_preparer.format_table(table)} "
                                                f"({_names(dialect, columns)}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)


def _sqlite_rows(connection: Any, table: Table, columns: Sequence[Column], values: list[tuple[Any, ...]]) -> None:
    """One executemany of an INSERT with positional parameters, in the session's transaction."""
    dialect = connection.dialect
    connection.exec_driver_sql(f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                               f"({_names(dialect, columns)}) VALUES ({', '.join('?' * len(columns))})", values)


def _names(dialect: Any, columns: Sequence[Column]) -> str:
    return ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)


def _values(dialect: Any, table: Table, rows: Sequence[dict[str, Any]],
            named: set[str]) -> tuple[list[Column], Any]:
    """The columns an INSERT of these rows writes (`named`: every column some row gives, and those
    with a Python default) and each row's values through the columns' bind processors."""
    columns = [c for c in table.columns if c.name in named or _python_default(c)]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    last: list[tuple[Any, Any]] = [(_UNSET, None)] * len(columns)  # per column: the last value processed

    def row_values(row: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for i, (column, process) in enumerate(zip(columns, processors, strict=True)):
            value = row[column.name] if column.name in row else _default_value(column)
            if process is None:
                values.append(value)
                continue
            seen, done = last[i]
            if value is not seen:  # a batch's rows share one timestamp object: formatted once
                done = process(value)
                last[i] = (value, done)
            values.append(done)
        return tuple(values)
    return columns, (row_values(row) for row in rows)


_UNSET = object()


def _sql_defaults(table: Table, named: set[str]) -> bool:
    """Whether a column the rows leave out has a SQL expression default (only an INSERT evaluates it)."""
    return any(c.default is not None and c.default.is_clause_element and c.name not in named for c in table.columns)


def _python_default(column: Column) -> bool:
    default = column.default
    return default is not None and (default.is_scalar or default.is_callable)


def _default_value(column: Column) -> Any:
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


def update_rows(session: Session, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE … WHERE key = :key per set of columns the rows carry (and the
    columns' `onupdate` values, as SQLAlchemy's UPDATE sets them). On SQLite positional
    parameters straight to the driver, as `insert_rendered` does: SQLAlchemy's per-row
    parameter processing cost more than SQLite's own update."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(c for c in row if c != key)), []).append(row)
    if not groups:
        return
    connection = session.connection()
    for columns, params in groups.items():
        if connection.dialect.name == "sqlite" and not _sql_onupdates(table, columns, key):
            _sqlite_updates(connection, table, key, columns, params)
            continue
        statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(
            {c: bindparam(f"b_{c}") for c in columns})
        session.execute(statement, [{f"b_{c}": v for c, v in p.items()} for p in params])


def _sqlite_updates(connection: Any, table: Table, key: str, names: Sequence[str],
                    rows: Sequence[dict[str, Any]]) -> None:
    """`UPDATE table SET names…, onupdate columns… WHERE key = ?` as one executemany of
    positional parameters, each value through its column's bind processor."""
    dialect = connection.dialect
    given = [table.c[n] for n in names]
    stamped = [c for c in table.columns if c.onupdate is not None and c.name not in names and c.name != key]
    columns = [*given, *stamped, table.c[key]]
    process = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    stamps = [_onupdate_value(c) for c in stamped]
    quote = dialect.identifier_preparer.quote
    sql = (f"UPDATE {dialect.identifier_preparer.format_table(table)} SET "
           f"{', '.join(f'{quote(c.name)} = ?' for c in columns[:-1])} WHERE {quote(key)} = ?")

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        raw = [*(row[n] for n in names), *stamps, row[key]]
        return tuple(p(v) if p is not None else v for p, v in zip(process, raw, strict=True))
    connection.exec_driver_sql(sql, [values(row) for row in rows])


def _sql_onupdates(table: Table, names: Sequence[str], key: str) -> bool:
    """Whether a column the rows leave out is stamped by a SQL expression on update."""
    return any(c.onupdate is not None and c.onupdate.is_clause_element and c.name not in names and c.name != key
               for c in table.columns)


def _onupdate_value(column: Column) -> Any:
    onupdate = column.onupdate
    return onupdate.arg(None) if onupdate.is_callable else onupdate.arg
