"""`hub bench bus`: the same N messages through raw pika, the hub's RabbitMQ bus and the
hub's embedded bus, in one run, with the hub/raw ratio.

Every path does the same work per message: publish it persistently with a confirm,
deliver it to one of `--workers` competing consumers (threads, each with its own
connection), acknowledge it. Rows:

- raw pika, confirm each message: `BlockingChannel` in confirm mode, to one quorum queue;
  consumers ack each message (the straightforward safe client);
- raw pika, no confirms: the same without confirms, an upper bound that may lose messages;
- hub amqp, bus only: `AmqpBus.publish` and `AmqpBus.consume` (topic exchange, quorum
  queues, batches), a handler that does nothing;
- hub amqp + inbox: the same, the handler claiming each batch in the store's inbox
  (the idempotency every hub consumer pays for);
- hub sqlite + inbox: the embedded bus on the same store, same handler;
- with `--records N`: N new person records through each bus into the real records
  worker (inbox, version check, identity linking, golden record), the whole hub path.

Consumers run while the messages are published; a row's rate is N / (first publish →
last acknowledgement).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import click
import pika

from canonical.messages import Envelope, MessageType
from hub.bench.table import render
from hub.bus.port import Bus, QueueBinding, RetryPolicy
from hub.store.engine import Store

QUEUE = "bench"
BINDINGS = [QueueBinding(QUEUE, ("source.record.#",))]
DEFAULT_AMQP = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _envelopes(n: int) -> list[Envelope]:
    payload = {"ref": {"system": "bench", "entity": "person", "source_id": "x"}, "blob": "x" * 600}
    return [Envelope(type=MessageType.RECORD_UPSERTED, source_system="bench", payload=payload) for _ in range(n)]


class _Counter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def add(self, k: int) -> None:
        with self.lock:
            self.n += k


def _wait(counter: _Counter, n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while counter.n < n:
        if time.monotonic() > deadline:
            raise click.ClickException(f"only {counter.n} of {n} messages arrived in {timeout_s:.0f}s")
        time.sleep(0.01)


def raw_pika(url: str, envelopes: list[Envelope], workers: int, prefetch: int,
             confirms: bool = True) -> tuple[float, float]:
    """(publish seconds, end-to-end seconds) for raw pika on one quorum queue."""
    name = f"bench_raw_{uuid.uuid4().hex[:8]}"
    bodies = [e.to_json().encode() for e in envelopes]
    setup = pika.BlockingConnection(pika.URLParameters(url))
    setup.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    counter, stop = _Counter(), threading.Event()

    def consume() -> None:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)

        def on_message(channel, method, _props, _body) -> None:
            channel.basic_ack(method.delivery_tag)
            counter.add(1)

        ch.basic_consume(name, on_message)
        while not stop.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    started = time.perf_counter()
    ch = setup.channel()
    if confirms:
        ch.confirm_delivery()  # BlockingChannel: waits for each message's confirm
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    for body in bodies:
        ch.basic_publish("", name, body, props, mandatory=True)
    published = time.perf_counter() - started
    _wait(counter, len(bodies), 600)
    total = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(5)
    setup.channel().queue_delete(name)
    setup.close()
    return published, total


def hub_path(bus: Bus, envelopes: list[Envelope], workers: int, handler: Callable[[list[Envelope]], None],
             batch: int) -> tuple[float, float]:
    """(publish seconds, end-to-end seconds) through a hub `Bus` with `workers` consumers."""
    bus.declare(BINDINGS)
    counter, stop = _Counter(), threading.Event()

    def consume() -> None:
        def handle(items: list[Envelope]) -> None:
            handler(items)
            counter.add(len(items))

        bus.consume(QUEUE, handle, batch_size=batch, should_stop=stop.is_set)

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    started = time.perf_counter()
    for i in range(0, len(envelopes), 500):
        bus.publish(envelopes[i:i + 500])
    published = time.perf_counter() - started
    _wait(counter, len(envelopes), 600)
    total = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(5)
    return published, total


def person_envelopes(n: int, system: str) -> list[Envelope]:
    """`n` new people, one source record each, as the adapters would announce them."""
    import datetime as dt

    from canonical import (
        EntityKind,
        PartialDate,
        Person,
        PersonName,
        Provenance,
        SourceRecord,
        SourceRef,
        content_hash,
    )

    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(n):
        raw = {"id": i, "given": f"Given{i}", "family": f"Family{i % 997}", "dob": str(dt.date(2008, 1, 1)
                                                                                     + dt.timedelta(days=i % 5000))}
        person = Person(names=(PersonName(given=raw["given"], family=raw["family"]),),
                        birth_date=PartialDate(value=dt.date.fromisoformat(raw["dob"])))
        record = SourceRecord(ref=SourceRef(system=system, entity=EntityKind.PERSON, source_id=str(i)),
                              content_hash=content_hash(raw), observed_at=now, version=1,
                              provenance=Provenance(adapter="bench", location="bench", extracted_at=now),
                              raw=raw, canonical=person.model_dump(mode="json"))
        out.append(Envelope(type=MessageType.RECORD_UPSERTED, source_system=system,
                            payload=record.model_dump(mode="json")))
    return out


def records_handler(store: Store) -> Callable[[list[Envelope]], None]:
    from hub.identity.linker import IdentityLinker
    from hub.identity.model_file import load_model
    from hub.worker import RecordsWorker

    return RecordsWorker(store, linker=IdentityLinker(load_model())).handle


def inbox_handler(store: Store, consumer: str) -> Callable[[list[Envelope]], None]:
    from hub.inbox import claim_unseen

    def handle(items: list[Envelope]) -> None:
        with store.transaction() as s:
            claim_unseen(s, consumer, [str(e.message_id) for e in items])

    return handle


@click.command("bus")
@click.option("--messages", "n", type=int, default=20_000, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="competing consumers")
@click.option("--batch-size", type=int, default=200, show_default=True)
@click.option("--amqp-url", default=DEFAULT_AMQP, show_default=True)
@click.option("--store-url", default=None, help="store for the inbox rows (default: a temporary SQLite file)")
@click.option("--records", "n_records", type=int, default=0, show_default=True,
              help="also send this many person records through each bus into the records worker")
def command(n: int, workers: int, batch_size: int, amqp_url: str, store_url: str | None, n_records: int) -> None:
    """Messages/s through raw pika, the hub's RabbitMQ bus and its embedded bus."""
    from hub.bus.amqp import AmqpBus
    from hub.bus.sqlite import StoreQueueBus

    envelopes = _envelopes(n)
    rows: list[list[object]] = []
    raw_pub, raw_total = raw_pika(amqp_url, envelopes, workers, batch_size)
    raw_rate = n / raw_total
    fast_pub, fast_total = raw_pika(amqp_url, envelopes, workers, batch_size, confirms=False)
    fast_rate = n / fast_total
    rows.append(["raw pika, confirm each message", n / raw_pub, raw_rate, 1.0, raw_rate / fast_rate])
    rows.append(["raw pika, no confirms (unsafe)", n / fast_pub, fast_rate, fast_rate / raw_rate, 1.0])

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(store_url or f"sqlite:///{Path(tmp) / 'bench.db'}", pool_size=workers + 2)
        store.migrate()
        try:
            paths = [("hub amqp, bus only", lambda items: None, "amqp", n),
                     ("hub amqp + inbox", inbox_handler(store, f"bench-{uuid.uuid4().hex[:6]}"), "amqp", n),
                     ("hub sqlite bus + inbox", inbox_handler(store, f"bench-{uuid.uuid4().hex[:6]}"), "sqlite", n)]
            if n_records:
                worker = records_handler(store)
                paths += [("hub amqp + records worker", worker, "amqp", n_records),
                          ("hub sqlite bus + records worker", worker, "sqlite", n_records)]
            for label, handler, make, count in paths:
                name = f"bench_{uuid.uuid4().hex[:8]}"
                bus: Bus = (AmqpBus(amqp_url, exchange=name, queue_prefix=name, prefetch=batch_size,
                                    retry=RetryPolicy(max_attempts=3)) if make == "amqp"
                            else StoreQueueBus(store, prefetch=batch_size, poll_interval_s=0.01))
                messages = person_envelopes(count, name) if "records" in label else _envelopes(count)
                try:
                    pub, total = hub_path(bus, messages, workers, handler, batch_size)
                finally:
                    if make == "amqp":
                        bus.delete_topology([QUEUE])  # type: ignore[attr-defined]
                    bus.close()
                rows.append([f"{label} ({count:,})", count / pub, count / total, (count / total) / raw_rate,
                             (count / total) / fast_rate])
        finally:
            store.dispose()
    click.echo(f"{n:,} messages of ~1 KB, {workers} consumers, batch {batch_size}, store {store.dialect}")
    click.echo(render(["path", "publish msg/s", "end-to-end msg/s", "× raw confirmed", "× raw unconfirmed"],
                      rows))
