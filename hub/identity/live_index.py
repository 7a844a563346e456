"""The records worker's candidate index, kept between batches and kept current from the
identity change log.

Before this, every batch built a fresh `IncrementalIndex` and loaded into it every stored
record sharing a blocking key with the batch's records (`repository.load_slice`): a quarter
of the worker at 20,000 people, and growing with the blocks. A `LiveSlice` (one per worker
thread) keeps, between batches:

- for each block it has loaded, the *complete* set of records filed in it in the store
  (`key_refs`; a block is either complete in memory or absent), and each such record's
  features (as encoded rows and hashed blocks, shared with the batch's index), its person.
  A block is (rule, key, refining values): a key's whole block, or a refined one under a rule
  that splits large blocks. A batch loads only the blocks its records are compared within
  (`blocking.placing_blocks`), sized from the store's counts by detail (index only), and the
  batch's index notes what the blocks it holds in part hold besides (`note_stored_sizes`): at
  1,000,000 people a changed record's coarse keys held thousands of records, read cold from a
  22 GB store (37 % of the worker's time in the freshness trickle), its blocks dozens;
- the NHS identifiers of those persons (`person_identifier`, NHS only) and every steward's
  constraint.

Each batch (`begin`, then `view`) first brings that up to date, inside the batch's own
transaction and on PostgreSQL after the advisory locks: every record, person and constraint
the change log (`identity_change`, written by database triggers on identity_record,
person_identifier and identity_constraint, so every writer is covered: workers, stewards,
rebuild, SQL by hand) names since the last batch is dropped and re-read. Block keys are derived
from a record's features and written with its row, which lists them (`block_keys`) and whose
trigger logs it: every writer of a record's keys writes its row too.
Blocks the batch needs and the slice lacks are then loaded whole. The batch's index
(`BatchIndex`) shares the records, rows and blocks, and gets its own persons, members, NHS
numbers and constraints, built from the slice exactly as `repository.load_blocks` loads them:
the same candidates (a block a batch record is compared within holds exactly the records the
store files in it, less the records being placed; every other block of its keys counts them),
the same persons, sizes, NHS numbers and constraints, so every decision is the one a fresh
index makes.

Why the log is read soundly:

- SQLite: every transaction is BEGIN IMMEDIATE, so writers are serialised and the sequence is
  commit order: a batch reads every row past its watermark and sees every committed change.
  AUTOINCREMENT never hands a number out twice, so a later commit never lands at or below a
  watermark.
- PostgreSQL: sequence order is not commit order, so each row carries its transaction id.
  At each read the worker takes a snapshot first and keeps its xmax and in-progress list;
  any change not visible then was written by a transaction in that list or starting later
  (xid >= xmax), so the next read asks for exactly those transactions' rows (the worker's own
  included), skipping rows already applied. No timeouts.
- A watermark moves only when the batch commits (a session `after_commit` hook); a batch that
  did not commit (rolled back, failed) leaves the slice in an unknown state, so the next batch
  starts from an empty slice. Records the batch itself placed or deleted in memory are marked
  dirty and re-read at the next batch (its writes are in the log too).
- Bounded: past `max_refs` records, whole blocks are evicted, least recently used first (a
  record goes when no loaded key holds it). The log is pruned past `KEEP` rows
  (`identity_change_horizon` remembers how far); a worker whose watermark is older, or that
  finds more than `RESET_AT` changes (a rebuild), drops its slice and loads afresh.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from hub.identity import repository as repo
from hub.identity.lookup import rows_in
from hub.identity.repository import chunks
from hub.identity.slice_cache import CachedIndex, SliceCache
from hub.store.tables.identity import IdentityConstraintRow, IdentityRecordRow
from hub.store.tables.records import PersonIdentifierRow
from identity_index.blocking import (
    Block,
    key_chains,
    level_key,
    placing_blocks,
    row_blocks,
    rules_named,
)
from identity_index.engine import MAX_BLOCK, IncrementalIndex
from identity_index.features import PersonFeatures
from identity_index.vectorised import WIDTH

RESET_AT = 20_000  # more changes than this since the last batch: load afresh instead
KEEP = 200_000  # log rows kept by pruning
PRUNE_EVERY = 50  # batches of one worker between prunes
PRUNE_MAX = 250_000  # rows deleted by one prune

_meta = MetaData()  # the log's tables (migration 0012_identity_change_log); not part of the ORM
CHANGE = Table("identity_change", _meta, Column("seq", BigInteger, primary_key=True), Column("kind", String(1)),
               Column("ref", String(300)), Column("other", String(300)), Column("xid", BigInteger))
HORIZON = Table("identity_change_horizon", _meta, Column("id", Integer, primary_key=True),
                Column("seq", BigInteger), Column("xid", BigInteger))
_IR, _IC, _PI = IdentityRecordRow, IdentityConstraintRow, PersonIdentifierRow
_IRT = _IR.__table__


# the change log -------------------------------------------------------------------------
@dataclass(frozen=True)
class Mark:
    """How far a worker has read the log. SQLite: every row up to `seq`. PostgreSQL: every row
    except those of transactions in `xids` or with an id >= `xmax`, and the rows `seen` of those."""

    seq: int = 0
    xmax: int = 0
    xids: frozenset[int] = frozenset()
    seen: frozenset[int] = frozenset()


@dataclass
class Changes:
    refs: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str]] = field(default_factory=set)


def has_log(session: Session) -> bool:
    return inspect(session.connection()).has_table("identity_change")


def _snapshot(session: Session) -> tuple[int, frozenset[int]]:
    """PostgreSQL: (xmax, the transactions in progress, this one included) of a snapshot taken now."""
    xmax, xip, own = session.execute(text(
        "SELECT pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x), "
        "pg_current_xact_id_if_assigned()::text::bigint FROM (SELECT pg_current_snapshot() AS s) AS q")).one()
    return int(xmax), frozenset(xip or ()) | ({int(own)} if own is not None else set())


def start_mark(session: Session) -> Mark:
    """The mark of a slice about to be loaded from what this transaction sees now."""
    if session.get_bind().dialect.name == "postgresql":
        xmax, xids = _snapshot(session)
        return Mark(xmax=xmax, xids=xids)
    top = session.execute(select(func.max(CHANGE.c.seq))).scalar() or 0
    floor = session.execute(select(HORIZON.c.seq).where(HORIZON.c.id == 1)).scalar() or 0
    return Mark(seq=max(top, floor))


def read_changes(session: Session, mark: Mark) -> tuple[Changes, Mark] | None:
    """What changed since `mark`, and the mark after it; None when the log cannot say (pruned
    past the mark, or more than RESET_AT changes): the caller loads afresh."""
    cols = (CHANGE.c.seq, CHANGE.c.kind, CHANGE.c.ref, CHANGE.c.other, CHANGE.c.xid)
    if session.get_bind().dialect.name == "postgresql":
        xmax, xids = _snapshot(session)  # before the read: whatever it misses is in these
        query = select(*cols).where(or_(CHANGE.c.xid >= mark.xmax, CHANGE.c.xid.in_(sorted(mark.xids))))
        rows = session.execute(query.limit(RESET_AT + 1)).all()
        # after the read, so a prune that deleted rows before it is seen: only rows of committed
        # transactions are pruned, so those of the mark's transactions still in progress are safe
        h_xid = session.execute(select(HORIZON.c.xid).where(HORIZON.c.id == 1)).scalar()
        if h_xid is not None and h_xid >= min((mark.xids - xids) | {mark.xmax}):
            return None  # a row this worker had not read may have been pruned
    else:  # one writer at a time: nothing commits during this transaction
        h_seq = session.execute(select(HORIZON.c.seq).where(HORIZON.c.id == 1)).scalar()
        if mark.seq < (h_seq or 0):
            return None
        rows = session.execute(select(*cols).where(CHANGE.c.seq > mark.seq).order_by(CHANGE.c.seq)
                               .limit(RESET_AT + 1)).all()
    if len(rows) > RESET_AT:
        return None
    out = Changes()
    for seq, kind, ref, other, _xid in rows:
        if seq in mark.seen:
            continue
        if kind == "r":
            out.refs.add(ref)
        elif kind == "p":
            out.persons.add(ref)
        else:
            out.pairs.add((ref, other))
    if mark.xmax:  # PostgreSQL
        again = frozenset(seq for seq, _k, _r, _o, xid in rows if xid >= xmax or xid in xids)
        return out, Mark(xmax=xmax, xids=xids, seen=again)
    return out, Mark(seq=max([mark.seq] + [r[0] for r in rows]))


def prune(session: Session) -> int:
    """Delete log rows past the newest KEEP; the horizon says how far. Returns the rows deleted."""
    top = session.execute(select(func.max(CHANGE.c.seq))).scalar() or 0
    floor = session.execute(select(HORIZON.c.seq).where(HORIZON.c.id == 1)).scalar() or 0
    upto = min(top - KEEP, floor + PRUNE_MAX)  # a rebuild's millions of rows go over several prunes
    if upto <= floor:
        return 0
    if session.get_bind().dialect.name == "postgresql":  # the transactions of exactly the rows deleted
        xids = session.execute(delete(CHANGE).where(CHANGE.c.seq <= upto).returning(CHANGE.c.xid)).scalars().all()
        values: dict = {"seq": func.greatest(HORIZON.c.seq, upto)}
        if xids:
            values["xid"] = func.greatest(func.coalesce(HORIZON.c.xid, max(xids)), max(xids))
        deleted = len(xids)
    else:
        deleted = session.execute(delete(CHANGE).where(CHANGE.c.seq <= upto)).rowcount
        values = {"seq": func.max(HORIZON.c.seq, upto)}
    session.execute(update(HORIZON).where(HORIZON.c.id == 1).values(**values))
    return deleted


# the slice ------------------------------------------------------------------------------
class BatchIndex(CachedIndex):
    """One batch's index over a `LiveSlice`: the records, rows and blocks are the slice's;
    persons, members, NHS numbers, constraints and merges are this batch's own."""

    def __init__(self, live: LiveSlice, new_person_id: Callable[[], str] | None = None) -> None:
        super().__init__(live.model, live.cache, new_person_id=new_person_id)
        self.live = live
        self.records, self._row_of, self._free, self.blocks = live.records, live.row_of, live.free, live.blocks
        self._rows = live.rows

    def _store_row(self, f: PersonFeatures) -> None:
        self._rows = self.live.rows
        super()._store_row(f)
        self.live.rows = self._rows  # grown

    def _forget(self, ref: str) -> None:
        """Placed or deleted in this batch: gone from the slice until the next batch re-reads it."""
        super()._forget(ref)
        self.live.drop(ref)


