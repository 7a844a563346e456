"""Ingest: run one legacy system's adapter and announce what changed.

For each batch the adapter yields, translation turns rows into canonical records
(or quarantine entries with every reason), and ONE transaction writes the outbox
messages, the quarantine entries, the row hashes and the batch's cursors, for that
batch and the few before it not yet written (`GROUP_CHANGES`, `GROUP_SECONDS`). A
crash therefore loses nothing and a restart re-announces nothing already committed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapters.port import ExtractBatch, RawChange
from canonical.messages import Envelope, MessageType
from canonical.records import SourceRecord, content_hash
from canonical.version import SCHEMA_VERSION
from hub.adapter_state import RowState, StoreAdapterState
from hub.bus.outbound import Outbound
from hub.outbox import BackgroundRelay, OutboxRelay, add_serialized_to_outbox
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import IngestRunRow
from hub.store.tables.records import QuarantineRow
from hub.systems import SystemRegistry


@dataclass
class RunFigures:
    system: str
    run_id: int = 0
    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    failures: int = 0
    records_announced: int = 0
    messages_published: int = 0  # record batches: up to `records_per_message` records each
    duration_s: float = 0.0
    status: str = "ok"
    error: str | None = None
    by_entity: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "by_entity"}
        d["by_entity"] = dict(self.by_entity)
        return d


class IngestService:
    def __init__(self, store: Store, systems: SystemRegistry, relay: OutboxRelay | None = None, *,
                 records_per_message: int = 200) -> None:
        self.store, self.systems, self.relay = store, systems, relay
        self.records_per_message = records_per_message

    def run(self, system: str, *, trigger: str = "manual") -> RunFigures:
        """Run `system`'s adapter now; figures are recorded on the run row whatever happens."""
        from adapters import build_adapter

        defn = self.systems.get(system)
        figures = RunFigures(system=system)
        started = time.monotonic()
        with self.store.transaction() as s:
            run = IngestRunRow(system=system, trigger=trigger, status="running", figures={})
            s.add(run)
            s.flush()
            figures.run_id = run.id
        try:
            adapter = build_adapter(defn)
            state = StoreAdapterState(self.store, system)
            open_entries = _OpenEntries(self.store, system)
            with BackgroundRelay(self.relay) as relay:
                group = _Group()
                for batch in adapter.extract(state):
                    group.add(self._prepare(defn, state, batch, figures, open_entries, group))
                    if group.full():
                        self._commit(defn, state, group.take())
                        relay.nudge()
                if group.batches:
                    self._commit(defn, state, group.take())
                    relay.nudge()
                relay.finish()
        except Exception as exc:  # recorded on the run and re-raised: a failed run is never silent
            figures.status, figures.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            figures.duration_s = round(time.monotonic() - started, 3)
            with self.store.transaction() as s:
                s.execute(update(IngestRunRow).where(IngestRunRow.id == figures.run_id).values(
                    status=figures.status, finished_at=utcnow(), figures=figures.as_dict(), error=figures.error))
        return figures

    def _prepare(self, defn: Any, state: StoreAdapterState, batch: ExtractBatch, figures: RunFigures,
                 open_entries: _OpenEntries, group: _Group) -> _Staged:
        """Translate a batch and stage what its transaction writes. A row staged by an earlier
        batch of the same `group` (not committed yet) is that batch's version, not the store's."""
        extracted_at = utcnow()
        announced = RecordMessages(defn.name, dt.datetime.now(dt.UTC), self.records_per_message)
        quarantine: list[dict[str, Any]] = []
        row_changes: dict[str, dict[str, RowState | None]] = {}
        settled: list[tuple[str, str, str]] = []  # (entity, source_id, why) whose open quarantine entry is done
        figures.unchanged += batch.unchanged
        figures.seen += batch.unchanged
        previous_of = _previous_states(state, batch.changes, group.states)
        for change in batch.changes:
            figures.seen += 0 if change.deleted else 1
            previous = previous_of.get((change.entity, change.source_id))
            staged = row_changes.setdefault(change.entity, {})
            if change.deleted:
                if previous:
                    figures.deleted += 1
                    announced.delete(previous.record_keys, previous.version + 1)
                    staged[change.source_id] = None
                if open_entries.may_have(change.entity, change.source_id):
                    settled.append((change.entity, change.source_id, "the row was deleted at the source"))
                continue
            version = (previous.version if previous else 0) + 1
            try:
                records = defn.mapping.translate(change, extracted_at=extracted_at, version=version)
            except Exception as exc:
                reasons = list(getattr(exc, "reasons", None) or [str(exc)])
                quarantine.append(_quarantine_row(defn.name, change, reasons, figures.run_id,
                                                  open_entries.may_have(change.entity, change.source_id)))
                open_entries.added(change.entity, change.source_id)
                figures.quarantined += 1
                staged[change.source_id] = RowState(content_hash(dict(change.raw)), version,
                                                    previous.record_keys if previous else [])
                continue
            figures.new += previous is None
            figures.changed += previous is not None
            announced.announce(records, version, previous.record_keys if previous else [])
            digest = records[0].content_hash if records else content_hash(dict(change.raw))  # hashed once
            staged[change.source_id] = RowState(digest, version, [r.ref.key for r in records])
            figures.by_entity.update(r.ref.entity.value for r in records)
            if open_entries.may_have(change.entity, change.source_id):
                settled.append((change.entity, change.source_id,
                                "a corrected version of the row arrived and translated"))
        for failure in batch.failures:
            figures.failures += 1
            quarantine.append({"system": defn.name, "entity": "(unreadable input)", "source_id": None,
                                   "location": failure.location, "raw": {"excerpt": failure.raw_excerpt},
                                   "reasons": list(failure.reasons), "run_id": figures.run_id, "status": "open",
                                   "supersedes": False})
        figures.records_announced += len(announced)
        messages = announced.messages()
        figures.messages_published += len(messages)
        return _Staged(messages, [(settled, quarantine)], row_changes, dict(batch.checkpoint),
                       len(batch.changes) + len(batch.failures))

    def _commit(self, defn: Any, state: StoreAdapterState, staged: _Staged) -> None:
        """One transaction for a group of batches: their messages, quarantine entries, row
        states and cursors (each batch's, in order: the last one's cursor wins)."""
        with self.store.transaction() as s:
            if self.relay is not None:
                self.relay.write(s, staged.messages)  # a bus in the store takes them in this transaction
            else:
                add_serialized_to_outbox(s, staged.messages)
            for settled, quarantine in staged.quarantine:  # batch by batch: a later one may settle an entry
                _settle(s, defn.name, settled)
                _quarantine(s, quarantine)
            entities = set(staged.rows) or {""}
            for i, entity in enumerate(sorted(entities)):
                state.save(s, entity, staged.rows.get(entity, {}), staged.checkpoint if i == 0 else {})
        for i, entity in enumerate(sorted(entities)):
            state.committed(entity, staged.rows.get(entity, {}), staged.checkpoint if i == 0 else {})


