"""The source-record side of a records-worker batch, set-based: parse each message once,
read every stored row the batch names in one query, apply the batch's upserts and
deletes in order in memory (an older version never overwrites a newer one), then
write what changed with one bulk INSERT and one bulk UPDATE.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical.messages import Envelope, MessageType, batch_items
from canonical.records import SourceRecord, SourceRef
from hub.bulk import insert_rows, update_rows
from hub.store.base import utcnow
from hub.store.tables.records import SourceRecordRow

CHUNK = 500
_T = SourceRecordRow.__table__


@dataclass(frozen=True, slots=True)
class Op:
    """One record message of the batch, validated once (slots: a delivery holds ~40,000 of them)."""

    message_id: str
    ref: SourceRef
    version: int
    record: SourceRecord | None  # None: a deletion

    @property
    def key(self) -> str:
        return self.ref.key


def parse(env: Envelope) -> Op | None:
    """The record operation a one-record message carries (None for a type the records worker ignores)."""
    if env.type == MessageType.RECORD_UPSERTED:
        return _upsert(str(env.message_id), env.payload)
    if env.type == MessageType.RECORD_DELETED:
        return _deletion(str(env.message_id), env.payload)
    return None


@dataclass(frozen=True)
class BadItem:
    """An item of a record batch that is no valid record: quarantined, the rest of the batch applied."""

    index: int
    item: Any
    reason: str


def parse_message(env: Envelope) -> tuple[list[Op], list[BadItem]]:
    """Every record operation a message carries, in order, and the batch items that are invalid.

    A one-record message that is invalid raises (the bus retries it, then dead-letters it whole);
    a record batch keeps its valid items and names the others, so one bad record costs only itself."""
    if env.type != MessageType.RECORD_BATCH:
        op = parse(env)
        return ([op] if op is not None else []), []
    message_id = str(env.message_id)
    ops, bad = [], []
    for i, item in enumerate(batch_items(env.payload)):
        try:
            if not isinstance(item, dict) or len(item) != 1 or not ("record" in item or "deleted" in item):
                raise ValueError("an item is {\"record\": …} or {\"deleted\": …}")
            ops.append(_upsert(message_id, item["record"]) if "record" in item else
                       _deletion(message_id, item["deleted"]))
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            bad.append(BadItem(i, item, _reason(exc)))
    return ops, bad


def quarantine_rows(env: Envelope, bad: list[BadItem]) -> list[dict[str, Any]]:
    """Quarantine entries for a batch's invalid items, kept whole with the reason. No source id:
    the item is not a legacy row a re-run could translate again; the next ingest of the row, once
    corrected at the source, announces it afresh (or the entry is accepted with a reason)."""
    return [{"system": env.source_system, "entity": "(record batch item)", "source_id": None,
                 "location": f"message {env.message_id}, item {b.index}", "raw": {"message_id": str(env.message_id),
                                                                           "item": _jsonable(b.item)},
                 "reasons": [b.reason], "status": "open", "run_id": None, "created_at": utcnow()} for b in bad]


def _upsert(message_id: str, payload: Any) -> Op:
    record = SourceRecord.model_validate(payload)
    return Op(message_id, record.ref, record.version, record)


def _deletion(message_id: str, payload: Any) -> Op:
    return Op(message_id, SourceRef.model_validate(payload["ref"]), int(payload.get("version", 0)), None)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"


def _jsonable(item: Any) -> Any:
    try:
        json.dumps(item)
        return item
    except (TypeError, ValueError):
        return repr(item)


@dataclass
class Row:
    """A source record's state while the batch is applied: as stored, then as the batch leaves it."""

    ref_key: str
    system: str
    entity: str
    source_id: str
    version: int
    deleted: bool
    person_id: str | None
    canonical: dict[str, Any] | None
    observed_at: dt.datetime | None
    id: int | None = None
    before: dict[str, Any] | None = None  # canonical at the start of the batch, if the record was live
    before_observed: dt.datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)  # columns the batch sets
    dirty: bool = False
    upserted: bool = False
    deleted_now: bool = False

    @property
    def content_changed(self) -> bool:
        """False for a live record re-announced identical (same content, same observation)."""
        return self.before is None or self.before != self.canonical or self.before_observed != self.observed_at


def load_rows(session: Session, keys: list[str], *, lock: bool) -> dict[str, Row]:
    """Every stored row of these keys, in one query per chunk (locked FOR UPDATE on PostgreSQL)."""
    out: dict[str, Row] = {}
    for i in range(0, len(keys), CHUNK):
        query = select(_T.c.id, _T.c.ref_key, _T.c.system, _T.c.entity, _T.c.source_id, _T.c.version,
                       _T.c.deleted, _T.c.person_id, _T.c.canonical, _T.c.observed_at).where(
            _T.c.ref_key.in_(keys[i:i + CHUNK]))
        if lock:
            query = query.with_for_update()
        for r in session.execute(query):
            live = not r.deleted
            out[r.ref_key] = Row(r.ref_key, r.system, r.entity, r.source_id, r.version, r.deleted, r.person_id,
                                 r.canonical, _aware(r.observed_at), id=r.id,
                                 before=r.canonical if live else None, before_observed=_aware(r.observed_at))
    return out


def apply(rows: dict[str, Row], ops: list[Op]) -> None:
    """Apply the batch's operations in order to `rows` (adding the records seen for the first time)."""
    for op in ops:
        row = rows.get(op.key)
        if op.record is None:
            if row is None or row.version > op.version:
                continue
            row.deleted, row.version, row.dirty, row.deleted_now = True, op.version, True, True
            row.values.update(deleted=True, version=op.version)
            continue
        if row is not None and row.version > op.version:
            continue  # a late, older version: the newer one stays
        r = op.record
        if row is None:
            row = rows[op.key] = Row(op.key, r.ref.system, r.ref.entity.value, r.ref.source_id, r.version, False,
                                     None, None, None)
        subject = r.canonical.get("subject")
        row.values = {"content_hash": r.content_hash, "version": r.version, "observed_at": r.observed_at,
                      "raw": r.raw, "canonical": r.canonical, "provenance": r.provenance.model_dump(mode="json"),
                      "deleted": False, "subject_key": SourceRef.model_validate(subject).key if subject else None}
        row.version, row.deleted, row.canonical, row.observed_at = r.version, False, r.canonical, _aware(r.observed_at)
        row.dirty = row.upserted = True
        row.deleted_now = False


def write(session: Session, rows: dict[str, Row]) -> None:
    """One bulk INSERT for the new rows, one bulk UPDATE (by primary key) per column set for the others."""
    now = utcnow()
    insert_rows(session, _T, [{"ref_key": r.ref_key, "system": r.system, "entity": r.entity,
                               "source_id": r.source_id, "person_id": r.person_id, "updated_at": now, **r.values}
                              for r in rows.values() if r.dirty and r.id is None])
    update_rows(session, _T, "id", [{"id": r.id, "updated_at": now, **r.values}
                                    for r in rows.values() if r.dirty and r.id is not None])


def set_persons(session: Session, persons: dict[str, str]) -> None:
    """Record each source record's person (one executemany by reference key)."""
    update_rows(session, _T, "ref_key", [{"ref_key": k, "person_id": p} for k, p in persons.items()])


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive UTC datetimes: compare them as aware ones."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value
