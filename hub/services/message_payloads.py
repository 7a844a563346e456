"""A message's payload as one user may see it in the console.

The journal keeps no payloads; the envelope is read back from the outbox (or the
embedded bus) and shown at the level the access policy gives the user's roles for
the source system's service category, with no relationship or break-glass raise
(the console is not a way round the consolidated view's rules):

- below `summary`: the envelope's metadata only, the payload withheld, with why;
- `summary`: the canonical record, without the sensitive fields the roles may not see
  at `summary` or above, and without the raw legacy row;
- `full`: the canonical record likewise, and the raw legacy row only when every
  sensitive field is visible at `summary` or above (the raw row holds all of them).

A `route.changed` carries the changed values as flat paths (`address.postcode`): those of a
sensitive field the roles may not see at `summary` are withheld the same way. Batches
(`source.record.batch`, `route.changed.batch`) are redacted item by item, as each item alone;
an `identity.batch` carries ids, record keys and link evidence, no person data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from canonical.messages import MessageType
from hub.access.policy import FIELDS, AccessPolicy, Level
from hub.store.engine import Store
from hub.store.tables.messaging import BusMessageRow, OutboxRow
from routing.fields import group_of

# canonical keys of a record -> the policy's sensitive field that governs them
CANONICAL_FIELDS = {
    "identifiers": "identifiers",
    "addresses": "address",
    "address": "address",
    "contacts": "contacts",
    "telecoms": "contacts",
    "ethnicity": "ethnicity",
    "first_language": "first_language",
    "language": "first_language",
    "health_conditions": "health_conditions",
}
INVALID_ITEM = "(an invalid item: withheld)"


@dataclass(frozen=True)
class PayloadView:
    found: bool
    level: str
    envelope: dict[str, Any]
    payload: dict[str, Any] | None
    withheld: list[str]
    note: str


def _envelope_json(store: Store, message_id: str) -> str | None:
    with store.transaction() as s:
        body = s.execute(select(OutboxRow.body).where(OutboxRow.message_id == message_id)).scalar_one_or_none()
        if body is None:
            body = s.execute(select(BusMessageRow.body).where(BusMessageRow.message_id == message_id)
                             .limit(1)).scalar_one_or_none()
    return body


def message_payload(store: Store, policy: AccessPolicy, roles: list[str], message_id: str) -> PayloadView:
    """The envelope of `message_id` with its payload redacted for a user holding `roles`."""
    body = _envelope_json(store, message_id)
    if body is None:
        return PayloadView(False, "none", {}, None, [], "The message's body is no longer kept (it was not "
                           "published through the outbox, or the bus has let it go).")
    envelope = json.loads(body)
    payload = envelope.pop("payload", {}) or {}
    system = str(envelope.get("source_system", ""))
    clearance = policy.clearance(roles)
    category = policy.system_category(system)
    level = clearance.category(category) if category else Level.SUMMARY
    if level < Level.SUMMARY:
        return PayloadView(True, level.label, envelope, None, ["payload"],
                           f"Your role sees {category or system} records at '{level.label}' level, so the "
                           "payload is withheld. The message's journey is shown in full.")
    fields = {f: clearance.field(f) for f in FIELDS}
    raw_allowed = level >= Level.FULL and all(v >= Level.SUMMARY for v in fields.values())
    kind = envelope.get("type")
    if kind == MessageType.ROUTE_CHANGED_BATCH.value and isinstance(payload.get("items"), list):
        shown, withheld = _redact_changes(payload, fields)
    elif kind == MessageType.IDENTITY_BATCH.value and isinstance(payload.get("items"), list):
        shown, withheld = _identity_batch(payload), []
    elif isinstance(payload.get("items"), list):  # a record batch: each record redacted as one alone
        shown, withheld = _redact_batch(payload, fields, raw_allowed)
    else:
        shown, withheld = _redact_record(payload, fields, raw_allowed)
    return PayloadView(True, level.label, envelope, shown, withheld,
                       f"Shown at '{level.label}' level for {category or system} records.")


def _redact_record(payload: dict[str, Any], fields: dict[str, Level],
                   raw_allowed: bool) -> tuple[dict[str, Any], list[str]]:
    shown, withheld = _redact(payload, fields)
    if not raw_allowed and "raw" in shown:
        shown.pop("raw")
        withheld.append("raw legacy row")
    return shown, withheld


def _redact_batch(payload: dict[str, Any], fields: dict[str, Level],
                  raw_allowed: bool) -> tuple[dict[str, Any], list[str]]:
    items, withheld = [], []
    for item in payload["items"]:
        if isinstance(item, dict) and isinstance(item.get("record"), dict):
            record, gone = _redact_record(item["record"], fields, raw_allowed)
            item = {**item, "record": record}
            withheld += [w for w in gone if w not in withheld]
        elif not (isinstance(item, dict) and set(item) == {"deleted"}):  # neither a record nor a deletion
            item = INVALID_ITEM
        items.append(item)
    return {**payload, "items": items}, withheld


def _redact_changes(payload: dict[str, Any], fields: dict[str, Level]) -> tuple[dict[str, Any], list[str]]:
    """A `route.changed.batch`: each change redacted as a `route.changed` alone."""
    items, withheld = [], []
    for item in payload["items"]:
        if isinstance(item, dict):
            item, gone = _redact(item, fields)
            withheld += [w for w in gone if w not in withheld]
        else:
            item = INVALID_ITEM
        items.append(item)
    return {**payload, "items": items}, withheld


def _identity_batch(payload: dict[str, Any]) -> dict[str, Any]:
    """An `identity.batch` as it is, but for items that are not an identity event."""
    return {**payload, "items": [item if isinstance(item, dict) and isinstance(item.get("payload"), dict)
                                 and isinstance(item.get("type"), str) and item["type"].startswith("identity.")
                                 else INVALID_ITEM for item in payload["items"]]}


def _redact(payload: dict[str, Any], fields: dict[str, Level]) -> tuple[dict[str, Any], list[str]]:
    shown = dict(payload)
    withheld: list[str] = []
    canonical = shown.get("canonical")
    if isinstance(canonical, dict):
        kept = {}
        for key, value in canonical.items():
            governing = CANONICAL_FIELDS.get(key)
            if governing and fields.get(governing, Level.NONE) < Level.SUMMARY:
                withheld.append(f"canonical.{key}")
                continue
            kept[key] = value
        shown["canonical"] = kept
    changed = shown.get("changed")
    if isinstance(changed, dict):  # a route.changed: the new values, by flat path
        kept = {}
        for path, value in changed.items():
            governing = CANONICAL_FIELDS.get(group_of(str(path)))
            if governing and fields.get(governing, Level.NONE) < Level.SUMMARY:
                withheld.append(f"changed.{path}")
                continue
            kept[path] = value
        shown["changed"] = kept
    return shown, withheld