GROUP_CHANGES = 5000
"""Rows of several adapter batches written in one ingest transaction. On SQLite a writer waits
for the one write lock; beside a bulk link writing 1,000 person records a transaction, an
ingest committing one 500-row batch per turn got 20,000-50,000 records a minute through at
1,000,000 people (100,000 alone): its translating, done while the lock is elsewhere, now fills
a larger transaction per turn."""
GROUP_SECONDS = 1.0  # nor does a staged batch wait longer than this for the rest of its group


@dataclass
class _Staged:
    """What one transaction writes for a batch, or a group of batches merged in order."""

    messages: list[Any]
    quarantine: list[tuple[list[tuple[str, str, str]], list[dict[str, Any]]]]  # (settled, added) per batch
    rows: dict[str, dict[str, RowState | None]]
    checkpoint: dict[str, str]
    changes: int


class _Group:
    """Batches staged for one transaction (at most `GROUP_CHANGES` rows, or `GROUP_SECONDS`)."""

    def __init__(self) -> None:
        self.batches: list[_Staged] = []
        self.states: dict[tuple[str, str], RowState | None] = {}  # rows staged here: their latest state
        self._changes, self._since = 0, 0.0

    def add(self, staged: _Staged) -> None:
        if not self.batches:
            self._since = time.monotonic()
        self.batches.append(staged)
        self._changes += staged.changes
        for entity, rows in staged.rows.items():
            self.states.update(((entity, sid), st) for sid, st in rows.items())

    def full(self) -> bool:
        return self._changes >= GROUP_CHANGES or time.monotonic() - self._since >= GROUP_SECONDS

    def take(self) -> _Staged:
        merged = _Staged([], [], {}, {}, self._changes)
        for b in self.batches:
            merged.messages += b.messages
            merged.quarantine += b.quarantine
            for entity, rows in b.rows.items():
                merged.rows.setdefault(entity, {}).update(rows)
            merged.checkpoint.update(b.checkpoint)
        self.batches, self.states, self._changes = [], {}, 0
        return merged


