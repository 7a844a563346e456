"""The message console's service: browse the journal, follow one message, work dead letters.

Every message's life is in `message_journal` (published, delivered, processed,
retried, dead_lettered, replayed); a message's status is its latest event. Dead
letters live in the bus (its dead-letter queue or table) and are read through the
`Bus` port, so the same calls work on the embedded bus and on RabbitMQ. Payloads are
not returned here: a message names its source record, and the record is read
through the person pages and their access policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, true

from hub.bus.bindings import DEFAULT_BINDINGS
from hub.bus.journal import EVENTS
from hub.bus.port import Bus
from hub.store.engine import Store
from hub.store.tables.messaging import MessageJournalRow, MessageRecordRow
from hub.store.tables.records import SourceRecordRow

QUEUES = tuple(b.queue for b in DEFAULT_BINDINGS)


class MessageNotFound(LookupError):
    """The journal has no event for that message id."""


class MessageQueryError(ValueError):
    """A filter value is not one the journal knows (unknown status, bad time)."""


@dataclass(frozen=True)
class MessageQuery:
    type: str | None = None
    system: str | None = None
    status: str | None = None  # the latest event: published, processed, dead_lettered, …
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    person_id: str | None = None  # a hub person: the messages that carried any of its records
    ref_key: str | None = None  # one source record, `system/entity/source_id`
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class MessagePage:
    results: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def list_messages(store: Store, q: MessageQuery) -> MessagePage:
    """One row per message with its latest event, newest first."""
    if q.status and q.status not in EVENTS:
        raise MessageQueryError(f"status {q.status!r}: expected one of {', '.join(EVENTS)}")
    j = MessageJournalRow
    life = (select(j.message_id, func.max(j.id).label("last_id"), func.min(j.at).label("first_at"),
                   func.count().label("events"), func.max(j.ref_key).label("ref_key"),
                   func.max(j.latency_ms).label("latency_ms"))
            .group_by(j.message_id).subquery())
    last = MessageJournalRow.__table__.alias("last_event")
    conditions = []
    if q.type:
        conditions.append(last.c.type == q.type)
    if q.system:
        conditions.append(last.c.source_system == q.system)
    if q.status:
        conditions.append(last.c.event == q.status)
    if q.since:
        conditions.append(life.c.first_at >= q.since)
    if q.until:
        conditions.append(life.c.first_at < q.until)
    if q.ref_key:
        conditions.append(_carrying(life, [q.ref_key]))
    with store.transaction() as s:
        if q.person_id:
            keys = s.execute(select(SourceRecordRow.ref_key)
                             .where(SourceRecordRow.person_id == q.person_id)).scalars().all()
            conditions.append(_carrying(life, keys))
        joined = life.join(last, last.c.id == life.c.last_id)
        where = and_(true(), *conditions)
        total = s.execute(select(func.count()).select_from(joined).where(where)).scalar_one()
        rows = s.execute(
            select(life.c.message_id, life.c.first_at, life.c.events, life.c.ref_key, life.c.latency_ms,
                   last.c.event, last.c.at, last.c.type, last.c.source_system, last.c.queue, last.c.detail)
            .select_from(joined).where(where).order_by(life.c.last_id.desc())
            .offset((q.page - 1) * q.page_size).limit(q.page_size)).all()
    return MessagePage([_summary(r) for r in rows], total, q.page, q.page_size)


def message_journey(store: Store, message_id: str) -> dict[str, Any]:
    """Every event of one message in order, with the time each step took."""
    with store.transaction() as s:
        rows = s.execute(select(MessageJournalRow).where(MessageJournalRow.message_id == message_id)
                         .order_by(MessageJournalRow.id)).scalars().all()
    if not rows:
        raise MessageNotFound(message_id)
    first = rows[0].at
    events = [{"event": r.event, "at": _iso(r.at), "queue": r.queue or None, "detail": r.detail,
               "latency_ms": r.latency_ms, "after_ms": int((_aware(r.at) - _aware(first)).total_seconds() * 1000)}
              for r in rows]
    ref_key = next((r.ref_key for r in rows if r.ref_key), None)
    with store.transaction() as s:  # a batch: the records it carried, or its changes and identity events name
        carried = s.execute(select(MessageRecordRow.ref_key).where(MessageRecordRow.message_id == message_id)
                            .order_by(MessageRecordRow.ref_key)).scalars().all()
    return {"message_id": message_id, "type": rows[0].type, "source_system": rows[0].source_system,
            "ref_key": ref_key, "status": rows[-1].event, "attempts": 1 + sum(r.event == "retried" for r in rows),
            "events": events, "records": list(carried)}


def dead_letters(bus: Bus, queues: Sequence[str] = QUEUES, limit: int = 100) -> list[dict[str, Any]]:
    """Dead letters of every queue (or those named), oldest first within a queue."""
    found: list[dict[str, Any]] = []
    for queue in queues:
        for d in bus.dead_letters(queue, limit=limit):
            ref = d.envelope.payload.get("ref")
            found.append({"message_id": d.message_id, "queue": d.queue, "type": d.envelope.type.value,
                          "source_system": d.envelope.source_system,
                          "ref_key": f"{ref['system']}/{ref['entity']}/{ref['source_id']}"
                          if isinstance(ref, dict) and "source_id" in ref else None,
                          "error": d.error, "attempts": d.attempts, "dead_at": _iso(d.dead_at)})
    return found


def replay(bus: Bus, message_ids: Sequence[str] | None = None, queues: Sequence[str] = QUEUES) -> dict[str, Any]:
    """Send dead letters back to their queue: the named ones, or all of them when `message_ids` is None.

    Returns how many moved per queue and which named ids were not found in any dead-letter queue."""
    moved: dict[str, int] = {}
    for queue in queues:
        moved[queue] = bus.replay(queue, list(message_ids) if message_ids is not None else None)
    total = sum(moved.values())
    result: dict[str, Any] = {"replayed": total, "by_queue": {q: n for q, n in moved.items() if n}}
    if message_ids is not None and total < len(set(message_ids)):
        result["not_found"] = total_missing = len(set(message_ids)) - total
        result["detail"] = f"{total_missing} of the named message(s) were not dead letters"
    return result


def _carrying(life: Any, keys: Sequence[str]) -> Any:
    """Messages that carried any of `keys`: one record each (the journal's ref key) or a batch
    (`message_record`: a record batch's records, the records a `route.changed.batch` or an
    `identity.batch` names)."""
    batches = select(MessageRecordRow.message_id).where(MessageRecordRow.ref_key.in_(list(keys)))
    return or_(life.c.ref_key.in_(list(keys)), life.c.message_id.in_(batches))


def _summary(r: Any) -> dict[str, Any]:
    return {"message_id": r.message_id, "type": r.type, "source_system": r.source_system, "ref_key": r.ref_key,
            "status": r.event, "queue": r.queue or None, "detail": r.detail, "first_at": _iso(r.first_at),
            "last_at": _iso(r.at), "events": r.events, "latency_ms": r.latency_ms}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return _aware(value).isoformat() if value else None
