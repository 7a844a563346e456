"""A writer waiting for SQLite's write lock longer than the busy timeout waits again instead of
failing with "database is locked" (hub/store/engine.py: `_sqlite_begin_immediate`): beside a
1,000,000-person load a routing worker died so. It gives up only past WRITE_LOCK_PATIENCE_S."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hub.store import engine as store_engine
from hub.store.engine import Store


def _hold_lock(path: str, seconds: float, taken: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


@pytest.fixture
def short_busy_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_MS", 100)  # each wait: 0.1 s
    path = tmp_path / "hub.db"
    store = Store(f"sqlite:///{path}")
    with store.transaction() as s:
        s.execute(text("CREATE TABLE t (v INTEGER)"))
    yield store, str(path)
    store.dispose()


def test_a_writer_outwaits_a_lock_held_past_its_busy_timeout(short_busy_store):
    store, path = short_busy_store
    taken = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 1.0, taken))
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    with store.transaction() as s:  # ten busy timeouts later, it gets the lock
        s.execute(text("INSERT INTO t VALUES (1)"))
    holder.join()
    assert time.monotonic() - started >= 0.8
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_past_its_patience_the_writer_fails(short_busy_store, monkeypatch):
    store, path = short_busy_store
    monkeypatch.setattr(store_engine, "WRITE_LOCK_PATIENCE_S", 0.3)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 1.5, taken))
    holder.start()
    taken.wait(5)
    with pytest.raises(OperationalError, match="locked"), store.transaction() as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
    holder.join()
    with store.transaction() as s:  # the connection is fine afterwards
        s.execute(text("INSERT INTO t VALUES (2)"))
    with store.read() as s:
        assert s.execute(text("SELECT v FROM t")).scalars().all() == [2]