class _OpenEntries:
    """Which rows of a system may have an open quarantine entry: any row when the store held open
    entries of the system as the run began, otherwise only the rows this run quarantined. Settling
    and superseding skip the UPDATE of a row that cannot have one (on an initial load, all of them:
    one statement per batch and one per quarantined row saved)."""

    def __init__(self, store: Store, system: str) -> None:
        with store.read() as s:
            self._any_before = s.execute(select(QuarantineRow.id).where(
                QuarantineRow.system == system, QuarantineRow.status == "open").limit(1)).first() is not None
        self._added: set[tuple[str, str]] = set()

    def may_have(self, entity: str, source_id: str) -> bool:
        return self._any_before or (entity, source_id) in self._added

    def added(self, entity: str, source_id: str) -> None:
        self._added.add((entity, source_id))


def _previous_states(state: StoreAdapterState, changes: list[RawChange],
                     staged: dict[tuple[str, str], RowState | None] | None = None,
                     ) -> dict[tuple[str, str], RowState]:
    """The state of each changed row: as an earlier batch not yet committed staged it (`staged`),
    else as committed, read for this batch's other ids only."""
    staged = staged or {}
    by_entity: dict[str, list[str]] = {}
    for change in changes:
        if (change.entity, change.source_id) not in staged:
            by_entity.setdefault(change.entity, []).append(change.source_id)
    out = {(entity, sid): st for entity, ids in by_entity.items() for sid, st in state.lookup(entity, ids).items()}
    out.update((key, st) for c in changes if (key := (c.entity, c.source_id)) in staged and (st := staged[key]))
    return out


def announce(system: str, records: list[SourceRecord], version: int, previous_keys: list[str]) -> list[Envelope]:
    """Upsert messages for `records`, and deletions for records the row no longer produces."""
    # built from a validated record and a loaded system name: nothing left to validate. Every field
    # is given: pydantic's defaults machinery (a signature inspection per default factory) cost
    # more than the rest of the construction
    out = [Envelope.model_construct(message_id=uuid.uuid4(), type=MessageType.RECORD_UPSERTED, source_system=system,
                                    occurred_at=dt.datetime.now(dt.UTC), schema_version=SCHEMA_VERSION,
                                    correlation_id=None, payload=_versioned(r, version)) for r in records]
    current = {r.ref.key for r in records}
    return out + _deletions(system, [k for k in previous_keys if k not in current], version)


