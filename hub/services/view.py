"""The consolidated view's one query layer. Every page, API endpoint and CLI command that shows a
person goes through here: it checks the permission, reads through `hub.services.persons`,
applies the access policy (`hub.access.redaction`) and writes the audit entry. Nothing reads
people around it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from adapters.kinds.spreadsheet import safe_cell
from hub.access.policy import AccessPolicy, Context, Level, default_policy_path, load_policy
from hub.access.redaction import Redactor, bundle_involvements, on_caseload
from hub.audit import AuditEvent, AuditFilter, append, list_entries, record
from hub.services.persons import (
    PersonNotFound,
    SearchPage,
    SearchQuery,
    get_person_bundle,
    load_person_bundle,
    search_persons,
)
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.access import BreakGlassRow, PolicyStateRow

__all__ = ["PersonNotFound", "PolicyDenied", "SearchQuery", "Viewer", "access_policy", "person_view", "search"]


class PolicyDenied(PermissionError):
    """The viewer's roles do not grant what was asked."""


class HubLike(Protocol):
    store: Store
    extras: dict


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as the policy sees them: roles, and what makes a legitimate relationship
    (the worker name and teams that involvements are allocated to)."""

    user_id: int
    username: str
    roles: tuple[str, ...]
    worker_name: str | None = None
    teams: tuple[str, ...] = ()
    client: str | None = None
    channel: str = "web"


def access_policy(hub: HubLike) -> AccessPolicy:
    """The hub's access policy (HUB_ACCESS_POLICY or config/access_policy.toml), loaded once per
    process; a policy that differs from the one last loaded is audited as a policy change."""
    policy = hub.extras.get("access_policy")
    if policy is None:
        path = Path(os.environ.get("HUB_ACCESS_POLICY") or default_policy_path())
        policy = load_policy(path)
        record_policy_state(hub.store, policy)
        hub.extras["access_policy"] = policy
    return policy


def record_policy_state(store: Store, policy: AccessPolicy, actor: str = "system") -> bool:
    """Remember the policy's hash; audit a change. True if the policy differs from the last one."""
    with store.transaction() as s:
        state = s.get(PolicyStateRow, 1, with_for_update=True)
        if state is not None and state.policy_hash == policy.digest:
            return False
        previous = state.policy_hash if state is not None else None
        if state is None:
            s.add(PolicyStateRow(id=1, policy_hash=policy.digest, source=policy.source, loaded_at=utcnow()))
        else:
            state.policy_hash, state.source, state.loaded_at = policy.digest, policy.source, utcnow()
        append(s, AuditEvent(actor, "policy_change", target=policy.source,
                             detail={"previous_hash": previous, "hash": policy.digest, "roles": policy.roles}))
        return True


def _require(hub: HubLike, viewer: Viewer, permission: str, person_id: str | None = None) -> AccessPolicy:
    policy = access_policy(hub)
    if not policy.permits(list(viewer.roles), permission):
        record(hub.store, AuditEvent(viewer.username, "access_denied", outcome="refused", person_id=person_id,
                                     client=viewer.client, detail={"permission": permission,
                                                                   "channel": viewer.channel}))
        raise PolicyDenied(f"your role does not grant {permission!r}")
    return policy


def _hidden_systems(policy: AccessPolicy, viewer: Viewer) -> frozenset[str]:
    clearance = policy.clearance(list(viewer.roles))
    return frozenset(system for system, category in policy.document.systems.items()
                     if clearance.category(category) == Level.NONE)


