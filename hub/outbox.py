"""Outbox: messages written in the same transaction as the change they announce,
then relayed to the bus. A crash between publish and marking re-publishes; the
consumers' inbox makes that harmless."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from canonical.messages import Envelope
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.port import Bus
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import OutboxRow


def add_to_outbox(session: Session, envelopes: Sequence[Envelope]) -> None:
    if envelopes:
        session.execute(insert(OutboxRow), [
            dict(message_id=str(e.message_id), type=e.type.value, source_system=e.source_system,
                 body=e.to_json(), created_at=utcnow())
            for e in envelopes])


class OutboxRelay:
    def __init__(self, store: Store, bus: Bus, journal: Journal | None = None, batch_size: int = 500) -> None:
        self.store, self.bus, self.batch_size = store, bus, batch_size
        self.journal = journal or NullJournal()

    def relay_once(self) -> int:
        """Publish one batch of unpublished messages; return how many."""
        with self.store.transaction() as s:
            query = (select(OutboxRow.id, OutboxRow.body).where(OutboxRow.published_at.is_(None))
                     .order_by(OutboxRow.id).limit(self.batch_size))
            if self.store.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = s.execute(query).all()
            if not rows:
                return 0
            envelopes = [Envelope.from_json(r.body) for r in rows]
            publish_in = getattr(self.bus, "publish_in", None)
            if publish_in is not None:  # a bus inside the store: hand over in this same transaction
                publish_in(s, envelopes)
            else:  # an outside broker: confirmed before the rows are marked; a crash re-publishes
                self.bus.publish(envelopes)
            s.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])).values(published_at=utcnow()))
            self.journal.record([JournalEvent.of(e, "published") for e in envelopes], s)
        return len(rows)

    def relay_all(self) -> int:
        total = 0
        while n := self.relay_once():
            total += n
        return total
