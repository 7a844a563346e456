"""The `sql` adapter kind: any database SQLAlchemy can reach, one table or query per entity.

Change detection per entity:

* with a `watermark` column, an incremental read `WHERE (wm, key) > cursor ORDER BY wm, key`;
  the cursor is the last row's (watermark, key) pair, so rows sharing a watermark value are
  never skipped, and it is checkpointed with each batch so a crash resumes where the last
  committed batch ended. Deletions need a key-only scan (`deletion_scan`, or
  `deletion_scan_every_s` for a periodic one).
* without one, a streamed full scan whose rows are compared by content hash with what the
  hub committed; ids the hub holds but the scan did not see are deletions.

Rows are streamed (`stream_results`, `yield_per`): a table is never loaded whole.
Write-back (`apply`) inserts or updates the entity's `write` table, with an optimistic check
against a version column when one is configured.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    Date,
    DateTime,
    Engine,
    MetaData,
    Table,
    and_,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from adapters.kinds.common import (
    BatchBuilder,
    ChangeDetector,
    ScannedRow,
    SourceConfigError,
    parse_config,
    rowhash_batches,
)
from adapters.port import AdapterState, ApplyResult, ExtractBatch, RawChange, WriteBack

KEY_SEPARATOR = "|"
_PLAIN = frozenset({str, int, float, bool, type(None)})


class SqlWrite(BaseModel):
    """Where and how write-back lands for one entity."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    table: str
    db_schema: str | None = Field(None, alias="schema")
    key: str | list[str] | None = None  # defaults to the entity's key
    columns: dict[str, str] = Field(..., min_length=1)  # canonical path -> column
    codes: dict[str, dict[str, Any]] = Field(default_factory=dict)  # column -> canonical -> legacy
    version_column: str | None = None  # integer, checked against expected_version, incremented
    modified_column: str | None = None  # set to the time of the write
    close_set: dict[str, Any] = Field(default_factory=dict)  # column -> value set by "close"
    # a value with no column: "ignore" applies the rest and names it in the detail; "reject" refuses
    unmapped: Literal["reject", "ignore"] = "ignore"


