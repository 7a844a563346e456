"""Write-back for the `sql` kind: a change made through the hub inserted or updated in the
legacy table, with an optimistic check against a version column when one is configured."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, MetaData, Table, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.kinds.sql.config import (
    KEY_SEPARATOR,
    SqlEntity,
    SqlWrite,
    listify,
    require_database,
    split_id,
)
from adapters.kinds.sql.values import coerce, stamp
from adapters.port import ApplyResult, WriteBack


class SqlWriter:
    """Applies `WriteBack`s to the tables the entities' `write` sections name."""

    def __init__(self, system: str, engine: Engine, entities: dict[str, SqlEntity],
                 clock: Callable[[], dt.datetime]) -> None:
        self.system, self.engine, self.entities, self._clock = system, engine, entities, clock
        self._write_tables: dict[str, Table] = {}

    def apply(self, change: WriteBack) -> ApplyResult:
        """Insert or update the legacy row; a refusal (conflict, unmapped field) is accepted=False."""
        ent = self.entities.get(change.entity)
        sid = change.source_id or ""
        if ent is None or ent.write is None:
            return ApplyResult(sid, False, f"entity {change.entity!r} of {self.system} has no `write` section")
        write = ent.write
        require_database(self.engine)
        values, ignored, problem = column_values(write, change)
        if problem:
            return ApplyResult(sid, False, problem)
        if not values and change.operation == "update":
            return ApplyResult(sid, True, f"nothing to write: {write.table} holds none of {ignored}")
        try:
            table = self._write_table(change.entity, write)
            key_names = listify(write.key) or ent.keys
            unknown = sorted({*values, *write.close_set, *key_names} - set(table.c.keys()))
            if unknown:
                return ApplyResult(sid, False, f"{write.table} has no column(s) {unknown} (write section)")
            values = {k: coerce(table.c[k].type, v) for k, v in values.items()}
            key_cols = [table.c[k] for k in key_names]
            if change.operation == "create":
                return noted(self._insert(table, key_cols, write, values, change), ignored)
            if change.operation in ("update", "close"):
                if change.operation == "close":
                    if not write.close_set:
                        return ApplyResult(sid, False, "closing is not configured (`write.close_set`)")
                    values.update(write.close_set)
                return noted(self._update(table, key_cols, write, values, change), ignored)
        except IntegrityError as exc:
            return ApplyResult(sid, False, f"the legacy database refused the write: {exc.orig}")
        return ApplyResult(sid, False, f"unknown operation {change.operation!r}")

    def _write_table(self, entity: str, write: SqlWrite) -> Table:
        if entity not in self._write_tables:
            self._write_tables[entity] = Table(write.table, MetaData(), schema=write.db_schema,
                                               autoload_with=self.engine)
        return self._write_tables[entity]

    def _insert(self, table: Table, key_cols: list, write: SqlWrite, values: dict[str, Any],
                change: WriteBack) -> ApplyResult:
        if change.source_id:
            values.update(zip((c.name for c in key_cols), split_id(change.source_id, len(key_cols))))
        if write.version_column:
            values.setdefault(write.version_column, 1)
        if write.modified_column:
            values[write.modified_column] = stamp(table.c[write.modified_column].type, self._clock())
        with self.engine.begin() as conn:
            if self.engine.dialect.insert_returning:
                row = conn.execute(insert(table).values(values).returning(*key_cols)).one()
            else:
                result = conn.execute(insert(table).values(values))
                row = [values.get(c.name, v) for c, v in zip(key_cols, result.inserted_primary_key or [])]
        return ApplyResult(KEY_SEPARATOR.join(str(v) for v in row), True, "inserted")

    def _update(self, table: Table, key_cols: list, write: SqlWrite, values: dict[str, Any],
                change: WriteBack) -> ApplyResult:
        sid = change.source_id or ""
        if not sid:
            return ApplyResult(sid, False, f"{change.operation} needs the legacy row's source_id")
        match = and_(*(c == v for c, v in zip(key_cols, split_id(sid, len(key_cols)))))
        detail = "updated"
        stmt = update(table).where(match)
        if write.version_column:
            version = table.c[write.version_column]
            values[write.version_column] = func.coalesce(version, 0) + 1
            if change.expected_version is not None:
                stmt = stmt.where(version == change.expected_version)
        elif change.expected_version is not None:
            detail = "updated (no version column configured: applied without an optimistic check)"
        if write.modified_column:
            values[write.modified_column] = stamp(table.c[write.modified_column].type, self._clock())
        with self.engine.begin() as conn:
            if conn.execute(stmt.values(values)).rowcount == 1:
                return ApplyResult(sid, True, detail)
            if not write.version_column:
                return ApplyResult(sid, False, f"no row in {write.table} has key {sid!r}")
            current = conn.execute(select(table.c[write.version_column]).where(match)).first()
        if current is None:
            return ApplyResult(sid, False, f"no row in {write.table} has key {sid!r}")
        return ApplyResult(sid, False, f"version conflict: expected {change.expected_version}, "
                                       f"the legacy row is at {current[0]}")


def column_values(write: SqlWrite, change: WriteBack) -> tuple[dict[str, Any], list[str], str]:
    """(column values, canonical paths with no column, the reason for a refusal or "")."""
    values: dict[str, Any] = {}
    ignored = sorted(p for p in change.values if p not in write.columns)
    if ignored and write.unmapped == "reject":
        return {}, ignored, f"no column is mapped for {ignored} (write.columns)"
    for path, value in change.values.items():
        column = write.columns.get(path)
        if column is None:
            continue
        codes = write.codes.get(column)
        if codes is not None and value is not None:
            if str(value) not in codes:
                return {}, ignored, f"{path}={value!r} has no code in write.codes.{column}"
            value = codes[str(value)]
        values[column] = value
    return values, ignored, ""


def noted(result: ApplyResult, ignored: list[str]) -> ApplyResult:
    if not (ignored and result.accepted):
        return result
    return ApplyResult(result.source_id, True, f"{result.detail}; not held by this system: {ignored}")