class RecordMessages:
    """What an ingest batch announces, as `source.record.batch` messages of at most `per_message`
    items each (upserts, and deletions of the records a row no longer produces, in order): one
    outbox row, one bus message, one journal entry and one inbox row per message instead of per
    record. Each record is serialised in one pydantic pass over the typed record; the envelope
    around the items is rendered by pydantic once per batch, so a body parses as an `Envelope`."""

    _NO_ID = str(uuid.UUID(int=0))

    def __init__(self, system: str, occurred_at: dt.datetime, per_message: int = 200) -> None:
        self.system, self.per_message = system, max(1, per_message)
        template = Envelope.model_construct(
            message_id=uuid.UUID(int=0), type=MessageType.RECORD_BATCH, source_system=system,
            occurred_at=occurred_at, schema_version=SCHEMA_VERSION, correlation_id=None, payload={}).to_json()
        self._start, rest = template.split(self._NO_ID, 1)
        self._middle = rest.removesuffix("{}}")  # ends with '"payload":'
        self._items: list[str] = []
        self._keys: list[str] = []

    def __len__(self) -> int:
        """Records announced so far (upserts and deletions)."""
        return len(self._items)

    def announce(self, records: list[SourceRecord], version: int, previous_keys: list[str]) -> None:
        """Upserts of `records` at `version`, and deletions of the previous keys they no longer cover."""
        for record in records:
            if record.version != version:  # translated at another version (a copy costs ~3 µs a record)
                record = record.model_copy(update={"version": version})
            payload = record.model_dump_json()
            self._items.append(f'{{"record":{payload}}}')
            self._keys.append(record.ref.key)
        current = {r.ref.key for r in records}
        self.delete([k for k in previous_keys if k not in current], version)

    def delete(self, record_keys: list[str], version: int) -> None:
        from canonical.records import SourceRef

        for key in record_keys:
            ref = json.dumps(SourceRef.parse(key).model_dump(mode="json"), separators=(",", ":"))
            self._items.append(f'{{"deleted":{{"ref":{ref},"version":{int(version)}}}}}')
            self._keys.append(key)

    def messages(self) -> list[Outbound]:
        out = []
        for i in range(0, len(self._items), self.per_message):
            message_id = str(uuid.uuid4())
            items = ",".join(self._items[i:i + self.per_message])
            out.append(Outbound(message_id, MessageType.RECORD_BATCH.value, self.system,
                                f'{self._start}{message_id}{self._middle}{{"items":[{items}]}}}}', None, None,
                                tuple(self._keys[i:i + self.per_message])))
        return out


def _versioned(record: SourceRecord, version: int) -> dict[str, Any]:
    """The record as JSON with `version` set: one dump instead of a model copy and a dump."""
    data = record.model_dump(mode="json")
    data["version"] = version
    return data


def _deletions(system: str, record_keys: list[str], version: int) -> list[Envelope]:
    from canonical.records import SourceRef

    return [Envelope(type=MessageType.RECORD_DELETED, source_system=system,
                     payload={"ref": SourceRef.parse(k).model_dump(mode="json"), "version": version})
            for k in record_keys]


def _quarantine_row(system: str, change: RawChange, reasons: list[str], run_id: int,
                    supersedes: bool) -> dict[str, Any]:
    return {"system": system, "entity": change.entity, "source_id": change.source_id, "location": change.location,
                "raw": _jsonable(dict(change.raw or {})), "reasons": reasons, "run_id": run_id, "status": "open",
                "supersedes": supersedes}


def _settle(session: Session, system: str, rows: list[tuple[str, str, str]]) -> None:
    """Resolve the open quarantine entries of rows that now translate (or were deleted at source)."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for entity, source_id, why in rows:
        by_reason.setdefault((entity, why), []).append(source_id)
    for (entity, why), ids in by_reason.items():
        session.execute(update(QuarantineRow).where(
            QuarantineRow.system == system, QuarantineRow.status == "open", QuarantineRow.entity == entity,
            QuarantineRow.source_id.in_(ids)).values(status="resolved", resolved_at=utcnow(), resolution=why))


def _quarantine(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add entries; an older open entry for the same legacy row (`supersedes`: there may be one) is
    superseded by the new one."""
    for entry in rows:
        row = {k: v for k, v in entry.items() if k != "supersedes"}
        if entry["supersedes"] and row["source_id"] is not None:
            session.execute(update(QuarantineRow).where(
                QuarantineRow.system == row["system"], QuarantineRow.entity == row["entity"],
                QuarantineRow.source_id == row["source_id"], QuarantineRow.status == "open").values(
                status="superseded", resolved_at=utcnow(), resolution="a newer version of the row arrived"))
        session.add(QuarantineRow(**row))


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    return {str(k): (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v if isinstance(
        v, (str, int, float, bool, type(None), list, dict)) else str(v)) for k, v in raw.items()}
