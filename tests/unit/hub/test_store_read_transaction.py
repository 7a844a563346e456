"""`Store.read()`: a session that reads without holding the write lock and never commits."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import select

from hub.store.tables.lifecycle import SystemPhaseRow


def phases(store) -> dict[str, str]:
    with store.read() as s:
        return {r.system: r.phase for r in s.execute(select(SystemPhaseRow)).scalars()}


def test_read_sees_what_is_committed_and_commits_nothing(store):
    with store.transaction() as s:
        s.add(SystemPhaseRow(system="sys_a", phase="connected"))
    with store.read() as s:
        assert [r.system for r in s.execute(select(SystemPhaseRow)).scalars()] == ["sys_a"]
        s.add(SystemPhaseRow(system="sys_b", phase="read_only"))
        s.flush()
    assert phases(store) == {"sys_a": "connected"}


def test_a_writer_commits_while_a_read_is_open(store):
    with store.transaction() as s:
        s.add(SystemPhaseRow(system="sys_a", phase="connected"))
    committed = threading.Event()

    def write() -> None:
        with store.transaction() as s:
            s.add(SystemPhaseRow(system="sys_b", phase="read_only"))
        committed.set()

    with store.read() as s:
        assert len(s.execute(select(SystemPhaseRow)).all()) == 1  # the read transaction has begun
        writer = threading.Thread(target=write)
        started = time.monotonic()
        writer.start()
        assert committed.wait(5), "the writer waited for the read transaction"
        assert time.monotonic() - started < 5
        writer.join()
    assert phases(store) == {"sys_a": "connected", "sys_b": "read_only"}


def _can_take_write_lock(store) -> bool:
    other = sqlite3.connect(store.url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


def test_sqlite_reads_take_no_write_lock_and_transactions_do(sqlite_store):
    with sqlite_store.read() as s:
        s.execute(select(SystemPhaseRow)).all()
        assert s.connection().connection.dbapi_connection.in_transaction
        assert _can_take_write_lock(sqlite_store)
    with sqlite_store.transaction() as s:
        s.execute(select(SystemPhaseRow)).all()
        assert not _can_take_write_lock(sqlite_store)
