"""Correcting a quarantined row in the hub and re-running it.

When the legacy value cannot be fixed at source in time (a system about to be frozen),
a data steward may correct the kept raw row and re-run its translation. The original
values and who changed them are kept on the entry's resolution, and the correction is
audited; the next ingest of a row that changed at source supersedes the entry as usual.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hub.audit import AuditEvent, append
from hub.services.quarantine import QuarantineEntryNotFound, entry, rerun
from hub.store.engine import Store
from hub.store.tables.records import QuarantineRow
from hub.systems import SystemRegistry


class CorrectionRefused(ValueError):
    """The entry is not open, or a correction names a field the raw row does not have."""


def get_entry(store: Store, entry_id: int) -> dict[str, Any]:
    with store.transaction() as s:
        row = s.get(QuarantineRow, entry_id)
        if row is None:
            raise QuarantineEntryNotFound(entry_id)
        return entry(row)


def correct_and_rerun(store: Store, systems: SystemRegistry, entry_id: int,
                      corrections: Mapping[str | tuple[str, ...], Any], who: str) -> dict[str, Any]:
    """Apply `corrections` to the kept raw row, then re-run its translation. A key is a column
    name, or a tuple path into a nested row (("name", "family") for a REST record's name.family).

    Returns the entry afterwards: `resolved` when the corrected row now translates, still
    `open` (with the new reasons) when it does not."""
    changed: dict[str, dict[str, Any]] = {}
    with store.transaction() as s:
        row = s.get(QuarantineRow, entry_id, with_for_update=True)
        if row is None:
            raise QuarantineEntryNotFound(entry_id)
        if row.status != "open":
            raise CorrectionRefused(f"entry {entry_id} is {row.status}, not open")
        raw = copy.deepcopy(dict(row.raw or {}))
        for key, value in corrections.items():
            path = (key,) if isinstance(key, str) else tuple(key)
            parent = _parent(raw, path)
            if parent is None:
                raise CorrectionRefused(f"the raw row has no field {'.'.join(path)}")
            if parent[path[-1]] != value:
                changed[".".join(path)] = {"from": parent[path[-1]], "to": value}
                parent[path[-1]] = value
        row.raw = raw
        if changed:
            append(s, AuditEvent(who, "quarantine_correct", outcome="done", target=f"quarantine/{entry_id}",
                                 detail={"system": row.system, "source_id": row.source_id, "fields": changed}))
    result = rerun(store, systems, entry_id)
    if result["status"] == "resolved" and changed:
        note = "; ".join(f"{k}: {v['from']!r} → {v['to']!r}" for k, v in changed.items())
        with store.transaction() as s:
            row = s.get(QuarantineRow, entry_id)
            row.resolution = f"re-run succeeded after correction by {who} ({note})"
            result = entry(row)
    return result


def _parent(raw: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The dict holding the last step of `path`, or None when the path is not in the row."""
    node: Any = raw
    for step in path[:-1]:
        node = node.get(step) if isinstance(node, dict) else None
    if not path or not isinstance(node, dict) or path[-1] not in node:
        return None
    return node
