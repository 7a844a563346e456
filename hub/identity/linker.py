"""The identity linker the records worker calls inside its batch transaction.

`prepare` gives the batch every stored record that shares a blocking key with its
person records: from the candidate index the worker thread keeps between batches,
brought up to date from the identity change log (`live_index`), or, on a store without
that log, loaded afresh (one query per rule); `place_many` then places the
batch's records in order with the engine (`identity_index.engine.IncrementalIndex`)
and writes, in bulk, the decisions with their evidence, the merges of persons a
record proves to be one (the retired ids redirect to the survivor), the review pairs
plausible from both records' sides (`plausible_both_sides`) and the `identity.linked` /
`identity.merged` events for the outbox, all of a transaction's in one `identity.batch`
message (written as it commits). `link` is the same for one record (the worker's
`PersonLinker` port), with one message per event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType, identity_item
from canonical.person import Person
from canonical.records import SourceRecord
from hub.identity import repository as repo
from hub.identity.live_index import LiveSlice, has_log, live_slice
from hub.identity.slice_cache import CachedIndex, ThreadCaches
from hub.outbox import add_items_at_commit, add_to_outbox
from hub.persons import new_person_id, refresh_persons, resolve
from hub.store.base import utcnow
from hub.store.tables.records import SourceRecordRow
from identity_index.blocking import block_keys, filed_keys, rules_named
from identity_index.clustering import BestPairs
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.households import corroborate
from identity_index.model import Model
from identity_index.scoring import Decision, MadeBy, PairScore, Scorer

BATCH_STATE = "identity_batch"
EVENT_SOURCE = "identity"


@dataclass
class Placed:
    """What `place_many` decided: each record's person, and every person whose records changed."""

    persons: dict[str, str] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)


@dataclass
class _Batch:
    index: IncrementalIndex
    first: dict[str, PersonFeatures] = field(default_factory=dict)  # the first load's records (their blocks)
    whole: set[tuple[str, str]] = field(default_factory=set)  # keys loaded whole by later loads
    placing: set[str] = field(default_factory=set)
    live: LiveSlice | None = None  # the thread's slice this batch's index shares (live_index)
    started: bool = False
    block_keys: dict[str, tuple[PersonFeatures, list[tuple[str, str]]]] = field(default_factory=dict)

    def keys_of(self, f: PersonFeatures, rules: list) -> list[tuple[str, str]]:
        """`block_keys(f)`, computed once per features object in the batch."""
        known = self.block_keys.get(f.ref)
        if known is not None and known[0] is f:
            return known[1]
        keys = block_keys(f, rules)
        self.block_keys[f.ref] = (f, keys)
        return keys

    def prepared(self, f: PersonFeatures, rules: list) -> bool:
        """Loaded for: as these very features by the first load, or with every key loaded whole since."""
        return self.first.get(f.ref) == f or (f.ref in self.placing and set(self.keys_of(f, rules)) <= self.whole)


