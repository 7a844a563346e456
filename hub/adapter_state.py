"""What the hub has committed for one legacy system, as the adapters' `AdapterState`,
and the writes that move it forward in the ingest transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.bulk import insert_rows
from hub.store.engine import Store
from hub.store.tables.ingest import AdapterCursorRow, AdapterRowHashRow


@dataclass
class RowState:
    content_hash: str
    version: int
    record_keys: list[str] = field(default_factory=list)


class StoreAdapterState:
    """Read lazily per run; kept in step with what each committed batch wrote.

    A watermark, delta or REST run touches a few rows: `lookup` reads just those, one query per
    batch of ids, so a small incremental run costs what it touches, not the size of the system
    (freshness at scale). What it read is kept only until the entity's next committed batch, so a
    scan of millions of rows holds one batch of states, never all of them. An entity the store
    held no rows of when the run first asked (an initial load) is not read at all, except for ids
    this run already committed (kept as 64-bit digests: a few bytes a row, not a row state).

    Reads go through `Store.read` (no write lock, nothing to commit): on SQLite a write
    transaction per lookup took the lock from the relay and cost a commit each."""

    LOOKUP_CHUNK = 500

    def __init__(self, store: Store, system: str) -> None:
        self.store, self.system = store, system
        with store.read() as s:
            self._cursors = dict(s.execute(select(AdapterCursorRow.key, AdapterCursorRow.value)
                                           .where(AdapterCursorRow.system == system)).all())
        self._rows: dict[str, dict[str, RowState]] = {}  # entities loaded in full
        self._read: dict[str, dict[str, RowState | None]] = {}  # read since the entity's last commit (None: absent)
        self._held: dict[str, bool] = {}  # whether the store held rows of the entity when first asked
        self._run_ids: dict[str, set[int]] = {}  # entities not held: hash() of each id this run committed
        self._hashes: dict[str, _CommittedHashes] = {}

    def cursor(self, key: str) -> str | None:
        return self._cursors.get(key)

    def row_hashes(self, entity: str) -> Mapping[str, str]:
        """The committed hash of each row, read as the adapter asks: `subset` answers a batch of
        ids in one read, a full scan's iteration loads them all once. One mapping per entity and
        run, so its reads are shared by every file and batch of the run."""
        if entity in self._rows:
            return {sid: r.content_hash for sid, r in self._rows[entity].items()}
        if entity not in self._hashes:
            self._hashes[entity] = _CommittedHashes(self, entity)
        return self._hashes[entity]

    def rows(self, entity: str) -> dict[str, RowState]:
        if entity not in self._rows:
            with self.store.read() as s:
                result = s.execute(self._select(entity))
                self._rows[entity] = {r.source_id: _state(r) for r in result}
            self._read.pop(entity, None)
            self._hashes.pop(entity, None)
        return self._rows[entity]

    def held(self, entity: str) -> bool:
        """Whether the store held rows of `entity` when this run first asked (one indexed read)."""
        if entity not in self._held:
            with self.store.read() as s:
                self._held[entity] = s.execute(select(AdapterRowHashRow.source_id).where(
                    AdapterRowHashRow.system == self.system, AdapterRowHashRow.entity == entity)
                    .limit(1)).first() is not None
        return self._held[entity]

    def holds_any(self, entity: str) -> bool:
        """Whether the store holds rows of `entity` now (no read for an entity untouched so far)."""
        if not self.held(entity) and not self._run_ids.get(entity):
            return False
        with self.store.read() as s:
            return s.execute(select(AdapterRowHashRow.source_id).where(
                AdapterRowHashRow.system == self.system, AdapterRowHashRow.entity == entity)
                .limit(1)).first() is not None

    def lookup(self, entity: str, source_ids: list[str]) -> dict[str, RowState]:
        """The committed states of `source_ids` that exist: one query per chunk of ids not read
        since the entity's last commit; none for ids of an entity the store held nothing of when
        the run began, unless this run committed them."""
        if entity in self._rows:
            full = self._rows[entity]
            return {sid: full[sid] for sid in source_ids if sid in full}
        known = self._read.setdefault(entity, {})
        missing = [sid for sid in dict.fromkeys(source_ids) if sid not in known]
        if missing and not self.held(entity):
            committed = self._run_ids.get(entity, set())
            known.update(dict.fromkeys(sid for sid in missing if hash(sid) not in committed))
            missing = [sid for sid in missing if hash(sid) in committed]
        if missing:
            with self.store.read() as s:
                for i in range(0, len(missing), self.LOOKUP_CHUNK):
                    chunk = missing[i:i + self.LOOKUP_CHUNK]
                    known.update(dict.fromkeys(chunk))
                    for r in s.execute(self._select(entity).where(AdapterRowHashRow.source_id.in_(chunk))):
                        known[r.source_id] = _state(r)
        return {sid: st for sid in source_ids if (st := known.get(sid)) is not None}

    def _select(self, entity: str):
        return (select(AdapterRowHashRow.source_id, AdapterRowHashRow.content_hash, AdapterRowHashRow.version,
                       AdapterRowHashRow.record_keys)
                .where(AdapterRowHashRow.system == self.system, AdapterRowHashRow.entity == entity))

    def save(self, session: Session, entity: str, changes: dict[str, RowState | None],
             cursors: Mapping[str, str]) -> None:
        """Write row states (None: row deleted) and cursors in the caller's transaction."""
        known = self.lookup(entity, list(changes)) if changes else {}
        inserts, updates, deletes = [], [], []
        for source_id, state in changes.items():
            if state is None:
                if source_id in known:
                    deletes.append(source_id)
                continue
            values = dict(system=self.system, entity=entity, source_id=source_id, content_hash=state.content_hash,
                          version=state.version, record_keys=state.record_keys)
            (updates if source_id in known else inserts).append(values)
        if inserts:  # Core executemany (COPY on PostgreSQL): the ORM's bulk path costs more than the INSERT
            insert_rows(session, AdapterRowHashRow.__table__, inserts)
        if updates:
            session.execute(update(AdapterRowHashRow), updates)
        if deletes:
            session.execute(delete(AdapterRowHashRow).where(
                AdapterRowHashRow.system == self.system, AdapterRowHashRow.entity == entity,
                AdapterRowHashRow.source_id.in_(deletes)))
        for key, value in cursors.items():
            if key in self._cursors:
                session.execute(update(AdapterCursorRow).where(AdapterCursorRow.system == self.system,
                                                               AdapterCursorRow.key == key).values(value=value))
            else:
                session.add(AdapterCursorRow(system=self.system, key=key, value=value))

    def committed(self, entity: str, changes: dict[str, RowState | None], cursors: Mapping[str, str]) -> None:
        """Reflect a committed batch in the in-memory view."""
        if entity in self._rows:
            known = self._rows[entity]
            for source_id, state in changes.items():
                if state is None:
                    known.pop(source_id, None)
                else:
                    known[source_id] = state
        else:
            if not self.held(entity):
                self._run_ids.setdefault(entity, set()).update(
                    hash(sid) for sid, state in changes.items() if state is not None)
            self._read.pop(entity, None)  # read again after this commit: the store has the truth
        self._cursors.update(cursors)


