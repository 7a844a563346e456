"""`hub identity rebuild` announces its merges in `identity.batch` messages, as the records worker
announces its identity events: tens of thousands of merges are a few hundred messages."""

from __future__ import annotations

from sqlalchemy import select, update

from canonical.messages import Envelope, MessageType, batch_items
from hub.identity.runs import rebuild
from hub.store.tables.identity import IdentityRecordRow
from hub.store.tables.messaging import OutboxRow
from hub.store.tables.records import SourceRecordRow
from tests.integration.test_identity_linking import NHS_A, flow, hub, persons  # noqa: F401 - hub: the fixture
from tests.unit.identity.identity_factory import record


def test_a_rebuild_merge_is_an_item_of_an_identity_batch(hub):  # noqa: F811 - the fixture
    flow(hub, [record("social_care", "C1", "Amy", "Smith", "2015-03-02", nhs=NHS_A),
               record("education", "U1", "Amy", "Smith", "2015-03-02", nhs=NHS_A)])
    amy = persons(hub)["social_care/person/C1"]
    with hub.store.transaction() as s:  # as an exact-key load would have left them: apart
        for table in (SourceRecordRow, IdentityRecordRow):
            s.execute(update(table).where(table.ref_key == "education/person/U1").values(person_id="P000SPLIT0001"))
        before = s.execute(select(OutboxRow.id).order_by(OutboxRow.id.desc()).limit(1)).scalar()
    report = rebuild(hub.store, hub.worker.linker.model)
    assert len(report.merges) == 1 and persons(hub)["education/person/U1"] == persons(hub)["social_care/person/C1"]
    with hub.store.transaction() as s:
        sent = [(t, b) for t, b in s.execute(select(OutboxRow.type, OutboxRow.body).where(OutboxRow.id > before))]
    assert [t for t, _b in sent] == [MessageType.IDENTITY_BATCH.value]
    items = batch_items(Envelope.from_json(sent[0][1]).payload)
    assert [i["type"] for i in items] == ["identity.merged"]
    assert items[0]["payload"]["person_id"] in (amy, "P000SPLIT0001") and items[0]["payload"]["by"] == "rebuild"
