"""The RabbitMQ bus (pika): the production deployment with several worker processes.

Guarantees, in the terms of `hub/bus/port.py`:
- publish returns once the broker has confirmed every message (publisher confirms,
  persistent messages, durable quorum queues); a message no binding matches goes to
  the alternate exchange's `unrouted` queue instead of vanishing;
- consume acknowledges a batch only after the handler returned, i.e. after the
  store committed; a consumer that dies leaves its messages to be redelivered;
- a handler error retries the message through per-attempt delay queues, then
  dead-letters it with the error in its headers (see `hub/bus/amqp_topology.py`);
- an error from the store being unreachable (connection refused, lost, deadlock)
  is not the message's fault: the batch is held and retried with back-off without
  spending its attempts, for up to `outage_budget_s`;
- a dropped connection (broker restart, network) is reopened with back-off, for
  publishing and consuming alike, for up to `reconnect_timeout_s`.

pika connections are not thread-safe: each thread gets its own connection.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from canonical.messages import Envelope
from hub.bus.amqp_management import ManagementClient
from hub.bus.amqp_topology import (
    ATTEMPT_HEADER,
    ATTEMPTS_HEADER,
    DEAD_AT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    Topology,
)
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.outbound import Outbound
from hub.bus.port import BusError, DeadLetter, Handler, QueueBinding, QueueStats, RetryPolicy

log = logging.getLogger(__name__)
DEFAULT_RETRY = RetryPolicy()

Delivery = tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]
_CONNECTION_ERRORS = (pex.AMQPConnectionError, pex.ConnectionWrongStateError, pex.ChannelWrongStateError,
                      pex.StreamLostError, ConnectionError, OSError)


class _Link:
    """One thread's connection, a plain channel for topology and browsing, and a publisher."""

    def __init__(self, params: pika.URLParameters) -> None:
        self.connection = BlockingConnection(params)
        self.channel = self.connection.channel()
        self.publisher = _ConfirmedPublisher(self.connection)

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except (pex.AMQPError, OSError):
            log.debug("closing a broken connection", exc_info=True)


class _ConfirmedPublisher:
    """Publishes a batch, then waits once for the broker to confirm all of it.

    `BlockingChannel.basic_publish` in confirm mode waits for each message's confirm
    (one round trip, and a quorum-queue fsync, per message). Confirms are asynchronous
    in the protocol, so this drives the blocking channel's underlying pika `Channel`
    (`_impl`, stable across pika 1.x): publish every message, then process I/O until
    every delivery tag is acked. A nack or a returned (unroutable) message fails the
    batch; the caller publishes it again, and the inbox drops what arrives twice."""

    def __init__(self, connection: BlockingConnection, timeout_s: float = 60.0) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self._channel = connection.channel()
        self._impl = self._channel._impl
        self._next_tag = 1
        self._pending: set[int] = set()
        self._nacked = 0
        self._returned: list[str] = []
        selected: list[bool] = []
        self._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _f: selected.append(True))
        self._impl.add_on_return_callback(self._on_return)
        self._wait(lambda: bool(selected), "Confirm.Select")

    def publish(self, messages: Sequence[tuple[str, str, bytes, pika.BasicProperties]]) -> None:
        """`messages` are (exchange, routing key, body, properties); returns once all are confirmed."""
        self._nacked, self._returned = 0, []
        for exchange, routing_key, body, props in messages:
            self._impl.basic_publish(exchange, routing_key, body, props, mandatory=True)
            self._pending.add(self._next_tag)
            self._next_tag += 1
        self._wait(lambda: not self._pending, f"confirms of {len(messages)} message(s)")
        if self._nacked or self._returned:
            raise BusError(f"broker refused {self._nacked} and could not route {len(self._returned)} "
                           f"message(s) {self._returned[:3]}")

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not done():
            if not self._channel.is_open:
                raise pex.ChannelWrongStateError(f"channel closed while waiting for {what}")
            if time.monotonic() > deadline:
                raise BusError(f"no {what} within {self.timeout_s:.0f}s")
            self.connection.process_data_events(time_limit=0.05)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tags = {t for t in self._pending if t <= method.delivery_tag} if method.multiple else {method.delivery_tag}
        self._pending -= tags
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked += len(tags)

    def _on_return(self, _channel: object, method: pika.spec.Basic.Return, props: pika.BasicProperties,
                   _body: bytes) -> None:
        self._returned.append(f"{props.message_id} ({method.reply_text} {method.routing_key})")


