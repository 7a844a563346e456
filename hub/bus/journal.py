"""The message journal: every message's life, for the console and for tracing a flow.

Buses and the worker hand events to a `Journal`; the store-backed one writes them in
batches. Payloads are not copied here: the journal points at message ids, and the
payload is read back through the access policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from canonical.messages import Envelope
from hub.bulk import insert_rows
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import MessageJournalRow

EVENTS = ("published", "delivered", "processed", "retried", "dead_lettered", "replayed")


@dataclass(frozen=True)
class JournalEvent:
    message_id: str
    event: str
    type: str = ""
    source_system: str = ""
    queue: str = ""
    detail: str | None = None
    latency_ms: int | None = None
    at: dt.datetime = field(default_factory=utcnow)
    ref_key: str | None = None  # the source record the message carried, to find a person's messages

    @classmethod
    def of(cls, envelope: Envelope, event: str, **kw: object) -> "JournalEvent":
        return cls(message_id=str(envelope.message_id), event=event, type=envelope.type.value,
                   source_system=envelope.source_system, ref_key=carried_ref_key(envelope),
                   **kw)  # type: ignore[arg-type]


def carried_ref_key(envelope: Envelope) -> str | None:
    """`system/entity/source_id` of the source record in a record message's payload, if any."""
    ref = envelope.payload.get("ref")
    if isinstance(ref, dict) and {"system", "entity", "source_id"} <= ref.keys():
        return f"{ref['system']}/{ref['entity']}/{ref['source_id']}"
    return None


class Journal(Protocol):
    def record(self, events: Sequence[JournalEvent], session: Session | None = None) -> None: ...


class StoreJournal:
    """Writes journal events to the store, in the caller's transaction when one is given."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, events: Sequence[JournalEvent], session: Session | None = None) -> None:
        if not events:
            return
        rows = [e.__dict__ for e in events]
        if session is not None:  # Core (COPY on PostgreSQL): the ORM's bulk path costs more than the INSERT
            insert_rows(session, MessageJournalRow.__table__, rows)
            return
        with self.store.transaction() as s:
            insert_rows(s, MessageJournalRow.__table__, rows)


class NullJournal:
    def record(self, events: Sequence[JournalEvent], session: Session | None = None) -> None:
        return None
