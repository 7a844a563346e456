"""The records worker: consumes source-record messages and mirrors them into the store.

Each batch (of about `records_per_transaction` records: a message may carry a batch of records)
is one transaction, set-based: inbox claim (idempotency), one read of every
stored row the batch names, its upserts and deletes applied in order in memory (an older
version never overwrites a newer one), bulk writes, the linker placing all the batch's
person records at once, one golden-record refresh of every touched person, the
`route.changed` messages a route or alert can act on and the journal's `processed`
events. The bus acknowledges only after it commits.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from canonical.codes import EntityKind
from canonical.messages import EVENTS_PER_MESSAGE, Envelope, MessageType
from canonical.person import Person
from hub import worker_batch as wb
from hub.bulk import insert_rows
from hub.bus.bindings import RECORDS_QUEUE
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.port import Bus
from hub.identity import bulk_link, bulk_process
from hub.inbox import claim_unseen
from hub.persons import DeterministicLinker, PersonLinker, refresh_persons
from hub.routing_worker import announce_changes, note_change, noted_changes, publish_changes
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.statistics import StatisticsKeeper
from hub.store.tables.ingest import IngestRunRow
from hub.store.tables.records import QuarantineRow
from hub.worker_locks import bulk_link_turn, op_lock_keys, take_advisory_locks
from identity_index.features import features_from_canonical
from identity_index.model import Model
from routing.rules import RoutingConfig

CONSUMER = "records-worker"
GC_GEN0 = 10_000  # allocations between young collections (CPython's default of 700 cost ~18% of a worker)
PERSON, RELATIONSHIP = EntityKind.PERSON.value, EntityKind.RELATIONSHIP.value
Parsed = tuple[Envelope, list[wb.Op], list[wb.BadItem]]  # a message, its record operations, its invalid items
SETTLE_S = 2.0  # an empty queue for this long ends a load: the held records are linked
# ... unless an ingest run is still in progress: then the queue must stay empty this long. A loaded
# machine's ingest pauses for seconds between batches and systems, and each pause was a bulk link
# of its own, every one re-reading the index as context (100,000 people on amqp: 5 runs, 766 s;
# embedded: 1 run, 201 s). An ingest that died leaving its run "running" delays the link this long.
LOAD_SETTLE_S = 60.0
TICK_S = 0.25  # how often an idle worker that holds records looks at its queue
BULK_WRITE_RECORDS = 5000  # records a bulk link writes per transaction beside an ingest (which waits for the lock)
# ... and in its own process, once the ingest has ended. Each record files ~7 block keys, which go into
# the (rule, key, detail) index at random: every index page a transaction touches is written once (to
# SQLite's log, then back into the database), so records per page touched grow with the transaction.
# Into an index of 12M keys (1,000,000 people), 5,000 records a transaction cost 38-50 µs a key and
# 20,000 cost 27 (docs/performance.md, eleventh session).
BULK_PROCESS_WRITE_RECORDS = 20_000
BULK_RATIO = 0.25  # pending records, as a share of those linked, from which one clustering beats placing each
# held records at most placed a transaction at a time, however large the index: placing loads
# their blocks into the worker's candidate index inside the write transaction, and after a bulk
# link that index is cold (1,000,000 people: placing ~10,000 held SQLite's write lock past an
# ingest's 30 s busy timeout, twice); a bulk link reads without the write lock
PLACE_AT_MOST = 1_000
BULK_PROCESS_AT = 20_000  # held records from which a bulk link after the ingest runs in a child process (0: never)
BULK_PROCESS_MAX_RECORDS = 1_000_000  # held records one clustering takes in that child (worker.bulk_link_process_max_records)
CHUNK_CHECK_S = 10.0  # how often a worker behind its queue counts the held records (a whole chunk is linked)
log = logging.getLogger(__name__)


class RecordsWorker:
    """`routing`: the routes and alerts in force, so only changes they can act on are announced
    to the routing worker (None: announce every change).

    `bulk_link_backlog`: from this many messages waiting on the records queue (an initial load),
    new person records are stored unlinked and held (hub/identity/bulk_link.py), with the changes
    the routing worker would act on; once the backlog is below it, a thread of this worker links
    them all at once and announces the changes, once the queue has stayed empty for `settle_s`.
    While anything is held, every worker holds its new person records too, so no record is placed
    on its own beside a pending match. 0: never. `backlog` (messages waiting) is set by
    `run_worker` from the bus."""

    def __init__(self, store: Store, *, linker: PersonLinker | None = None, journal: Journal | None = None,
                 routing: RoutingConfig | None = None, records_per_transaction: int = 1000,
                 bulk_link_backlog: int = 0, settle_s: float = SETTLE_S, load_settle_s: float = LOAD_SETTLE_S,
                 bulk_link_max_records: int = 500_000, bulk_link_process_at: int = BULK_PROCESS_AT,
                 bulk_link_process_max_records: int = BULK_PROCESS_MAX_RECORDS,
                 storing_helper: Callable[[], Any] | None = None, links: bool = True) -> None:
        self.store = store
        self.linker = linker or DeterministicLinker()
        self.journal = journal or NullJournal()
        self.routing = routing
        self.records_per_transaction = records_per_transaction
        self.bulk_link_backlog = bulk_link_backlog
        self.bulk_link_max_records = bulk_link_max_records  # held records one clustering takes (memory)
        self.bulk_link_process_at = bulk_link_process_at  # held records from which a link runs in a child (0: never)
        self.bulk_link_process_max_records = bulk_link_process_max_records  # held records one clustering takes there
        self.chunk_check_s = CHUNK_CHECK_S
        # starts a process storing the queue beside this one (hub/storing_helper.py): returns it
        self.storing_helper = storing_helper
        self._helper: Any = None
        self._helper_checked_at = float("-inf")
        self._thread_linking = False  # a bulk link runs on this worker's thread (not in a child)
        self.links = links  # False: a storing helper, which holds person records and never links them
        self._chunk_checked_at = float("-inf")
        self._release_wanted = False  # the load ended while whole chunks were being linked
        self.backlog: Callable[[], int] | None = None
        self._release_lock = threading.Lock()
        self._release: threading.Thread | None = None
        self._releasing = False  # a thread of this worker is linking what is held
        self._holding = False  # this worker held records that are not linked yet
        self._checked_held = False
        self._checked_at = 0.0
        self._idle_since: float | None = None
        self.settle_s = settle_s
        self.load_settle_s = load_settle_s
        self.release_error: BaseException | None = None
        self.statistics = StatisticsKeeper(store)  # PostgreSQL's planner statistics, during a load

    def handle(self, batch: list[Envelope]) -> None:
        """Apply a delivery in transactions of about `records_per_transaction` records (a message is
        never split). A crash between two of them redelivers the whole delivery; the inbox skips
        the messages already committed."""
        parsed = [(e, *wb.parse_message(e)) for e in batch]  # validated once
        waiting = self._waiting()
        behind = bool(self.bulk_link_backlog) and waiting >= self.bulk_link_backlog
        hold = behind or self._held()
        for group in _transactions(parsed, self.records_per_transaction):
            self._handle(group, hold=hold)
        self.statistics.maybe_analyze()
        if hold:
            self._holding = True
            if behind:
                self._maybe_link_chunk()
                self._maybe_help()
            self._maybe_release(self._waiting() if behind else waiting)

    def tick(self) -> None:
        """Between deliveries and while idle (`run_worker` calls it): link what is held once the
        queue has stayed empty for `settle_s`."""
        self.statistics.maybe_analyze()
        if not self._holding or self._releasing:
            return
        now = time.monotonic()
        if now - self._checked_at >= TICK_S:
            self._checked_at = now
            self._maybe_release(self._waiting())

    def finish(self) -> None:
        """Link what is still held and wait for it (`run_worker` calls it before returning)."""
        if self._holding:
            self._start_release()
        self.wait_for_release()

    def _waiting(self) -> int:
        """Messages waiting on the records queue (0 when the worker is not run by `run_worker`)."""
        return self.backlog() if self.bulk_link_backlog and self.backlog is not None else 0

    def _maybe_release(self, waiting: int) -> None:
        """A queue that stays empty for `settle_s` is a load that has ended: a load's producer
        pauses between batches, so an empty queue for a moment is not the end of it; while an
        ingest run is in progress, it must stay empty for `load_settle_s`."""
        if waiting:
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        idle = now - self._idle_since
        if idle >= self.settle_s and (idle >= self.load_settle_s or not self._ingesting()):
            self._start_release()

    def _ingesting(self) -> bool:
        """Whether an ingest run is in progress; when the store cannot say (it is down: the bus's
        tick calls this between deliveries, and an error here would end the worker), as if one were."""
        try:
            with self.store.read() as s:
                return s.execute(select(IngestRunRow.id).where(IngestRunRow.status == "running")
                                 .limit(1)).first() is not None
        except DBAPIError as exc:
            log.warning("cannot tell whether an ingest is running (%s); the held records wait", exc.orig)
            return True

    def _maybe_link_chunk(self) -> None:
        """Behind, with a whole chunk (`bulk_link_max_records`) held: link it now, beside the load.
        Reading and clustering take no write lock, so it uses what the ingest and this worker leave
        of the machine, and the load's end finds only the rest held. Its changes are announced with
        the rest, once the queue is empty."""
        now = time.monotonic()
        if self._releasing or now - self._chunk_checked_at < self.chunk_check_s or self.helping():
            return  # with a helper storing the rest of the queue, all that is held is linked at once when it is empty
        self._chunk_checked_at = now
        with self.store.read() as s:
            full = bulk_link.pending_count(s) >= self.bulk_link_max_records
        if full:
            self._start_release(full_chunks_only=True)

    def _maybe_help(self) -> None:
        """Behind, once the ingest has ended, while this worker's thread links a chunk: a helper
        process stores the rest of the queue on the core the ingest has left (see
        hub/storing_helper.py), so that the queue is stored by the time the chunk ends and the
        rest of the held records are linked in one clustering, not two."""
        if self.storing_helper is None or not self._thread_linking or self.helping():
            return
        now = time.monotonic()
        if now - self._helper_checked_at < self.chunk_check_s:
            return
        self._helper_checked_at = now
        if self._ingesting():
            return
        log.info("the ingest has ended and a chunk is being linked on this worker's thread: a helper stores the queue")
        self._helper = self.storing_helper()

    def helping(self) -> bool:
        """Whether a storing helper this worker started is still running."""
        return self._helper is not None and self._helper.is_alive()

    def _held(self) -> bool:
        """Whether records are held (by any worker) or being linked by this one."""
        if self._releasing:
            return True
        if not self.bulk_link_backlog and self._checked_held:
            return False
        self._checked_held = True  # with bulk linking off, only a worker's first delivery looks
        with self.store.read() as s:
            return bulk_link.has_pending(s)

    def _start_release(self, full_chunks_only: bool = False) -> None:
        if not self.links:  # a storing helper: the worker that started it links what is held
            return
        with self._release_lock:
            if self._releasing:
                self._release_wanted |= not full_chunks_only  # linking whole chunks goes on to the rest
                return
            self._releasing = True
            self._idle_since = None
            target = self._link_chunks if full_chunks_only else self._release_held
            self._release = threading.Thread(target=target, name="bulk-link", daemon=True)
            self._release.start()

    def wait_for_release(self, timeout_s: float | None = None) -> None:
        """Until the held records are linked (run_worker calls it before returning)."""
        thread = self._release
        if thread is not None:
            thread.join(timeout_s)

    def _release_held(self) -> None:
        """Link what is held and announce the held changes, again while more was held meanwhile.
        On PostgreSQL one worker at a time does it, for every worker's held records."""
        try:
            with bulk_link_turn(self.store) as mine:
                while mine:
                    self.link_held()
                    with self._release_lock, self.store.read() as s:
                        if not bulk_link.has_pending(s):
                            self._releasing = self._holding = False
                            return
        except Exception as exc:  # kept and logged; the next delivery tries again
            self.release_error = exc
            log.exception("linking the held records failed; they stay held and are retried")
        with self._release_lock:
            self._releasing = False

    def _link_chunks(self) -> None:
        """Link the whole chunks held (`_maybe_link_chunk`); the rest stays held."""
        try:
            with bulk_link_turn(self.store) as mine:
                model = getattr(self.linker, "model", None)
                if mine and model is not None:
                    log.info("bulk link, whole chunks while behind: %s", self._bulk_link(model, full_chunks_only=True))
        except Exception as exc:  # kept and logged; the records stay held for the next run
            self.release_error = exc
            log.exception("linking whole chunks of the held records failed; they stay held")
        with self._release_lock:
            wanted, self._release_wanted = self._release_wanted, False
            if not wanted:
                self._releasing = False
                return
        self._release_held()  # the queue emptied meanwhile: the load has ended

    def link_held(self) -> None:
        """Link every held person record (in bulk, at most `bulk_link_max_records` per clustering;
        or one transaction at a time when they are few, beside the records already linked (a
        clustering reads most of the index as context, whatever the number held) and in number
        (`PLACE_AT_MOST`)), then announce the held changes."""
        with self.store.read() as s:
            pending, linked = bulk_link.pending_count(s), bulk_link.linked_count(s)
        model = getattr(self.linker, "model", None)
        if pending and model is not None and (pending >= BULK_RATIO * linked or pending > PLACE_AT_MOST):
            log.info("bulk link: %s", self._bulk_link(model))
        elif pending:
            self._place_held()
        self._announce_held()

    def _bulk_link(self, model: Model, full_chunks_only: bool = False) -> bulk_link.BulkLinkReport:
        options = {"records_per_transaction": max(self.records_per_transaction, BULK_WRITE_RECORDS),
                   "publish_events": getattr(self.linker, "publish_events", True),
                   "max_records": self.bulk_link_max_records, "full_chunks_only": full_chunks_only}
        if self._link_in_process():
            options["records_per_transaction"] = max(self.records_per_transaction, BULK_PROCESS_WRITE_RECORDS)
            if not full_chunks_only:  # whole chunks while behind are the thread's size: their count is what waits
                options["max_records"] = self.bulk_link_process_max_records
            return bulk_process.link(self.store.url, model, **options)
        self._thread_linking = True
        try:
            return bulk_link.link(self.store, model, **options)
        finally:
            self._thread_linking = False

    def _link_in_process(self) -> bool:
        """A link of `bulk_link_process_at` held records or more, starting when no ingest is
        running, runs in a child process (hub/identity/bulk_process.py), where it does not share
        this worker's interpreter lock. Beside an ingest it stays on the thread: on two cores the
        child took the ingest's core, and a 1,000,000-person ingest took 39 minutes instead of 20
        (docs/performance.md, seventh session); once the ingest has ended, that core is idle. A
        smaller link is not worth the child's start (about a second), nor is an in-memory store
        (a child cannot open it)."""
        if not self.bulk_link_process_at or ":memory:" in self.store.url or self.store.url == "sqlite://":
            return False
        with self.store.read() as s:
            if bulk_link.pending_count(s) < self.bulk_link_process_at:
                return False
        return not self._ingesting()

    def _place_held(self) -> None:
        while True:
            bulk_link.let_others_write(self.store)
            with self.store.transaction() as s:
                refs = bulk_link.pending_refs(s, self.records_per_transaction)
                if not refs:
                    return
                rows = wb.load_rows(s, refs, lock=self.store.dialect == "postgresql")
                place = [r for r in rows.values() if r.entity == PERSON and not r.deleted and not r.person_id]
                persons, touched = self._link(s, place)
                wb.set_persons(s, {r.ref_key: persons[r.ref_key] for r in place})
                refresh_persons(s, touched)
                bulk_link.drop(s, refs)

    def _announce_held(self) -> None:
        """The held `route.changed` payloads, now that their records are linked, in batches."""
        while True:
            bulk_link.let_others_write(self.store)
            with self.store.transaction() as s:
                held = bulk_link.held_routes(s, EVENTS_PER_MESSAGE * 10)
                if not held:
                    return
                by_system: dict[str, list[dict]] = {}
                for _id, system, payload in held:
                    by_system.setdefault(system, []).append(payload)
                announce_changes(s, by_system)
                bulk_link.drop_routes(s, [i for i, _system, _payload in held])

    def _handle(self, group: list[Parsed], *, hold: bool = False) -> None:
        with self.store.transaction() as session:
            postgres = self.store.dialect == "postgresql"
            if postgres:  # competing workers: one links a new person, the other waits
                take_advisory_locks(session, op_lock_keys([op for _e, ops, _b in group for op in ops], self.linker))
            fresh = claim_unseen(session, CONSUMER, [str(e.message_id) for e, _o, _b in group])
            todo: list[wb.Op] = []
            quarantine: list[dict] = []
            claimed: set[str] = set()
            for env, ops, bad in group:
                message_id = str(env.message_id)
                if message_id in fresh and message_id not in claimed:
                    claimed.add(message_id)
                    todo += ops
                    quarantine += wb.quarantine_rows(env, bad)
            if quarantine:  # a batch's invalid items: kept whole with the reason, the rest applied
                insert_rows(session, QuarantineRow.__table__, quarantine)
            if todo:
                self._apply(session, todo, lock=postgres, hold=hold)
            now = utcnow()
            self.journal.record([
                JournalEvent.of(e, "processed", queue=RECORDS_QUEUE,
                                latency_ms=int((now - e.occurred_at).total_seconds() * 1000),
                                detail=_processed_detail(e, ops, bad) if str(e.message_id) in fresh
                                else "duplicate: already processed")
                for e, ops, bad in group], session)

    def _apply(self, session: Session, ops: list[wb.Op], *, lock: bool, hold: bool = False) -> None:
        rows = wb.load_rows(session, sorted({op.key for op in ops}), lock=lock)
        wb.apply(rows, ops)
        changed = [r for r in rows.values() if r.dirty]
        touched = {r.person_id for r in changed if r.entity == PERSON and r.person_id
                   and (r.deleted_now or r.content_changed)}
        wb.write(session, rows)
        gone = [r.ref_key for r in changed if r.deleted and r.entity in (PERSON, RELATIONSHIP) and r.before is not None]
        forget_many = getattr(self.linker, "forget_many", None)  # a deleted record is no candidate or evidence
        if forget_many is not None:
            forget_many(session, gone)
        elif (forget := getattr(self.linker, "forget", None)) is not None:
            for key in gone:
                forget(session, key)
        place = [r for r in changed if r.entity == PERSON and not r.deleted
                 and (r.content_changed or not r.person_id)]
        held = [r.ref_key for r in place if not r.person_id] if hold else []
        if held:  # new person records wait to be linked in bulk; records already linked are re-placed now
            place = [r for r in place if r.person_id]
        persons, more = self._link(session, place)
        touched |= more
        relations = [r for r in changed if r.entity == RELATIONSHIP and r.upserted and not r.deleted]
        # before the relationships: the merges their household evidence makes move these records on
        wb.set_persons(session, {r.ref_key: persons[r.ref_key] for r in place if persons[r.ref_key] != r.person_id})
        touched |= self._relationships(session, relations)
        refresh_persons(session, touched)
        for r in changed:
            if r.upserted and not r.deleted:
                note_change(session, r, r.before)
        if hold:  # announced once their persons are known
            bulk_link.hold(session, held, noted_changes(session, self.routing))
        else:
            publish_changes(session, self.routing)  # route.changed for the routing worker, in this same transaction

    def _link(self, session: Session, place: list[wb.Row]) -> tuple[dict[str, str], set[str]]:
        """The person of each record to place, and every person whose records changed."""
        if not place:
            return {}, set()
        place_many = getattr(self.linker, "place_many", None)
        if place_many is not None:
            feats = [features_from_canonical(r.ref_key, r.canonical) for r in place]
            prepare = getattr(self.linker, "prepare_features", None)
            if prepare is not None:
                prepare(session, feats)
            placed = place_many(session, feats, {r.ref_key: r.person_id for r in place if r.person_id})
            return placed.persons, placed.touched
        persons, touched = {}, set()  # a linker with only the port: one record at a time, each visible to the next
        for r in place:
            row = SimpleNamespace(ref_key=r.ref_key, system=r.system, entity=r.entity, source_id=r.source_id,
                                  person_id=r.person_id, canonical=r.canonical)
            persons[r.ref_key] = pid = self.linker.link(session, row, Person.model_validate(r.canonical))
            wb.set_persons(session, {r.ref_key: pid})
            refresh_persons(session, [pid])
            touched |= {pid} | ({r.person_id} if r.person_id and r.person_id != pid else set())
        return persons, touched

    def _relationships(self, session: Session, relations: list[wb.Row]) -> set[str]:
        """Household evidence for linking: the persons it changed."""
        if not relations:
            return set()
        many = getattr(self.linker, "relationships_changed", None)
        if many is not None:
            return many(session, [(r.ref_key, r.canonical) for r in relations])
        one = getattr(self.linker, "relationship_changed", None)
        touched: set[str] = set()
        if one is not None:
            for r in relations:
                touched |= one(session, SimpleNamespace(ref_key=r.ref_key, canonical=r.canonical))
        return touched


