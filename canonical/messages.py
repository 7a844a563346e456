"""The message envelope every bus message travels in (see DESIGN.md, Messages)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from canonical.version import SCHEMA_VERSION


class MessageType(StrEnum):
    RECORD_UPSERTED = "source.record.upserted"
    RECORD_DELETED = "source.record.deleted"
    RECORD_BATCH = "source.record.batch"  # many upserts and deletions of one system: see `batch_items`
    IDENTITY_LINKED = "identity.linked"
    IDENTITY_MERGED = "identity.merged"
    IDENTITY_UNMERGED = "identity.unmerged"
    IDENTITY_BATCH = "identity.batch"  # the identity events of one records-worker step: see `batch_items`
    ROUTE_CHANGED = "route.changed"  # a mirrored record changed: evaluate routing and alert rules
    ROUTE_CHANGED_BATCH = "route.changed.batch"  # many `route.changed` of one system: see `batch_items`
    ROUTE_APPLY = "route.apply"
    ALERT_RAISED = "alert.raised"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Envelope(BaseModel):
    """Immutable, versioned message; `message_id` is the idempotency key of every consumer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: MessageType
    source_system: str
    occurred_at: dt.datetime = Field(default_factory=_now)
    schema_version: str = SCHEMA_VERSION
    correlation_id: uuid.UUID | None = None
    payload: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return f"{self.type.value}.{self.source_system}"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Envelope:
        """The envelope a message body holds.

        The body is parsed straight into Python objects, then validated: the payload is
        `dict[str, Any]`, and JSON-mode validation would first build a JSON value tree of the
        whole payload and then convert it (a record batch carries 200 records). For parsed JSON
        every field accepts the same values in either mode; a body that fails either way is
        validated again in JSON mode, so it raises exactly the `ValidationError` it always did."""
        try:
            return cls.model_validate(pydantic_core.from_json(data))
        except ValueError:  # not JSON, or not a valid envelope (ValidationError is a ValueError)
            pass
        return cls.model_validate_json(data)  # outside the handler: nothing chained to its error


# events per `route.changed.batch` / `identity.batch` message: a records-worker transaction of
# ~1,000 records announces a few hundred changes, so usually one message of each kind
EVENTS_PER_MESSAGE = 500
BATCH_TYPES = (MessageType.RECORD_BATCH, MessageType.ROUTE_CHANGED_BATCH, MessageType.IDENTITY_BATCH)
# the one-item message types an `identity.batch` item may be
IDENTITY_EVENTS = (MessageType.IDENTITY_LINKED, MessageType.IDENTITY_MERGED, MessageType.IDENTITY_UNMERGED)


def batch_items(payload: dict[str, Any]) -> list[Any]:
    """The items of a batch message's payload, in order. One message per batch instead of one per
    item: the broker, the outbox, the journal and the inbox then cost per batch, not per item.

    - `source.record.batch`: `{"record": <source record>}` (an upsert, as a `source.record.upserted`
      payload) or `{"deleted": {"ref": …, "version": n}}` (as a `source.record.deleted` payload);
    - `route.changed.batch`: each a `route.changed` payload (`ref`, `version`, `created`, `changed`);
    - `identity.batch`: `{"type": "identity.linked" | "identity.merged" | "identity.unmerged",
      "payload": <that message's payload>}`.

    Items are not validated here: a consumer checks each and sets the invalid ones aside."""
    items = payload.get("items")
    if not isinstance(items, list):
        raise TypeError("a batch message carries a list under 'items'")
    return items


def batch_envelopes(kind: MessageType, source_system: str, items: Sequence[Any], *,
                    per_message: int = EVENTS_PER_MESSAGE) -> list[Envelope]:
    """`items` as messages of `kind` of at most `per_message` items each, in order (none for no items)."""
    step = max(1, per_message)
    return [Envelope(type=kind, source_system=source_system, payload={"items": list(items[i:i + step])})
            for i in range(0, len(items), step)]


def identity_item(kind: MessageType, payload: dict[str, Any]) -> dict[str, Any]:
    """An `identity.batch` item: the type and payload the one-event message would have had."""
    return {"type": kind.value, "payload": payload}


def _ref_key(ref: Any) -> str | None:
    if isinstance(ref, dict) and all(isinstance(ref.get(k), str) and ref.get(k) for k in ("system", "entity",
                                                                                          "source_id")):
        return f"{ref['system']}/{ref['entity']}/{ref['source_id']}"
    return None


def carried_ref_keys(envelope: Envelope) -> tuple[str, ...]:
    """The source records (`system/entity/source_id`) an event batch names, in order, each once: the
    record of each `route.changed`; the record each `identity.linked` placed and the records each
    `identity.merged` / `identity.unmerged` moved. Invalid items name nothing. A record batch's
    keys are taken while it is built (`hub/ingest.py`); any other message names at most one,
    the journal's `ref_key`."""
    if envelope.type not in (MessageType.ROUTE_CHANGED_BATCH, MessageType.IDENTITY_BATCH):
        return ()
    items = envelope.payload.get("items")
    keys: list[str] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if envelope.type == MessageType.ROUTE_CHANGED_BATCH:
            key = _ref_key(item.get("ref"))
            keys += [key] if key else []
            continue
        payload = item.get("payload")
        if not isinstance(payload, dict):
            continue
        refs = [payload.get("ref")] + (payload.get("refs") if isinstance(payload.get("refs"), list) else [])
        keys += [r for r in refs if isinstance(r, str) and r.count("/") >= 2]
    return tuple(dict.fromkeys(keys))
