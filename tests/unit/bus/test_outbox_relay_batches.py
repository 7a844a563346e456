"""The relay hands stored bodies to the bus unparsed, journals each message once, and relays
to an outside broker on a thread whose errors still fail the ingest; a writer on a bus inside the
store publishes in its own transaction (`OutboxRelay.write`)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from canonical.messages import Envelope, MessageType
from hub.bus.journal import StoreJournal
from hub.bus.outbound import Outbound
from hub.bus.port import BusError, QueueBinding
from hub.bus.sqlite import StoreQueueBus
from hub.outbox import BackgroundRelay, OutboxRelay, add_to_outbox
from hub.store.tables.messaging import MessageJournalRow, OutboxRow


def _record(i: int) -> Envelope:
    return Envelope(type=MessageType.RECORD_UPSERTED, source_system="early_help",
                    payload={"ref": {"system": "early_help", "entity": "person", "source_id": str(i)}, "version": 1})


def test_outbound_of_a_stored_body_keeps_what_the_envelope_said():
    env = _record(7).model_copy(update={"correlation_id": _record(8).message_id})
    m = Outbound.of(str(env.message_id), env.type.value, env.source_system, env.to_json())
    assert m == Outbound.from_envelope(env)
    assert m.routing_key == "source.record.upserted.early_help"
    assert m.ref_key == "early_help/person/7"
    assert m.correlation_id == str(env.correlation_id)


def test_relay_moves_every_message_in_batches_bodies_unchanged(sqlite_store):
    bus = StoreQueueBus(sqlite_store, poll_interval_s=0.01)
    bus.declare([QueueBinding("records", ("source.record.#",)), QueueBinding("other", ("identity.#",))])
    sent = [_record(i) for i in range(25)]
    with sqlite_store.transaction() as s:
        add_to_outbox(s, sent)
    relay = OutboxRelay(sqlite_store, bus, StoreJournal(sqlite_store), batch_size=10)
    assert relay.relay_all() == 25
    assert relay.relay_all() == 0
    got: list[Envelope] = []
    bus.consume("records", got.extend, batch_size=100, idle_timeout_s=0.05)
    assert got == sent
    assert bus.stats("other").ready == 0  # routed by binding, not copied to every queue
    with sqlite_store.transaction() as s:
        assert s.execute(select(OutboxRow.published_at).where(OutboxRow.published_at.is_(None))).first() is None
        journal = s.execute(select(MessageJournalRow.event, MessageJournalRow.ref_key)).all()
    assert len(journal) == 25 and {e for e, _ in journal} == {"published"}
    assert {k for _, k in journal} == {f"early_help/person/{i}" for i in range(25)}


class _Broker:
    """An outside broker (no `publish_in`): keeps what it confirmed; can be made to refuse."""

    def __init__(self, refuse: bool = False) -> None:
        self.bodies: list[str] = []
        self.refuse = refuse

    def publish_serialized(self, messages: list[Outbound]) -> None:
        if self.refuse:
            raise BusError("broker unreachable")
        self.bodies += [m.body for m in messages]


def test_background_relay_publishes_everything_by_finish(sqlite_store):
    broker = _Broker()
    relay = OutboxRelay(sqlite_store, broker, batch_size=7)  # type: ignore[arg-type]
    with BackgroundRelay(relay) as background:
        for start in range(0, 30, 10):
            with sqlite_store.transaction() as s:
                add_to_outbox(s, [_record(i) for i in range(start, start + 10)])
            background.nudge()
        background.finish()
    ids = [json.loads(b)["payload"]["ref"]["source_id"] for b in broker.bodies]
    assert sorted(ids, key=int) == [str(i) for i in range(30)]
    assert len(ids) == 30


def test_background_relay_error_fails_the_caller(sqlite_store):
    relay = OutboxRelay(sqlite_store, _Broker(refuse=True))  # type: ignore[arg-type]
    with sqlite_store.transaction() as s:
        add_to_outbox(s, [_record(1)])
    with pytest.raises(BusError), BackgroundRelay(relay) as background:
        background.nudge()
        background.finish()
    with sqlite_store.transaction() as s:  # nothing marked published: the next relay sends it
        assert s.execute(select(OutboxRow.id).where(OutboxRow.published_at.is_(None))).first() is not None


def test_write_on_a_bus_in_the_store_publishes_in_the_writers_transaction(sqlite_store):
    bus = StoreQueueBus(sqlite_store, poll_interval_s=0.01)
    bus.declare([QueueBinding("records", ("source.record.#",))])
    relay = OutboxRelay(sqlite_store, bus, StoreJournal(sqlite_store))
    earlier = [_record(i) for i in range(3)]
    with sqlite_store.transaction() as s:
        add_to_outbox(s, earlier)  # left unpublished by an earlier writer
    sent = [_record(i) for i in range(3, 8)]
    with BackgroundRelay(relay) as background:  # relays what was left, before this writer's messages
        with sqlite_store.transaction() as s:
            relay.write(s, [Outbound.from_envelope(e) for e in sent])
        background.nudge()
        background.finish()
    assert relay.relay_all() == 0
    got: list[Envelope] = []
    bus.consume("records", got.extend, batch_size=100, idle_timeout_s=0.05)
    assert got == earlier + sent
    with sqlite_store.transaction() as s:
        bodies = s.execute(select(OutboxRow.body).order_by(OutboxRow.id)).scalars().all()
        unpublished = s.execute(select(OutboxRow.id).where(OutboxRow.published_at.is_(None))).all()
        journal = s.execute(select(MessageJournalRow.event, MessageJournalRow.ref_key)).all()
    assert bodies == [e.to_json() for e in earlier + sent] and unpublished == []
    assert sorted(journal) == sorted(("published", f"early_help/person/{i}") for i in range(8))


def test_write_rolled_back_publishes_nothing(sqlite_store):
    bus = StoreQueueBus(sqlite_store, poll_interval_s=0.01)
    bus.declare([QueueBinding("records", ("source.record.#",))])
    relay = OutboxRelay(sqlite_store, bus, StoreJournal(sqlite_store))
    with pytest.raises(RuntimeError), sqlite_store.transaction() as s:
        relay.write(s, [Outbound.from_envelope(_record(1))])
        raise RuntimeError("the ingest's batch failed")
    assert bus.stats("records").ready == 0
    with sqlite_store.transaction() as s:
        assert s.execute(select(OutboxRow.id)).first() is None


def test_write_for_an_outside_broker_leaves_the_messages_to_the_relay(sqlite_store):
    broker = _Broker()
    relay = OutboxRelay(sqlite_store, broker)  # type: ignore[arg-type]
    with sqlite_store.transaction() as s:
        relay.write(s, [Outbound.from_envelope(_record(1)), Outbound.from_envelope(_record(2))])
    assert broker.bodies == []
    assert relay.relay_all() == 2 and len(broker.bodies) == 2