class IdentityLinker:
    """Implements the worker's `PersonLinker` port with the master identity index."""

    def __init__(self, model: Model, *, publish_events: bool = True, live_index: bool = True,
                 candidate_records: int | None = None) -> None:
        self.model = model
        # records kept between batches per worker thread (~8 KB each with their derived values, measured
        # on the 100k-person estate): past it, least recently used go
        self.limits = {"max_records": candidate_records} if candidate_records else {}
        self.rules = rules_named(model.blocking_rules)
        self.scorer = Scorer(model)
        self.publish_events = publish_events
        self.caches = ThreadCaches(model, **self.limits)  # derived features of stored records, between batches
        # the candidate index kept between batches (hub/identity/live_index.py), where the store
        # has the identity change log
        self.live_index = live_index
        self._logged: dict[int, bool] = {}

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

    def prepare_features(self, session: Session, feats: Sequence[PersonFeatures]) -> None:
        """`prepare` for features the caller has computed already."""
        self._load(session, self._batch(session), feats)

    def link(self, session: Session, row: SourceRecordRow, person: Person) -> str:
        f = features_from_canonical(row.ref_key, row.canonical)
        return self.place(session, f, fallback_person=row.person_id)

    def forget(self, session: Session, ref_key: str) -> None:
        """A deleted record is no candidate any more (its person keeps its other records);
        a deleted relationship is no household evidence any more."""
        self.forget_many(session, [ref_key])

    def relationship_changed(self, session: Session, row: SourceRecordRow) -> set[str]:
        """Record both sides of a relationship, then link the open review pairs its household
        evidence now settles. Returns the persons changed."""
        rel = row.canonical or {}
        subject, related = rel.get("subject") or {}, rel.get("related") or {}
        if not (subject.get("source_id") and related.get("source_id")):
            return set()
        refs = [f"{r['system']}/{r.get('entity', 'person')}/{r['source_id']}" for r in (subject, related)]
        repo.save_relationship(session, row.ref_key, refs[0], refs[1], str(rel.get("kind", "household_member")))
        return self.corroborate(session, refs)

    def corroborate(self, session: Session, refs: Sequence[str]) -> set[str]:
        """Link open review pairs touching `refs` whose records agree on the name and are, in
        the same role, relatives of one person or of records at one address."""
        reviews = repo.open_review_pairs(session, refs)
        if not reviews:
            return set()
        pair_refs = {r for row in reviews for r in (row.ref_a, row.ref_b)}
        relatives = repo.relatives_for(session, pair_refs)
        kin = {other for edges in relatives.values() for other, _role in edges}
        owner, feats = repo.persons_and_features(session, pair_refs | kin, self.caches.get())
        homes = {ref: f.postcode for ref, f in feats.items() if f.postcode}
        scores = [self.scorer.score(feats[row.ref_a], feats[row.ref_b]) for row in reviews
                  if row.ref_a in feats and row.ref_b in feats]
        by_pair = {(row.ref_a, row.ref_b): row for row in reviews}
        merged = self._merge_related(session, [(s.ref_a, s.ref_b) for s in corroborate(scores, relatives, owner, homes)])
        repo.resolve_reviews(session, [(by_pair.get((a, b)) or by_pair[(b, a)]).id for a, b in merged],
                             decided_by="identity-index",
                             reason="linked by rule shared_relative: same name, relatives of one person in the same role")
        return set(repo.persons_of(session, {r for pair in merged for r in pair}).values())

    def _merge_related(self, session: Session, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Merge the persons of each pair (in order) as `merge_persons` would, decided in memory
        over one read of their records, features and constraints, then written in bulk.
        Returns the pairs merged; their survivors are refreshed by the caller."""
        if not pairs:
            return []
        owner = repo.persons_of(session, {r for pair in pairs for r in pair})
        members, feats = repo.members_and_features(session, set(owner.values()), self.caches.get())
        groups = {pid: set(refs) for pid, refs in members.items()}
        cannot = {(a, b) for a, b, same in repo.constraints_touching(session, feats) if not same}
        nhs = {pid: {feats[r].nhs for r in refs if r in feats and feats[r].nhs} for pid, refs in groups.items()}
        parent: dict[str, str] = {}

        def find(pid: str) -> str:
            while pid in parent:
                pid = parent[pid]
            return pid

        merged, merges = [], []
        for ref_a, ref_b in pairs:
            a, b = find(owner.get(ref_a, "")), find(owner.get(ref_b, ""))
            if not a or not b or a == b or len(nhs.get(a, set()) | nhs.get(b, set())) > 1:
                continue
            ga, gb = groups.get(a, set()), groups.get(b, set())
            if any((x, y) in cannot or (y, x) in cannot for x in ga for y in gb):
                continue  # a steward said a record of one is not one of the other's
            survivor, retired = sorted((a, b), key=lambda p: (-len(groups.get(p, ())), p))
            parent[retired] = survivor
            groups[survivor] = ga | gb
            groups.pop(retired, None)
            nhs[survivor] = nhs.get(a, set()) | nhs.get(b, set())
            merges.append((retired, survivor))
            merged.append((ref_a, ref_b))
        if merges:
            self._write_related_merges(session, merges, {r: find(r) for r, _s in merges})
        return merged

    def _write_related_merges(self, session: Session, merges: list[tuple[str, str]], final: dict[str, str]) -> None:
        """Every record of each retired person moves to its final survivor, the retired id
        redirects; link evidence, audit and `identity.merged` events for each merge."""
        moved = repo.person_records(session, [r for r, _s in merges])
        repo.redirect_persons(session, final)
        reason = "shared relative"
        links, audits, events = [], [], []
        for retired, survivor in merges:
            refs = sorted(moved.get(retired, []))
            moved.setdefault(survivor, []).extend(refs)
            links += [repo.link_row(ref, final[retired], made_by="rule", model_version=self.model.version,
                                    actor="identity-index", note=reason, rule="shared_relative") for ref in refs]
            audits.append({"survivor": survivor, "retired": retired, "refs": refs, "reason": reason})
            events.append((MessageType.IDENTITY_MERGED, survivor,
                           {"retired": retired, "refs": refs, "actor": "identity-index"}))
        repo.add_links(session, links)
        repo.audit_many(session, "identity-index", "merge", audits)
        if self.publish_events:
            self._publish(session, events)
        batch = session.info.get(BATCH_STATE)
        if batch is not None:
            for retired, survivor in merges:
                batch.index.merge(retired, survivor)

    def forget_many(self, session: Session, ref_keys: Sequence[str]) -> None:
        """`forget` for every deleted record of a batch at once."""
        if not ref_keys:
            return
        batch = session.info.get(BATCH_STATE)
        partial = batch.index.partial_keys() if batch is not None else set()
        # a deleted record under a key the batch holds in part makes its blocks smaller, and its
        # records' level may become a coarser block than the one loaded: those keys are loaded whole
        shrunk = partial & repo.keys_of_stored(session, ref_keys) if partial else set()
        repo.forget_records(session, ref_keys)
        if batch is not None:
            for ref in ref_keys:
                batch.index.remove(ref)
            if shrunk:
                cache = batch.index.cache if isinstance(batch.index, CachedIndex) else None
                repo.load_slice(session, batch.index, shrunk, batch.placing, cache)
                batch.whole |= shrunk

    def relationships_changed(self, session: Session, rows: Sequence[tuple[str, dict]]) -> set[str]:
        """`relationship_changed` for a batch's (ref key, canonical) relationship records: both sides
        of each in bulk, then one corroboration over every person record they name."""
        edges, refs = [], []
        for ref_key, rel in rows:
            subject, related = (rel or {}).get("subject") or {}, (rel or {}).get("related") or {}
            if not (subject.get("source_id") and related.get("source_id")):
                continue
            pair = [f"{r['system']}/{r.get('entity', 'person')}/{r['source_id']}" for r in (subject, related)]
            edges.append((ref_key, pair[0], pair[1], str(rel.get("kind", "household_member"))))
            refs += pair
        if not edges:
            return set()
        repo.save_relationships(session, edges)
        return self.corroborate(session, sorted(set(refs)))

    def place_many(self, session: Session, feats: Sequence[PersonFeatures],
                   fallback: dict[str, str] | None = None) -> Placed:
        """Place a batch's person records in order against the prepared slice (later ones find
        earlier ones), then write identity rows, links, merges, reviews and events in bulk and
        corroborate only where a review was queued or a person with relatives grew."""
        out = Placed()
        if not feats:
            return out
        batch = self._batch(session)
        index = batch.index
        unprepared = [f for f in feats if not batch.prepared(f, self.rules)]
        if unprepared:
            self._load(session, batch, unprepared)
        stored = repo.persons_of(session, [f.ref for f in feats])
        placed: dict[str, str] = {}
        saves: dict[str, tuple[PersonFeatures, list[tuple[str, str]], bool]] = {}
        merges: list[tuple[str, str, str, list[str]]] = []
        links: list[dict] = []
        events: list[tuple[MessageType, str, dict]] = []
        reviews = []
        placed_links: dict[str, PairScore | None] = {}
        grown_refs: set[str] = set()
        for f in feats:
            current = stored.get(f.ref)
            if current is None and fallback and fallback.get(f.ref):
                current = resolve(session, fallback[f.ref])
            while current in index.retired:  # merged earlier in this batch
                current = index.retired[current]
            placement = index.place(f, current_person=current,
                                    can_merge=lambda ids: self._can_merge(session, index, ids))
            pid = placement.person_id
            saves[f.ref] = (f, filed_keys(f, self.rules, batch.keys_of(f, self.rules)), f.ref in stored)
            for retired in placement.assignment.merge:
                moved_here = sorted(r for r, p in placed.items() if p == retired)
                placed.update({r: pid for r in moved_here})
                merges.append((retired, pid, f.ref, moved_here))
            placed[f.ref] = pid
            placed_links[f.ref] = placement.assignment.link
            if current and current != pid:
                out.touched.add(current)
            if pid != current or placement.assignment.merge:
                link = placement.assignment.link
                made_by = "new" if link is None else link.made_by.value
                links.append(repo.link_row(f.ref, pid, made_by=made_by, model_version=self.model.version,
                                           score=link, prior_weight=self.model.prior_weight))
                events.append((MessageType.IDENTITY_LINKED, pid, {
                    "ref": f.ref, "previous_person_id": current, "made_by": made_by,
                    "rule": link.rule if link else None, "probability": link.probability if link else None}))
            for review in placement.assignment.reviews:
                other = review.ref_b if review.ref_a == f.ref else review.ref_a
                if index.person_of.get(other) != pid:
                    reviews.append(review)
            if not placement.created:
                grown_refs.add(f.ref)
        merge_events = self._write_merges(session, merges)
        repo.save_records(session, [(f, index.person_of.get(ref, placed[ref]), keys, existed)
                                    for ref, (f, keys, existed) in saves.items()])
        repo.add_links(session, links)
        if self.publish_events and (events or merge_events):
            self._publish(session, merge_events + events)
        queued = repo.add_reviews(session, self._plausible(session, reviews, placed_links),
                                  model_version=self.model.version, prior_weight=self.model.prior_weight)
        session.flush()
        if queued:
            out.touched |= self.corroborate(session, sorted(queued))
        if grown_refs:
            grown = {index.person_of.get(r, placed[r]) for r in grown_refs}
            kin = {other for edges in repo.relatives_of_persons(session, grown).values() for other, _role in edges}
            if kin:
                out.touched |= self.corroborate(session, sorted(kin))
            self._resolve_settled_many(session, grown_refs)
        out.persons = {f.ref: index.person_of.get(f.ref, placed[f.ref]) for f in feats}
        out.touched |= set(out.persons.values())
        out.touched -= set(index.retired)
        return out

    def _write_merges(self, session: Session, merges: list[tuple[str, str, str, list[str]]]) -> list:
        """Retire each merged person in order (its stored records move, its id redirects)."""
        events, audits = [], []
        if merges:  # a person created earlier in this batch has no row yet: give it its redirect
            repo.ensure_person_rows(session, [m[0] for m in merges])
        for retired, survivor, by, moved_here in merges:
            moved = sorted(set(repo.retire_person(session, retired, survivor)) | set(moved_here))
            audits.append({"survivor": survivor, "retired": retired, "refs": moved, "by": by})
            events.append((MessageType.IDENTITY_MERGED, survivor, {"retired": retired, "refs": moved, "by": by}))
        repo.audit_many(session, "identity-index", "merge", audits)
        return events

    def _publish(self, session: Session, events: list[tuple[MessageType, str, dict]]) -> None:
        """identity.linked / identity.merged, each with the version its person will have after this
        batch, as items of the transaction's `identity.batch` (written as it commits: placing and
        the corroborations that merge share one message, up to `EVENTS_PER_MESSAGE` events)."""
        versions = repo.person_versions(session, {pid for _kind, pid, _payload in events})
        add_items_at_commit(session, MessageType.IDENTITY_BATCH, EVENT_SOURCE, [identity_item(kind, {
            "person_id": pid, "version": versions[pid], "model_version": self.model.version, **payload})
            for kind, pid, payload in events])

    def _plausible(self, session: Session, proposed: list[PairScore],
                   links: dict[str, PairScore | None]) -> list[PairScore]:
        """`plausible_both_sides` over what the store holds once this batch's records are written:
        the open pairs of every record proposed (their competitors) and the persons of all of
        them, in one read each."""
        if not proposed:
            return []
        refs = {r for s in proposed for r in (s.ref_a, s.ref_b)}
        queued = [PairScore(a, b, 0.0, p, (), Decision.REVIEW, MadeBy.MODEL)
                  for a, b, p in repo.open_review_scores(session, refs)]
        person = repo.persons_of(session, refs | {r for s in queued for r in (s.ref_a, s.ref_b)})
        return plausible_both_sides(proposed, person, links, queued)

    def _resolve_settled_many(self, session: Session, refs: set[str]) -> None:
        """Open pairs of these records with records now in their own person need no steward."""
        rows = repo.open_review_pairs(session, refs)
        if not rows:
            return
        owner = repo.persons_of(session, {r for row in rows for r in (row.ref_a, row.ref_b)})
        repo.resolve_reviews(session, [row.id for row in rows
                                       if owner.get(row.ref_a) and owner.get(row.ref_a) == owner.get(row.ref_b)],
                             decided_by="identity-index",
                             reason="linked automatically after the pair was queued: no decision needed")

    def _can_merge(self, session: Session, index: IncrementalIndex, person_ids: list[str]) -> bool:
        """`can_merge` over the stored members and those this batch placed but has not written yet."""
        by_person = repo.members(session, person_ids)
        owner = {ref: pid for pid, refs in by_person.items() for ref in refs}
        owner.update({ref: pid for pid in person_ids for ref in index.members.get(pid, ())})
        for a, b, same in repo.constraints_touching(session, owner):
            if not same and a in owner and b in owner and owner[a] != owner[b]:
                return False
        return True

    # the work ------------------------------------------------------------------
    def place(self, session: Session, f: PersonFeatures, *, fallback_person: str | None = None) -> str:
        batch = self._batch(session)
        if not batch.prepared(f, self.rules):
            self._load(session, batch, [f])
        stored = repo.current_person(session, f.ref)
        current = stored or (resolve(session, fallback_person) if fallback_person else None)
        placement = batch.index.place(f, current_person=current,
                                      can_merge=lambda ids: self.can_merge(session, ids))
        pid = placement.person_id
        repo.save_record(session, f, pid, filed_keys(f, self.rules), existed=stored is not None)
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
        queued = False
        proposed = [r for r in placement.assignment.reviews
                    if batch.index.person_of.get(r.ref_b if r.ref_a == f.ref else r.ref_a) != pid]
        for review in self._plausible(session, proposed, {f.ref: placement.assignment.link}):
            queued |= repo.add_review(session, review, model_version=self.model.version,
                                      prior_weight=self.model.prior_weight)
        if self.publish_events and events:
            add_to_outbox(session, events)
        session.flush()
        if queued:
            refresh_persons(session, self.corroborate(session, [f.ref]))
        if not placement.created:
            # the person grew: pairs between relatives of its records may now share a relative's person
            members = repo.members(session, [pid]).get(pid, [])
            kin = {other for edges in repo.relatives_for(session, members).values() for other, _role in edges}
            if kin:
                refresh_persons(session, self.corroborate(session, sorted(kin)))
            self._resolve_settled_reviews(session, f.ref)
        return repo.current_person(session, f.ref) or pid

    def _resolve_settled_reviews(self, session: Session, ref: str) -> None:
        """Open pairs of this record with records now in its own person need no steward."""
        pid = repo.current_person(session, ref)
        for row in repo.open_reviews_touching(session, [ref]):
            other = row.ref_b if row.ref_a == ref else row.ref_a
            if repo.current_person(session, other) == pid:
                row.status, row.decided_by, row.decided_at = "resolved", "identity-index", utcnow()
                row.reason = "linked automatically after the pair was queued: no decision needed"

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
            if self.caches.model is not self.model:  # a new model: derived values start again
                self.caches = ThreadCaches(self.model, **self.limits)
            cache = self.caches.get()
            if self.live_index and self._has_log(session):
                cache.renew_encoder()
                live = live_slice(cache)
                batch = _Batch(live.index(new_person_id), live=live)
            else:
                batch = _Batch(cache.index(new_person_id))
            session.info[BATCH_STATE] = batch
        return batch

    def _has_log(self, session: Session) -> bool:
        engine = session.get_bind()
        found = self._logged.get(id(engine))
        if found is None:
            found = self._logged[id(engine)] = has_log(session)
        return found

    def _load(self, session: Session, batch: _Batch, feats: Sequence[PersonFeatures]) -> None:
        placing = {f.ref for f in feats}
        cache = batch.index.cache if isinstance(batch.index, CachedIndex) else None
        if not batch.started:  # the batch's first load: only the blocks its records are compared within
            batch.started = True
            batch.first = {f.ref: f for f in feats}

            def keys_of(f: PersonFeatures) -> list[tuple[str, str]]:
                return batch.keys_of(f, self.rules)
            if batch.live is not None:  # from the kept slice
                batch.live.begin(session)
                batch.live.view(session, batch.index, feats, keys_of)  # type: ignore[arg-type]
            else:
                repo.load_blocks(session, batch.index, feats, cache, keys_of)
        else:  # a later load in the same batch (records placed one by one): every record under their keys
            keys = {k for f in feats for k in batch.keys_of(f, self.rules)} - batch.whole
            repo.load_slice(session, batch.index, keys, placing - batch.placing, cache)
            batch.whole |= keys
        batch.placing |= placing
        index = batch.index
        if isinstance(index, CachedIndex):  # derived once here; the next batch's re-read of them hits
            dumps = getattr(session.get_bind().dialect, "_json_serializer", None) or json.dumps  # as stored
            for f in feats:
                index.cache.remember(f, IncrementalIndex._block_ids(index, f), dumps(f.to_json()))


def plausible_both_sides(proposed: Sequence[PairScore], person: Mapping[str, str],
                         links: Mapping[str, PairScore | None],
                         queued: Iterable[PairScore] = ()) -> list[PairScore]:
    """Of the review pairs placing a batch proposed, those plausible from both records' sides, as a
    bulk link keeps them (`identity_index.clustering.BestPairs`) over each record's best pair per
    other person among the pairs proposed and those `queued` already (open), with its link when
    it was placed in this batch (`links`; a stored record's link is no competitor: a pair asks
    whether two persons are one, and being surely its own person does not make a record less
    likely to be the other's). Placing checked the arriving side against its own candidates;
    the other side was unchecked, so a stored record without a date of birth was a pair with each
    namesake arriving after it. Pairs a constraint refused to link are always kept (and outrank
    the others of their record and person); pairs whose records are one person by now are settled."""
    def person_of(ref: str) -> str:
        return person.get(ref, ref)

    pairs = BestPairs([*queued, *proposed], person_of, links.get,
                      rank=lambda s: (s.decision == Decision.LINK, s.probability))
    out = []
    for s in proposed:
        a, b = person_of(s.ref_a), person_of(s.ref_b)
        if a != b and (s.decision == Decision.LINK or (b in pairs.plausible(s.ref_a) and a in pairs.plausible(s.ref_b))):
            out.append(s)
    return out
