"""A storing helper (hub/storing_helper.py): once a load's ingest has ended, a records worker
linking a chunk on its thread starts one process that stores the rest of the queue; the helper
holds the person records and links nothing, and the worker links all that is held at once when
the queue is empty (no further whole chunks while the helper runs)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, update

from hub import storing_helper
from hub.bootstrap import bootstrap
from hub.config import load_config
from hub.identity import bulk_link
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.outbox import add_to_outbox
from hub.store.tables.identity import IdentityAuditRow, IdentityRecordRow
from hub.store.tables.ingest import IngestRunRow
from hub.worker import RecordsWorker
from tests.unit.hub.test_worker_bulk_link import PEOPLE, _involvements, _pending, _people, _persons


class _FakeHelper:
    """What `storing_helper.starter` returns, as far as the worker looks at it."""

    def __init__(self) -> None:
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive


def _wait(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_after_the_ingest_a_worker_linking_on_its_thread_starts_one_helper_then_links_the_rest_at_once(
        store, monkeypatch):
    with store.transaction() as s:
        s.add(run := IngestRunRow(system="sys_a", status="running", figures={}))
    started: list[_FakeHelper] = []

    def start() -> _FakeHelper:
        started.append(_FakeHelper())
        return started[-1]

    linked, go = threading.Event(), threading.Event()
    real = bulk_link.link

    def slow_link(*args, **kwargs):  # the first chunk on the thread takes a while after its clustering
        report = real(*args, **kwargs)
        if not linked.is_set():
            linked.set()
            assert go.wait(20)
        return report

    monkeypatch.setattr(bulk_link, "link", slow_link)
    backlog = [10]
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0,
                           bulk_link_max_records=len(PEOPLE), bulk_link_process_at=0, storing_helper=start)
    worker.chunk_check_s = 0
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A"), _involvements("sys_a", "A")])  # a whole chunk held: linked on the thread
    assert linked.wait(20) and worker._thread_linking
    worker.handle([_people("sys_b", "B")])
    assert started == []  # the ingest is still running: its core is not idle
    with store.transaction() as s:
        s.execute(update(IngestRunRow).where(IngestRunRow.id == run.id).values(status="ok"))
    worker.handle([_involvements("sys_b", "B")])
    worker.handle([_people("sys_c", "C")])
    assert len(started) == 1 and worker.helping()  # one helper, however many deliveries
    go.set()
    assert _wait(lambda: not worker._thread_linking)
    worker.handle([_people("sys_d", "D")])  # 18 held, three chunks' worth: none is started while the helper runs
    time.sleep(0.2)
    assert [r for r in _pending(store) if r.startswith("sys_b/")] == [f"sys_b/person/B{i}" for i in range(6)]
    started[0].alive = False  # the helper has stored the queue and ended
    backlog[0] = 0
    worker.tick()
    assert _wait(lambda: not worker._releasing and _pending(store) == [], 30)
    persons = _persons(store)
    assert None not in persons.values() and len(set(persons.values())) == len(PEOPLE)
    with store.transaction() as s:
        details = [a.detail for a in s.execute(select(IdentityAuditRow).where(
            IdentityAuditRow.action == "bulk-link").order_by(IdentityAuditRow.id)).scalars()]
    assert [(d["records"], d["chunks"]) for d in details] == [(6, 1), (18, 3)]


def test_a_worker_that_is_not_linking_on_its_thread_starts_no_helper(store):
    started: list[object] = []
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0,
                           storing_helper=lambda: started.append(_FakeHelper()) or started[-1])
    worker.chunk_check_s = 0
    worker.backlog = lambda: 10
    worker.handle([_people("sys_a", "A")])
    worker.handle([_people("sys_b", "B")])
    assert started == []


def test_the_helper_process_stores_the_queue_holding_its_person_records_and_links_nothing(sqlite_store, tmp_path):
    config_file = tmp_path / "hub.toml"
    config_file.write_text(f'[store]\nurl = "{sqlite_store.url}"\n[systems]\ndir = "{tmp_path / "systems"}"\n')
    hub = bootstrap(load_config(str(config_file)), migrate=False)
    try:
        holder = RecordsWorker(hub.store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0)
        holder.backlog = lambda: 10  # behind: the main worker held its records
        holder.handle([_people("sys_a", "A")])
        with hub.store.transaction() as s:
            add_to_outbox(s, [_people("sys_b", "B"), _involvements("sys_b", "B")])
        hub.relay.relay_all()
        helper = storing_helper.starter(str(config_file))()
        helper.join(120)
        assert helper.exitcode == 0
        persons = _persons(hub.store)
        assert set(persons) == {f"{s}/person/{p}{i}" for s, p in (("sys_a", "A"), ("sys_b", "B")) for i in range(6)}
        assert set(persons.values()) == {None}  # held, not linked
        assert len([r for r in _pending(hub.store) if "/person/" in r]) == 12
        with hub.store.read() as s:
            assert s.execute(select(func.count()).select_from(IdentityRecordRow)).scalar_one() == 0
            done = s.execute(select(IdentityAuditRow.detail).where(
                IdentityAuditRow.action == storing_helper.ACTION)).scalars().all()
        assert [d["messages"] for d in done] == [2] and done[0]["seconds"] >= 0
        holder.backlog = lambda: 0
        holder.tick()
        assert _wait(lambda: None not in _persons(hub.store).values(), 30)  # the worker links them all
        holder.wait_for_release()
        persons = _persons(hub.store)
        assert all(persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] for i in range(6))
    finally:
        hub.close()
