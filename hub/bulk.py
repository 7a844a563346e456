"""Bulk writes with SQLAlchemy Core executemany: the ORM bulk path costs more in Python
than the statements themselves when a batch writes hundreds of rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany INSERT (column defaults apply to the columns the rows leave out)."""
    if rows:
        session.execute(insert(table), list(rows))


def update_rows(session: Session, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE … WHERE key = :key per set of columns the rows carry."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(c for c in row if c != key)), []).append(row)
    for columns, params in groups.items():
        statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(
            {c: bindparam(f"b_{c}") for c in columns})
        session.execute(statement, [{f"b_{c}": v for c, v in p.items()} for p in params])
