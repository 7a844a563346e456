"""The embedded bus: a durable queue in the hub's own store (the default deployment).

Named `sqlite` after the default store, it works on any store URL: on PostgreSQL it
claims with `FOR UPDATE SKIP LOCKED` so several workers compete safely; on SQLite
each claim takes the database write lock. Messages are claimed with a lease, so a
worker that dies leaves them to be redelivered when the lease expires.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from canonical.messages import Envelope
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.outbound import Outbound
from hub.bus.port import BusError, DeadLetter, Handler, QueueBinding, QueueStats, RetryPolicy
from hub.bus.topics import topic_matches
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import BusBindingRow, BusMessageRow


class StoreQueueBus:
    def __init__(self, store: Store, *, retry: RetryPolicy = RetryPolicy(), prefetch: int = 200,
                 visibility_timeout_s: float = 60.0, poll_interval_s: float = 0.1,
                 journal: Journal | None = None) -> None:
        self.store = store
        self.retry = retry
        self.prefetch = prefetch
        self.visibility = dt.timedelta(seconds=visibility_timeout_s)
        self.poll_interval_s = poll_interval_s
        self.journal = journal or NullJournal()
        self._bindings: list[tuple[str, str]] | None = None
        self._queues_by_key: dict[str, tuple[str, ...]] = {}
        self._active_consumers: dict[str, int] = {}

    # -- topology -----------------------------------------------------------------
    def declare(self, bindings: Sequence[QueueBinding]) -> None:
        with self.store.transaction() as s:
            existing = set(s.execute(select(BusBindingRow.queue, BusBindingRow.pattern)).all())
            for b in bindings:
                for pattern in b.patterns:
                    if (b.queue, pattern) not in existing:
                        s.add(BusBindingRow(queue=b.queue, pattern=pattern))
        self._bindings = None
        self._queues_by_key = {}
        self._routes()

    def _routes(self) -> list[tuple[str, str]]:
        if self._bindings is None:
            with self.store.transaction() as s:
                self._bindings = [tuple(r) for r in s.execute(select(BusBindingRow.queue, BusBindingRow.pattern))]
        return self._bindings

    def _queues_for(self, routing_key: str) -> tuple[str, ...]:
        """The queues bound to `routing_key`, matched once per key (a handful of keys, millions of messages)."""
        queues = self._queues_by_key.get(routing_key)
        if queues is None:
            queues = tuple(sorted({q for q, pattern in self._routes() if topic_matches(pattern, routing_key)}))
            self._queues_by_key[routing_key] = queues
        return queues

    # -- publishing ---------------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        try:
            with self.store.transaction() as s:
                self.publish_in(s, envelopes)
        except BusError:
            raise
        except Exception as exc:  # the store is the broker here: surface as a bus failure
            raise BusError(f"embedded bus could not accept {len(envelopes)} message(s): {exc}") from exc

    def publish_in(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Enqueue in the caller's transaction: the outbox hand-off is then atomic."""
        self.publish_serialized_in(session, [Outbound.from_envelope(e) for e in envelopes])

    def publish_serialized_in(self, session: Session, messages: Sequence[Outbound]) -> None:
        """Enqueue already serialised messages in the caller's transaction, one executemany."""
        now = utcnow()
        rows = [dict(queue=queue, message_id=m.message_id, routing_key=m.routing_key, body=m.body, status="ready",
                     attempts=0, available_at=now, created_at=now)
                for m in messages for queue in self._queues_for(m.routing_key)]
        if rows:
            session.connection().execute(BusMessageRow.__table__.insert(), rows)

    # -- consuming ----------------------------------------------------------------
    def consume(self, queue: str, handler: Handler, *, batch_size: int = 1, max_messages: int | None = None,
                idle_timeout_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> int:
        acked = 0
        idle_since = time.monotonic()
        self._active_consumers[queue] = self._active_consumers.get(queue, 0) + 1
        try:
            while not (should_stop and should_stop()):
                if max_messages is not None and acked >= max_messages:
                    break
                limit = min(self.prefetch, batch_size, (max_messages - acked) if max_messages else 10**9)
                claimed = self._claim(queue, limit)
                if not claimed:
                    if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                        break
                    time.sleep(self.poll_interval_s)
                    continue
                idle_since = time.monotonic()
                acked += self._deliver(queue, claimed, handler)
        finally:
            self._active_consumers[queue] -= 1
        return acked

    def _claim(self, queue: str, limit: int) -> list[tuple[int, int, Envelope]]:
        now = utcnow()
        with self.store.transaction() as s:
            # messages whose worker died: their lease has run out, make them ready again
            s.execute(update(BusMessageRow)
                      .where(BusMessageRow.queue == queue, BusMessageRow.status == "inflight",
                             BusMessageRow.lease_until < now)
                      .values(status="ready"))
            query = (select(BusMessageRow.id, BusMessageRow.attempts, BusMessageRow.body)
                     .where(BusMessageRow.queue == queue, BusMessageRow.status == "ready",
                            BusMessageRow.available_at <= now)
                     .order_by(BusMessageRow.id).limit(limit))
            if self.store.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = s.execute(query).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            s.execute(update(BusMessageRow).where(BusMessageRow.id.in_(ids))
                      .values(status="inflight", lease_until=now + self.visibility,
                              attempts=BusMessageRow.attempts + 1))
        return [(r.id, r.attempts + 1, Envelope.from_json(r.body)) for r in rows]

    def _deliver(self, queue: str, claimed: list[tuple[int, int, Envelope]], handler: Handler) -> int:
        try:
            handler([env for _, _, env in claimed])
        except Exception:  # isolate: hand each message alone, so one poison message cannot block the rest
            if len(claimed) == 1:
                self._fail(queue, claimed[0], traceback.format_exc(limit=5))
                return 0
            return sum(self._deliver(queue, [one], handler) for one in claimed)
        with self.store.transaction() as s:
            s.execute(delete(BusMessageRow).where(BusMessageRow.id.in_([i for i, _, _ in claimed])))
        return len(claimed)

    def _fail(self, queue: str, item: tuple[int, int, Envelope], error: str) -> None:
        row_id, attempts, env = item
        now = utcnow()
        with self.store.transaction() as s:
            if attempts >= self.retry.max_attempts:
                s.execute(update(BusMessageRow).where(BusMessageRow.id == row_id)
                          .values(status="dead", last_error=error, dead_at=now, lease_until=None))
                self.journal.record([JournalEvent.of(env, "dead_lettered", queue=queue, detail=error)], s)
            else:
                delay = dt.timedelta(seconds=self.retry.delay(attempts))
                s.execute(update(BusMessageRow).where(BusMessageRow.id == row_id)
                          .values(status="ready", last_error=error, available_at=now + delay, lease_until=None))
                self.journal.record([JournalEvent.of(env, "retried", queue=queue,
                                                     detail=f"attempt {attempts}: {error}")], s)

    # -- dead letters and figures -------------------------------------------------
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with self.store.read() as s:
            rows = s.execute(select(BusMessageRow).where(BusMessageRow.queue == queue, BusMessageRow.status == "dead")
                             .order_by(BusMessageRow.id).limit(limit)).scalars().all()
            return [DeadLetter(message_id=r.message_id, queue=r.queue, envelope=Envelope.from_json(r.body),
                               error=r.last_error or "", attempts=r.attempts, dead_at=r.dead_at or r.created_at)
                    for r in rows]

    def replay(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        now = utcnow()
        with self.store.transaction() as s:
            where = [BusMessageRow.queue == queue, BusMessageRow.status == "dead"]
            if message_ids is not None:
                where.append(BusMessageRow.message_id.in_(list(message_ids)))
            rows = s.execute(select(BusMessageRow.id, BusMessageRow.body).where(*where)).all()
            if rows:
                s.execute(update(BusMessageRow).where(BusMessageRow.id.in_([r.id for r in rows]))
                          .values(status="ready", attempts=0, available_at=now, dead_at=None))
                self.journal.record([JournalEvent.of(Envelope.from_json(r.body), "replayed", queue=queue)
                                     for r in rows], s)
        return len(rows)

    def stats(self, queue: str) -> QueueStats:
        # a read: a records worker asks before each delivery, and a write transaction here waited
        # for SQLite's write lock (a bulk link's write, seconds at 1,000,000 people) to count
        with self.store.read() as s:
            counts = dict(s.execute(select(BusMessageRow.status, func.count())
                                    .where(BusMessageRow.queue == queue).group_by(BusMessageRow.status)).all())
        return QueueStats(queue=queue, ready=counts.get("ready", 0), in_flight=counts.get("inflight", 0),
                          dead=counts.get("dead", 0), consumers=self._active_consumers.get(queue, 0))

    def waiting(self, queue: str) -> int:
        """Messages not yet acknowledged: ready (now or after a retry delay) and in flight."""
        stats = self.stats(queue)
        return stats.ready + stats.in_flight

    def close(self) -> None:
        return None
