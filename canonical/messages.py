"""The message envelope every bus message travels in (see DESIGN.md, Messages)."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from canonical.version import SCHEMA_VERSION


class MessageType(StrEnum):
    RECORD_UPSERTED = "source.record.upserted"
    RECORD_DELETED = "source.record.deleted"
    RECORD_BATCH = "source.record.batch"  # many upserts and deletions of one system: see `batch_items`
    IDENTITY_LINKED = "identity.linked"
    IDENTITY_MERGED = "identity.merged"
    IDENTITY_UNMERGED = "identity.unmerged"
    ROUTE_CHANGED = "route.changed"  # a mirrored record changed: evaluate routing and alert rules
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
        return cls.model_validate_json(data)


def batch_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a `source.record.batch` payload, in order: each is `{"record": <source record>}`
    (an upsert, as a `source.record.upserted` payload) or `{"deleted": {"ref": …, "version": n}}`
    (as a `source.record.deleted` payload). One message per adapter batch instead of one per record:
    the broker, the outbox, the journal and the inbox then cost per batch, not per record."""
    items = payload.get("items")
    if not isinstance(items, list):
        raise TypeError("a record batch carries a list under 'items'")
    return items
