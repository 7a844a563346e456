"""The `sql` kind's configuration: the `[source]` table (and its `capture` section), each
entity's keys, its `capture` matches and its `write` section, and where a SQLite file is."""

from __future__ import annotations

import pathlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine

from adapters.kinds.common import SourceConfigError

KEY_SEPARATOR = "|"


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


IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CaptureMatch(BaseModel):
    """Which of an entity's rows a changed row of one legacy table affects: those whose entity
    column equals the captured value (old or new) of the table column, for each pair given."""

    model_config = ConfigDict(extra="forbid")

    match: dict[str, str] = Field(..., min_length=1)  # entity column -> captured column of the table
    # false when a change to this table can never make an entity row disappear (e.g. a LEFT JOIN
    # parent); true makes a delete, or an update of a captured column, scan the entity's keys
    # unless `match` names every key column (then the captured keys themselves are checked)
    removes_rows: bool = True


class SqlCapture(BaseModel):
    """`[source.capture]`: trigger-based change capture for a database without change markers."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["triggers"]
    table: str = Field("hub_capture", pattern=IDENTIFIER)  # the capture table the triggers fill
    # legacy table -> the columns whose old and new values a change records: every column an
    # entity's `capture` matches on, and every column whose change adds or removes entity rows
    tables: dict[str, list[str]] = Field(..., min_length=1)
    # a full row-hash run (reconciliation) at least this often; the first run is always one
    reconcile_every_s: float | None = Field(None, gt=0)
    # more captured changes than this in one run: a full row-hash run instead of re-reading them
    full_run_above: int = Field(50_000, ge=1)

    @model_validator(mode="after")
    def _names(self) -> SqlCapture:
        for table, cols in self.tables.items():
            bad = [n for n in (table, *cols) if not re.match(IDENTIFIER, n)]
            if bad:
                raise ValueError(f"tables.{table}: {bad} are not plain identifiers")
            if not cols:
                raise ValueError(f"tables.{table}: name at least one column to record")
        return self


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
    # with `[source.capture]`: legacy table -> which rows of this entity its changes affect
    # (a `table` entity defaults to its own table matched on its key)
    capture: dict[str, CaptureMatch] | None = None

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
    capture: SqlCapture | None = None


def capture_matches(capture: SqlCapture, name: str, ent: SqlEntity) -> dict[str, CaptureMatch]:
    """The entity's capture matches, checked against `[source.capture]`; SourceConfigError names
    the entity and what is missing."""
    matches = ent.capture
    if matches is None:
        if ent.table is None:
            raise SourceConfigError(f"entities.{name}: with [source.capture], a `query` entity needs a "
                                    "`capture` table saying which of its rows a change to each table affects")
        matches = {ent.table: CaptureMatch(match={k: k for k in ent.keys})}
    for table, m in matches.items():
        recorded = capture.tables.get(table)
        if recorded is None:
            raise SourceConfigError(f"entities.{name}.capture.{table}: {table!r} is not in source.capture.tables")
        missing = sorted(set(m.match.values()) - set(recorded))
        if missing:
            raise SourceConfigError(f"entities.{name}.capture.{table}: column(s) {missing} are not recorded "
                                    f"(source.capture.tables.{table} = {recorded})")
    return matches


def resolve_url(url: str, base_dir: pathlib.Path) -> str:
    """A relative SQLite path is relative to the mapping file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + ":memory:"):
        path = pathlib.Path(url.removeprefix(prefix))
        if not path.is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def sqlite_file(url: str) -> pathlib.Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + ":memory:") or url == prefix:
        return None
    return pathlib.Path(url.removeprefix(prefix).split("?", 1)[0])


def listify(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def split_id(source_id: str, n: int) -> list[str]:
    parts = source_id.split(KEY_SEPARATOR) if n > 1 else [source_id]
    if len(parts) != n:
        raise SourceConfigError(f"source id {source_id!r} does not have {n} key parts")
    return parts


def require_database(engine: Engine) -> None:
    """A SQLite file that is not there is an error, not a new empty database."""
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if path is not None and not path.exists():
        raise SourceConfigError(f"the database file {path} does not exist")
