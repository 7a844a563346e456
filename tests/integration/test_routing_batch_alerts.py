"""The routing worker evaluates a batch of `route.changed` messages at once: two messages of one
household in one batch raise one alert; a message seen before (or twice in a batch) is a
duplicate; a deleted or unknown record routes nothing; decisions are those of one at a time."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, update

from canonical.messages import Envelope, MessageType
from hub.routing_worker import list_alerts
from hub.store import Store
from hub.store.tables.messaging import MessageJournalRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from hub.worker import run_worker
from tests.integration.routing_legacy import LegacySystem, make_hub

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def estate(store, tmp_path, monkeypatch):
    hub = estate_hub(store, tmp_path, monkeypatch)
    yield hub
    hub.close()


def changed(system: str, source_id: str, entity: str = "involvement") -> Envelope:
    return Envelope(type=MessageType.ROUTE_CHANGED, source_system=system, payload={
        "ref": {"system": system, "entity": entity, "source_id": source_id}, "version": 1, "created": True,
        "changed": {}})


def details(hub, *envelopes: Envelope) -> list[list[str]]:
    """The `processed` journal details of each message, oldest first."""
    with hub.store.transaction() as s:
        return [list(s.execute(select(MessageJournalRow.detail).where(
            MessageJournalRow.message_id == str(e.message_id), MessageJournalRow.event == "processed")
            .order_by(MessageJournalRow.id)).scalars()) for e in envelopes]


def test_two_messages_of_one_household_in_one_batch_raise_one_alert(estate):
    hub = estate
    amy, ben, dan = changed("social_care", "ep-1"), changed("early_help", "ep-1"), changed("social_care", "ep-2")
    hub.extras["routing_worker"].handle([amy, dan, ben])
    alerts = list_alerts(hub.store)
    assert len(alerts) == 1
    assert alerts[0]["team"] == "Early Help North"
    assert alerts[0]["services"] == ["early_help", "education", "social_care"] and len(alerts[0]["persons"]) == 2
    [first], [other], [second] = details(hub, amy, dan, ben)
    assert first.startswith("alert early-help-multi-service-household raised to Early Help North: 3 services")
    assert other == "no route or alert applies"
    assert second == "alert early-help-multi-service-household: already raised for this household"
    assert hub.bus.stats("alerts").ready == 1

    later = changed("education", "ep-1")  # a later batch: the alert in the store counts
    hub.extras["routing_worker"].handle([later])
    assert details(hub, later) == [["alert early-help-multi-service-household: already raised for this household"]]
    assert len(list_alerts(hub.store)) == 1


def test_a_message_seen_before_or_twice_in_a_batch_is_a_duplicate(estate):
    hub = estate
    worker = hub.extras["routing_worker"]
    dan = changed("social_care", "ep-2")
    worker.handle([dan])
    amy = changed("social_care", "ep-1")
    worker.handle([dan, amy, amy])
    assert details(hub, dan) == [["no route or alert applies", "duplicate: already processed"]]
    [(first, again)] = details(hub, amy)
    assert first.startswith("alert early-help-multi-service-household raised") and again == (
        "duplicate: already processed")
    assert len(list_alerts(hub.store)) == 1


def test_a_deleted_or_unknown_record_routes_nothing(estate):
    hub = estate
    with hub.store.transaction() as s:
        s.execute(update(SourceRecordRow).where(SourceRecordRow.ref_key == "early_help/involvement/ep-1")
                  .values(deleted=True))
    ben, ghost = changed("early_help", "ep-1"), changed("early_help", "ep-99")
    linked = Envelope(type=MessageType.IDENTITY_LINKED, source_system="hub", payload={"person_id": "x"})
    amy = changed("social_care", "ep-1")
    hub.extras["routing_worker"].handle([ben, ghost, linked, amy])
    assert details(hub, ben, ghost, linked, amy) == [
        ["no route or alert applies"], ["no route or alert applies"], ["no routing rule handles identity.linked"],
        ["no route or alert applies"]]  # without Ben's early help only two services are left
    assert list_alerts(hub.store) == []


def test_one_batch_decides_as_one_message_at_a_time(store, tmp_path, monkeypatch):
    """The same messages handled in one batch, and one by one on a second store, give the same
    journal details and the same alert."""
    messages = [changed("social_care", "ep-1"), changed("early_help", "ep-1"), changed("education", "ep-1"),
                changed("social_care", "ep-2"), changed("social_care", "C1", "person")]
    (tmp_path / "single").mkdir()
    single_store = Store(f"sqlite:///{tmp_path}/single/hub.db")
    single_store.migrate()
    outcomes = []
    for hub_store, directory in ((store, tmp_path), (single_store, tmp_path / "single")):
        hub = estate_hub(hub_store, directory, monkeypatch)
        if hub_store is store:
            hub.extras["routing_worker"].handle(messages)
        else:
            for m in messages:
                hub.extras["routing_worker"].handle([m.model_copy(update={"message_id": uuid.uuid4()})])
        with hub.store.transaction() as s:
            persons = dict(s.execute(select(PersonRow.id, PersonRow.display_name)).all())
            journal = [d for d, t in s.execute(select(MessageJournalRow.detail, MessageJournalRow.type).where(
                MessageJournalRow.event == "processed").order_by(MessageJournalRow.id)) if t == "route.changed"]
        outcomes.append((journal, [(a["team"], sorted(persons[p] for p in a["persons"]), a["services"])
                                   for a in list_alerts(hub.store)]))
        hub.close()
    single_store.dispose()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == [("Early Help North", ["Amy Smith", "Ben Smith"], ["early_help", "education", "social_care"])]


def estate_hub(store, directory, monkeypatch):
    """Amy (social care and education) and her brother Ben (early help) at one address, and Dan
    elsewhere; every record mirrored, the routing worker not run yet."""
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(directory / "archive"))
    systems = {name: LegacySystem(directory, name, name) for name in ("social_care", "education", "early_help")}
    sc, ed, eh = systems["social_care"], systems["education"], systems["early_help"]
    sc.client("C1", "Amy", "Smith", line1="4 Mill Lane", postcode="MK1 1AA")
    ed.client("U1", "Amy", "Smith", line1="4 Mill Lane", postcode="MK1 1AA")
    eh.client("E7", "Ben", "Smith", dob="2012-01-01", line1="4 Mill Lane", postcode="MK1 1AA")
    sc.client("C2", "Dan", "Jones", dob="2011-05-05", line1="9 Far Road", postcode="ZZ1 1ZZ")
    sc.episode("C1", TODAY - dt.timedelta(days=10), team="Referral and Assessment")  # social_care ep-1
    ed.episode("U1", TODAY - dt.timedelta(days=5))  # education ep-1
    eh.episode("E7", TODAY - dt.timedelta(days=30), team="Early Help North")  # early_help ep-1
    sc.episode("C2", TODAY - dt.timedelta(days=3))  # social_care ep-2
    hub = make_hub(store, directory)
    for name in systems:
        hub.ingest.run(name)
    hub.relay.relay_all()
    run_worker(hub.bus, hub.worker, batch_size=100, idle_timeout_s=0.2)
    return hub
