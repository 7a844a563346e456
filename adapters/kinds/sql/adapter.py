"""The `sql` adapter: watermark reads with a tie-safe cursor, row-hash full scans, key scans
for deletions, all streamed; write-back through `SqlWriter`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, text

from adapters.kinds.common import (
    BatchBuilder,
    ChangeDetector,
    ScannedRow,
    SourceConfigError,
    rowhash_batches,
)
from adapters.kinds.sql.config import KEY_SEPARATOR, SqlEntity, require_database
from adapters.kinds.sql.values import (
    PLAIN,
    as_datetime,
    behind,
    decode_cursor,
    encode_cursor,
    jsonable,
)
from adapters.kinds.sql.write import SqlWriter
from adapters.port import AdapterState, ApplyResult, ExtractBatch, RawChange, WriteBack


class SqlAdapter:
    kind = "sql"

    def __init__(self, system: str, engine: Engine, entities: dict[str, SqlEntity], *,
                 batch_size: int = 500, clock: Any = None) -> None:
        self.system, self.engine, self.entities, self.batch_size = system, engine, entities, batch_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.writer = SqlWriter(system, engine, entities, clock=lambda: self._clock())

    # ---- extract -------------------------------------------------------------------------------
    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        require_database(self.engine)
        for name, ent in self.entities.items():
            self._check_columns(ent)
            if ent.watermark:
                yield from self._incremental(name, ent, state)
                if self._deletion_scan_due(name, ent, state):
                    yield from self._key_scan(name, ent, state)
            else:
                yield from self._full_scan(name, ent, state)

    def _full_scan(self, name: str, ent: SqlEntity, state: AdapterState) -> Iterator[ExtractBatch]:
        rows = (self._scanned(ent, sid, raw, None)
                for sid, raw, _ in self._rows(ent, self._select(ent, order=ent.keys), {}))
        yield from rowhash_batches(name, rows, state, batch_size=self.batch_size,
                                   deletions_location=self._location(ent, ""))

    def _incremental(self, name: str, ent: SqlEntity, state: AdapterState) -> Iterator[ExtractBatch]:
        """Rows after the committed (watermark, key) cursor; each batch carries its last row's cursor.

        A row without a key is reported and does not move the cursor, so a crash never lets the
        NULL comparison skip the rows that follow it."""
        cursor_key = f"{name}.watermark"
        wm = ent.watermark or ""
        where, params = self._after_cursor(ent, state.cursor(cursor_key))
        sql = self._select(ent, where=where, order=[wm, *ent.keys])
        detector, builder = ChangeDetector(state, name), BatchBuilder(self.batch_size)
        last: list[Any] | None = None  # the cursor of the last identified row, encoded per batch
        for sid, raw, row in self._rows(ent, sql, params):
            outcome = detector.observe(self._scanned(ent, sid, raw, as_datetime(row[wm])))
            if outcome is None:
                builder.unchanged()
            elif isinstance(outcome, RawChange):
                builder.change(outcome)
            else:
                builder.failure(outcome)
            if sid is not None and row[wm] is not None:
                last = [row[c] for c in (wm, *ent.keys)]
            if builder.full:
                if last is not None:
                    builder.checkpoint({cursor_key: encode_cursor(last)})
                yield builder.take()
        if last is not None:
            builder.checkpoint({cursor_key: encode_cursor(last)})
        if not builder.empty:
            yield builder.take()

    def _scanned(self, ent: SqlEntity, sid: str | None, raw: dict[str, Any],
                 observed: dt.datetime | None) -> ScannedRow:
        if sid is None:
            return ScannedRow(None, raw, self._location(ent, "?"),
                              problems=(f"{self._location(ent, '?')}: key column(s) {ent.keys} are NULL",))
        return ScannedRow(sid, raw, self._location(ent, sid), observed)

    def _deletion_scan_due(self, name: str, ent: SqlEntity, state: AdapterState) -> bool:
        if ent.deletion_scan:
            return True
        if ent.deletion_scan_every_s is None:
            return False
        last = state.cursor(f"{name}.deletion_scan_at")
        if last is None:
            return True
        elapsed = self._clock() - dt.datetime.fromisoformat(last)
        return elapsed.total_seconds() >= ent.deletion_scan_every_s

    def _key_scan(self, name: str, ent: SqlEntity, state: AdapterState) -> Iterator[ExtractBatch]:
        """Stream the keys only; rows the hub holds that the table no longer has are deletions."""
        started = self._clock().isoformat()
        keys = ", ".join(self._q(k) for k in ent.keys)
        sql = f"SELECT {keys} FROM {self._from(ent)}"
        seen: set[str] = set()
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(text(sql))
            for row in result:
                if None not in row:
                    seen.add(KEY_SEPARATOR.join(str(v) for v in row))
        builder = BatchBuilder(self.batch_size)
        for source_id in sorted(set(state.row_hashes(name)) - seen):
            builder.change(RawChange(name, source_id, None, self._location(ent, source_id)))
            if builder.full:
                yield builder.take()
        builder.checkpoint({f"{name}.deletion_scan_at": started})
        yield builder.take()

    def _check_columns(self, ent: SqlEntity) -> None:
        with self.engine.connect() as conn:
            names = list(conn.execute(text(f"SELECT * FROM {self._from(ent)} WHERE 1 = 0")).keys())
        missing = [k for k in ent.keys + ([ent.watermark] if ent.watermark else []) if k not in names]
        if missing:
            where = ent.table or "the query"
            raise SourceConfigError(f"{where} has no column(s) {missing}; it has {names}")

    def _rows(self, ent: SqlEntity, sql: str, params: dict[str, Any]) -> Iterator[tuple]:
        """(source id, JSON-able raw row, the row as read) for each row, streamed."""
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
                text(sql), params)
            names = list(result.keys())
            for values in result:
                row = dict(zip(names, values))
                key = [row[k] for k in ent.keys]
                source_id = None if None in key else KEY_SEPARATOR.join(str(v) for v in key)
                raw = {k: v if type(v) in PLAIN else jsonable(v) for k, v in row.items()}
                yield source_id, raw, row

    # ---- SQL text ------------------------------------------------------------------------------
    def _q(self, identifier: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(identifier)

    def _from(self, ent: SqlEntity) -> str:
        if ent.query:
            return f"({ent.query}) src"
        table = self._q(ent.table or "")
        return f"{self._q(ent.db_schema)}.{table}" if ent.db_schema else table

    def _select(self, ent: SqlEntity, *, where: str = "", order: Sequence[str] = ()) -> str:
        sql = f"SELECT * FROM {self._from(ent)}"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += " ORDER BY " + ", ".join(self._q(c) for c in order)
        return sql

    def _after_cursor(self, ent: SqlEntity, encoded: str | None) -> tuple[str, dict[str, Any]]:
        """`(wm, k1, k2, …) > (:c0, :c1, :c2, …)` spelt out, since not every dialect has row values."""
        if encoded is None:
            return "", {}
        values = decode_cursor(encoded)
        if ent.watermark_lookback:
            return f"{self._q(ent.watermark or '')} >= :c0", {"c0": behind(values[0], ent.watermark_lookback)}
        cols = [ent.watermark or "", *ent.keys]
        params = {f"c{i}": v for i, v in enumerate(values)}
        clause = f"{self._q(cols[-1])} > :c{len(cols) - 1}"
        for i in range(len(cols) - 2, -1, -1):
            col = self._q(cols[i])
            clause = f"{col} > :c{i} OR ({col} = :c{i} AND ({clause}))"
        return clause, params

    def _location(self, ent: SqlEntity, source_id: str) -> str:
        where = ent.table if ent.table else "query"
        return f"{where}[{source_id}]" if source_id else where

    def apply(self, change: WriteBack) -> ApplyResult:
        """Insert or update the legacy row; a refusal (conflict, unmapped field) is accepted=False."""
        return self.writer.apply(change)
