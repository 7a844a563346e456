"""The `sql` adapter kind: any database SQLAlchemy can reach, one table or query per entity.

Change detection per entity:

* with a `watermark` column, an incremental read `WHERE (wm, key) > cursor ORDER BY wm, key`;
  the cursor is the last row's (watermark, key) pair, so rows sharing a watermark value are
  never skipped, and it is checkpointed with each batch so a crash resumes where the last
  committed batch ended. Deletions need a key-only scan (`deletion_scan`, or
  `deletion_scan_every_s` for a periodic one).
* without one, a streamed full scan whose rows are compared by content hash with what the
  hub committed; ids the hub holds but the scan did not see are deletions.
* with `[source.capture] mode = "triggers"` (a database without change markers), triggers the
  adapter installs record each change in a capture table; an incremental run re-reads only the
  entity rows those changes affect (`capture.py`, `triggers.py`), a full run hashes everything.

Rows are streamed (`stream_results`, `yield_per`): a table is never loaded whole.
Write-back (`apply`) inserts or updates the entity's `write` table, with an optimistic check
against a version column when one is configured.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from adapters.kinds.common import SourceConfigError, parse_config
from adapters.kinds.sql.adapter import SqlAdapter
from adapters.kinds.sql.config import SqlEntity, SqlSource, SqlWrite, resolve_url, sqlite_file
from adapters.kinds.sql.write import SqlWriter

__all__ = ["SqlAdapter", "SqlEntity", "SqlSource", "SqlWrite", "SqlWriter", "build", "columns"]


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: pathlib.Path,
          env: Mapping[str, str]) -> SqlAdapter:
    """The adapter for `system`; configuration errors name the entity and field."""
    cfg = parse_config(SqlSource, source, "source", "sql")
    parsed = {name: parse_config(SqlEntity, ent, f"entities.{name}", "sql") for name, ent in entities.items()}
    # no pool: an adapter is built per run, and a legacy database should not keep idle
    # connections from the hub between runs
    engine = create_engine(resolve_url(cfg.url, base_dir), poolclass=NullPool, connect_args=cfg.connect_args)
    return SqlAdapter(system, engine, parsed, batch_size=cfg.batch_size, capture=cfg.capture)


def columns(source: dict, entity_cfg: dict, *, base_dir: pathlib.Path,
            env: Mapping[str, str]) -> list[str] | None:
    """The entity's column names, read from the database (for load-time mapping checks);
    None when the database cannot be reached now: the run will say why."""
    cfg = parse_config(SqlSource, source, "source", "sql")
    ent = parse_config(SqlEntity, entity_cfg, "entity", "sql")
    url = resolve_url(cfg.url, base_dir)
    missing_file = sqlite_file(url)
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
