"""The hub keeps PostgreSQL's planner statistics current during a load (hub/store/statistics.py):
a table grown by more than half since it was last analysed is analysed, by one process at a time,
at most every CHECK_S per process; on SQLite there is nothing to do."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, text

from hub.store import statistics
from hub.store.tables.identity import IdentityBlockKeyRow

TABLE = '"public"."identity_block_key"'


def _grow(store, rows: int) -> None:
    with store.transaction() as s:  # rows not there yet: (rule, key, detail, ref) is the table's key
        start = s.execute(text("SELECT count(*) FROM identity_block_key")).scalar()
        s.execute(insert(IdentityBlockKeyRow), [{"rule": "nhs", "key": f"{i:010d}", "detail": "",
                                                 "ref_key": f"sys/person/{i}"} for i in range(start, start + rows)])


def _reltuples(store) -> float:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'identity_block_key'")).scalar()


def _wait_stale(store, timeout_s: float = 10.0) -> list[str]:
    """The cumulative statistics reach pg_stat_user_tables a moment after the commit."""
    deadline = time.monotonic() + timeout_s
    while True:
        with store.engine.connect() as conn:
            found = statistics.stale_tables(conn)
        if TABLE in found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_grown_table_is_analysed_once_by_one_process(store):
    if store.dialect != "postgresql":
        assert statistics.analyze_stale(store) == []
        assert statistics.StatisticsKeeper(store).maybe_analyze() == []
        return
    _grow(store, 5000)
    assert TABLE in _wait_stale(store)
    assert _reltuples(store) < 1000  # planned as if (nearly) empty
    with store.engine.connect() as other:  # another process is analysing: this one does not wait
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": statistics.LOCK_KEY})
        assert statistics.analyze_stale(store) == []
        other.rollback()
    keeper = statistics.StatisticsKeeper(store, every_s=3600)
    assert TABLE in keeper.maybe_analyze()
    assert _reltuples(store) == pytest.approx(5000, rel=0.05)
    _grow(store, 100)  # not yet half as many again: stays as analysed
    assert TABLE not in statistics.analyze_stale(store)
    _grow(store, 20000)
    assert TABLE in _wait_stale(store)
    assert keeper.maybe_analyze() == []  # checked less than every_s ago
    keeper._next = 0.0
    assert TABLE in keeper.maybe_analyze()
    assert keeper.analysed >= 2


def test_a_failing_check_does_not_stop_the_worker(store, monkeypatch, caplog):
    def broken(_store):
        raise RuntimeError("the server went away")
    monkeypatch.setattr(statistics, "analyze_stale", broken)
    keeper = statistics.StatisticsKeeper(store)
    assert keeper.maybe_analyze() == []
    if store.dialect == "postgresql":
        assert "the check failed" in caplog.text


def test_the_records_worker_and_the_bulk_link_keep_them(store, monkeypatch):
    from hub.identity import bulk_link
    from hub.identity.linker import IdentityLinker
    from hub.identity.model_file import load_model
    from hub.worker import RecordsWorker
    from tests.unit.hub.test_worker_bulk_link import _people

    checks: list[str] = []
    monkeypatch.setattr(statistics, "analyze_stale", lambda s: checks.append("keeper") or [])
    monkeypatch.setattr(bulk_link, "analyze_stale", lambda s: checks.append("bulk link") or [])
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0)
    worker.backlog = lambda: 5  # behind: the records are held
    worker.handle([_people("social_care", "S")])
    postgres = store.dialect == "postgresql"  # SQLite: no statistics to keep
    assert checks == (["keeper"] if postgres else [])
    worker.statistics._next = 0.0
    worker.backlog = lambda: 0
    worker.tick()  # the queue is empty: the held records are linked in bulk
    worker.wait_for_release(timeout_s=60)
    assert checks == (["keeper", "keeper", "bulk link"] if postgres else ["bulk link"])
