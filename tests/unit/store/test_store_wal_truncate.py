"""A large SQLite WAL is checkpointed and truncated after a commit, also when reads overlapped the writes."""

from __future__ import annotations

import os

from sqlalchemy import text

from hub.store import engine as store_engine
from hub.store.engine import Store


def _fill(store: Store, n: int) -> None:
    with store.transaction() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)"))
        s.execute(text("INSERT INTO filler (body) VALUES (:b)"), [{"b": "x" * 2000} for _ in range(n)])


def test_large_wal_is_truncated_after_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(store_engine, "WAL_RESTART_BYTES", 1)
    monkeypatch.setattr(store_engine, "WAL_RESTART_EVERY_S", 0.0)
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    try:
        with store.read() as reader:  # a reader on an old snapshot: the checkpoint gives up after its wait
            reader.execute(text("SELECT count(*) FROM sqlite_master")).all()
            _fill(store, 200)
            assert os.path.getsize(f"{tmp_path}/hub.db-wal") > 0
        _fill(store, 200)  # no reader now: this commit's checkpoint truncates the log
        assert os.path.getsize(f"{tmp_path}/hub.db-wal") == 0
        with store.transaction() as s:
            assert s.execute(text("SELECT count(*) FROM filler")).scalar_one() == 400
    finally:
        store.dispose()


def test_small_wal_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(store_engine, "WAL_RESTART_EVERY_S", 0.0)
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    try:
        _fill(store, 50)
        assert os.path.getsize(f"{tmp_path}/hub.db-wal") > 0
    finally:
        store.dispose()


def _wal_bytes(tmp_path) -> int:
    return os.path.getsize(f"{tmp_path}/hub.db-wal")


def test_a_store_that_leaves_checkpoints_to_its_owner(tmp_path, monkeypatch):
    """`checkpoint_at_commit=False` (the bulk link's writers on SQLite): the commits never copy the
    WAL back, so it grows; `checkpoint()` does, once it is past SQLite's threshold, and the log is
    then reused from its start."""
    monkeypatch.setattr(store_engine, "WAL_AUTOCHECKPOINT_PAGES", 20)
    monkeypatch.setattr(store_engine, "WAL_RESTART_EVERY_S", 0.0)
    usual = Store(f"sqlite:///{tmp_path}/usual/hub.db")
    deferred = Store(f"sqlite:///{tmp_path}/hub.db", checkpoint_at_commit=False)
    try:
        for _ in range(10):  # ~50 pages a commit, the threshold 20
            _fill(usual, 100)
            _fill(deferred, 100)
        assert _wal_bytes(tmp_path / "usual") < 200 * 4096  # checkpointed at its commits, the log reused
        assert _wal_bytes(tmp_path) > 400 * 4096  # every commit's pages still in the log
        grown = _wal_bytes(tmp_path)
        deferred.checkpoint()
        for _ in range(5):
            _fill(deferred, 100)
            deferred.checkpoint()
        assert _wal_bytes(tmp_path) == grown  # written from the log's start again: it grew no further
        with deferred.transaction() as s:
            assert s.execute(text("SELECT count(*) FROM filler")).scalar_one() == 1500
    finally:
        usual.dispose()
        deferred.dispose()
