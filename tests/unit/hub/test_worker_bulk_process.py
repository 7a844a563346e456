"""A large bulk link runs in a child process (hub/identity/bulk_process.py): the same persons,
links and announcements as on the worker's thread; an error in the child reaches the worker and
keeps the records held; a small link, and one starting while an ingest runs, stay on the thread."""

from __future__ import annotations

from hub.identity import bulk_process
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.store.engine import Store
from hub.store.tables.ingest import IngestRunRow
from hub.worker import BULK_PROCESS_WRITE_RECORDS, RecordsWorker
from tests.unit.hub.test_worker_bulk_link import (
    PEOPLE,
    _involvements,
    _pending,
    _people,
    _persons,
    _route_changes,
)


def _worker(store, backlog: list[int], model=None, process_at: int = 1) -> RecordsWorker:
    worker = RecordsWorker(store, linker=IdentityLinker(model or load_model()), bulk_link_backlog=3, settle_s=0,
                           bulk_link_process_at=process_at, bulk_link_max_records=1000, bulk_link_process_max_records=50)
    worker.backlog = lambda: backlog[0]
    return worker


def _spy(monkeypatch) -> list[int]:
    """The records per write transaction of each link in a child (larger than on the thread), and
    its chunks: the child's own `bulk_link_process_max_records` (50), not the thread's (1,000)."""
    calls: list[int] = []
    real = bulk_process.link

    def spy(*args, **kwargs):
        assert kwargs["max_records"] == 50
        calls.append(kwargs["records_per_transaction"])
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_process, "link", spy)
    return calls


def test_a_large_link_runs_in_a_child_and_links_as_the_thread_would(store, monkeypatch):
    calls = _spy(monkeypatch)
    backlog = [10]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A"), _involvements("sys_a", "A")])
    worker.handle([_people("sys_b", "B")])
    backlog[0] = 0
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    assert worker.release_error is None and calls == [BULK_PROCESS_WRITE_RECORDS]
    persons = _persons(store)
    assert None not in persons.values() and len(set(persons.values())) == len(PEOPLE)
    assert all(persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] for i in range(len(PEOPLE)))
    assert _pending(store) == []
    assert _route_changes(store) == sorted([f"IA{i}" for i in range(6)] + [f"IB{i}" for i in range(6)]
                                           + [f"{s}{i}" for s in "AB" for i in range(6)])


def test_an_error_in_the_child_reaches_the_worker_and_the_records_stay_held(tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    store.migrate()
    backlog = [10]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])
    monkeypatch.setattr(store, "url", f"sqlite:///{tmp_path}/not-the-store.db")  # the child finds no tables
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])
    worker.wait_for_release()
    assert calls == [BULK_PROCESS_WRITE_RECORDS]
    assert "identity_pending" in str(worker.release_error)
    assert set(_persons(store).values()) == {None} and len(_pending(store)) >= 6
    monkeypatch.setattr(store, "url", f"sqlite:///{tmp_path}/hub.db")
    worker.handle([_people("sys_b", "B")])  # the next delivery: held too, then all linked
    worker.wait_for_release()
    assert calls == [BULK_PROCESS_WRITE_RECORDS] * 2
    persons = _persons(store)
    assert None not in persons.values() and len(set(persons.values())) == len(PEOPLE) and _pending(store) == []
    store.dispose()


def test_a_small_link_stays_on_the_workers_thread(store, monkeypatch):
    calls = _spy(monkeypatch)
    backlog = [10]
    worker = _worker(store, backlog, process_at=1000)
    worker.handle([_people("sys_a", "A")])
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])
    worker.wait_for_release()
    assert worker.release_error is None and calls == []
    assert None not in _persons(store).values()


def test_a_large_link_starting_while_an_ingest_runs_stays_on_the_workers_thread(store, monkeypatch):
    calls = _spy(monkeypatch)
    with store.transaction() as s:
        s.add(IngestRunRow(system="sys_b", status="running"))
    backlog = [10]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])
    worker.load_settle_s = 0  # the held records are linked although an ingest runs
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])
    worker.wait_for_release()
    assert worker.release_error is None and calls == []
    assert None not in _persons(store).values()
    with store.transaction() as s:
        s.query(IngestRunRow).update({"status": "ok"})
    backlog[0] = 10
    worker.handle([_people("sys_b", "B")])
    backlog[0] = 0
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    assert worker.release_error is None and calls == [BULK_PROCESS_WRITE_RECORDS]  # the ingest has ended: the child
    assert None not in _persons(store).values()