def search(hub: HubLike, viewer: Viewer, q: SearchQuery) -> SearchPage:
    """Ranked people matching the query. The result never depends on involvements, so it says
    nothing about services the viewer may not know of; one audit entry per search."""
    policy = _require(hub, viewer, "search")
    clearance = policy.clearance(list(viewer.roles))
    q = SearchQuery(**{**asdict(q), "hidden_systems": _hidden_systems(policy, viewer)})
    page = search_persons(hub.store, q)
    show_postcode = min(clearance.field("address"), clearance.field("address_in_care")) >= Level.SUMMARY
    results = [{**h, "postcode": h["postcode"] if show_postcode else None} for h in page.results]
    criteria = {k: v for k, v in (("name", q.name), ("birth_date", q.birth_date), ("identifier", q.identifier),
                                  ("postcode", q.postcode)) if v}
    record(hub.store, AuditEvent(viewer.username, "search", client=viewer.client,
                                 detail={"criteria": criteria, "page": q.page, "results": page.total,
                                         "channel": viewer.channel}))
    return SearchPage(results, page.total, page.page, page.page_size)


def person_view(hub: HubLike, viewer: Viewer, person_id: str, *, purpose: str | None = None,
                today: dt.date | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """One person as this viewer may see them; audited (a missing person is audited too).
    The read, the break-glass look-up and the audit entry share one transaction."""
    policy = _require(hub, viewer, "view", person_id)
    now = now or utcnow()
    try:
        with hub.store.transaction() as s:
            bundle = load_person_bundle(s, person_id)
            relationship = on_caseload(bundle_involvements(bundle), viewer.worker_name, viewer.teams)
            grant = _active_grant(s, viewer.user_id, bundle.id, now)
            clearance = policy.clearance(list(viewer.roles),
                                         Context(relationship=relationship, break_glass=grant is not None))
            view = Redactor(policy, clearance, today or now.date()).person(bundle)
            view["access"]["break_glass_until"] = _iso(grant.expires_at) if grant else None
            view["access"]["may_break_glass"] = policy.permits(list(viewer.roles), "break_glass") and grant is None
            append(s, AuditEvent(viewer.username, "view", person_id=bundle.id, client=viewer.client,
                                 purpose=purpose or (grant.reason if grant else None),
                                 detail={"channel": viewer.channel, "relationship": relationship,
                                         "break_glass": grant.id if grant else None, "requested_id": person_id}))
            return view
    except PersonNotFound:
        record(hub.store, AuditEvent(viewer.username, "view", outcome="not_found", person_id=person_id,
                                     client=viewer.client, purpose=purpose, detail={"channel": viewer.channel}))
        raise


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def active_break_glass(store: Store, user_id: int, person_id: str, now: dt.datetime) -> BreakGlassRow | None:
    with store.transaction() as s:
        return _active_grant(s, user_id, person_id, now)


def _active_grant(s: Any, user_id: int, person_id: str, now: dt.datetime) -> BreakGlassRow | None:
    rows = s.execute(select(BreakGlassRow).where(BreakGlassRow.user_id == user_id,
                                                 BreakGlassRow.person_id == person_id)
                     .order_by(BreakGlassRow.expires_at.desc())).scalars().all()
    for row in rows:
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
        if expires > now:
            return row
    return None


def break_glass(hub: HubLike, viewer: Viewer, person_id: str, reason: str,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Raise the viewer's access to one person for the policy's time limit, with a reason;
    the grant is audited and listed for a data steward's review."""
    policy = _require(hub, viewer, "break_glass", person_id)
    reason = (reason or "").strip()
    if len(reason) < policy.break_glass.min_reason_length:
        raise ValueError(f"give a reason of at least {policy.break_glass.min_reason_length} characters")
    bundle = get_person_bundle(hub.store, person_id)
    now = now or utcnow()
    expires = now + dt.timedelta(minutes=policy.break_glass.minutes)
    with hub.store.transaction() as s:
        row = BreakGlassRow(user_id=viewer.user_id, username=viewer.username, person_id=bundle.id, reason=reason,
                            granted_at=now, expires_at=expires)
        s.add(row)
        s.flush()
        append(s, AuditEvent(viewer.username, "break_glass", outcome="granted", person_id=bundle.id,
                             purpose=reason, client=viewer.client,
                             detail={"grant": row.id, "expires_at": _iso(expires), "channel": viewer.channel}))
        return {"id": row.id, "person_id": bundle.id, "expires_at": _iso(expires), "reason": reason}


def break_glass_reviews(hub: HubLike, viewer: Viewer, *, pending_only: bool = True) -> list[dict[str, Any]]:
    """Break-glass grants for a data steward to review (newest first)."""
    _require(hub, viewer, "audit")
    with hub.store.transaction() as s:
        query = select(BreakGlassRow).order_by(BreakGlassRow.granted_at.desc())
        if pending_only:
            query = query.where(BreakGlassRow.reviewed_at.is_(None))
        return [{"id": r.id, "username": r.username, "person_id": r.person_id, "reason": r.reason,
                 "granted_at": _iso(r.granted_at), "expires_at": _iso(r.expires_at), "reviewed_by": r.reviewed_by,
                 "reviewed_at": _iso(r.reviewed_at) if r.reviewed_at else None, "review_note": r.review_note}
                for r in s.execute(query.limit(500)).scalars()]


def review_break_glass(hub: HubLike, viewer: Viewer, grant_id: int, note: str) -> None:
    _require(hub, viewer, "audit")
    with hub.store.transaction() as s:
        row = s.get(BreakGlassRow, grant_id)
        if row is None:
            raise LookupError(f"no break-glass grant {grant_id}")
        row.reviewed_by, row.reviewed_at, row.review_note = viewer.username, utcnow(), note.strip() or None
        append(s, AuditEvent(viewer.username, "break_glass_review", person_id=row.person_id, client=viewer.client,
                             target=f"break_glass/{grant_id}", purpose=note.strip() or None,
                             detail={"grant": grant_id, "granted_to": row.username}))


def audit_log(hub: HubLike, viewer: Viewer, f: AuditFilter) -> dict[str, Any]:
    """A page of the audit log for a data steward; reading it is itself audited."""
    _require(hub, viewer, "audit", f.person_id)
    page = list_entries(hub.store, f)
    record(hub.store, AuditEvent(viewer.username, "audit_read", person_id=f.person_id, client=viewer.client,
                                 detail={"actor": f.actor, "action": f.action,
                                         "since": f.since.isoformat() if f.since else None,
                                         "until": f.until.isoformat() if f.until else None,
                                         "channel": viewer.channel}))
    return page


def subject_access_export(hub: HubLike, viewer: Viewer, person_id: str, fmt: str = "json") -> str:
    """Everything the hub holds on a person, with provenance, for a subject-access request
    (JSON or CSV: one row per value of every source record). Audited as an export."""
    _require(hub, viewer, "export", person_id)
    bundle = get_person_bundle(hub.store, person_id)
    records = bundle.members + bundle.involvements + [
        {k: v for k, v in r.items() if k not in ("other_key", "other_id", "other_name", "other_birth_date", "kind")}
        for r in bundle.relationships]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["person_id", "system", "entity", "source_id", "observed_at", "adapter", "location",
                         "field", "value"])
        for r in records:
            for name, value in _flatten(r["canonical"]):
                writer.writerow([safe_cell(c) for c in (  # legacy text such as "=HYPERLINK(...)" stays inert
                    bundle.id, r["system"], r["entity"], r["source_id"], r["observed_at"],
                    (r["provenance"] or {}).get("adapter"), (r["provenance"] or {}).get("location"), name, value)])
        body = out.getvalue()
    elif fmt == "json":
        body = json.dumps({"person_id": bundle.id, "name": bundle.name, "golden": bundle.golden,
                           "records": records, "exported_at": _iso(utcnow())}, indent=2, default=str)
    else:
        raise ValueError("format must be json or csv")
    record(hub.store, AuditEvent(viewer.username, "export", person_id=bundle.id, client=viewer.client,
                                 detail={"format": fmt, "records": len(records), "channel": viewer.channel}))
    return body


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(value, list | tuple):
        return [item for i, v in enumerate(value) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, value)]
