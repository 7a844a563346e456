"""Outbox: messages written in the same transaction as the change they announce,
then relayed to the bus. A crash between publish and marking re-publishes; the
consumers' inbox makes that harmless."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from canonical.messages import (
    EVENTS_PER_MESSAGE,
    Envelope,
    MessageType,
    batch_envelopes,
    carried_ref_keys,
)
from hub.bulk import insert_rows
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.outbound import Outbound
from hub.bus.port import Bus
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import MessageRecordRow, OutboxRow


def add_to_outbox(session: Session, envelopes: Sequence[Envelope]) -> None:
    """One bulk insert in the session's transaction (Core executemany; COPY on PostgreSQL). The
    records an event batch (`route.changed.batch`, `identity.batch`) names are noted with it."""
    add_serialized_to_outbox(session, [_outbound(e) for e in envelopes])


_AT_COMMIT, _HOOKED = "outbox_at_commit", "outbox_at_commit_hooked"


def add_items_at_commit(session: Session, kind: MessageType, source_system: str, items: Sequence[Any], *,
                        per_message: int = EVENTS_PER_MESSAGE) -> None:
    """Items of batch messages of `kind` (see `batch_items`), written to the outbox as the session
    commits: every step of a transaction that adds items of one kind and source adds them to the
    same messages (one, up to `per_message` items), in the order added. A rollback drops them
    with the rest of the transaction."""
    if not items:
        return
    if not session.info.get(_HOOKED):
        event.listen(session, "before_commit", _write_at_commit)
        event.listen(session, "after_rollback", _drop_at_commit)
        session.info[_HOOKED] = True
    session.info.setdefault(_AT_COMMIT, {}).setdefault((kind, source_system, per_message), []).extend(items)


def _write_at_commit(session: Session) -> None:
    pending = session.info.pop(_AT_COMMIT, None)
    if pending:
        add_to_outbox(session, [env for (kind, system, per_message), items in pending.items()
                                for env in batch_envelopes(kind, system, items, per_message=per_message)])


def _drop_at_commit(session: Session) -> None:
    session.info.pop(_AT_COMMIT, None)


def _outbound(envelope: Envelope) -> Outbound:
    """The envelope serialised, with the source records it names when it is an event batch."""
    message = Outbound.from_envelope(envelope)
    keys = carried_ref_keys(envelope)
    return dataclasses.replace(message, ref_keys=keys) if keys else message


def add_serialized_to_outbox(session: Session, messages: Sequence[Outbound],
                             published_at: dt.datetime | None = None) -> None:
    """`add_to_outbox` for messages already serialised; `published_at` when a bus in the store
    takes them in the same transaction. The records each batch carries (records, or the records its
    events name) are noted with it (`message_record`), so the console finds a record's messages."""
    if messages:
        now = utcnow()
        insert_rows(session, OutboxRow.__table__, [
            {"message_id": m.message_id, "type": m.type, "source_system": m.source_system, "body": m.body,
             "created_at": now, "published_at": published_at} for m in messages])
        carried = [{"ref_key": k, "message_id": m.message_id} for m in messages for k in dict.fromkeys(m.ref_keys)]
        if carried:
            insert_rows(session, MessageRecordRow.__table__, carried)


