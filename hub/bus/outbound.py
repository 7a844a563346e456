"""A message the outbox already serialised, handed to a bus as it is stored.

The relay publishes thousands of messages a second; parsing each stored body back
into an `Envelope` and serialising it again cost more than the publishing itself.
The outbox row holds what a bus needs (id, type, source system, body), so buses
that offer `publish_serialized` take these instead and never parse the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from canonical.messages import Envelope, MessageType
from hub.bus.journal import JournalEvent, carried_ref_key

RECORD_BATCH = MessageType.RECORD_BATCH.value


@dataclass(frozen=True, slots=True)
class Outbound:
    message_id: str
    type: str
    source_system: str
    body: str
    correlation_id: str | None = None
    ref_key: str | None = None  # the source record carried, for the journal
    ref_keys: tuple[str, ...] = ()  # the source records a record batch carried (`message_record`)

    @property
    def routing_key(self) -> str:
        return f"{self.type}.{self.source_system}"

    @classmethod
    def of(cls, message_id: str, type_: str, source_system: str, body: str) -> Outbound:
        """From an outbox row; one stdlib JSON parse for the journal's ref key and the correlation id
        (none for a record batch: it names no one record, and an ingest correlates nothing)."""
        if type_ == RECORD_BATCH:
            return cls(message_id, type_, source_system, body)
        data = json.loads(body)
        payload = data.get("payload")
        ref = payload.get("ref") if isinstance(payload, dict) else None
        ref_key = (f"{ref['system']}/{ref['entity']}/{ref['source_id']}"
                   if isinstance(ref, dict) and {"system", "entity", "source_id"} <= ref.keys() else None)
        return cls(message_id, type_, source_system, body, data.get("correlation_id"), ref_key)

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Outbound:
        return cls(str(envelope.message_id), envelope.type.value, envelope.source_system, envelope.to_json(),
                   str(envelope.correlation_id) if envelope.correlation_id else None, carried_ref_key(envelope))

    def journal_event(self, event: str, **kw: object) -> JournalEvent:
        return JournalEvent(message_id=self.message_id, event=event, type=self.type,
                            source_system=self.source_system, ref_key=self.ref_key, **kw)  # type: ignore[arg-type]
