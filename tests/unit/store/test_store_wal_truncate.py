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