def _transactions(parsed: list[Parsed], limit: int) -> list[list[Parsed]]:
    """Consecutive messages grouped up to `limit` records (at least one message per group)."""
    groups: list[list[Parsed]] = []
    size = limit
    for item in parsed:
        n = max(1, len(item[1]) + len(item[2]))
        if size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += n
    return groups


def _processed_detail(env: Envelope, ops: list[wb.Op], bad: list[wb.BadItem]) -> str | None:
    """A record batch says how many records it carried and how many of them were quarantined."""
    if env.type != MessageType.RECORD_BATCH:
        return None
    return f"{len(ops)} record(s)" + (f", {len(bad)} quarantined (invalid)" if bad else "")


def run_worker(bus: Bus, worker: RecordsWorker, *, batch_size: int = 200, max_messages: int | None = None,
               idle_timeout_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> int:
    """Consume the records queue until told to stop (or idle/limit for tests and demos)."""
    tune_gc()
    if worker.bulk_link_backlog:
        worker.backlog = lambda: bus.waiting(RECORDS_QUEUE)

    def stop() -> bool:  # the bus asks between deliveries and while idle: the worker's tick
        worker.tick()
        return bool(should_stop and should_stop())

    done = bus.consume(RECORDS_QUEUE, worker.handle, batch_size=batch_size, max_messages=max_messages,
                       idle_timeout_s=idle_timeout_s, should_stop=stop)
    if not (should_stop and should_stop()):  # drained (idle or limit): nothing stays held
        worker.finish()
    return done


def tune_gc() -> None:
    """Fewer cyclic collections: a batch allocates hundreds of thousands of short-lived containers
    and each young collection also walks the survivors; memory is freed by reference counting
    anyway, so only the rare cycle waits longer. Process-wide; never lowers a threshold."""
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0), gen1, gen2)