class OutboxRelay:
    """Moves unpublished outbox rows to the bus, a large batch per transaction.

    Buses offering `publish_serialized(_in)` get the stored bodies as they are (see
    `hub/bus/outbound.py`); any other `Bus` gets parsed envelopes."""

    def __init__(self, store: Store, bus: Bus, journal: Journal | None = None, batch_size: int = 2000) -> None:
        self.store, self.bus, self.batch_size = store, bus, batch_size
        self.journal = journal or NullJournal()

    @property
    def publishes_in_transaction(self) -> bool:
        """Whether the bus lives in the store, so `write` publishes in the writer's transaction."""
        return hasattr(self.bus, "publish_serialized_in")

    def write(self, session: Session, messages: Sequence[Outbound]) -> None:
        """Add serialised messages to the outbox in the caller's transaction. A bus inside the store
        takes them in that same transaction, so they are written already published: atomic with the
        change as the outbox requires, without a relay pass that reads the bodies back, parses
        them, marks them and commits again. An outside broker gets them from the relay."""
        if not messages:
            return
        if not self.publishes_in_transaction:
            add_serialized_to_outbox(session, messages)
            return
        add_serialized_to_outbox(session, messages, published_at=utcnow())
        self.bus.publish_serialized_in(session, messages)  # type: ignore[attr-defined]
        self.journal.record([m.journal_event("published") for m in messages], session)

    def relay_once(self) -> int:
        """Publish one batch of unpublished messages; return how many."""
        with self.store.transaction() as s:
            query = (select(OutboxRow.id, OutboxRow.message_id, OutboxRow.type, OutboxRow.source_system,
                            OutboxRow.body).where(OutboxRow.published_at.is_(None))
                     .order_by(OutboxRow.id).limit(self.batch_size))
            if self.store.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = s.execute(query).all()
            if not rows:
                return 0
            events = self._publish(s, rows)
            s.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])).values(published_at=utcnow()))
            self.journal.record(events, s)
        return len(rows)

    def _publish(self, session: Session, rows: Sequence) -> list[JournalEvent]:
        """Hand `rows` to the bus; a bus inside the store takes them in this same transaction, an
        outside broker confirms them before the rows are marked (a crash re-publishes)."""
        serialized_in = getattr(self.bus, "publish_serialized_in", None)
        serialized = getattr(self.bus, "publish_serialized", None)
        if serialized_in is not None or serialized is not None:
            messages = [Outbound.of(r.message_id, r.type, r.source_system, r.body) for r in rows]
            if serialized_in is not None:
                serialized_in(session, messages)
            else:
                serialized(messages)
            return [m.journal_event("published") for m in messages]
        envelopes = [Envelope.from_json(r.body) for r in rows]
        publish_in = getattr(self.bus, "publish_in", None)
        if publish_in is not None:
            publish_in(session, envelopes)
        else:
            self.bus.publish(envelopes)
        return [JournalEvent.of(e, "published") for e in envelopes]

    def relay_all(self) -> int:
        total = 0
        while n := self.relay_once():
            total += n
        return total


class BackgroundRelay:
    """Relays on a thread while an ingest translates its next batch, for a broker outside the store:
    the broker's confirms and the store's round trips then overlap the CPU work instead of following
    it. A bus inside the store (`publish_in`) is relayed in the caller's thread: its writes take the
    same database lock as the ingest's, so a thread would only wait for it.

    `nudge()` after each committed batch; `finish()` relays what is left in the caller's thread and
    raises any error the thread met, so a failed relay fails the run as before. A writer using
    `OutboxRelay.write` on a bus inside the store publishes as it commits: nothing is left to relay
    but what earlier writers left unpublished, relayed on entering (before this run's messages, in
    outbox order) and on finishing."""

    def __init__(self, relay: OutboxRelay | None) -> None:
        self.relay = relay
        self._threaded = relay is not None and not hasattr(relay.bus, "publish_in") \
            and not hasattr(relay.bus, "publish_serialized_in")
        self._wake = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.relay is not None and self.relay.publishes_in_transaction:
            self.relay.relay_all()
        if self._threaded:
            self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop()

    def nudge(self) -> None:
        if self.relay is None:
            return
        if self.relay.publishes_in_transaction:
            return  # published as the batch committed (`OutboxRelay.write`)
        if not self._threaded:
            self.relay.relay_all()
            return
        if self._error is not None:
            raise self._error
        self._wake.set()

    def finish(self) -> None:
        self._stop()
        if self._error is not None:
            raise self._error
        if self.relay is not None:
            self.relay.relay_all()

    def _stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        assert self.relay is not None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.relay.relay_all()
            except BaseException as exc:
                self._error = exc
                return
