"""The records worker: consumes source-record messages and mirrors them into the store.

Each batch is one transaction: inbox claim (idempotency), upserts with a version
check (an older version never overwrites a newer one), person linking, golden-record
refresh and the journal's `processed` events. The bus acknowledges only after it commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from canonical.person import Person
from canonical.records import SourceRecord, SourceRef
from hub.bus.bindings import RECORDS_QUEUE
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.port import Bus
from hub.inbox import claim_unseen
from hub.persons import DeterministicLinker, PersonLinker, refresh_person
from hub.routing_worker import note_change, publish_changes
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.records import SourceRecordRow
from hub.worker_locks import batch_lock_keys, take_advisory_locks

CONSUMER = "records-worker"


class RecordsWorker:
    def __init__(self, store: Store, *, linker: PersonLinker | None = None, journal: Journal | None = None) -> None:
        self.store = store
        self.linker = linker or DeterministicLinker()
        self.journal = journal or NullJournal()

    def handle(self, batch: list[Envelope]) -> None:
        started = time.monotonic()
        with self.store.transaction() as session:
            if self.store.dialect == "postgresql":  # competing workers: one links a new person, the other waits
                take_advisory_locks(session, batch_lock_keys(batch, self.linker))
            fresh = claim_unseen(session, CONSUMER, [str(e.message_id) for e in batch])
            self._prepare_linker(session, batch, fresh)
            touched: set[str] = set()
            for env in batch:
                if str(env.message_id) not in fresh:
                    continue
                if env.type == MessageType.RECORD_UPSERTED:
                    touched |= self._upsert(session, SourceRecord.model_validate(env.payload))
                elif env.type == MessageType.RECORD_DELETED:
                    touched |= self._delete(session, SourceRef.model_validate(env.payload["ref"]),
                                            int(env.payload.get("version", 0)))
            session.flush()
            for person_id in touched:
                refresh_person(session, person_id)
            publish_changes(session)  # route.changed for the routing worker, in this same transaction
            now = utcnow()
            self.journal.record([
                JournalEvent.of(e, "processed", queue=RECORDS_QUEUE,
                                latency_ms=int((now - e.occurred_at).total_seconds() * 1000),
                                detail=None if str(e.message_id) in fresh else "duplicate: already processed")
                for e in batch], session)
        del started

    def _prepare_linker(self, session: Session, batch: list[Envelope], fresh: set[str]) -> None:
        """Let the linker look up the candidates of the whole batch at once (one query per key type)."""
        prepare = getattr(self.linker, "prepare", None)
        if prepare is None:
            return
        newest: dict[str, SourceRecord] = {}
        for e in batch:
            if str(e.message_id) in fresh and e.type == MessageType.RECORD_UPSERTED:
                r = SourceRecord.model_validate(e.payload)
                if r.ref.entity == EntityKind.PERSON and (r.ref.key not in newest
                                                          or r.version > newest[r.ref.key].version):
                    newest[r.ref.key] = r
        # a late, older version is never linked (`_upsert` skips it): it must not be a batch candidate
        # either, or the records it would have matched are left without their person
        stored = dict(session.execute(select(SourceRecordRow.ref_key, SourceRecordRow.version)
                                      .where(SourceRecordRow.ref_key.in_(list(newest)))).all()) if newest else {}
        prepare(session, [r for key, r in newest.items() if stored.get(key, -1) <= r.version])

    def _upsert(self, session: Session, record: SourceRecord) -> set[str]:
        row = _row_for(session, record.ref.key, lock=self.store.dialect == "postgresql")
        if row is not None and row.version > record.version:
            return set()  # a late, older version: the newer one stays
        if row is None:
            row = SourceRecordRow(ref_key=record.ref.key, system=record.ref.system, entity=record.ref.entity.value,
                                  source_id=record.ref.source_id)
            session.add(row)
        previous_person = row.person_id
        before = row.canonical if row.id is not None and not row.deleted else None
        row.content_hash = record.content_hash
        row.version = record.version
        row.observed_at = record.observed_at
        row.raw = record.raw
        row.canonical = record.canonical
        row.provenance = record.provenance.model_dump(mode="json")
        row.deleted = False
        subject = record.canonical.get("subject")
        row.subject_key = SourceRef.model_validate(subject).key if subject else None
        note_change(session, row, before)
        if record.ref.entity == EntityKind.RELATIONSHIP:
            related = getattr(self.linker, "relationship_changed", None)  # household evidence for linking
            return related(session, row) if related is not None else set()
        if record.ref.entity != EntityKind.PERSON:
            return set()
        session.flush()
        row.person_id = self.linker.link(session, row, Person.model_validate(record.canonical))
        session.flush()
        refresh_person(session, row.person_id)  # now: later records of this batch must find this person
        return {previous_person} if previous_person and previous_person != row.person_id else set()

    def _delete(self, session: Session, ref: SourceRef, version: int) -> set[str]:
        row = _row_for(session, ref.key, lock=self.store.dialect == "postgresql")
        if row is None or row.version > version:
            return set()
        row.deleted = True
        row.version = version
        forget = getattr(self.linker, "forget", None)  # a deleted record is no candidate or evidence any more
        if forget is not None and row.entity in (EntityKind.PERSON.value, EntityKind.RELATIONSHIP.value):
            forget(session, ref.key)
        return {row.person_id} if row.person_id else set()


def _row_for(session: Session, ref_key: str, *, lock: bool) -> SourceRecordRow | None:
    query = select(SourceRecordRow).where(SourceRecordRow.ref_key == ref_key)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def run_worker(bus: Bus, worker: RecordsWorker, *, batch_size: int = 200, max_messages: int | None = None,
               idle_timeout_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> int:
    """Consume the records queue until told to stop (or idle/limit for tests and demos)."""
    return bus.consume(RECORDS_QUEUE, worker.handle, batch_size=batch_size, max_messages=max_messages,
                       idle_timeout_s=idle_timeout_s, should_stop=should_stop)