class AmqpBus:
    def __init__(self, url: str, *, exchange: str = "hub", queue_prefix: str = "hub",
                 retry: RetryPolicy = DEFAULT_RETRY, prefetch: int = 200, journal: Journal | None = None,
                 reconnect_timeout_s: float = 120.0, outage_budget_s: float = 300.0,
                 management_url: str | None = None) -> None:
        self.url = url
        self.params = pika.URLParameters(url)
        if "heartbeat" not in url:
            self.params.heartbeat = 60
        self.params.blocked_connection_timeout = 60
        self.topology = Topology(exchange, queue_prefix, retry)
        self.retry = retry
        self.prefetch = prefetch
        self._buffers: dict[str, list[deque]] = {}  # each consumer's deliveries not yet handled, by queue
        self.journal = journal or NullJournal()
        self.reconnect_timeout_s = reconnect_timeout_s
        self.outage_budget_s = outage_budget_s
        self.management = ManagementClient(url, base_url=management_url)
        self._local = threading.local()
        self._links: list[_Link] = []
        self._links_lock = threading.Lock()
        self._queues: set[str] = set()

    # -- connections ---------------------------------------------------------------
    def _link(self) -> _Link:
        link = getattr(self._local, "link", None)
        if link is None or not link.connection.is_open or not link.channel.is_open:
            if link is not None:
                link.close()
            link = _Link(self.params)
            self._local.link = link
            with self._links_lock:
                self._links.append(link)
        return link

    def _drop_link(self) -> None:
        link = getattr(self._local, "link", None)
        if link is not None:
            link.close()
            self._local.link = None

    def _with_reconnect(self, what: str, action: Callable[[_Link], object]) -> object:
        """Run `action` on this thread's link, reopening it with back-off on connection loss."""
        deadline = time.monotonic() + self.reconnect_timeout_s
        delay = 0.1
        while True:
            try:
                return action(self._link())
            except pex.ChannelClosedByBroker as exc:
                self._drop_link()
                if exc.reply_code in (404, 406):  # no such queue / declared differently: not transient
                    raise BusError(f"{what}: {exc.reply_text}") from exc
                error: Exception = exc
            except _CONNECTION_ERRORS as exc:
                self._drop_link()
                error = exc
            if time.monotonic() + delay > deadline:
                raise BusError(f"{what}: broker unreachable for {self.reconnect_timeout_s:.0f}s: {error!r}")
            log.warning("%s: %r; reconnecting in %.1fs", what, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- topology ------------------------------------------------------------------
    def declare(self, bindings: Sequence[QueueBinding]) -> None:
        def run(link: _Link) -> None:
            ch, t = link.channel, self.topology
            ch.exchange_declare(t.unrouted_exchange, exchange_type="fanout", durable=True)
            ch.queue_declare(t.unrouted_queue, durable=True, arguments=t.plain_arguments())
            ch.queue_bind(t.unrouted_queue, t.unrouted_exchange)
            ch.exchange_declare(t.exchange, exchange_type="topic", durable=True,
                                arguments={"alternate-exchange": t.unrouted_exchange})
            for b in bindings:
                ch.queue_declare(t.dead_queue(b.queue), durable=True, arguments=t.plain_arguments())
                ch.queue_declare(t.work_queue(b.queue), durable=True, arguments=t.work_arguments(b.queue))
                for n in t.retry_attempts():
                    ch.queue_declare(t.retry_queue(b.queue, n), durable=True,
                                     arguments=t.retry_arguments(b.queue, n))
                for pattern in b.patterns:
                    ch.queue_bind(t.work_queue(b.queue), t.exchange, routing_key=pattern)
                self._queues.add(b.queue)

        self._with_reconnect("declare", run)

    def delete_topology(self, queues: Sequence[str]) -> None:
        """Remove this bus's exchanges and queues (tests and benchmarks clean up with it)."""
        def run(link: _Link) -> None:
            t = self.topology
            for q in queues:
                for name in t.all_queues(q):
                    link.channel.queue_delete(name)
            link.channel.queue_delete(t.unrouted_queue)
            link.channel.exchange_delete(t.exchange)
            link.channel.exchange_delete(t.unrouted_exchange)

        self._with_reconnect("delete topology", run)

    # -- publishing ----------------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.publish_serialized([Outbound.from_envelope(e) for e in envelopes])

    def publish_serialized(self, outbound: Sequence[Outbound]) -> None:
        """Publish already serialised messages (the outbox relay's path); returns once all are confirmed."""
        if not outbound:
            return
        stamp = int(time.time())
        messages = [(self.topology.exchange, m.routing_key, m.body.encode(), _outbound_properties(m, stamp))
                    for m in outbound]

        def run(link: _Link) -> None:
            link.publisher.publish(messages)

        # a reconnect re-publishes the whole batch: duplicates are harmless, the inbox drops them
        self._with_reconnect(f"publish {len(messages)} message(s)", run)

    def _send_to_queue(self, queue_name: str, body: bytes, props: pika.BasicProperties) -> None:
        self._with_reconnect(f"send to {queue_name}", lambda link: link.publisher.publish(
            [("", queue_name, body, props)]))

    # -- consuming -----------------------------------------------------------------
    def consume(self, queue: str, handler: Handler, *, batch_size: int = 1, max_messages: int | None = None,
                idle_timeout_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> int:
        acked = 0
        idle_since = time.monotonic()
        prefetch = max(self.prefetch, batch_size)
        if max_messages is not None:
            prefetch = max(1, min(prefetch, max_messages))
        delay = 0.1
        while not (should_stop and should_stop()):
            if max_messages is not None and acked >= max_messages:
                break
            try:
                with self._consumer(queue, prefetch) as (connection, channel, buffer):
                    delay = 0.1
                    while not (should_stop and should_stop()):
                        if max_messages is not None and acked >= max_messages:
                            break
                        if not buffer:
                            connection.process_data_events(time_limit=0.1)
                        if not buffer:
                            if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                                return acked
                            continue
                        connection.process_data_events(time_limit=0)
                        want = min(batch_size, (max_messages - acked) if max_messages is not None else batch_size)
                        batch = [buffer.popleft() for _ in range(min(want, len(buffer)))]
                        acked += self._deliver(queue, connection, channel, batch, handler, should_stop)
                        idle_since = time.monotonic()
                    return acked
            except (pex.ChannelClosedByBroker, *_CONNECTION_ERRORS) as exc:
                if isinstance(exc, pex.ChannelClosedByBroker) and exc.reply_code in (404, 406):
                    raise BusError(f"consume {queue}: {exc.reply_text}") from exc
                log.warning("consume %s: %r; reconnecting in %.1fs", queue, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        return acked

    @contextmanager
    def _consumer(self, queue: str, prefetch: int) -> Iterator[tuple[BlockingConnection, BlockingChannel, deque]]:
        link = self._link()
        channel = link.connection.channel()
        buffer: deque[Delivery] = deque()
        self._buffers.setdefault(queue, []).append(buffer)
        channel.basic_qos(prefetch_count=prefetch)
        tag = channel.basic_consume(self.topology.work_queue(queue),
                                    lambda _ch, method, props, body: buffer.append((method, props, body)))
        try:
            yield link.connection, channel, buffer
        finally:
            self._buffers[queue].remove(buffer)
            try:
                if channel.is_open:
                    channel.basic_cancel(tag)
                    channel.close()  # unacknowledged deliveries go back to the queue
            except _CONNECTION_ERRORS:
                self._drop_link()

    def _deliver(self, queue: str, connection: BlockingConnection, channel: BlockingChannel,
                 batch: list[Delivery], handler: Handler, should_stop: Callable[[], bool] | None) -> int:
        parsed: list[tuple[Delivery, Envelope]] = []
        for delivery in batch:
            try:
                parsed.append((delivery, Envelope.from_json(delivery[2])))
            except ValueError as exc:  # not an envelope: no retry can fix it
                self._dead_letter(queue, delivery, None, f"unreadable message: {exc}", _attempt(delivery[1]) + 1)
        self._journal([JournalEvent.of(env, "delivered", queue=queue, detail=_delivery_detail(d))
                       for d, env in parsed])
        done = self._handle_held(queue, connection, parsed, handler, should_stop)
        channel.basic_ack(batch[-1][0].delivery_tag, multiple=True)
        return done

    def _handle_held(self, queue: str, connection: BlockingConnection, parsed: list[tuple[Delivery, Envelope]],
                     handler: Handler, should_stop: Callable[[], bool] | None) -> int:
        """Hand the batch over; while the store is unreachable, hold it and try again."""
        started = time.monotonic()
        delay = 0.2
        while True:
            try:
                return self._handle(queue, parsed, handler)
            except _StoreOutage as outage:
                if time.monotonic() - started > self.outage_budget_s or (should_stop and should_stop()):
                    return self._handle(queue, parsed, handler, outage_tolerated=False)
                log.warning("consume %s: store unavailable (%s); holding %d message(s), retry in %.1fs",
                            queue, outage, len(parsed), delay)
                connection.sleep(delay)  # keeps heartbeats going while we wait
                delay = min(delay * 2, 5.0)

    def _handle(self, queue: str, parsed: list[tuple[Delivery, Envelope]], handler: Handler,
                *, outage_tolerated: bool = True) -> int:
        if not parsed:
            return 0
        try:
            handler([env for _, env in parsed])
            return len(parsed)
        except Exception as exc:
            if outage_tolerated and is_transient(exc):
                raise _StoreOutage(repr(exc)[:300]) from exc
            if len(parsed) > 1:  # isolate: one poison message must not hold back the others
                return sum(self._handle(queue, [one], handler, outage_tolerated=outage_tolerated)
                           for one in parsed)
            self._fail(queue, parsed[0], traceback.format_exc(limit=5))
            return 0

    def _fail(self, queue: str, item: tuple[Delivery, Envelope], error: str) -> None:
        delivery, env = item
        attempt = _attempt(delivery[1]) + 1
        if attempt >= self.retry.max_attempts:
            self._dead_letter(queue, delivery, env, error, attempt)
            return
        props = _copy_properties(delivery[1], {ATTEMPT_HEADER: attempt, ERROR_HEADER: _short(error)})
        self._send_to_queue(self.topology.retry_queue(queue, attempt), delivery[2], props)
        self._journal([JournalEvent.of(env, "retried", queue=queue, detail=f"attempt {attempt}: {error}")])

    def _dead_letter(self, queue: str, delivery: Delivery, env: Envelope | None, error: str, attempts: int) -> None:
        props = _copy_properties(delivery[1], {
            ATTEMPT_HEADER: attempts, ATTEMPTS_HEADER: attempts, ERROR_HEADER: _short(error),
            DEAD_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(), QUEUE_HEADER: queue})
        self._send_to_queue(self.topology.dead_queue(queue), delivery[2], props)
        if env is not None:
            self._journal([JournalEvent.of(env, "dead_lettered", queue=queue, detail=error)])

    def _journal(self, events: list[JournalEvent]) -> None:
        """The journal is the console's record, not the message: a store outage must not stop delivery."""
        if not events:
            return
        try:
            self.journal.record(events)
        except Exception as exc:  # noqa: BLE001 - logged; the message itself is safe in the broker
            log.warning("journal: %d event(s) not recorded: %r", len(events), exc)

    # -- dead letters, replay, figures ------------------------------------------------
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        def run(link: _Link) -> list[DeadLetter]:
            channel = link.connection.channel()
            found: list[DeadLetter] = []
            try:
                while len(found) < limit:
                    method, props, body = channel.basic_get(self.topology.dead_queue(queue), auto_ack=False)
                    if method is None:
                        break
                    letter = _dead_letter_of(queue, props, body)
                    if letter is not None:
                        found.append(letter)
            finally:
                channel.close()  # nothing acknowledged: every message stays in the dead-letter queue
            self._settle(link, self.topology.dead_queue(queue), len(found))
            return found

        return self._with_reconnect(f"dead letters of {queue}", run)  # type: ignore[return-value]

    def replay(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None

        def run(link: _Link) -> list[Envelope | None]:
            channel = link.connection.channel()
            dead_queue = self.topology.dead_queue(queue)
            moved: list[Envelope | None] = []
            kept = 0
            try:
                while True:
                    method, props, body = channel.basic_get(dead_queue, auto_ack=False)
                    if method is None:
                        break
                    if wanted is not None and (props.message_id or "") not in wanted:
                        kept += 1  # left unacknowledged: back in the dead-letter queue when the channel closes
                        continue
                    fresh = _copy_properties(props, {ATTEMPT_HEADER: 0}, drop=(ERROR_HEADER, ATTEMPTS_HEADER,
                                                                               DEAD_AT_HEADER, "x-death"))
                    envelope = _envelope_or_none(body)
                    if envelope is not None:  # journaled first: a worker may process it at once
                        self._journal([JournalEvent.of(envelope, "replayed", queue=queue)])
                    link.publisher.publish([("", self.topology.work_queue(queue), body, fresh)])
                    channel.basic_ack(method.delivery_tag)
                    moved.append(envelope)
            finally:
                if channel.is_open:
                    channel.close()
            self._settle(link, dead_queue, kept)
            return moved

        moved: list[Envelope | None] = self._with_reconnect(f"replay {queue}", run)  # type: ignore[assignment]
        return len(moved)

    def stats(self, queue: str) -> QueueStats:
        t = self.topology
        figures = self.management.queue(t.work_queue(queue))
        dead = self._depth(t.dead_queue(queue))
        waiting = sum(self._depth(t.retry_queue(queue, n)) for n in t.retry_attempts())
        if figures is not None:
            return QueueStats(queue=queue, ready=figures.ready + waiting, in_flight=figures.unacked, dead=dead,
                              consumers=figures.consumers)
        ready, consumers = self._declare_ok(t.work_queue(queue))
        return QueueStats(queue=queue, ready=ready + waiting, in_flight=0, dead=dead, consumers=consumers)

    def waiting(self, queue: str) -> int:
        """Messages not yet handled: ready on the broker (exact, not the management API's sampled
        figures), waiting out a retry delay, and prefetched by this bus's consumers."""
        t = self.topology
        return (self._depth(t.work_queue(queue)) + sum(self._depth(t.retry_queue(queue, n)) for n in t.retry_attempts())
                + sum(len(b) for b in self._buffers.get(queue, ())))

    def broker_figures(self, queue: str):
        """Rates and unacknowledged counts, when the management plugin is there."""
        return self.management.queue(self.topology.work_queue(queue))

    @staticmethod
    def _settle(link: _Link, name: str, expected: int, timeout_s: float = 3.0) -> None:
        """Wait until messages given back by a closed channel are counted in `name` again.

        A quorum queue takes returned messages back asynchronously; without this, a
        depth read or a replay just after browsing could miss them."""
        deadline = time.monotonic() + timeout_s
        while expected and time.monotonic() < deadline:
            if link.channel.queue_declare(name, passive=True).method.message_count >= expected:
                return
            time.sleep(0.01)

    def _depth(self, name: str) -> int:
        return self._declare_ok(name)[0]

    def _declare_ok(self, name: str) -> tuple[int, int]:
        def run(link: _Link) -> tuple[int, int]:
            channel = link.connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True).method
                return ok.message_count, ok.consumer_count
            finally:
                if channel.is_open:
                    channel.close()

        try:
            return self._with_reconnect(f"depth of {name}", run)  # type: ignore[return-value]
        except BusError:
            return 0, 0

    def close(self) -> None:
        with self._links_lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        self._local = threading.local()


def is_transient(exc: BaseException) -> bool:
    """Did the handler fail because the store is unreachable or busy, not because of the message?"""
    from sqlalchemy import exc as sa_exc

    while exc is not None:
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, BusError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


class _StoreOutage(Exception):
    """The handler failed because the store is unreachable: hold the batch, do not spend attempts."""


def _outbound_properties(m: Outbound, stamp: int) -> pika.BasicProperties:
    return pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=m.message_id,
                                type=m.type, timestamp=stamp, app_id="hub", correlation_id=m.correlation_id,
                                headers={ATTEMPT_HEADER: 0})


def _copy_properties(props: pika.BasicProperties, headers: dict[str, object],
                     drop: Sequence[str] = ()) -> pika.BasicProperties:
    merged = {k: v for k, v in (props.headers or {}).items() if k not in drop}
    merged.update(headers)
    return pika.BasicProperties(content_type=props.content_type, delivery_mode=2, message_id=props.message_id,
                                type=props.type, timestamp=props.timestamp, app_id=props.app_id,
                                correlation_id=props.correlation_id, headers=merged)


def _attempt(props: pika.BasicProperties) -> int:
    try:
        return int((props.headers or {}).get(ATTEMPT_HEADER, 0))
    except (TypeError, ValueError):
        return 0


def _delivery_detail(delivery: Delivery) -> str | None:
    method, props, _ = delivery
    attempt = _attempt(props)
    parts = [f"attempt {attempt + 1}"] if attempt else []
    if method.redelivered:
        parts.append("redelivered by the broker")
    return "; ".join(parts) or None


def _short(error: str, limit: int = 4000) -> str:
    return error if len(error) <= limit else error[-limit:]


def _envelope_or_none(body: bytes) -> Envelope | None:
    try:
        return Envelope.from_json(body)
    except ValueError:
        return None


def _dead_letter_of(queue: str, props: pika.BasicProperties, body: bytes) -> DeadLetter | None:
    headers = props.headers or {}
    error = headers.get(ERROR_HEADER)
    if error is None:  # dead-lettered by the broker itself: the delivery limit was reached
        deaths = headers.get("x-death") or [{}]
        error = f"dead-lettered by the broker: {deaths[0].get('reason', 'unknown reason')} " \
                f"(a consumer kept failing before acknowledging)"
    if isinstance(error, bytes):
        error = error.decode(errors="replace")
    dead_at_raw = headers.get(DEAD_AT_HEADER)
    dead_at = dt.datetime.fromisoformat(dead_at_raw.decode() if isinstance(dead_at_raw, bytes) else dead_at_raw) \
        if dead_at_raw else dt.datetime.now(dt.UTC)
    envelope = _envelope_or_none(body)
    if envelope is None:
        log.warning("dead-letter queue of %s holds a message that is not an envelope: %r", queue, body[:80])
        return None
    return DeadLetter(message_id=props.message_id or str(envelope.message_id), queue=queue, envelope=envelope,
                      error=str(error), attempts=int(headers.get(ATTEMPTS_HEADER) or headers.get(ATTEMPT_HEADER) or 0),
                      dead_at=dead_at)
