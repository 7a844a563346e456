"""What the hub has committed for one legacy system, as the adapters' `AdapterState`,
and the writes that move it forward in the ingest transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.store.engine import Store
from hub.store.tables.ingest import AdapterCursorRow, AdapterRowHashRow


@dataclass
class RowState:
    content_hash: str
    version: int
    record_keys: list[str] = field(default_factory=list)


class StoreAdapterState:
    """Loaded once per run; kept in step with what each committed batch wrote."""

    def __init__(self, store: Store, system: str) -> None:
        self.store, self.system = store, system
        with store.transaction() as s:
            self._cursors = dict(s.execute(select(AdapterCursorRow.key, AdapterCursorRow.value)
                                           .where(AdapterCursorRow.system == system)).all())
        self._rows: dict[str, dict[str, RowState]] = {}

    def cursor(self, key: str) -> str | None:
        return self._cursors.get(key)

    def row_hashes(self, entity: str) -> Mapping[str, str]:
        return {sid: r.content_hash for sid, r in self.rows(entity).items()}

    def rows(self, entity: str) -> dict[str, RowState]:
        if entity not in self._rows:
            with self.store.transaction() as s:
                result = s.execute(select(AdapterRowHashRow.source_id, AdapterRowHashRow.content_hash,
                                          AdapterRowHashRow.version, AdapterRowHashRow.record_keys)
                                   .where(AdapterRowHashRow.system == self.system,
                                          AdapterRowHashRow.entity == entity))
                self._rows[entity] = {r.source_id: RowState(r.content_hash, r.version, list(r.record_keys or []))
                                      for r in result}
        return self._rows[entity]

    def save(self, session: Session, entity: str, changes: dict[str, RowState | None],
             cursors: Mapping[str, str]) -> None:
        """Write row states (None: row deleted) and cursors in the caller's transaction."""
        known = self.rows(entity)
        inserts, updates, deletes = [], [], []
        for source_id, state in changes.items():
            if state is None:
                if source_id in known:
                    deletes.append(source_id)
                continue
            values = dict(system=self.system, entity=entity, source_id=source_id, content_hash=state.content_hash,
                          version=state.version, record_keys=state.record_keys)
            (updates if source_id in known else inserts).append(values)
        if inserts:  # Core executemany: the ORM's bulk path costs more than the INSERT
            session.connection().execute(AdapterRowHashRow.__table__.insert(), inserts)
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
        known = self.rows(entity)
        for source_id, state in changes.items():
            if state is None:
                known.pop(source_id, None)
            else:
                known[source_id] = state
        self._cursors.update(cursors)
