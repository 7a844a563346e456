"""Linking in bulk: how the records worker gets through a backlog (an initial load).

Placing each new person record against the index, a batch at a time, is most of a records
worker's work, and it grows as the index fills. A worker far behind its queue stores new person
records unlinked and holds them here (`hold`); once the backlog is gone (or a whole chunk is
held), `link` clusters them, in chunks of at most `max_records`, with the linked records in the
blocks they are compared within as context (refined as a full clustering would split them:
`identity_index.blocking.context_blocks`) and only the pairs with a held record compared
(`identity_index.engine.link_batch`: the blocking, scoring, clustering and household
corroboration `hub identity rebuild` uses), then writes the persons a few thousand records per
transaction, so an ingest or another worker can write between them (from forked processes, with
`writers`, so one prepares its next transaction while another writes: hub/identity/bulk_writers.py).
A record already linked keeps its person: a pending record joins the person most of its
cluster's linked records have, or a new person with the rest of its cluster.
Pair reviews are queued as the incremental linker would queue them: the best per held record
and other person, when the record is plausibly that person and it plausibly the record's
(`identity_index.clustering.BestPairs`).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from canonical.messages import MessageType, identity_item
from hub.bulk import RenderedRows, insert_rendered, insert_rows, render_rows, update_rows
from hub.identity import bulk_writers
from hub.identity import repository as repo
from hub.identity.linker import EVENT_SOURCE
from hub.identity.lookup import rows_in
from hub.outbox import add_items_at_commit
from hub.persons import changed_persons, new_person_id, prepare_persons, write_persons
from hub.store.base import utcnow
from hub.store.engine import Store, json_loads
from hub.store.statistics import analyze_stale
from hub.store.tables.identity import (
    IdentityBlockKeyRow,
    IdentityConstraintRow,
    IdentityLinkRow,
    IdentityPendingRow,
    IdentityRecordRow,
    IdentityRelativeRow,
    IdentityReviewRow,
    RouteHeldRow,
)
from hub.store.tables.records import SourceRecordRow
from identity_index import forked
from identity_index.blocking import block_keys, context_blocks, filed_keys, rules_named
from identity_index.clustering import BestPairs
from identity_index.engine import MAX_BLOCK, link_batch
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.model import Model
from identity_index.scoring import PairScore

MADE_BY = "bulk"  # identity_link.made_by of a link made here
READ_CHUNK = 5000
GC_YOUNG, GC_MIDDLE, GC_OLD = 10_000, 50, 1000  # `fewer_collections`: a full collection after ~500M allocations
WRITE_GAP_S = 0.2  # SQLite: a pause after each write transaction, so a waiting writer gets the lock
_IR = IdentityRecordRow.__table__
_P = IdentityPendingRow.__table__
_R = RouteHeldRow.__table__
_S = SourceRecordRow.__table__


@dataclass
class BulkLinkReport:
    records: int = 0  # pending person records linked
    context: int = 0  # records already linked, clustered with them
    persons_created: int = 0
    joined_existing: int = 0  # pending records that joined a person already stored
    pairs_compared: int = 0
    reviews_added: int = 0
    transactions: int = 0
    seconds: float = 0.0


def hold(session: Session, links: Iterable[str] = (), routes: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Set aside new person records to link later (a record held already stays as it is), and the
    `route.changed` payloads (by source system) to announce once they are linked."""
    now = utcnow()
    rows = [{"ref_key": ref, "held_at": now} for ref in dict.fromkeys(links)]
    if rows:
        dialect = session.connection().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(_P).on_conflict_do_nothing(index_elements=["ref_key"]), rows)
    insert_rows(session, _R, [{"system": system, "payload": payload, "held_at": now}
                              for system, payloads in (routes or {}).items() for payload in payloads])


def pending_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(_P)).scalar_one())


def held_counts(session: Session) -> tuple[int, int]:
    """How many person records wait to be linked and how many route changes wait to be announced."""
    return pending_count(session), int(session.execute(select(func.count()).select_from(_R)).scalar_one())


