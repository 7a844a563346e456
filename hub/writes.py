"""The write path of the front-end business applications.

A change is sent where the system-of-record matrix says it belongs:

* to a legacy system that owns it (phase `connected`): routed to the system through
  its adapter's `apply` (a `route.apply` message on the routing queue); the person
  changes in the hub only when the change comes back through the normal mirror.
  Answer: 202 with the write's id, whose status can be followed.
* to the hub (from `hub_primary` on): written to the hub's own record now (a source
  record of system `hub`, which survivorship prefers over the mirrors it supersedes)
  and propagated to the systems still subscribed (`hub_primary`). Answer: 201/200.

Every change names the version it was made against; another change in between is
a conflict (409), never silently overwritten. An `Idempotency-Key` makes a retried
request return the first answer instead of writing twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.port import WriteBack
from canonical.involvement import Involvement
from canonical.person import Person
from canonical.records import content_hash
from hub.audit import AuditEvent, append
from hub.lifecycle import LifecycleService, load_phases, system_of_record
from hub.outbox import OutboxRelay, add_to_outbox
from hub.persons import new_person_id, refresh_person, resolve
from hub.routing_worker import apply_envelope, legacy_row_of, record_delivery
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import AdapterRowHashRow
from hub.store.tables.lifecycle import HubWriteRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from hub.systems import UnknownSystem
from routing.fields import (
    UnknownPath,
    apply_person_paths,
    flatten_involvement,
    flatten_person,
    group_of,
    present,
)
from routing.lifecycle import Phase

HUB = "hub"


class WriteError(Exception):
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "detail": str(self), **self.extra}


class WriteConflict(WriteError):
    """Another change was made in between, or one is still being applied."""

    status = 409


class WriteTargetNotFound(WriteError):
    status = 404


class WriteRefused(WriteError):
    """The write cannot be made as asked (a read-only system, an unknown field)."""

    status = 422


class IdempotencyKeyReused(WriteError):
    status = 422


@dataclass
class WriteOutcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class _Plan:
    mode: str
    status: int
    body: dict[str, Any]
    person_id: str | None = None
    deliveries: list[tuple[str, WriteBack, str]] = field(default_factory=list)  # (system, change, kind)


class WriteService:
    def __init__(self, store: Store, lifecycle: LifecycleService, relay: OutboxRelay | None = None) -> None:
        self.store, self.lifecycle, self.relay = store, lifecycle, relay

    # -- the four writes ---------------------------------------------------------------
    def create_person(self, body: dict[str, Any], *, idempotency_key: str | None = None,
                      who: str = "api") -> WriteOutcome:
        return self._execute("create_person", body, idempotency_key, who,
                             lambda s, wid: self._create_person(s, wid, body, who))

    def update_person(self, person_id: str, body: dict[str, Any], *, idempotency_key: str | None = None,
                      who: str = "api") -> WriteOutcome:
        return self._execute("update_person", {"person_id": person_id, **body}, idempotency_key, who,
                             lambda s, wid: self._update_person(s, wid, person_id, body, who))

    def open_involvement(self, body: dict[str, Any], *, idempotency_key: str | None = None,
                         who: str = "api") -> WriteOutcome:
        return self._execute("open_involvement", body, idempotency_key, who,
                             lambda s, wid: self._open_involvement(s, wid, body, who))

    def close_involvement(self, ref: str, body: dict[str, Any], *, idempotency_key: str | None = None,
                          who: str = "api") -> WriteOutcome:
        return self._execute("close_involvement", {"ref": ref, **body}, idempotency_key, who,
                             lambda s, wid: self._close_involvement(s, wid, ref, body, who))

    def get(self, write_id: str) -> dict[str, Any]:
        with self.store.transaction() as s:
            row = s.get(HubWriteRow, write_id)
            if row is None:
                raise WriteTargetNotFound(f"no write {write_id}")
            return {"write_id": row.id, "operation": row.operation, "mode": row.mode, "status": row.status,
                    "person_id": row.person_id, "created_at": row.created_at.isoformat(), **(row.response or {})}

    # -- idempotency and the unit of work -------------------------------------------------
    def _execute(self, operation: str, request: dict[str, Any], key: str | None, who: str,
                 plan: Callable[[Session, str], _Plan]) -> WriteOutcome:
        fingerprint = hashlib.sha256(json.dumps([operation, request], sort_keys=True, default=str).encode()).hexdigest()
        if key:
            earlier = self._earlier(key, fingerprint)
            if earlier:
                return earlier
        write_id = "W" + uuid.uuid4().hex[:16].upper()
        try:
            with self.store.transaction() as s:
                p = plan(s, write_id)
                envelopes = []
                for system, change, kind in p.deliveries:
                    env = apply_envelope(system, change, kind=kind, write_id=write_id,
                                         canonical_entity="person" if operation.endswith("person") else "involvement")
                    record_delivery(s, env)
                    envelopes.append(env)
                deliveries = [{"system": sysname, "kind": kind, "operation": c.operation, "status": "pending"}
                              for sysname, c, kind in p.deliveries]
                status = "pending" if p.mode in ("legacy", "mixed") else ("written" if not p.deliveries else "propagating")
                body = {"write_id": write_id, "mode": p.mode, "status": status, **p.body, "deliveries": deliveries}
                s.flush()
                s.add(HubWriteRow(id=write_id, idempotency_key=key, fingerprint=fingerprint, operation=operation,
                                  person_id=p.person_id, mode=p.mode, status=status, request=request,
                                  response_status=p.status, response=body, who=who))
                append(s, AuditEvent(who, "hub_write", person_id=p.person_id, target=write_id,
                                     detail={"operation": operation, "mode": p.mode,
                                             "systems": sorted({d[0] for d in p.deliveries})}))
                add_to_outbox(s, envelopes)
        except IntegrityError:
            if key and (earlier := self._earlier(key, fingerprint)):  # the same key, concurrently
                return earlier
            raise
        if self.relay is not None:
            self.relay.relay_all()
        return WriteOutcome(p.status, body)

    def _earlier(self, key: str, fingerprint: str) -> WriteOutcome | None:
        with self.store.transaction() as s:
            row = s.execute(select(HubWriteRow).where(HubWriteRow.idempotency_key == key)).scalar_one_or_none()
            if row is None:
                return None
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different request "
                                           f"(write {row.id})")
            return WriteOutcome(row.response_status, {**row.response, "status": row.status}, replayed=True)

    # -- persons ---------------------------------------------------------------------------
    def _create_person(self, s: Session, write_id: str, body: dict[str, Any], who: str) -> _Plan:
        person = _valid(Person, body.get("person"), "person")
        system = body.get("system")
        phase = self._phase_for_write(s, system) if system else None
        flat = present(flatten_person(person.model_dump(mode="json")))
        if phase is Phase.CONNECTED:
            block = _block_of(s, system, "person")
            return _Plan("legacy", 202, {"system": system}, None,
                         [(system, WriteBack(entity=block, operation="create", source_id=None, values=flat), "write")])
        person_id = new_person_id()
        _hub_record(s, "person", person_id, person, write_id, who, person_id=person_id)
        s.flush()
        row = refresh_person(s, person_id)
        deliveries = []
        if phase is Phase.HUB_PRIMARY:
            deliveries.append((system, WriteBack(entity=_block_of(s, system, "person"), operation="create",
                                                 source_id=None, values=flat), "propagate"))
        return _Plan("hub", 201, {"person_id": person_id, "version": row.version if row else 1}, person_id, deliveries)

    def _update_person(self, s: Session, write_id: str, person_id: str, body: dict[str, Any], who: str) -> _Plan:
        changes = body.get("changes") or {}
        if not changes:
            raise WriteRefused("no changes given")
        pid = resolve(s, person_id)
        person = s.get(PersonRow, pid, with_for_update=self.store.dialect == "postgresql")
        if person is None:
            raise WriteTargetNotFound(f"no person {person_id}")
        _check_version(body, person.version, f"person {pid}")
        _no_write_in_flight(s, pid, version=person.version)
        members = s.execute(select(SourceRecordRow).where(
            SourceRecordRow.person_id == pid, SourceRecordRow.entity == "person",
            SourceRecordRow.deleted.is_(False))).scalars().all()
        sor = system_of_record(s)
        phases = load_phases(s)
        deliveries: list[tuple[str, WriteBack, str]] = []
        hub_paths: dict[str, Any] = {}
        for m in members:
            if m.system == HUB:
                continue
            owned = {p: v for p, v in changes.items() if sor.owner(m.system, "person", group_of(p)) == m.system}
            others = {p: v for p, v in changes.items() if p not in owned}
            block, legacy_id = legacy_row_of(s, m)
            if owned:
                deliveries.append((m.system, WriteBack(entity=block, operation="update", source_id=legacy_id,
                                                       values=owned), "write"))
            hub_paths.update(others)
            if others and phases.get(m.system, Phase.CONNECTED).subscribed:
                deliveries.append((m.system, WriteBack(entity=block, operation="update", source_id=legacy_id,
                                                       values=others), "propagate"))
        if not members or all(m.system == HUB for m in members):
            hub_paths = dict(changes)
        version = person.version
        if hub_paths:
            current = s.execute(select(SourceRecordRow).where(
                SourceRecordRow.ref_key == f"{HUB}/person/{pid}")).scalar_one_or_none()
            base = current.canonical if current is not None else _person_from_golden(person.golden)
            try:
                updated = _valid(Person, apply_person_paths(base, hub_paths), "changes")
            except UnknownPath as exc:
                raise WriteRefused(str(exc)) from exc
            _hub_record(s, "person", pid, updated, write_id, who, person_id=pid, row=current)
            s.flush()
            version = refresh_person(s, pid).version
        else:
            try:
                apply_person_paths(_person_from_golden(person.golden), changes)
            except UnknownPath as exc:
                raise WriteRefused(str(exc)) from exc
        legacy = any(kind == "write" for _, _, kind in deliveries)
        mode = "hub" if not legacy else ("legacy" if not hub_paths else "mixed")
        status = 202 if legacy else 200
        return _Plan(mode, status, {"person_id": pid, "version": version, "written_to_hub": sorted(hub_paths)},
                     pid, deliveries)

    # -- involvements ----------------------------------------------------------------------
    def _open_involvement(self, s: Session, write_id: str, body: dict[str, Any], who: str) -> _Plan:
        pid = resolve(s, str(body.get("person_id") or ""))
        if s.get(PersonRow, pid) is None:
            raise WriteTargetNotFound(f"no person {body.get('person_id')}")
        system = body.get("system")
        phase = self._phase_for_write(s, system) if system else None
        members = s.execute(select(SourceRecordRow).where(
            SourceRecordRow.person_id == pid, SourceRecordRow.entity == "person",
            SourceRecordRow.deleted.is_(False)).order_by(SourceRecordRow.system)).scalars().all()
        in_system = [m for m in members if m.system == system]
        subject = (in_system or [m for m in members if m.system == HUB] or list(members) or [None])[0]
        if subject is None:
            raise WriteRefused(f"person {pid} has no record to attach an involvement to")
        data = {**(body.get("involvement") or {}), "subject": {"system": subject.system, "entity": "person",
                                                               "source_id": subject.source_id}}
        involvement = _valid(Involvement, data, "involvement")
        if phase is Phase.CONNECTED and system_of_record(s).owner(system, "involvement", "status") == system:
            if not in_system:
                raise WriteRefused(f"person {pid} has no record in {system} to open an involvement on")
            _, legacy_person = legacy_row_of(s, in_system[0])
            flat = present(flatten_involvement(involvement.model_dump(mode="json")))
            values = {**flat, "subject": legacy_person}
            return _Plan("legacy", 202, {"person_id": pid, "system": system}, pid, [
                (system, WriteBack(entity=_block_of(s, system, "involvement"), operation="create", source_id=None,
                                   values=values), "write")])
        source_id = "I" + uuid.uuid4().hex[:12].upper()
        _hub_record(s, "involvement", source_id, involvement, write_id, who, subject_key=subject.ref_key)
        deliveries = []
        if phase is Phase.HUB_PRIMARY and in_system:
            _, legacy_person = legacy_row_of(s, in_system[0])
            flat = present(flatten_involvement(involvement.model_dump(mode="json")))
            deliveries.append((system, WriteBack(entity=_block_of(s, system, "involvement"), operation="create",
                                                 source_id=None, values={**flat, "subject": legacy_person}),
                               "propagate"))
        return _Plan("hub", 201, {"person_id": pid, "ref": f"{HUB}/involvement/{source_id}", "version": 1}, pid,
                     deliveries)

    def _close_involvement(self, s: Session, write_id: str, ref: str, body: dict[str, Any], who: str) -> _Plan:
        query = select(SourceRecordRow).where(SourceRecordRow.ref_key == ref, SourceRecordRow.entity == "involvement")
        if self.store.dialect == "postgresql":
            query = query.with_for_update()
        row = s.execute(query).scalar_one_or_none()
        if row is None or row.deleted:
            raise WriteTargetNotFound(f"no involvement {ref}")
        _check_version(body, row.version, f"involvement {ref}")
        person_id = s.execute(select(SourceRecordRow.person_id).where(
            SourceRecordRow.ref_key == row.subject_key)).scalar()
        _no_write_in_flight(s, person_id, ref=ref)
        ended_on = body.get("ended_on") or utcnow().date().isoformat()
        closed = _valid(Involvement, {**row.canonical, "ended_on": ended_on, "status": "closed"}, "ended_on")
        values = {"ended_on": ended_on, "status": "closed"}
        if row.system != HUB and system_of_record(s).owner(row.system, "involvement", "ended_on") == row.system:
            block, legacy_id = legacy_row_of(s, row)
            return _Plan("legacy", 202, {"ref": ref, "person_id": person_id}, person_id, [
                (row.system, WriteBack(entity=block, operation="close", source_id=legacy_id, values=values), "write")])
        row.canonical = closed.model_dump(mode="json")
        row.version += 1
        row.observed_at = utcnow()
        row.provenance = {**(row.provenance or {}), "closed_by": {"adapter": HUB, "write_id": write_id, "who": who}}
        deliveries = []
        if row.system != HUB and load_phases(s).get(row.system, Phase.CONNECTED).subscribed:
            block, legacy_id = legacy_row_of(s, row)
            deliveries.append((row.system, WriteBack(entity=block, operation="close", source_id=legacy_id,
                                                     values=values), "propagate"))
        return _Plan("hub", 200, {"ref": ref, "person_id": person_id, "version": row.version}, person_id, deliveries)

    def _phase_for_write(self, s: Session, system: str) -> Phase:
        phases = load_phases(s)
        if system not in phases:
            try:
                self.lifecycle.systems.get(system)
            except UnknownSystem as exc:
                raise WriteRefused(f"unknown system {system!r}") from exc
        phase = phases.get(system, Phase.CONNECTED)
        if phase in (Phase.READ_ONLY, Phase.DECOMMISSIONED):
            raise WriteRefused(f"{system} is {phase.value}: it takes no writes; write without `system` to "
                               "record the change in the hub")
        return phase


def _valid(model: type, data: Any, where: str) -> Any:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        reasons = [f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise WriteError("; ".join(reasons), reasons=reasons) from exc


def _check_version(body: dict[str, Any], current: int, what: str) -> None:
    expected = body.get("version")
    if expected is None:
        raise WriteError(f"the version the change was made against is required (read {what} first)")
    if int(expected) != current:
        raise WriteConflict(f"{what} is at version {current}; the change was made against version {expected}. "
                            "Someone else changed it meanwhile: re-read it and apply your change again.",
                            current_version=current, expected_version=int(expected))


def _no_write_in_flight(s: Session, person_id: str | None, ref: str | None = None,
                        version: int | None = None) -> None:
    """Refuse while a change routed to a legacy system of record is pending or failing, or was
    applied against this same version and has not come back through the mirror yet."""
    if not person_id:
        return
    routed = s.execute(select(HubWriteRow).where(
        HubWriteRow.person_id == person_id, HubWriteRow.status.in_(("pending", "failing", "applied")),
        HubWriteRow.mode != "hub")).scalars().all()
    for w in routed:
        if w.status in ("pending", "failing"):
            raise WriteConflict(f"write {w.id} to this person is still being applied to its system of record "
                                f"({w.status}); wait for it to come back through the mirror, then retry",
                                pending_write=w.id)
        if version is not None and w.operation == "update_person" and str(w.request.get("version")) == str(version):
            raise WriteConflict(f"write {w.id} was made against version {version} too; the legacy system has "
                                "applied it and it is on its way back through the mirror: re-read the person "
                                "after the next ingest and apply your change again", pending_write=w.id)


def _hub_record(s: Session, entity: str, source_id: str, model: Any, write_id: str, who: str, *,
                person_id: str | None = None, subject_key: str | None = None,
                row: SourceRecordRow | None = None) -> SourceRecordRow:
    canonical = model.model_dump(mode="json")
    raw = {"write_id": write_id, "written_by": who, "canonical": canonical}
    now = utcnow()
    if row is None:
        row = SourceRecordRow(ref_key=f"{HUB}/{entity}/{source_id}", system=HUB, entity=entity, source_id=source_id,
                              version=0, person_id=person_id, subject_key=subject_key)
        s.add(row)
    row.version = (row.version or 0) + 1
    row.content_hash = content_hash(raw)
    row.observed_at = now
    row.raw = raw
    row.canonical = canonical
    row.provenance = {"adapter": HUB, "location": f"hub write {write_id} by {who}", "mapping_version": None,
                      "extracted_at": now.isoformat()}
    row.deleted = False
    return row


def _person_from_golden(golden: dict[str, Any]) -> dict[str, Any]:
    values = (golden or {}).get("values", {})
    out: dict[str, Any] = {"names": [values["name"]] if values.get("name") else []}
    for key in ("birth_date", "sex", "ethnicity", "first_language"):
        if values.get(key) is not None:
            out[key] = values[key]
    if values.get("address"):
        out["addresses"] = [values["address"]]
    out["identifiers"] = [{k: v for k, v in i.items() if k in ("scheme", "value", "issuer")}
                          for i in values.get("identifiers", [])]
    return out


def _block_of(s: Session, system: str, canonical_entity: str) -> str:
    """The mapping entity block of `system` whose rows produce records of `canonical_entity`."""
    for block in s.execute(select(AdapterRowHashRow.entity).where(AdapterRowHashRow.system == system)
                           .distinct()).scalars():
        keys = s.execute(select(AdapterRowHashRow.record_keys).where(
            AdapterRowHashRow.system == system, AdapterRowHashRow.entity == block).limit(1)).scalar() or []
        if any(k.split("/")[1] == canonical_entity for k in keys):
            return block
    return canonical_entity

