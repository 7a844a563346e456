"""A bulk link's parts written from forked processes (hub/identity/bulk_writers.py): the same
persons, links, index rows and events as one process writing them in turn; a writer's failure
reaches the link with its traceback and leaves its records held; a process with threads never
forks."""

from __future__ import annotations

import threading
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from hub.identity import bulk_link, bulk_writers
from hub.identity.model_file import load_model
from hub.identity.synthetic import people
from hub.store.tables.identity import (
    IdentityAuditRow,
    IdentityBlockKeyRow,
    IdentityLinkRow,
    IdentityRecordRow,
)
from hub.store.tables.messaging import OutboxRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from identity_index import forked
from tests.unit.hub.test_bulk_link_context import _hold

RECORDS = list(people(300, seed=23))


def _state(store) -> dict[str, object]:
    """What a link wrote, with person ids replaced by the sorted records of each person."""
    with store.read() as s:
        person_of = dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id)
                                   .where(SourceRecordRow.entity == "person")).all())
        members: dict[str, list[str]] = {}
        for ref, pid in person_of.items():
            members.setdefault(pid, []).append(ref)
        return {"persons": sorted(tuple(sorted(m)) for m in members.values()),
                "person_rows": s.execute(select(func.count()).select_from(PersonRow)).scalar_one(),
                "index": s.execute(select(func.count()).select_from(IdentityRecordRow)).scalar_one(),
                "keys": s.execute(select(func.count()).select_from(IdentityBlockKeyRow)).scalar_one(),
                "links": s.execute(select(func.count()).select_from(IdentityLinkRow)).scalar_one(),
                "events": s.execute(select(func.count()).select_from(OutboxRow)).scalar_one(),
                "held": bulk_link.pending_count(s)}


def _link(store, writers: int) -> bulk_link.BulkLinkReport:
    _hold(store, RECORDS)
    return bulk_link.link(store, load_model(), records_per_transaction=40, writers=writers)


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """Forking allowed whatever threads earlier tests left (this test's own process has none it
    uses), and each call of `write_parts` counted."""
    calls: list[int] = []
    real = bulk_writers.write_parts

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(forked, "can_fork", lambda: True)
    monkeypatch.setattr(bulk_writers, "write_parts", counted)
    return calls


def test_forked_writers_write_what_one_process_writes(store, tmp_path, forks):
    from tests.conftest import _sqlite_store

    alone = _sqlite_store(tmp_path / "alone")
    one = _link(alone, writers=1)
    assert forks == []
    two = _link(store, writers=2)
    assert forks == [two.transactions - 1]
    assert two.transactions == one.transactions > 2 and two.records == one.records == len(RECORDS)
    expected = _state(alone)
    assert expected["held"] == 0 and expected["persons"] and None not in expected["persons"]
    assert _state(store) == expected
    with store.read() as s:  # the run is on record once nothing is held
        assert s.execute(select(func.count()).select_from(IdentityAuditRow)
                         .where(IdentityAuditRow.action == "bulk-link")).scalar_one() == 1
    alone.dispose()


def test_a_failing_writer_is_raised_with_its_traceback_and_its_records_stay_held(store, monkeypatch, forks):
    real = bulk_link._commit

    def failing(own, part, *args, **kwargs):
        if RECORDS[0].ref in part.refs:
            raise RuntimeError("disk full")
        return real(own, part, *args, **kwargs)

    monkeypatch.setattr(bulk_link, "_commit", failing)
    with pytest.raises(bulk_writers.BulkWriteError, match="disk full"):
        _link(store, writers=2)
    with store.read() as s:
        held = bulk_link.pending_count(s)
    assert 0 < held < len(RECORDS)
    monkeypatch.setattr(bulk_link, "_commit", real)
    report = bulk_link.link(store, load_model(), records_per_transaction=40, writers=2)
    assert report.records == held and _state(store)["held"] == 0


def test_a_process_with_threads_writes_alone(store, monkeypatch):
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert not forked.can_fork()
        monkeypatch.setattr(bulk_writers, "write_parts", lambda *a, **k: pytest.fail("forked beside a thread"))
        assert _link(store, writers=2).records == len(RECORDS)
    finally:
        stop.set()
        thread.join()


def test_a_writer_that_cannot_be_started_is_an_error_once_the_others_have_ended(store, monkeypatch, forks):
    import os

    real, calls = os.fork, []

    def fork_once():
        if calls:
            raise OSError(11, "Resource temporarily unavailable")
        pid = real()
        calls.append(pid)  # in the parent; the child writes and leaves by os._exit
        return pid

    monkeypatch.setattr(os, "fork", fork_once)
    with pytest.raises(bulk_writers.BulkWriteError, match="could not start a bulk writer"):
        _link(store, writers=2)
    with pytest.raises(ChildProcessError):  # the writer that started was waited for (reaped)
        os.waitpid(calls[0], os.WNOHANG)
    monkeypatch.setattr(os, "fork", real)
    report = bulk_link.link(store, load_model(), records_per_transaction=40, writers=2)
    assert report.records > 0 and _state(store)["held"] == 0  # the last part, left held, is linked now


def test_on_sqlite_one_writer_prepares_while_another_commits(tmp_path):
    """Only the commits take turns: a writer's preparation (the golden records read and worked
    out, the rows built) runs while the other holds the lock among them, or the second writer
    would gain nothing on SQLite."""
    import os
    import time

    log = tmp_path / "log"

    def note(kind: str, part: int, started: float) -> None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{kind} {part} {started} {time.monotonic()}\n".encode())
        os.close(fd)

    def prepare(_store, part: int) -> int:
        started = time.monotonic()
        time.sleep(0.3)
        note("prepare", part, started)
        return part

    def commit(_store, part: int) -> None:
        started = time.monotonic()
        time.sleep(0.3)
        note("commit", part, started)

    bulk_writers.write_parts(f"sqlite:///{tmp_path / 'hub.db'}", list(range(4)), prepare, commit, 2, 0.0)
    spans = [line.split() for line in log.read_text().splitlines()]
    commits = sorted((float(a), float(b)) for kind, _p, a, b in spans if kind == "commit")
    prepares = [(int(p), float(a), float(b)) for kind, p, a, b in spans if kind == "prepare"]
    assert sorted(p for p, _a, _b in prepares) == [0, 1, 2, 3]
    assert all(b1 <= a2 for (_a1, b1), (a2, _b2) in pairwise(commits))  # one at a time
    # a writer's own spans never overlap: an overlap is a preparation during another's commit
    assert any(a < c_end and c_start < b for _p, a, b in prepares for c_start, c_end in commits)
