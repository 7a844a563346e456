"""The capture table and the AFTER INSERT/UPDATE/DELETE triggers that fill it, per dialect.

Each change to a captured legacy table adds one row to the capture table: the table's name,
the operation (I, U, D), and the recorded columns' old and new values as JSON text. The
adapter claims rows (`claim` = a run number), re-reads what they affect, and deletes them once
the hub has committed that run (see `capture.py`).

`install` is idempotent: it creates what is missing and replaces a trigger whose definition
differs from the configuration (a column added to `tables`), and writes nothing when everything
is already as configured. On PostgreSQL that is one transaction; SQLite's driver runs DDL
statement by statement, so an interrupted install can leave some triggers missing, which the
next run's `installed` check sees: it is a full run again and completes the install. `installed` is the cheap check made on every
incremental run, so triggers a schema change dropped are noticed (the run becomes a full one).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from adapters.kinds.common import SourceConfigError
from adapters.kinds.sql.config import SqlCapture

OPS = (("ins", "INSERT", "I"), ("upd", "UPDATE", "U"), ("del", "DELETE", "D"))


class CaptureTriggers:
    """The DDL of one `[source.capture]` on one database."""

    def __init__(self, engine: Engine, capture: SqlCapture) -> None:
        self.engine, self.capture = engine, capture
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise SourceConfigError(f"capture mode \"triggers\" supports SQLite and PostgreSQL, not {self.dialect}")

    def q(self, identifier: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(identifier)

    # ---- what should exist ---------------------------------------------------------------------
    def table_ddl(self) -> list[str]:
        t = self.capture.table
        if self.dialect == "sqlite":
            # AUTOINCREMENT: a seq is never reused after the consumed rows are deleted
            columns = ("seq INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, op TEXT NOT NULL, "
                       "old_values TEXT, new_values TEXT, claim INTEGER, "
                       "captured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))")
        else:
            columns = ("seq BIGSERIAL PRIMARY KEY, table_name TEXT NOT NULL, op CHAR(1) NOT NULL, "
                       "old_values TEXT, new_values TEXT, claim BIGINT, "
                       "captured_at TIMESTAMPTZ NOT NULL DEFAULT now()")
        return [f"CREATE TABLE IF NOT EXISTS {self.q(t)} ({columns})",
                f"CREATE INDEX IF NOT EXISTS {self.q(t + '_claim')} ON {self.q(t)} (claim)"]

    def trigger_name(self, table: str, op: str = "") -> str:
        return f"{self.capture.table}_{table}" + (f"_{op}" if op else "")

    def _values(self, row: str, table: str) -> str:
        fn = "json_object" if self.dialect == "sqlite" else "json_build_object"
        pairs = ", ".join(f"'{c}', {row}.{self.q(c)}" for c in self.capture.tables[table])
        return f"{fn}({pairs})" + ("" if self.dialect == "sqlite" else "::text")

    def _insert(self, table: str, op: str) -> str:
        old = self._values("OLD", table) if op in ("U", "D") else "NULL"
        new = self._values("NEW", table) if op in ("I", "U") else "NULL"
        return (f"INSERT INTO {self.q(self.capture.table)} (table_name, op, old_values, new_values) "
                f"VALUES ('{table}', '{op}', {old}, {new})")

    def sqlite_triggers(self, table: str) -> dict[str, str]:
        """Trigger name -> its CREATE TRIGGER statement (as SQLite keeps it in sqlite_master)."""
        return {self.trigger_name(table, suffix): f"CREATE TRIGGER {self.q(self.trigger_name(table, suffix))} "
                f"AFTER {event} ON {self.q(table)} BEGIN {self._insert(table, op)}; END"
                for suffix, event, op in OPS}

    def pg_function_body(self, table: str) -> str:
        branches = " ".join(f"{'IF' if i == 0 else 'ELSIF'} TG_OP = '{event}' THEN {self._insert(table, op)};"
                            for i, (_, event, op) in enumerate(OPS))
        return f" BEGIN {branches} END IF; RETURN NULL; END "

    # ---- checking and installing ---------------------------------------------------------------
    def installed(self, conn: Connection | None = None) -> bool:
        """Whether the capture table and every trigger exist exactly as configured."""
        if conn is None:
            with self.engine.connect() as own:
                return self.installed(own)
        return not self._missing(conn)

    def _missing(self, conn: Connection) -> list[str]:
        """The tables this configuration captures whose triggers are absent or differ, and
        "" when the capture table itself is absent."""
        if self.dialect == "sqlite":
            found = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'trigger') "
                                           "AND name LIKE :p ESCAPE '\\'"),
                                      {"p": self.capture.table.replace("_", "\\_") + "%"}).all())
            missing = [] if self.capture.table in found else [""]
            return missing + [t for t in self.capture.tables
                              if any(found.get(n) != sql for n, sql in self.sqlite_triggers(t).items())]
        has_table = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"),
                                 {"t": self.q(self.capture.table)}).scalar_one()
        rows = conn.execute(text(
            "SELECT t.tgname, p.prosrc, c.relname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND t.tgname = ANY(:names) "
            "AND pg_catalog.pg_table_is_visible(c.oid)"),
            {"names": [self.trigger_name(t) for t in self.capture.tables]}).all()
        body = {(name, rel): src for name, src, rel in rows}
        missing = [] if has_table else [""]
        return missing + [t for t in self.capture.tables
                          if body.get((self.trigger_name(t), t)) != self.pg_function_body(t)]

    def install(self) -> list[str]:
        """Create the capture table and (re)create triggers that are missing or differ; returns the
        tables whose triggers were written. A database that refuses (no privilege) is an error
        naming what a DBA must allow."""
        try:
            with self.engine.begin() as conn:
                missing = self._missing(conn)
                if not missing:
                    return []
                for ddl in self.table_ddl():
                    conn.execute(text(ddl))
                tables = [t for t in missing if t]
                for table in tables:
                    self._write_triggers(conn, table)
                return tables
        except SourceConfigError:
            raise
        except Exception as exc:  # the driver's own error, re-raised with what the DBA must allow
            raise SourceConfigError(
                f"cannot install change capture ({self.capture.table} and triggers on "
                f"{', '.join(self.capture.tables)}): {exc}. The hub's database user needs CREATE on the schema, "
                "TRIGGER on (or ownership of) those tables, and SELECT, UPDATE, DELETE on the capture table; "
                "or a DBA runs the DDL in docs/adapters.md") from exc

    def _write_triggers(self, conn: Connection, table: str) -> None:
        if self.dialect == "sqlite":
            for name, ddl in self.sqlite_triggers(table).items():
                conn.execute(text(f"DROP TRIGGER IF EXISTS {self.q(name)}"))
                conn.execute(text(ddl))
            return
        name = self.q(self.trigger_name(table))
        conn.execute(text(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                          f"$hub${self.pg_function_body(table)}$hub$"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {self.q(table)}"))
        conn.execute(text(f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {self.q(table)} "
                          f"FOR EACH ROW EXECUTE FUNCTION {name}()"))
