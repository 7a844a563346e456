"""The `sql` adapter: watermark reads with a tie-safe cursor, row-hash full scans, key scans
for deletions, re-reads of what trigger-based change capture recorded, all streamed;
write-back through `SqlWriter`."""

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
from adapters.kinds.sql.capture import CLAIM_CURSOR, FULL_RUN_CURSOR, CaptureLog, EntityPlan, plan
from adapters.kinds.sql.config import (
    KEY_SEPARATOR,
    CaptureMatch,
    SqlCapture,
    SqlEntity,
    capture_matches,
    require_database,
)
from adapters.kinds.sql.triggers import CaptureTriggers
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
                 batch_size: int = 500, clock: Any = None, capture: SqlCapture | None = None) -> None:
        self.system, self.engine, self.entities, self.batch_size = system, engine, entities, batch_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.writer = SqlWriter(system, engine, entities, clock=lambda: self._clock())
        self.capture = capture
        self.matches: dict[str, dict[str, CaptureMatch]] = {}
        if capture is not None:
            for name, ent in entities.items():
                if ent.watermark:
                    raise SourceConfigError(f"entities.{name}: `watermark` and [source.capture] are alternatives; "
                                            "with capture on, every entity is read from what the triggers record")
                self.matches[name] = capture_matches(capture, name, ent)
            self.triggers, self.log = CaptureTriggers(engine, capture), CaptureLog(engine, capture)

    # ---- extract -------------------------------------------------------------------------------
    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        require_database(self.engine)
        if self.capture is not None:
            yield from self._captured(state)
            return
        for name, ent in self.entities.items():
            self._check_columns(ent)
            if ent.watermark:
                yield from self._incremental(name, ent, state)
                if self._deletion_scan_due(name, ent, state):
                    yield from self._key_scan(name, ent, state)
            else:
                yield from self._full_scan(name, ent, state)

    # ---- change capture ------------------------------------------------------------------------
    def _captured(self, state: AdapterState) -> Iterator[ExtractBatch]:
        """A run with `[source.capture]`: the captured changes re-read, or a full row-hash run when
        the hub has committed none yet, a reconciliation is due, the triggers are not (all) there,
        or more changes were captured than re-reading them is worth. The claim cursor rides on the
        run's last batch, so the capture rows are consumed only once everything was committed."""
        committed = state.cursor(CLAIM_CURSOR)
        full = committed is None or self._reconcile_due(state) or not self.triggers.installed()
        if full:
            self.triggers.install()  # before the scan: a change made during it is captured
        if committed is None:
            run = self.log.last_claim()  # numbering continues above any claim left in the table
        else:
            run = int(committed) + 1
            count = self.log.claim(int(committed))
            if not full and count == 0:
                return  # nothing captured: no work
            full = full or count > self.capture.full_run_above  # type: ignore[union-attr]
        if full:
            for name, ent in self.entities.items():
                self._check_columns(ent, self._matched_columns(name))
                yield from self._full_scan(name, ent, state)
            yield ExtractBatch(checkpoint={CLAIM_CURSOR: str(run), FULL_RUN_CURSOR: self._clock().isoformat()})
            return
        changes = self.log.claimed(run)
        builder = BatchBuilder(self.batch_size)
        for name, ent in self.entities.items():
            entity_plan = plan(name, ent, self.matches[name], changes)
            if not entity_plan.empty:
                self._check_columns(ent, self._matched_columns(name))
                yield from self._reread(name, ent, entity_plan, state, builder)
        builder.checkpoint({CLAIM_CURSOR: str(run)})
        yield builder.take()

    def _matched_columns(self, name: str) -> list[str]:
        """The entity columns its capture matches filter on (they must be in its rows)."""
        return sorted({col for m in self.matches[name].values() for col in m.match})

    def _reconcile_due(self, state: AdapterState) -> bool:
        every = self.capture.reconcile_every_s if self.capture else None
        last = state.cursor(FULL_RUN_CURSOR)
        if every is None or last is None:
            return False
        return (self._clock() - dt.datetime.fromisoformat(last)).total_seconds() >= every

    def _reread(self, name: str, ent: SqlEntity, entity_plan: EntityPlan, state: AdapterState,
                builder: BatchBuilder) -> Iterator[ExtractBatch]:
        """The entity rows the captured changes affect, compared by hash; captured keys no longer
        returned are deletions, and a key scan finds rows a change removed that no key names."""
        detector = ChangeDetector(state, name)
        met: set[str] = set()
        for column, values in entity_plan.filters.items():
            for where, params in self._in_clauses(column, values):
                this_read: set[str] = set()
                for sid, raw, _ in self._rows(ent, self._select(ent, where=where), params):
                    if sid is not None:
                        if sid in met and sid not in this_read:
                            continue  # already read through another column's values
                        this_read.add(sid)
                    builder.add(detector.observe(self._scanned(ent, sid, raw, None)))
                    if builder.full:
                        yield builder.take()
                met |= this_read
        gone = sorted(sid for sid in entity_plan.candidates - met if sid in detector.known)
        if entity_plan.key_scan:
            gone = sorted({*gone, *self._vanished(name, ent, state)})
        for sid in gone:
            builder.change(RawChange(name, sid, None, self._location(ent, sid)))
            if builder.full:
                yield builder.take()

    def _in_clauses(self, column: str, values: set[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """`column IN (…)` in chunks of the batch size, and `column IS NULL` when NULL was captured
        (a row without its key is re-read so it is reported, not lost)."""
        col = self._q(column)
        given = [v for v in values if v is not None]
        for i in range(0, len(given), self.batch_size):
            chunk = given[i:i + self.batch_size]
            names = [f"v{j}" for j in range(len(chunk))]
            yield f"{col} IN ({', '.join(':' + n for n in names)})", dict(zip(names, chunk))
        if None in values:
            yield f"{col} IS NULL", {}

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
            builder.add(detector.observe(self._scanned(ent, sid, raw, as_datetime(row[wm]))))
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
        builder = BatchBuilder(self.batch_size)
        for source_id in self._vanished(name, ent, state):
            builder.change(RawChange(name, source_id, None, self._location(ent, source_id)))
            if builder.full:
                yield builder.take()
        builder.checkpoint({f"{name}.deletion_scan_at": started})
        yield builder.take()

    def _vanished(self, name: str, ent: SqlEntity, state: AdapterState) -> list[str]:
        """The rows the hub holds that the source no longer has, by a scan of the keys only."""
        keys = ", ".join(self._q(k) for k in ent.keys)
        sql = f"SELECT {keys} FROM {self._from(ent)}"
        seen: set[str] = set()
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(text(sql))
            for row in result:
                if None not in row:
                    seen.add(KEY_SEPARATOR.join(str(v) for v in row))
        return sorted(set(state.row_hashes(name)) - seen)

    def _check_columns(self, ent: SqlEntity, also: Sequence[str] = ()) -> None:
        with self.engine.connect() as conn:
            names = list(conn.execute(text(f"SELECT * FROM {self._from(ent)} WHERE 1 = 0")).keys())
        needed = [*ent.keys, *([ent.watermark] if ent.watermark else []), *also]
        missing = [k for k in dict.fromkeys(needed) if k not in names]
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
