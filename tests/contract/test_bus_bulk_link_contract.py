"""On every bus, a records worker that starts behind holds its new person records and links them
all before `run_worker` returns: the backlog it reads from the bus counts what a broker has
already handed out (prefetch) as well as what is ready."""

from __future__ import annotations

from sqlalchemy import select

from hub.bus.bindings import DEFAULT_BINDINGS, RECORDS_QUEUE
from hub.identity import bulk_link
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.store.tables.identity import IdentityLinkRow
from hub.store.tables.records import SourceRecordRow
from hub.worker import RecordsWorker, run_worker
from tests.unit.hub.test_worker_bulk_link import PEOPLE, _involvements, _people


def test_a_worker_behind_links_in_bulk_on_every_bus(bus):
    store = getattr(bus, "store", None) or bus.journal.store
    bus.declare(list(DEFAULT_BINDINGS))
    bus.publish([_people("sys_a", "A"), _involvements("sys_a", "A"), _people("sys_b", "B"),
                 _involvements("sys_b", "B"), _people("sys_c", "C")])
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=2)
    assert run_worker(bus, worker, batch_size=1, idle_timeout_s=1.0) == 5
    assert bus.stats(RECORDS_QUEUE).ready == 0
    with store.read() as s:
        persons = dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id)
                                 .where(SourceRecordRow.entity == "person")).all())
        made_by = set(s.execute(select(IdentityLinkRow.made_by)).scalars())
        assert not bulk_link.has_pending(s)
    for i in range(len(PEOPLE)):
        assert persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] == persons[f"sys_c/person/C{i}"]
    assert None not in persons.values() and bulk_link.MADE_BY in made_by
