"""What the RabbitMQ bus does beyond the shared contract: its topology, unroutable messages,
outages of the store, the broker's own dead-lettering, and its figures."""

from __future__ import annotations

import threading
import time
import uuid

import pika
import pytest
import responses
from sqlalchemy.exc import OperationalError

from canonical.messages import Envelope, MessageType
from hub.bus.amqp import AmqpBus, is_transient
from hub.bus.amqp_management import ManagementClient, management_url_for
from hub.bus.amqp_topology import DELIVERY_LIMIT, Topology
from hub.bus.journal import JournalEvent
from hub.bus.port import BusError, QueueBinding, RetryPolicy
from tests.support.services import require_rabbitmq

BINDINGS = [QueueBinding("records", ("source.record.#",))]
RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.2)


class ListJournal:
    def __init__(self) -> None:
        self.events: list[JournalEvent] = []

    def record(self, events, session=None) -> None:
        self.events.extend(events)


@pytest.fixture
def bus():
    url = require_rabbitmq()
    name = f"unit_{uuid.uuid4().hex[:10]}"
    made = AmqpBus(url, exchange=name, queue_prefix=name, retry=RETRY, prefetch=20, journal=ListJournal(),
                   management_url="http://127.0.0.1:1")  # no management API: the fallbacks are tested
    made.declare(BINDINGS)
    yield made
    made.delete_topology(["records"])
    made.close()


def _env(i: int, type_: MessageType = MessageType.RECORD_UPSERTED) -> Envelope:
    return Envelope(type=type_, source_system="sys_a", payload={"i": i})


def test_topology_names_and_arguments():
    t = Topology("hub", "hub", RetryPolicy(max_attempts=4, base_delay_s=0.5))
    assert t.all_queues("records") == ["hub.records", "hub.records.dead", "hub.records.retry.1",
                                       "hub.records.retry.2", "hub.records.retry.3"]
    assert t.work_arguments("records") == {
        "x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "hub.records.dead", "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish"}
    assert [t.retry_arguments("records", n)["x-message-ttl"] for n in (1, 2, 3)] == [500, 1000, 2000]
    assert t.retry_arguments("records", 1)["x-dead-letter-routing-key"] == "hub.records"


def test_declare_twice_and_a_message_no_queue_wants_is_kept_not_lost(bus):
    bus.declare(BINDINGS)
    bus.publish([_env(1, MessageType.ALERT_RAISED)])
    assert bus._depth(bus.topology.unrouted_queue) == 1
    assert bus.stats("records").ready == 0


def test_consume_holds_the_batch_while_the_store_is_down_without_spending_attempts(bus):
    bus.publish([_env(i) for i in range(5)])
    calls: list[int] = []

    def store_down_twice(batch: list[Envelope]) -> None:
        calls.append(len(batch))
        if len(calls) <= 2:
            raise OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))

    assert bus.consume("records", store_down_twice, batch_size=5, max_messages=5, idle_timeout_s=3) == 5
    assert calls[0] == calls[1] == calls[2]  # the same batch held and handed over again
    assert sum(calls[2:]) == 5
    assert [e.event for e in bus.journal.events if e.event != "delivered"] == []  # no retry, no dead letter
    assert bus.dead_letters("records") == []


def test_a_message_that_keeps_killing_its_consumer_is_dead_lettered_by_the_broker(bus):
    bus.publish([_env(1)])
    queue = bus.topology.work_queue("records")
    conn = pika.BlockingConnection(pika.URLParameters(bus.url))
    try:
        for _ in range(DELIVERY_LIMIT + 1):  # a consumer that dies before acknowledging, again and again
            ch = conn.channel()
            method, _props, _body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                break
            ch.close()
    finally:
        conn.close()
    deadline = time.monotonic() + 5
    while not bus.dead_letters("records") and time.monotonic() < deadline:
        time.sleep(0.05)
    [dead] = bus.dead_letters("records")
    assert "delivery_limit" in dead.error and "dead-lettered by the broker" in dead.error
    assert bus.replay("records") == 1
    got: list[Envelope] = []
    bus.consume("records", got.extend, idle_timeout_s=0.5)
    assert [e.payload["i"] for e in got] == [1]


def test_stats_without_the_management_api_come_from_passive_declares(bus):
    bus.publish([_env(i) for i in range(3)])
    stop = threading.Event()
    seen: list[Envelope] = []
    consumer = threading.Thread(target=bus.consume, args=("records", seen.extend),
                                kwargs={"should_stop": stop.is_set})
    consumer.start()
    try:
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = bus.stats("records")
        assert (stats.ready, stats.dead, stats.consumers) == (0, 0, 1)
    finally:
        stop.set()
        consumer.join(5)
    assert bus.broker_figures("records") is None


def test_publishing_to_an_exchange_that_is_gone_fails_loudly(bus):
    bus.delete_topology(["records"])
    with pytest.raises(BusError):
        bus.publish([_env(1)])
    bus.declare(BINDINGS)  # for the fixture's clean-up


def test_store_errors_that_are_not_the_message_s_fault():
    assert is_transient(OperationalError("SELECT 1", {}, ConnectionError("server closed the connection")))
    assert not is_transient(ValueError("bad payload"))
    try:
        try:
            raise OperationalError("SELECT 1", {}, ConnectionError("gone"))
        except OperationalError as inner:
            raise RuntimeError("while linking") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


@responses.activate
def test_management_figures_and_the_url_beside_the_amqp_url():
    assert management_url_for("amqp://hub:s%40crt@rabbit:5672/%2F") == ("http://rabbit:15672", "/", ("hub", "s@crt"))
    responses.get("http://rabbit:15672/api/queues/%2F/hub.records", json={
        "name": "hub.records", "messages_ready": 7, "messages_unacknowledged": 2, "consumers": 2,
        "message_stats": {"publish_details": {"rate": 120.5}, "deliver_get_details": {"rate": 118.0}}})
    responses.get("http://rabbit:15672/api/queues/%2F/hub.gone", status=404)
    client = ManagementClient("amqp://hub:s%40crt@rabbit:5672/%2F")
    figures = client.queue("hub.records")
    assert (figures.ready, figures.unacked, figures.consumers) == (7, 2, 2)
    assert (figures.publish_rate, figures.deliver_rate) == (120.5, 118.0)
    assert client.queue("hub.gone") is None
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