class SqlEntity(BaseModel):
    """The source-side keys of one `[entities.<name>]` block (mapping keys are ignored here)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    table: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    query: str | None = None
    key: str | list[str]
    watermark: str | None = None
    deletion_scan: bool = False
    deletion_scan_every_s: float | None = Field(None, gt=0)
    # re-read this far behind the cursor (seconds for timestamps, units for numbers), for rows a
    # long legacy transaction commits after newer ones were read; re-read rows hash as unchanged
    watermark_lookback: float | None = Field(None, gt=0)
    write: SqlWrite | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SqlEntity:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self

    @property
    def keys(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


class SqlSource(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str = Field(..., min_length=1)
    batch_size: int = Field(500, ge=1)
    # handed to the DBAPI driver, e.g. { connect_timeout = 10 } for PostgreSQL, { timeout = 30 } for SQLite
    connect_args: dict[str, Any] = Field(default_factory=dict)


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: pathlib.Path,
          env: Mapping[str, str]) -> SqlAdapter:
    """The adapter for `system`; configuration errors name the entity and field."""
    cfg = parse_config(SqlSource, source, "source", "sql")
    parsed = {name: parse_config(SqlEntity, ent, f"entities.{name}", "sql") for name, ent in entities.items()}
    # no pool: an adapter is built per run, and a legacy database should not keep idle
    # connections from the hub between runs
    engine = create_engine(_resolve_url(cfg.url, base_dir), poolclass=NullPool, connect_args=cfg.connect_args)
    return SqlAdapter(system, engine, parsed, batch_size=cfg.batch_size)


def columns(source: dict, entity_cfg: dict, *, base_dir: pathlib.Path,
            env: Mapping[str, str]) -> list[str] | None:
    """The entity's column names, read from the database (for load-time mapping checks);
    None when the database cannot be reached now: the run will say why."""
    cfg = parse_config(SqlSource, source, "source", "sql")
    ent = parse_config(SqlEntity, entity_cfg, "entity", "sql")
    url = _resolve_url(cfg.url, base_dir)
    missing_file = _sqlite_file(url)
    if missing_file is not None and not missing_file.exists():
        return None
    engine = create_engine(url, poolclass=NullPool, connect_args=cfg.connect_args)
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError:
            return None
        with conn:
            if ent.table:
                return [c["name"] for c in inspect(conn).get_columns(ent.table, schema=ent.db_schema)]
            return list(conn.execute(text(f"SELECT * FROM ({ent.query}) src WHERE 1 = 0")).keys())
    except NoSuchTableError:
        raise SourceConfigError(f"table {ent.table!r} does not exist in {engine.url!r}") from None
    except SQLAlchemyError as exc:
        raise SourceConfigError(f"cannot read the columns of {ent.table or 'the query'}: {exc}") from exc
    finally:
        engine.dispose()


class SqlAdapter:
    kind = "sql"

    def __init__(self, system: str, engine: Engine, entities: dict[str, SqlEntity], *,
                 batch_size: int = 500, clock: Any = None) -> None:
        self.system, self.engine, self.entities, self.batch_size = system, engine, entities, batch_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._write_tables: dict[str, Table] = {}

    # ---- extract -------------------------------------------------------------------------------
    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        self._require_database()
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
            outcome = detector.observe(self._scanned(ent, sid, raw, _as_datetime(row[wm])))
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
                    builder.checkpoint({cursor_key: _encode_cursor(last)})
                yield builder.take()
        if last is not None:
            builder.checkpoint({cursor_key: _encode_cursor(last)})
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

    def _require_database(self) -> None:
        """A SQLite file that is not there is an error, not a new empty database."""
        path = _sqlite_file(self.engine.url.render_as_string(hide_password=False))
        if path is not None and not path.exists():
            raise SourceConfigError(f"the database file {path} does not exist")

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
                raw = {k: v if type(v) in _PLAIN else _jsonable(v) for k, v in row.items()}
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
        values = _decode_cursor(encoded)
        if ent.watermark_lookback:
            return f"{self._q(ent.watermark or '')} >= :c0", {"c0": _behind(values[0], ent.watermark_lookback)}
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

    # ---- write-back ----------------------------------------------------------------------------
    def apply(self, change: WriteBack) -> ApplyResult:
        """Insert or update the legacy row; a refusal (conflict, unmapped field) is accepted=False."""
        ent = self.entities.get(change.entity)
        sid = change.source_id or ""
        if ent is None or ent.write is None:
            return ApplyResult(sid, False, f"entity {change.entity!r} of {self.system} has no `write` section")
        write = ent.write
        self._require_database()
        values, ignored, problem = _column_values(write, change)
        if problem:
            return ApplyResult(sid, False, problem)
        if not values and change.operation == "update":
            return ApplyResult(sid, True, f"nothing to write: {write.table} holds none of {ignored}")
        try:
            table = self._write_table(change.entity, write)
            key_names = _listify(write.key) or ent.keys
            unknown = sorted({*values, *write.close_set, *key_names} - set(table.c.keys()))
            if unknown:
                return ApplyResult(sid, False, f"{write.table} has no column(s) {unknown} (write section)")
            values = {k: _coerce(table.c[k].type, v) for k, v in values.items()}
            key_cols = [table.c[k] for k in key_names]
            if change.operation == "create":
                return _noted(self._insert(table, key_cols, write, values, change), ignored)
            if change.operation in ("update", "close"):
                if change.operation == "close":
                    if not write.close_set:
                        return ApplyResult(sid, False, "closing is not configured (`write.close_set`)")
                    values.update(write.close_set)
                return _noted(self._update(table, key_cols, write, values, change), ignored)
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
            values.update(zip((c.name for c in key_cols), _split_id(change.source_id, len(key_cols))))
        if write.version_column:
            values.setdefault(write.version_column, 1)
        if write.modified_column:
            values[write.modified_column] = _stamp(table.c[write.modified_column].type, self._clock())
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
        match = and_(*(c == v for c, v in zip(key_cols, _split_id(sid, len(key_cols)))))
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
            values[write.modified_column] = _stamp(table.c[write.modified_column].type, self._clock())
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


def _column_values(write: SqlWrite, change: WriteBack) -> tuple[dict[str, Any], list[str], str]:
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


def _coerce(sql_type: Any, value: Any) -> Any:
    """ISO text for a DATE/TIMESTAMP column becomes a date/datetime; everything else is passed as is."""
    if not isinstance(value, str) or not value:
        return value
    try:
        if isinstance(sql_type, DateTime):
            return dt.datetime.fromisoformat(value)
        if isinstance(sql_type, Date):
            return dt.date.fromisoformat(value[:10])
    except ValueError:
        return value  # the database says what it makes of it
    return value


def _stamp(sql_type: Any, moment: dt.datetime) -> Any:
    """The write time as the modified column holds it: a (naive UTC) datetime, or ISO-like text."""
    utc = moment.astimezone(dt.UTC)
    if isinstance(sql_type, DateTime):
        return utc if sql_type.timezone else utc.replace(tzinfo=None)
    return utc.strftime("%Y-%m-%d %H:%M:%S")


def _noted(result: ApplyResult, ignored: list[str]) -> ApplyResult:
    if not (ignored and result.accepted):
        return result
    return ApplyResult(result.source_id, True, f"{result.detail}; not held by this system: {ignored}")


def _resolve_url(url: str, base_dir: pathlib.Path) -> str:
    """A relative SQLite path is relative to the mapping file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + ":memory:"):
        path = pathlib.Path(url.removeprefix(prefix))
        if not path.is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def _sqlite_file(url: str) -> pathlib.Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + ":memory:") or url == prefix:
        return None
    return pathlib.Path(url.removeprefix(prefix).split("?", 1)[0])


