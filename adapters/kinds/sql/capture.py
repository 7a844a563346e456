"""Trigger-based change capture for the `sql` kind: claim what the triggers recorded, and say
which rows of each entity those changes affect.

A run's captured changes are claimed with one UPDATE (`claim = n` for every unclaimed row the
run can see), n being one more than the claim the hub last committed (the `capture.claim`
cursor). The run re-reads what they affect and checkpoints `capture.claim = n` with its LAST
batch; only the next run, seeing that cursor committed, deletes the rows claimed up to n. So a
crash anywhere before the hub commits leaves the rows claimed but not consumed, and the next
run reads them again (claim n is reused until it is committed): nothing is lost, and a re-read
row whose content did not change hashes as unchanged.

Claiming instead of reading `seq > cursor` matters on PostgreSQL, where sequence order is not
commit order: a long transaction can commit a lower seq after a higher one was read. A claim
takes exactly the committed rows it sees, whatever their seq.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from adapters.kinds.sql.config import KEY_SEPARATOR, CaptureMatch, SqlCapture, SqlEntity

CLAIM_CURSOR = "capture.claim"
FULL_RUN_CURSOR = "capture.full_run_at"


@dataclass(frozen=True)
class CapturedChange:
    table: str
    op: str  # I, U, D
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None

    def values(self) -> Iterable[Mapping[str, Any]]:
        return [v for v in (self.old, self.new) if v is not None]

    @property
    def may_remove_rows(self) -> bool:
        """A delete, or an update that changed a recorded column (a key, a join or filter column)."""
        return self.op == "D" or (self.op == "U" and self.old != self.new)


@dataclass
class EntityPlan:
    """The rows of one entity a run must re-read: entity column -> values (None stands for NULL),
    the keys to check for deletion, and whether only a key scan can find what was removed."""

    filters: dict[str, set[Any]] = field(default_factory=dict)
    candidates: set[str] = field(default_factory=set)
    key_scan: bool = False

    @property
    def empty(self) -> bool:
        return not self.filters and not self.key_scan


def plan(name: str, ent: SqlEntity, matches: Mapping[str, CaptureMatch],
         changes: Iterable[CapturedChange]) -> EntityPlan:
    """What `changes` mean for entity `name`."""
    out = EntityPlan()
    keys = ent.keys
    for change in changes:
        m = matches.get(change.table)
        if m is None:
            continue
        covers_key = set(keys) <= set(m.match)
        for values in change.values():
            for entity_col, table_col in m.match.items():
                out.filters.setdefault(entity_col, set()).add(values.get(table_col))
            if covers_key:
                key = [values.get(m.match[k]) for k in keys]
                if None not in key:
                    out.candidates.add(KEY_SEPARATOR.join(str(v) for v in key))
        if m.removes_rows and not covers_key and change.may_remove_rows:
            out.key_scan = True
    return out


class CaptureLog:
    """The capture table of one database, as the adapter reads and consumes it."""

    def __init__(self, engine: Engine, capture: SqlCapture) -> None:
        self.engine, self.capture = engine, capture
        self.table = engine.dialect.identifier_preparer.quote(capture.table)

    def claim(self, committed: int) -> int:
        """Delete the rows the hub has consumed (claims up to `committed`) and claim every unclaimed
        row for run `committed + 1`; returns how many rows that run holds."""
        run = committed + 1
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table} WHERE claim <= :c"), {"c": committed})
            conn.execute(text(f"UPDATE {self.table} SET claim = :n WHERE claim IS NULL"), {"n": run})
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {self.table} WHERE claim = :n"),
                                    {"n": run}).scalar_one())

    def claimed(self, run: int) -> list[CapturedChange]:
        """The changes claimed for `run`, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT table_name, op, old_values, new_values FROM {self.table} "
                                     "WHERE claim = :n ORDER BY seq"), {"n": run}).all()
        return [CapturedChange(t, op.strip(), _decode(old), _decode(new)) for t, op, old, new in rows]

    def last_claim(self) -> int:
        """The highest claim in the table (0 when none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COALESCE(MAX(claim), 0) FROM {self.table}")).scalar_one())

    def pending(self) -> int:
        """Rows not consumed yet (claimed or not), for tests and the docs' failure modes."""
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {self.table}")).scalar_one())


def _decode(values: str | None) -> dict[str, Any] | None:
    return None if values is None else json.loads(values)
