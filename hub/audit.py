"""The audit log: every sign-in, search, view, API call, export, break-glass, user change and
policy change, appended as one row that is hash-chained to the row before it.

Each row's `entry_hash` is SHA-256 over the previous row's hash and the row's own content, so
`verify` finds any edited, removed or reordered entry and names it. Appends lock the single
`audit_head` row, so concurrent writers queue instead of forking the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.access import AuditHeadRow, AuditRow

GENESIS = "0" * 64

# Entries appended in the current context (a web request, a CLI command): lets an entry point
# add a generic entry only for calls whose service wrote none.
_appended: ContextVar[int] = ContextVar("audit_appended", default=0)


def appended_in_context() -> int:
    return _appended.get()


def reset_context_count() -> None:
    _appended.set(0)

ACTIONS = (
    "sign_in", "sign_in_failed", "sign_out", "search", "view", "export", "break_glass", "break_glass_review",
    "access_denied", "user_add", "user_remove", "user_roles", "token_create", "token_revoke", "policy_change",
    "audit_read", "api_call",
    # admin console (admin_ui/pages: console, adapters, quarantine)
    "dead_letter_replay", "adapter_run", "adapter_pause", "adapter_resume", "quarantine_rerun",
    "quarantine_correct", "quarantine_accept",
    # lifecycle and write path (hub/lifecycle, hub/writes)
    "phase_change", "hub_write",
)


@dataclass(frozen=True)
class AuditEvent:
    """What happened: who (`actor`), what (`action`, `person_id`, `target`), why (`purpose`),
    from where (`client`: address or channel) and with what `outcome`."""

    actor: str
    action: str
    outcome: str = "ok"
    person_id: str | None = None
    target: str | None = None
    purpose: str | None = None
    client: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


def _ts(at: dt.datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, outcome: str,
               person_id: str | None, target: str | None, purpose: str | None, client: str | None,
               detail: dict[str, Any]) -> str:
    body = json.dumps([prev_hash, seq, _ts(at), actor, action, outcome, person_id, target, purpose, client, detail],
                      sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _row_hash(row: AuditRow, prev_hash: str) -> str:
    return entry_hash(prev_hash, row.seq, row.at, row.actor, row.action, row.outcome, row.person_id, row.target,
                      row.purpose, row.client, row.detail or {})


def append(session: Session, event: AuditEvent, *, at: dt.datetime | None = None) -> AuditRow:
    """Append `event` in the caller's transaction (so the audit commits with the action it records)."""
    head = session.get(AuditHeadRow, 1, with_for_update=True)
    if head is None:
        head = AuditHeadRow(id=1, seq=0, entry_hash=GENESIS)
        session.add(head)
    at = at or utcnow()
    detail = json.loads(json.dumps(event.detail, default=str))
    seq = head.seq + 1
    digest = entry_hash(head.entry_hash, seq, at, event.actor, event.action, event.outcome, event.person_id,
                        event.target, event.purpose, event.client, detail)
    row = AuditRow(seq=seq, at=at, actor=event.actor, action=event.action, outcome=event.outcome,
                   person_id=event.person_id, target=event.target, purpose=event.purpose, client=event.client,
                   detail=detail, prev_hash=head.entry_hash, entry_hash=digest)
    session.add(row)
    head.seq, head.entry_hash = seq, digest
    session.flush()
    _appended.set(_appended.get() + 1)
    return row


def record(store: Store, event: AuditEvent) -> None:
    """Append `event` in a transaction of its own (for actions that change nothing else)."""
    with store.transaction() as s:
        append(s, event)


def verify(store: Store, batch: int = 5000) -> VerifyReport:
    """Walk the chain from the first entry; report the first entry that was edited, removed or moved."""
    prev, expected, checked = GENESIS, 1, 0
    with store.transaction() as s:
        head = s.get(AuditHeadRow, 1)
        last_seq = 0
        while True:
            rows = s.execute(select(AuditRow).where(AuditRow.seq > last_seq).order_by(AuditRow.seq)
                             .limit(batch)).scalars().all()
            if not rows:
                break
            for row in rows:
                if row.seq != expected:
                    return VerifyReport(False, checked, f"entry {expected} is missing (next entry is {row.seq}): "
                                        "removed", expected)
                if row.prev_hash != prev:
                    return VerifyReport(False, checked, f"entry {row.seq} ({row.action} by {row.actor}) does not "
                                        "follow the entry before it: removed or reordered", row.seq)
                if _row_hash(row, prev) != row.entry_hash:
                    return VerifyReport(False, checked, f"entry {row.seq} ({row.action} by {row.actor}) does not "
                                        "match its hash: edited", row.seq)
                prev, expected, checked, last_seq = row.entry_hash, expected + 1, checked + 1, row.seq
        if head is not None and (head.seq != checked or head.entry_hash != prev):
            return VerifyReport(False, checked, f"the log ends at entry {checked} but the chain head says "
                                f"{head.seq}: entries after {checked} were removed", checked + 1)
    return VerifyReport(True, checked)


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    person_id: str | None = None
    action: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    page: int = 1
    page_size: int = 50


def list_entries(store: Store, f: AuditFilter) -> dict[str, Any]:
    """A page of entries, newest first, matching the filter."""
    conditions = []
    if f.actor:
        conditions.append(AuditRow.actor == f.actor)
    if f.person_id:
        conditions.append(AuditRow.person_id == f.person_id)
    if f.action:
        conditions.append(AuditRow.action == f.action)
    if f.since:
        conditions.append(AuditRow.at >= dt.datetime.combine(f.since, dt.time(), dt.UTC))
    if f.until:
        conditions.append(AuditRow.at < dt.datetime.combine(f.until + dt.timedelta(days=1), dt.time(),
                                                            dt.UTC))
    with store.transaction() as s:
        total = s.execute(select(func.count()).select_from(AuditRow).where(*conditions)).scalar_one()
        rows = s.execute(select(AuditRow).where(*conditions).order_by(AuditRow.seq.desc())
                         .offset((f.page - 1) * f.page_size).limit(f.page_size)).scalars().all()
        return {"total": total, "page": f.page, "page_size": f.page_size, "entries": [_entry(r) for r in rows]}


def _entry(row: AuditRow) -> dict[str, Any]:
    return {"seq": row.seq, "at": _ts(row.at) + "Z", "actor": row.actor, "action": row.action,
            "outcome": row.outcome, "person_id": row.person_id, "target": row.target, "purpose": row.purpose,
            "client": row.client, "detail": row.detail}