def _listify(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _split_id(source_id: str, n: int) -> list[str]:
    parts = source_id.split(KEY_SEPARATOR) if n > 1 else [source_id]
    if len(parts) != n:
        raise SourceConfigError(f"source id {source_id!r} does not have {n} key parts")
    return parts


def _jsonable(value: Any) -> Any:
    """A database value as JSON: dates as ISO text, decimals as text, bytes as hex."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _behind(value: Any, lookback: float) -> Any:
    """`value` moved back by `lookback`: seconds for a timestamp (also one held as ISO text, kept
    in its own format), units for a number."""
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=lookback)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value - type(value)(lookback) if isinstance(value, Decimal) else value - lookback
    moment = _as_datetime(value)
    if moment is None:
        raise SourceConfigError(f"watermark_lookback needs a timestamp or number watermark, not {value!r}")
    earlier = moment - dt.timedelta(seconds=lookback)
    text_value = earlier.isoformat(sep="T" if "T" in value else " ",
                                   timespec="microseconds" if "." in value else "seconds")
    if earlier.tzinfo is not None and value.endswith("Z"):
        text_value = text_value.removesuffix("+00:00") + "Z"
    return text_value


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _encode_cursor(values: list[Any]) -> str:
    """JSON that keeps the Python type, so the next run binds a value the column compares with."""
    def tag(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return {"datetime": v.isoformat()}
        if isinstance(v, dt.date):
            return {"date": v.isoformat()}
        if isinstance(v, Decimal):
            return {"decimal": str(v)}
        return v

    return json.dumps([tag(v) for v in values])


def _decode_cursor(encoded: str) -> list[Any]:
    def untag(v: Any) -> Any:
        if isinstance(v, dict):
            (kind, text_value), = v.items()
            return {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat,
                    "decimal": Decimal}[kind](text_value)
        return v

    return [untag(v) for v in json.loads(encoded)]