class _CommittedHashes(Mapping[str, str]):
    """One entity's committed row hashes. `subset` reads a batch of ids in one query; a single id
    is read by itself until `FULL_AFTER` were asked for, then all at once (so a scan that asks
    row by row costs one query, not one per row). Iterating or sizing loads them all. For an
    entity the store held nothing of when the run began, an id this run did not commit is
    answered without a read."""

    FULL_AFTER = 500

    def __init__(self, state: StoreAdapterState, entity: str) -> None:
        self.state, self.entity = state, entity
        self._asked = 0
        self._all: dict[str, str] | None = None

    def subset(self, source_ids: Collection[str]) -> dict[str, str]:
        """The committed hash of each of `source_ids` that has one."""
        if self._all is not None:
            return {sid: h for sid in source_ids if (h := self._all.get(sid)) is not None}
        return {sid: st.content_hash for sid, st in self.state.lookup(self.entity, list(source_ids)).items()}

    def _load_all(self) -> dict[str, str]:
        if not self.state.held(self.entity):  # what this run committed so far, read as it is now
            return self._read_all() if self.state.holds_any(self.entity) else {}
        if self._all is None:
            self._all = self._read_all()
        return self._all

    def _read_all(self) -> dict[str, str]:
        with self.state.store.read() as s:
            return dict(s.execute(select(AdapterRowHashRow.source_id, AdapterRowHashRow.content_hash).where(
                AdapterRowHashRow.system == self.state.system, AdapterRowHashRow.entity == self.entity)).all())

    def __getitem__(self, source_id: str) -> str:
        if self._all is None and (self._asked < self.FULL_AFTER or not self.state.held(self.entity)):
            self._asked += 1
            found = self.subset([source_id]).get(source_id)
            if found is None:
                raise KeyError(source_id)
            return found
        return self._load_all()[source_id]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._load_all()))

    def __len__(self) -> int:
        return len(self._load_all())

    def __bool__(self) -> bool:
        if self._all is not None:
            return bool(self._all)
        if not self.state.held(self.entity):
            return self.state.holds_any(self.entity)
        return True  # held: the store had rows of the entity when the run first asked


def _state(row) -> RowState:
    return RowState(row.content_hash, row.version, list(row.record_keys or []))
