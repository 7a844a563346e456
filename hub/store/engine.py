"""The hub's store: one SQLAlchemy engine, transactions, and migrations to the newest schema."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydantic_core
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 30_000
# A writer waits this long in all for SQLite's write lock, BUSY_TIMEOUT_MS at a time, before it
# fails: SQLite's busy handler is not a queue, and beside an ingest, a records worker's bulk writes
# and its holding, a routing worker polling its queue once waited past 30 s and died ("database is
# locked", 1,000,000 people). Nothing is done before BEGIN IMMEDIATE succeeds, so trying again is safe.
WRITE_LOCK_PATIENCE_S = 600.0
SQLITE_PAGE_BYTES = 4096  # SQLite's default page size, which the hub's stores keep
WAL_AUTOCHECKPOINT_PAGES = 20_000  # drain of 30,000 messages: 7-9 % less CPU than 1,000 (docs/performance.md)
# A WAL past this size is checkpointed and truncated after a commit (at most every WAL_RESTART_EVERY_S):
# with read transactions overlapping the writes (Store.read), SQLite's automatic checkpoints cannot
# start the log over, so it grew without bound (1.46 GB seven minutes into a 100,000-person load).
WAL_RESTART_BYTES = 256 * 1024 * 1024
WAL_RESTART_EVERY_S = 10.0
WAL_RESTART_WAIT_MS = 500  # how long the checkpoint waits for readers before giving up until next time
log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Store:
    """Owns the engine; `transaction()` is the unit of work every service uses."""

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False,
                 checkpoint_at_commit: bool = True) -> None:
        """`checkpoint_at_commit=False`: on SQLite this store's commits never checkpoint the WAL
        (neither SQLite's automatic checkpoint nor the truncation below); its owner calls
        `checkpoint()` where that costs no one a wait (a bulk writer, once it has let go of the
        lock its fellow writers take turns at)."""
        self.url = url
        self.engine: Engine = _make_engine(url, pool_size=pool_size, echo=echo)
        self._checkpoint_at_commit = checkpoint_at_commit
        if not checkpoint_at_commit and self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _no_automatic_checkpoints)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(hub_read_only=True), expire_on_commit=False)
        self._wal = _wal_path(url)
        self._wal_checked = 0.0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with self._sessions.begin() as session:
            yield session
        if self._wal is not None and self._checkpoint_at_commit:
            self._truncate_large_wal()

    def checkpoint(self) -> None:
        """For a store made with `checkpoint_at_commit=False`: what its commits left out, a
        passive checkpoint once the WAL has grown past SQLite's automatic threshold (it copies
        pages while other connections read and write) and the truncation below."""
        if self._wal is None:
            return
        try:
            size = os.path.getsize(self._wal)
        except OSError:
            return
        if size >= WAL_AUTOCHECKPOINT_PAGES * SQLITE_PAGE_BYTES:
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                raw.close()
        self._truncate_large_wal()

    def _truncate_large_wal(self) -> None:
        """Checkpoint and truncate the SQLite WAL once it is large (a quick stat otherwise)."""
        now = time.monotonic()
        if now - self._wal_checked < WAL_RESTART_EVERY_S:
            return
        self._wal_checked = now
        try:
            if os.path.getsize(self._wal) < WAL_RESTART_BYTES:
                return
        except OSError:
            return
        raw = self.engine.raw_connection()
        try:
            connection = raw.driver_connection
            connection.execute(f"PRAGMA busy_timeout={WAL_RESTART_WAIT_MS}")
            try:  # TRUNCATE waits for readers on older snapshots; when they outlast the wait, next time
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.OperationalError:
                pass  # busy: the log is truncated at a later commit
            finally:
                connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            raw.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only: rolled back at the end, never committed. On SQLite its BEGIN
        is deferred, so it takes no write lock: writers go on while it reads (WAL snapshot)."""
        with self._readers() as session:  # closing the session rolls its transaction back
            yield session

    def migrate(self) -> None:
        """Upgrade the schema to every head (each area keeps its own migration branch)."""
        cfg = alembic_config()
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "heads")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _make_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=json_dumps, json_deserializer=json_loads)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, pool_pre_ping=True,
                         json_serializer=json_dumps, json_deserializer=json_loads)


def json_dumps(value: object) -> str:
    """JSON columns encoded by pydantic-core (Rust): 5.8x faster than `json.dumps` on a canonical
    person, and a records worker writes three JSON columns per record. Same JSON, in UTF-8 rather
    than \\u escapes; dates and decimals become strings instead of errors."""
    return pydantic_core.to_json(value).decode()


def json_loads(text: str | bytes) -> object:
    """JSON columns decoded by pydantic-core: 1.8x faster than `json.loads`, the same values."""
    return pydantic_core.from_json(text)


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite store on disk (None for PostgreSQL and in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return None
    return url.removeprefix("sqlite:///").split("?")[0]


def _wal_path(url: str) -> str | None:
    """The WAL file of a SQLite store on disk (None for PostgreSQL and in-memory SQLite)."""
    path = sqlite_file(url)
    return None if path is None else path + "-wal"


# SQLite's page cache per connection (its default is 2 MiB). Inserting 340,000 block-key rows into
# a 2.5 GB store (100,000 people): 11.2 s with 2 MiB, 7.6 s with 64 MiB; sorted by the index
# they go into (as the identity writers now insert them), 4.6 s and 3.1 s (`/tmp/prof/cache.py`).
SQLITE_CACHE_KIB = 64 * 1024


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy emit BEGIN itself so every transaction takes the write lock up front:
    # concurrent workers then wait (busy_timeout) instead of failing on lock upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint every ~80 MB of WAL instead of SQLite's 4 MB: a worker batch writes megabytes, so the
    # default copied the same hot index pages back into the database after nearly every commit.
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _no_automatic_checkpoints(dbapi_connection, _record) -> None:
    """After `_sqlite_pragmas`: this connection's commits leave the WAL to `Store.checkpoint`."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_begin_immediate(connection) -> None:
    if connection.get_execution_options().get("hub_read_only", False):
        connection.exec_driver_sql("BEGIN")
        return
    driver = connection.connection.driver_connection
    give_up = time.monotonic() + WRITE_LOCK_PATIENCE_S
    while time.monotonic() < give_up:
        try:
            driver.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout itself
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                break
            log.warning("SQLite's write lock still busy after %.1f s; waiting again", BUSY_TIMEOUT_MS / 1000)
    connection.exec_driver_sql("BEGIN IMMEDIATE")  # a last wait; its error is SQLAlchemy's, as ever
