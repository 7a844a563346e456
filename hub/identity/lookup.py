"""Look-ups by a list of keys, the records worker's most frequent statements.

On SQLite they go straight through the driver, in the session's own transaction (pending ORM
changes are flushed first, as a query would). For a few hundred keys SQLAlchemy's statement
building, IN-list expansion and row processing cost about three times SQLite's own work
(measured on a 20,000-person store: 585 µs against 161 µs for 200 keys), and a records-worker
batch makes dozens of them. On PostgreSQL likewise through the driver, with the keys as one
array parameter (`= ANY(%s)`): one statement text per look-up.

Only for columns read as stored (text and integers): no type processing is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, Text, cast, func, select
from sqlalchemy.orm import Session

CHUNK = 500


def rows_in(session: Session, table: Table, columns: Sequence[str], key: str, values: Sequence[Any],
            equal: dict[str, Any] | None = None, *, as_text: Sequence[str] = (), chunk: int = CHUNK,
            counted: bool = False) -> list[tuple]:
    """`columns` of the rows of `table` whose `key` is one of `values` (and whose `equal` columns
    have those values), looked up `chunk` keys at a time in the order given. `as_text`: JSON
    columns read as their stored text (SQLite keeps JSON as text: it is read as it is).
    `counted`: each distinct `columns` once, with how many rows have it (GROUP BY)."""
    if not values:
        return []
    equal = equal or {}
    out: list[tuple] = []
    if session.autoflush and (session.new or session.deleted or session.dirty):
        session.flush()  # as a query by ORM attributes would (a select of table columns does not)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _rows_any(session, table, columns, key, values, equal, as_text, chunk, counted)
    if dialect != "sqlite":
        cols = [cast(table.c[c], Text) if c in as_text else table.c[c] for c in columns]
        for i in range(0, len(values), chunk):
            query = select(*cols, *([func.count()] if counted else [])).where(table.c[key].in_(values[i:i + chunk]))
            for column, value in equal.items():
                query = query.where(table.c[column] == value)
            out += [tuple(row) for row in session.execute(query.group_by(*cols) if counted else query)]
        return out
    driver = session.connection().connection.driver_connection
    names = ", ".join(_quote(table.name, c) for c in columns)
    head = (f"SELECT {names}{', count(*)' if counted else ''} FROM \"{table.name}\" WHERE "
            + "".join(f"{_quote(table.name, c)} = ? AND " for c in equal) + f"{_quote(table.name, key)} IN (")
    tail = f") GROUP BY {names}" if counted else ")"
    fixed = list(equal.values())
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        out += driver.execute(head + ", ".join("?" * len(part)) + tail, fixed + list(part)).fetchall()
    return out


def _rows_any(session: Session, table: Table, columns: Sequence[str], key: str, values: Sequence[Any],
              equal: dict[str, Any], as_text: Sequence[str], chunk: int, counted: bool = False) -> list[tuple]:
    """PostgreSQL: `key = ANY(%s)` with the keys as one array parameter, straight through psycopg.
    An IN list is a different statement for every length, so each look-up was compiled, expanded
    and parsed afresh (~18 % of a records worker on PostgreSQL); one text per look-up is
    converted once. Never prepared: the generic plan of `= ANY($1)` knows no array length and
    was slower than planning each look-up (20,000-person drain 72.5 s → 108 s prepared, 66.6 s not)."""
    driver = session.connection().connection.driver_connection
    names = ", ".join(_quote(table.name, c) + ("::text" if c in as_text else "") for c in columns)
    sql = (f"SELECT {names}{', count(*)' if counted else ''} "
           f"FROM \"{table.name}\" WHERE " + "".join(f"{_quote(table.name, c)} = %s AND " for c in equal)
           + f"{_quote(table.name, key)} = ANY(%s)" + (f" GROUP BY {names}" if counted else ""))
    fixed = list(equal.values())
    out: list[tuple] = []
    for i in range(0, len(values), chunk):
        out += driver.execute(sql, [*fixed, list(values[i:i + chunk])], prepare=False).fetchall()
    return out


def _quote(table: str, column: str) -> str:
    return f'"{table}"."{column}"'
