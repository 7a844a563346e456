"""The identity linker the records worker calls inside its batch transaction.

`prepare` loads, once per batch, every stored record that shares a blocking key
with the batch's person records (one query per rule); `link` then places each
record with the engine (`identity_index.engine.IncrementalIndex`), persists the
decision with its evidence, merges the persons a record proves to be one (the
retired ids redirect to the survivor), queues review pairs and writes the
`identity.linked` / `identity.merged` events to the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from canonical.person import Person
from canonical.records import SourceRecord
from hub.identity import repository as repo
from hub.outbox import add_to_outbox
from hub.persons import new_person_id, resolve
from hub.store.tables.records import SourceRecordRow
from identity_index.blocking import block_keys, rules_named
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.model import Model

BATCH_STATE = "identity_batch"
EVENT_SOURCE = "identity"


@dataclass
class _Batch:
    index: IncrementalIndex
    keys: set[tuple[str, str]] = field(default_factory=set)
    placing: set[str] = field(default_factory=set)


class IdentityLinker:
    """Implements the worker's `PersonLinker` port with the master identity index."""

    def __init__(self, model: Model, *, publish_events: bool = True) -> None:
        self.model = model
        self.rules = rules_named(model.blocking_rules)
        self.publish_events = publish_events

    # ports the worker uses ---------------------------------------------------
    def lock_keys(self, record: SourceRecord) -> list[str]:
        """Every blocking key of the record: two records that could be compared share one,
        so competing workers that lock these never link the same new person twice."""
        if record.ref.entity != EntityKind.PERSON:
            return []
        f = features_from_canonical(record.ref.key, record.canonical)
        return [f"block:{rule}:{key}" for rule, key in block_keys(f, self.rules)]

    def prepare(self, session: Session, records: Sequence[SourceRecord]) -> None:
        """Load the candidates of a whole batch at once."""
        feats = [features_from_canonical(r.ref.key, r.canonical) for r in records
                 if r.ref.entity == EntityKind.PERSON]
        self._load(session, self._batch(session), feats)

    def link(self, session: Session, row: SourceRecordRow, person: Person) -> str:
        f = features_from_canonical(row.ref_key, row.canonical)
        return self.place(session, f, fallback_person=row.person_id)

    def forget(self, session: Session, ref_key: str) -> None:
        """A deleted record is no candidate any more (its person keeps its other records)."""
        repo.forget_record(session, ref_key)
        batch = session.info.get(BATCH_STATE)
        if batch is not None:
            batch.index.remove(ref_key)

    # the work ------------------------------------------------------------------
    def place(self, session: Session, f: PersonFeatures, *, fallback_person: str | None = None) -> str:
        batch = self._batch(session)
        if f.ref not in batch.placing or not set(block_keys(f, self.rules)) <= batch.keys:
            self._load(session, batch, [f])
        stored = repo.current_person(session, f.ref)
        current = stored or (resolve(session, fallback_person) if fallback_person else None)
        placement = batch.index.place(f, current_person=current,
                                      can_merge=lambda ids: self.can_merge(session, ids))
        pid = placement.person_id
        repo.save_record(session, f, pid, block_keys(f, self.rules), existed=stored is not None)
        events: list[Envelope] = []
        for retired in placement.assignment.merge:
            moved = repo.retire_person(session, retired, pid)
            repo.audit(session, "identity-index", "merge", {"survivor": pid, "retired": retired, "refs": moved,
                                                            "by": f.ref})
            events.append(self._event(MessageType.IDENTITY_MERGED, session, pid,
                                      {"retired": retired, "refs": moved, "by": f.ref}))
        if pid != current or placement.assignment.merge:
            link = placement.assignment.link
            made_by = "new" if link is None else link.made_by.value
            repo.add_link(session, f.ref, pid, made_by=made_by, model_version=self.model.version, score=link,
                          prior_weight=self.model.prior_weight)
            events.append(self._event(MessageType.IDENTITY_LINKED, session, pid, {
                "ref": f.ref, "previous_person_id": current, "made_by": made_by,
                "rule": link.rule if link else None, "probability": link.probability if link else None}))
        for review in placement.assignment.reviews:
            other = review.ref_b if review.ref_a == f.ref else review.ref_a
            if batch.index.person_of.get(other) != pid:
                repo.add_review(session, review, model_version=self.model.version,
                                prior_weight=self.model.prior_weight)
        if self.publish_events and events:
            add_to_outbox(session, events)
        return pid

    def can_merge(self, session: Session, person_ids: list[str]) -> bool:
        """No steward has said any record of one of these persons is not one of another's."""
        by_person = repo.members(session, person_ids)
        owner = {ref: pid for pid, refs in by_person.items() for ref in refs}
        for a, b, same in repo.constraints_touching(session, owner):
            if not same and a in owner and b in owner and owner[a] != owner[b]:
                return False
        return True

    def _event(self, kind: MessageType, session: Session, person_id: str, payload: dict) -> Envelope:
        return Envelope(type=kind, source_system=EVENT_SOURCE, payload={
            "person_id": person_id, "version": repo.person_version(session, person_id),
            "model_version": self.model.version, **payload})

    def _batch(self, session: Session) -> _Batch:
        batch = session.info.get(BATCH_STATE)
        if batch is None or batch.index.model is not self.model:
            batch = _Batch(IncrementalIndex(self.model, new_person_id=new_person_id))
            session.info[BATCH_STATE] = batch
        return batch

    def _load(self, session: Session, batch: _Batch, feats: Sequence[PersonFeatures]) -> None:
        keys = {k for f in feats for k in block_keys(f, self.rules)} - batch.keys
        placing = {f.ref for f in feats}
        repo.load_slice(session, batch.index, keys, placing - batch.placing)
        batch.keys |= keys
        batch.placing |= placing

