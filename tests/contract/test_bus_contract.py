"""The contract every `Bus` implementation keeps (see hub/bus/port.py)."""

from __future__ import annotations

import time
import uuid

from canonical.messages import Envelope, MessageType
from hub.bus.port import QueueBinding

BINDINGS = [
    QueueBinding("records", ("source.record.#",)),
    QueueBinding("routing", ("identity.#", "route.#")),
]


def _env(i: int, type_: MessageType = MessageType.RECORD_UPSERTED, system: str = "csv_test") -> Envelope:
    return Envelope(type=type_, source_system=system, payload={"i": i})


def _drain(bus, queue: str, *, batch_size: int = 10, idle: float = 0.5) -> list[Envelope]:
    got: list[Envelope] = []
    bus.consume(queue, got.extend, batch_size=batch_size, idle_timeout_s=idle)
    return got


def test_declare_is_idempotent_and_publish_reaches_consumer(bus):
    bus.declare(BINDINGS)
    bus.declare(BINDINGS)
    sent = [_env(i) for i in range(25)]
    bus.publish(sent)
    got = _drain(bus, "records")
    assert [e.message_id for e in got] == [e.message_id for e in sent]
    assert got[0] == sent[0]
    assert bus.stats("records").ready == 0


def test_messages_reach_only_queues_whose_patterns_match(bus):
    bus.declare(BINDINGS)
    bus.publish([_env(1), _env(2, MessageType.IDENTITY_LINKED), _env(3, MessageType.ALERT_RAISED)])
    assert [e.payload["i"] for e in _drain(bus, "records")] == [1]
    assert [e.payload["i"] for e in _drain(bus, "routing")] == [2]


def test_max_messages_stops_consumption_and_leaves_the_rest(bus):
    bus.declare(BINDINGS)
    bus.publish([_env(i) for i in range(10)])
    got: list[Envelope] = []
    assert bus.consume("records", got.extend, batch_size=3, max_messages=4, idle_timeout_s=0.5) == 4
    assert len(got) == 4
    assert len(_drain(bus, "records")) == 6


def test_poison_message_is_retried_then_dead_lettered_without_blocking_others(bus):
    bus.declare(BINDINGS)
    poison = _env(13)
    bus.publish([_env(1), poison, _env(2)])
    processed: list[int] = []
    attempts: list[float] = []

    def handler(batch: list[Envelope]) -> None:
        if any(e.message_id == poison.message_id for e in batch):
            attempts.append(time.monotonic())
            raise ValueError("cannot handle 13")
        processed.extend(e.payload["i"] for e in batch)

    bus.consume("records", handler, batch_size=10, idle_timeout_s=1.5)
    assert sorted(processed) == [1, 2]
    assert len(attempts) >= 3  # batch attempt + isolated retries up to max_attempts
    dead = bus.dead_letters("records")
    assert [d.message_id for d in dead] == [str(poison.message_id)]
    assert "cannot handle 13" in dead[0].error
    assert dead[0].attempts == 3
    assert bus.stats("records").dead == 1


def test_retry_waits_with_back_off(bus):
    bus.declare(BINDINGS)
    bus.publish([_env(1)])
    seen: list[float] = []

    def flaky(batch: list[Envelope]) -> None:
        seen.append(time.monotonic())
        if len(seen) < 3:
            raise RuntimeError("store briefly unavailable")

    bus.consume("records", flaky, idle_timeout_s=1.5, max_messages=1)
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.04 and seen[2] - seen[1] >= 0.08


def test_replayed_dead_letter_is_processed_after_the_fix(bus):
    bus.declare(BINDINGS)
    bad = _env(7)
    bus.publish([bad])
    fixed = {"done": False}

    def handler(batch: list[Envelope]) -> None:
        if not fixed["done"]:
            raise ValueError("mapping bug")

    bus.consume("records", handler, idle_timeout_s=1.0)
    assert len(bus.dead_letters("records")) == 1
    fixed["done"] = True
    assert bus.replay("records", [str(bad.message_id)]) == 1
    got = _drain(bus, "records")
    assert [e.message_id for e in got] == [bad.message_id]
    assert bus.dead_letters("records") == []


def test_replay_all_and_unknown_ids(bus):
    bus.declare(BINDINGS)
    bus.publish([_env(i) for i in range(3)])

    def refuse(batch):
        raise ValueError("down")

    bus.consume("records", refuse, batch_size=3, idle_timeout_s=1.0)
    assert len(bus.dead_letters("records")) == 3
    assert bus.replay("records", [str(uuid.uuid4())]) == 0
    assert bus.replay("records") == 3
    assert len(_drain(bus, "records")) == 3