class LiveSlice:
    """See the module docstring. One per worker thread (with its `SliceCache`)."""

    def __init__(self, cache: SliceCache, *, max_refs: int | None = None) -> None:
        self.cache, self.model = cache, cache.model
        self.rules = rules_named(cache.model.blocking_rules)  # for IncrementalIndex._keys
        self.levels = {r.name: len(r.refine) for r in self.rules}
        self.refining = {r.name for r in self.rules if r.refine}
        self.max_refs = max_refs or cache.max_records
        self.records: dict[str, PersonFeatures] = {}
        self.row_of: dict[str, int] = {}
        self.free: list[int] = []
        self.blocks: dict[int, list[str]] = {}
        self.rows = np.zeros((1024, WIDTH), dtype=np.int32)
        self.person: dict[str, str] = {}
        self.in_keys: dict[str, set[Block]] = {}  # record → the loaded blocks it is filed in
        self.key_refs: OrderedDict[Block, set[str]] = OrderedDict()  # loaded block → every record in it
        self.nhs_ids: dict[str, list[tuple[str, str]]] = {}  # person → (NHS number, record key)
        self.constraints: dict[tuple[str, str], bool] | None = None
        self.constraints_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.dirty: set[str] = set()
        self.mark: Mark | None = None
        self.pending: tuple[object, Mark] | None = None
        self.encoder = cache.pair_scorer
        self.batches = self.resets = self.loaded = self.refreshed = self.evicted = 0

    # the batch's side --------------------------------------------------------------
    def index(self, new_person_id: Callable[[], str] | None = None) -> BatchIndex:
        if self.cache.pair_scorer is not self.encoder:  # the rows were encoded by a retired encoder
            self.reset()
            self.encoder = self.cache.pair_scorer
        return BatchIndex(self, new_person_id)

    def begin(self, session: Session) -> None:
        """Bring the slice up to date inside the batch's transaction (first thing it loads)."""
        self.batches += 1
        # a previous batch that did not commit left the slice in a state the log cannot repair
        fresh = self.pending is not None or self.mark is None
        changes = None if fresh else read_changes(session, self.mark)  # type: ignore[arg-type]
        if changes is None:
            self.reset()
            mark = start_mark(session)
            self._load_constraints(session)
        else:
            found, mark = changes
            self._refresh(session, found.refs | self.dirty)
            for pid in found.persons:
                self.nhs_ids.pop(pid, None)
            self._refresh_pairs(session, found.pairs)
        self.dirty.clear()
        if self.batches % PRUNE_EVERY == 0:
            prune(session)
        self._evict()
        token = object()
        self.pending = (token, mark)

        def committed(_session: Session) -> None:
            if self.pending is not None and self.pending[0] is token:
                self.mark, self.pending = mark, None
        event.listen(session, "after_commit", committed)

    def view(self, session: Session, index: BatchIndex, feats: Sequence[PersonFeatures],
             keys_of: Callable[[PersonFeatures], list[tuple[str, str]]] | None = None) -> int:
        """Fill the batch's index as `repository.load_blocks` would: every stored record in the
        blocks these records are compared within except the records themselves (`placing`),
        every other block's stored size, their persons' NHS numbers (less the placed records'),
        the constraints touching them and the placed records. Returns the records visible."""
        placing = {f.ref for f in feats}
        for ref in placing:
            self.drop(ref)
        chains = key_chains(feats, self.rules, keys_of)
        sizes = self._sizes(session, chains, placing)
        blocks = placing_blocks(chains, sizes, MAX_BLOCK)
        self._ensure(session, blocks, placing)
        index._rows = self.rows
        index.note_stored_sizes(sizes)
        visible: set[str] = set().union(*(self.key_refs[b] for b in blocks)) if blocks else set()
        person, records = self.person, self.records
        person_of, members, person_nhs = index.person_of, index.members, index.person_nhs
        persons = set()
        for ref in visible:
            pid = person_of[ref] = person[ref]
            members[pid].add(ref)
            persons.add(pid)
            nhs = records[ref].nhs
            if nhs:
                person_nhs[pid].add(nhs)
        persons.update(pid for (pid,) in rows_in(session, _IRT, ["person_id"], "ref_key", sorted(placing)))
        self._fetch_nhs(session, persons)
        for pid in persons:
            values = [v for v, record_key in self.nhs_ids[pid] if record_key not in placing]
            if values:
                index.load_person_nhs(pid, values)
        assert self.constraints is not None
        for ref in visible | placing:
            for pair in self.constraints_of.get(ref, ()):
                index.load_constraint(pair[0], pair[1], self.constraints[pair])
        return len(visible)

    def _sizes(self, session: Session, chains: list[list[Block]], placing: set[str]) -> dict[Block, int]:
        """The stored records (less `placing`) in every block of these `key_chains`: for a key
        the slice holds whole, its records in memory (every one of them is here); for the
        others, counted by the database."""
        held = [levels for levels in chains if levels[0] in self.key_refs]
        counted = {levels[0][:2] for levels in chains if levels[0] not in self.key_refs}
        sizes: dict[Block, int] = repo.stored_sizes(session, counted, self.rules, placing)
        blocks = self.blocks
        for levels in held:
            for block in levels:
                n = len(blocks.get(hash(level_key(block)), ()))
                if n:
                    sizes[block] = n
        return sizes

    def drop(self, ref: str) -> None:
        """Out of the slice until the next batch re-reads it."""
        self._drop(ref)
        self.dirty.add(ref)

    # keeping the slice -----------------------------------------------------------------
    def reset(self) -> None:
        """Empty, in place (a batch's index shares these objects)."""
        self.resets += 1
        for d in (self.records, self.row_of, self.blocks, self.person, self.in_keys, self.key_refs, self.nhs_ids,
                  self.constraints_of):
            d.clear()
        self.free.clear()
        self.dirty.clear()
        self.constraints = None
        self.mark = self.pending = None

    def _block_ids(self, f: PersonFeatures) -> list[int]:
        d = self.cache.derived_of(f)
        return d.blocks if d is not None else [hash(k) for k in IncrementalIndex._keys(self, f)]  # type: ignore[arg-type]

    def _put(self, ref: str, f: PersonFeatures, pid: str, keys: set[Block]) -> None:
        self._drop(ref)
        self.records[ref] = f
        row = self.free.pop() if self.free else len(self.row_of)
        if row >= len(self.rows):
            grown = np.zeros((len(self.rows) * 2, WIDTH), dtype=np.int32)
            grown[:len(self.rows)] = self.rows
            self.rows = grown
        self.rows[row] = self.cache.pair_scorer.encoder.row(f)
        self.row_of[ref] = row
        for block_id in self._block_ids(f):
            block = self.blocks.get(block_id)
            if block is None:
                self.blocks[block_id] = [ref]
            else:
                block.append(ref)
        self.person[ref] = pid
        self.in_keys[ref] = keys
        for k in keys:
            self.key_refs[k].add(ref)

    def _drop(self, ref: str) -> None:
        self._drop_many([ref])

    def _read(self, session: Session, found: dict[str, set[Block]]) -> None:
        """Load these records (as stored now), filed under these loaded keys."""
        for ref, pid, stored in rows_in(session, _IRT, ["ref_key", "person_id", "features"], "ref_key",
                                        sorted(found), as_text=("features",)):
            self._put(ref, self.cache.features(ref, stored, self), pid, found[ref])  # type: ignore[arg-type]
            self.loaded += 1

    def _ensure(self, session: Session, blocks: set[Block], placing: set[str]) -> None:
        """Every block in `blocks` loaded whole (the records being placed left out: they are dirty)."""
        missing = [b for b in blocks if b not in self.key_refs]
        new: dict[str, set[Block]] = defaultdict(set)
        for block, refs in repo.block_members(session, missing, self.levels).items():
            self.key_refs[block] = set()
            for ref in refs:
                if ref in placing:
                    continue
                held = self.in_keys.get(ref)
                if held is not None:
                    held.add(block)
                    self.key_refs[block].add(ref)
                else:
                    new[ref].add(block)
        self._read(session, new)
        for b in blocks:
            self.key_refs.move_to_end(b)

    def _refresh(self, session: Session, refs: set[str]) -> None:
        """Re-read these records: those now filed under a loaded key are put back as stored, the
        others dropped. A record the slice holds as the very features object its stored text
        decodes to (the cache's; mostly the records the last batch placed itself) keeps its
        blocks and row, which are those features' already: only its person and keys are set."""
        self.refreshed += len(refs)
        if not self.key_refs:
            for ref in refs:
                self._drop(ref)
            return
        found: dict[str, set[Block]] = defaultdict(set)
        refining = self.refining
        for ref, keys in repo.stored_keys(session, refs).items():
            for rule, key, detail in keys:
                for block in row_blocks(rule, key, detail, refining):
                    if block in self.key_refs:
                        found[ref].add(block)
        for ref in refs:
            if ref not in found:
                self._drop(ref)
        for ref, pid, stored in rows_in(session, _IRT, ["ref_key", "person_id", "features"], "ref_key",
                                        sorted(found), as_text=("features",)):
            f = self.cache.features(ref, stored, self)  # type: ignore[arg-type]
            self.loaded += 1
            if self.records.get(ref) is f and ref in self.row_of:
                self._file(ref, pid, found.pop(ref))
            else:
                self._put(ref, f, pid, found.pop(ref))
        for ref in found:  # filed under a key but no record row (a writer mid-way): as `_read` leaves it
            self._drop(ref)

    def _file(self, ref: str, pid: str, keys: set[Block]) -> None:
        """`_put` for a record whose features, row and blocks are in place: its person and keys."""
        self.person[ref] = pid
        for k in self.in_keys.get(ref, ()):
            refs = self.key_refs.get(k)
            if refs is not None:
                refs.discard(ref)
        self.in_keys[ref] = keys
        for k in keys:
            self.key_refs[k].add(ref)

    def _evict(self) -> None:
        """Whole blocks, least recently used first, until the records fit."""
        gone: list[str] = []
        while len(self.records) - len(gone) > self.max_refs and self.key_refs:
            key, refs = self.key_refs.popitem(last=False)
            self.evicted += 1
            for ref in refs:
                held = self.in_keys.get(ref)
                if held is not None:
                    held.discard(key)
                    if not held:
                        gone.append(ref)
        self._drop_many(gone)

    def _drop_many(self, refs: list[str]) -> None:
        """`_drop` of many records (eviction): each block they leave is filtered once, where a
        `list.remove` per record scans a large block once per record."""
        leaving: dict[int, set[str]] = defaultdict(set)
        for ref in refs:
            f = self.records.pop(ref, None)
            row = self.row_of.pop(ref, None)
            if row is not None:
                self.free.append(row)
            if f is not None:
                for block_id in self._block_ids(f):
                    leaving[block_id].add(ref)
            self.person.pop(ref, None)
            for k in self.in_keys.pop(ref, ()):
                held = self.key_refs.get(k)
                if held is not None:
                    held.discard(ref)
        for block_id, out in leaving.items():
            block = self.blocks.get(block_id)
            if block is not None:
                kept = [r for r in block if r not in out]
                if kept:
                    self.blocks[block_id] = kept
                else:
                    del self.blocks[block_id]

    def _fetch_nhs(self, session: Session, persons: set[str]) -> None:
        if len(self.nhs_ids) > 4 * self.max_refs:
            self.nhs_ids.clear()
        missing = sorted(p for p in persons if p not in self.nhs_ids)
        for pid in missing:
            self.nhs_ids[pid] = []
        # the scheme is checked here: with it in SQL, SQLite searches the (scheme, value) index,
        # i.e. reads every NHS number in the store, instead of these persons' few rows
        for pid, scheme, value, record_key in rows_in(session, _PI.__table__, ["person_id", "scheme", "value",
                                                                               "record_key"], "person_id", missing):
            if scheme == "nhs_number":
                self.nhs_ids[pid].append((value, record_key))

    def _load_constraints(self, session: Session) -> None:
        self.constraints = {}
        self.constraints_of.clear()
        for a, b, same in session.execute(select(_IC.ref_a, _IC.ref_b, _IC.same)):
            self._constraint(a, b, same)

    def _constraint(self, a: str, b: str, same: bool | None) -> None:
        assert self.constraints is not None
        if same is None:
            self.constraints.pop((a, b), None)
            for ref in (a, b):
                self.constraints_of[ref].discard((a, b))
            return
        self.constraints[(a, b)] = bool(same)
        self.constraints_of[a].add((a, b))
        self.constraints_of[b].add((a, b))

    def _refresh_pairs(self, session: Session, pairs: set[tuple[str, str]]) -> None:
        if not pairs:
            return
        if self.constraints is None:
            self._load_constraints(session)
            return
        now: dict[tuple[str, str], bool] = {}
        for part in chunks(sorted({a for a, _b in pairs})):
            for a, b, same in session.execute(select(_IC.ref_a, _IC.ref_b, _IC.same).where(_IC.ref_a.in_(part))):
                if (a, b) in pairs:
                    now[(a, b)] = same
        for a, b in pairs:
            self._constraint(a, b, now.get((a, b)))


def live_slice(cache: SliceCache) -> LiveSlice:
    """The thread's slice (kept on its `SliceCache`, which is one per thread)."""
    live = getattr(cache, "live", None)
    if live is None:
        live = cache.live = LiveSlice(cache)  # type: ignore[attr-defined]
    return live