def has_pending(session: Session) -> bool:
    """Whether anything is held: a record to link or a change to announce."""
    return (session.execute(select(_P.c.ref_key).limit(1)).first() is not None
            or session.execute(select(_R.c.id).limit(1)).first() is not None)


def pending_refs(session: Session, limit: int | None = None) -> list[str]:
    query = select(_P.c.ref_key).order_by(_P.c.ref_key)
    return list(session.execute(query.limit(limit) if limit else query).scalars())


def held_routes(session: Session, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, source system, `route.changed` payload) of the oldest held changes."""
    return [tuple(r) for r in session.execute(select(_R.c.id, _R.c.system, _R.c.payload).order_by(_R.c.id)
                                              .limit(limit))]


def drop(session: Session, refs: Sequence[str]) -> None:
    """These records are linked (or need no linking any more)."""
    for part in repo.chunks(list(refs)):
        session.execute(delete(_P).where(_P.c.ref_key.in_(part)))


def drop_routes(session: Session, ids: Sequence[int]) -> None:
    for part in repo.chunks(list(ids)):
        session.execute(delete(_R).where(_R.c.id.in_(part)))


def linked_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(IdentityRecordRow)).scalar_one())


def link(store: Store, model: Model, *, records_per_transaction: int = 2000,
         publish_events: bool = True, max_records: int = 500_000, full_chunks_only: bool = False,
         writers: int = 1) -> BulkLinkReport:
    """Link every pending person record (see the module's docstring), at most `max_records` of
    them per clustering (memory), the next chunk with the persons the last one wrote; with
    `full_chunks_only`, only whole chunks of `max_records` (a worker still behind its queue links
    them beside the load). `writers` > 1: a chunk's write transactions come from that many forked
    processes (hub/identity/bulk_writers.py; only in a process without threads). Safe to run
    again after a crash: what was written is no longer pending."""
    started = time.perf_counter()
    report = BulkLinkReport()
    rules = rules_named(model.blocking_rules)
    with store.read() as s:
        stale = _stale(s)
    if stale:  # deleted, or linked meanwhile by an incremental batch: nothing to do
        with store.transaction() as s:
            drop(s, stale)
    with store.read() as s:
        chunks = [list(c) for c in repo.chunks(pending_refs(s), max(1, max_records))]
    if full_chunks_only:
        chunks = [c for c in chunks if len(c) >= max_records]
    audited = []

    def audit(s: Session) -> None:  # in the last write: once nothing is held, the run is on record
        report.seconds = time.perf_counter() - started
        repo.audit(s, "identity-index", "bulk-link", {
            "records": report.records, "context": report.context, "persons_created": report.persons_created,
            "joined_existing": report.joined_existing, "pairs_compared": report.pairs_compared,
            "reviews_added": report.reviews_added, "transactions": report.transactions,
            "chunks": len(chunks), "seconds": round(report.seconds, 3), "model_version": model.version})
        audited.append(True)

    with fewer_collections():
        for i, refs in enumerate(chunks):
            analyze_stale(store)  # a load has just grown the tables this chunk reads (PostgreSQL)
            _link_chunk(store, model, rules, refs, report, records_per_transaction, publish_events,
                        audit if i == len(chunks) - 1 else None, writers)
    if report.records and not audited:
        with store.transaction() as s:
            audit(s)
    report.seconds = time.perf_counter() - started
    return report


def _link_chunk(store: Store, model: Model, rules: Any, refs: list[str], report: BulkLinkReport,
                records_per_transaction: int, publish_events: bool,
                audit: Callable[[Session], None] | None = None, writers: int = 1) -> None:
    """Cluster these pending records with their context: the linked records sharing a blocking
    key with one of them (no other could be compared with them), comparing only pairs with a
    pending record. Reading and clustering take no write lock: an ingest goes on meanwhile.
    Review pairs are queued first and `audit` runs in the last write, so that when nothing is held
    any more the whole run is in the store."""
    with store.read() as s:
        feats = _features_of(s, refs)
        indexed = s.execute(select(IdentityBlockKeyRow.rule).limit(1)).first() is not None  # else nothing to count
        plan = context_blocks(feats, rules, repo.detail_counts(
            s, (k for f in feats for k in block_keys(f, rules)), READ_CHUNK) if indexed else {}, MAX_BLOCK)
        stored_blocks = repo.block_rows(s, plan.blocks, {r.name: len(r.refine) for r in rules})
        compared = {ref for refs, _blocks in stored_blocks.values() for ref in refs}
        edges = _edges_touching(s, {f.ref for f in feats} | compared)
        context, linked = _linked(s, compared | {relative for _ref, relative, _role, _rel in edges})
        within = {f.ref for f in feats} | set(linked)
        constraints = [(a, b, same) for a, b, same in s.execute(select(
            IdentityConstraintRow.ref_a, IdentityConstraintRow.ref_b, IdentityConstraintRow.same))
            if a in within and b in within]
        relationships = _relationships(edges, within)
    if not feats:
        return
    result = link_batch(feats + context, model, must_link=[(a, b) for a, b, same in constraints if same],
                        cannot_link=[(a, b) for a, b, same in constraints if not same],
                        relationships=relationships, distinct_scores=False, focus=len(feats),
                        block_sizes=plan.sizes, fork=writers > 1 and forked.can_fork(), stored_blocks=stored_blocks)
    del context, relationships, stored_blocks, compared
    report.records += len(feats)
    report.context += len(linked)
    report.pairs_compared += result.pairs_compared
    by_ref = {f.ref: f for f in feats}
    del feats
    persons: dict[str, list[str]] = {}  # person → its pending records
    person_of_cluster: dict[object, str] = {}
    for cluster, members in result.clusters.clusters().items():
        pending = [r for r in members if r in by_ref]
        if not pending:
            continue
        votes = Counter(linked[r] for r in members if r in linked)
        pid = votes.most_common(1)[0][0] if votes else new_person_id()
        if votes:
            report.joined_existing += len(pending)
        else:
            report.persons_created += 1
        person_of_cluster[cluster] = pid
        persons.setdefault(pid, []).extend(pending)
    cluster_of = result.clusters.cluster_of

    def person(ref: str) -> str | None:
        return linked.get(ref) or person_of_cluster.get(cluster_of.get(ref))

    reviews = _review_pairs(result.clusters.reviews, by_ref, person, result.clusters.links)
    queued = select(func.count()).select_from(IdentityReviewRow)  # counted once each side, not per chunk
    with store.read() as s:
        before = s.execute(queued).scalar_one()
    for chunk in repo.chunks(reviews, records_per_transaction):
        with store.transaction() as s:
            repo.add_reviews(s, list(chunk), model_version=model.version, prior_weight=model.prior_weight)
        let_others_write(store)
    if reviews:
        with store.read() as s:
            report.reviews_added += s.execute(queued).scalar_one() - before
    parts: list[list[tuple[str, list[str]]]] = [[]]
    size = 0
    for pid, pending in persons.items():
        parts[-1].append((pid, pending))
        size += len(pending)
        if size >= records_per_transaction:
            parts.append([])
            size = 0
    parts = [p for p in parts if p]
    if writers > 1 and len(parts) > 2 and forked.can_fork():  # all but the last, which has the audit
        bulk_writers.write_parts(store.url, parts[:-1], lambda own, part: _prepare(
            own, part, by_ref, rules, result, model, publish_events), _commit, writers, WRITE_GAP_S)
        report.transactions += len(parts) - 1
        parts = parts[-1:]
    for i, part in enumerate(parts):
        report.transactions += 1
        _commit(store, _prepare(store, part, by_ref, rules, result, model, publish_events),
                audit if i == len(parts) - 1 else None)
        let_others_write(store)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The garbage collector's thresholds raised while a bulk link runs (then put back). A chunk
    builds tens of millions of objects that live until it ends (features, pairs, scores), and
    each full collection walks every object in the process: at
    the default thresholds one happens whenever the heap has grown by a quarter. Reading 1.5M
    stored features beside a heap of 3M objects took 24.2 s, 11.5 s with these thresholds and
    10.1 s with no collections at all (`/tmp/prof/gcb.py`, eleventh session). Young objects are
    still collected; a cycle that outlives them waits for the next full collection after the link
    (none is forced at its end: in a long-lived worker with a large heap one cost about a second,
    at the end of every link however small)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG), max(before[1], GC_MIDDLE), max(before[2], GC_OLD))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def let_others_write(store: Store) -> None:
    """SQLite's busy handler is not a queue: a writer that begins again as soon as it commits can
    keep a waiting one (an ingest, polling every 100 ms at most) out past its busy timeout. At
    1,000,000 people an ingest failed so ("database is locked" after 30 s) beside back-to-back bulk
    writes of 5,000 records (several seconds each)."""
    if store.dialect == "sqlite":
        time.sleep(WRITE_GAP_S)


def _review_pairs(reviews: Iterable[PairScore], pending: dict[str, PersonFeatures],
                  person: Callable[[str], str | None], links: dict[str, PairScore]) -> list[PairScore]:
    """The review pairs a pending record has, as the incremental linker queues them: the best one
    per other person (a steward decides whether a record is that person once, not once per record
    of it), and only those plausible from both sides (`identity_index.clustering.BestPairs`:
    against each record's link and its other candidates here). Pairs within one person are
    settled already."""
    pairs = BestPairs(reviews, person, links.get)
    out = []
    for own in pending:
        mine = person(own)
        for theirs, r in pairs.best.get(own, {}).items():
            other = r.ref_b if r.ref_a == own else r.ref_a
            if theirs in pairs.plausible(own) and mine in pairs.plausible(other):
                out.append(r)
    return out


def _stale(s: Session) -> list[str]:
    """Pending records needing no linking any more: deleted, not a person record, or linked
    meanwhile (by an incremental batch)."""
    query = (select(_P.c.ref_key).select_from(_P.outerjoin(_S, _S.c.ref_key == _P.c.ref_key))
             .where((_S.c.ref_key.is_(None)) | (_S.c.entity != "person") | _S.c.deleted
                    | _S.c.person_id.is_not(None) | _S.c.canonical.is_(None)))
    return list(s.execute(query).scalars())


def _features_of(s: Session, refs: Sequence[str]) -> list[PersonFeatures]:
    """Features of these pending records, but those gone stale meanwhile (the next run drops them).
    Read through the driver and decoded by pydantic-core (SQLAlchemy's row processing was a
    quarter of this at 100,000 people)."""
    feats = []
    for ref, entity, deleted, person_id, canonical in rows_in(
            s, _S, ["ref_key", "entity", "deleted", "person_id", "canonical"], "ref_key", sorted(refs),
            as_text=("canonical",), chunk=READ_CHUNK):
        if entity == "person" and not deleted and not person_id and canonical:
            person = json_loads(canonical)
            if person:
                feats.append(features_from_canonical(ref, person))
    return feats


def _linked(s: Session, refs: set[str]) -> tuple[list[PersonFeatures], dict[str, str]]:
    """The features (as stored) and persons of these records, those linked."""
    context, persons = [], {}
    for ref, pid, stored in rows_in(s, _IR, ["ref_key", "person_id", "features"], "ref_key", sorted(refs),
                                    as_text=("features",), chunk=READ_CHUNK):
        context.append(PersonFeatures.from_json(json_loads(stored)))
        persons[ref] = pid
    return context, persons


def _edges_touching(s: Session, refs: set[str]) -> list[tuple[str, str, str, str]]:
    """(ref, relative, role, relationship) of the household edges of these records: kin of a
    compared pair are the relatives of its two records (`identity_index.households`), so these
    records' relatives are read with them, and no other edge matters."""
    return [tuple(r) for r in rows_in(s, IdentityRelativeRow.__table__,
                                      ["ref_key", "relative_ref", "role", "relationship_ref"], "ref_key",
                                      sorted(refs), chunk=READ_CHUNK)]


def _relationships(edges: Iterable[tuple[str, str, str, str]], refs: set[str]) -> list[tuple[str, str, str]]:
    """(subject, related, kind) of the edges between these records, from one of each edge's two
    `identity_relative` rows (either side gives the same relatives: the roles are inverses)."""
    out, seen = [], set()
    for ref, relative, role, relationship in edges:
        if relationship not in seen and ref in refs and relative in refs:
            seen.add(relationship)
            out.append((relative, ref, role))
    return out


@dataclass
class _Part:
    """One write transaction's rows, built before it (`_prepare`) so that the write lock (SQLite)
    is held only while they are written (`_commit`). The inserts are rendered for the driver
    already (`hub.bulk.render_rows`): building each row's values was a sixth of a writer's time
    under the lock at 100,000 people."""

    refs: list[str]
    person_of: dict[str, str]
    records: RenderedRows  # identity_record
    keys: RenderedRows  # identity_block_key
    persons: list[dict[str, Any]]
    links: RenderedRows  # identity_link
    events: list[dict[str, Any]]
    prepared: Any  # hub.persons.PreparedPersons: the golden records as read before the write


def _prepare(store: Store, part: list[tuple[str, list[str]]], feats: dict[str, PersonFeatures], rules: Any,
             result: Any, model: Model, publish_events: bool) -> _Part:
    """The rows of these persons' pending records: index rows, block keys, persons, link evidence,
    `identity.linked` events and the golden records (read here; `_commit` checks them for changes
    meanwhile)."""
    refs = sorted(r for _pid, pending in part for r in pending)  # index order: each page written once
    person_of = {r: pid for pid, pending in part for r in pending}
    links = result.clusters.links
    now = utcnow()  # one timestamp for the part's rows: rendered once (`hub.bulk`)
    records, keys = repo.new_record_rows([(feats[r], person_of[r], filed_keys(feats[r], rules), False)
                                          for r in refs], now)
    persons = [{"ref_key": r, "person_id": person_of[r]} for r in refs]
    link_rows = [repo.link_row(r, person_of[r], made_by=MADE_BY, model_version=model.version, score=links.get(r),
                               prior_weight=model.prior_weight, now=now) for r in refs]
    events = [{"person_id": person_of[r], "model_version": model.version, "ref": r, "previous_person_id": None,
               "made_by": MADE_BY, "rule": links[r].rule if r in links else None,
               "probability": links[r].probability if r in links else None} for r in refs] if publish_events else []
    with store.read() as s:
        prepared = prepare_persons(s, [pid for pid, _pending in part], joining=person_of)
    dialect = store.engine.dialect
    return _Part(refs, person_of, render_rows(dialect, _IR, records), render_rows(dialect, IdentityBlockKeyRow.__table__,
                 keys), persons, render_rows(dialect, IdentityLinkRow.__table__, link_rows), events, prepared)


def _commit(store: Store, part: _Part, audit: Callable[[Session], None] | None = None) -> None:
    """One transaction: the prepared rows written, their `identity.linked` events (in
    `identity.batch` messages, as the incremental linker sends them) and their pending entries
    gone; a golden record whose person changed since it was read is worked out again here."""
    with store.transaction() as s:
        changed = changed_persons(s, part.prepared)  # before the records move: as they were read
        insert_rendered(s, part.records)
        insert_rendered(s, part.keys)
        update_rows(s, _S, "ref_key", part.persons)
        insert_rendered(s, part.links)
        write_persons(s, part.prepared, changed)
        if part.events:
            versions = repo.person_versions(s, part.person_of.values())  # after the refresh: the next one
            add_items_at_commit(s, MessageType.IDENTITY_BATCH, EVENT_SOURCE, [identity_item(
                MessageType.IDENTITY_LINKED, {**e, "version": versions[e["person_id"]] - 1}) for e in part.events])
        drop(s, part.refs)
        if audit is not None:
            audit(s)
