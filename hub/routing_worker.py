"""The routing worker: consumes the `routing` queue.

* `route.changed.batch` (published by the records worker, one per system and transaction,
  for the mirrored persons and involvements that changed; `route.changed`, one change, is
  handled the same way): evaluates the routing rules (deliveries to other systems, sent on
  as `route.apply`) and the alert rules (alerts stored and published as `alert.raised`). An
  invalid item of a batch is journalled with its reason; the others are handled.
* `route.apply`: calls the target system's adapter `apply` with the `WriteBack` it
  carries (a write made through the hub, a propagation, or a routed change). A refusal
  is recorded; an adapter that raises (system down) makes the bus retry with back-off
  and, after the last attempt, dead-letter the message: the delivery stays `failing`
  and visible, never lost.

Every message is journalled (`processed`, with what became of it; a batch, with what became
of each change that came to something). `identity.*` messages are journalled only.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapters.port import WriteBack
from canonical.messages import EVENTS_PER_MESSAGE, Envelope, MessageType, batch_envelopes
from hub.bus.bindings import ROUTING_QUEUE
from hub.bus.journal import Journal, JournalEvent, NullJournal
from hub.bus.port import Bus
from hub.inbox import claim_unseen
from hub.outbox import add_to_outbox
from hub.reconcile import AdapterFactory, default_adapter_factory
from hub.routing_batch import (
    BadChange,
    ChangeItem,
    RaisedAlerts,
    change_items,
    facts_of,
    households,
    insert_alerts,
    involvements,
    persons_of_keys,
    raised_alerts,
    source_rows,
)
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import AdapterRowHashRow
from hub.store.tables.lifecycle import AlertRow, DeliveryRow, HubWriteRow, SystemPhaseRow
from hub.store.tables.records import SourceRecordRow
from hub.systems import SystemRegistry
from routing.alerts import AlertDecision, evaluate_household
from routing.fields import changed_paths, flatten, group_of, writeback_paths
from routing.lifecycle import Phase
from routing.rules import AlertRule, Change, RoutingConfig, deliveries

CONSUMER = "routing-worker"
NOTHING_APPLIES = "no route or alert applies"
RELAY_EVERY_S = 1.0
ROUTED_ENTITIES = ("person", "involvement")
CHANGES_PER_TRANSACTION = 1000  # changes evaluated per read and write transaction (a message is never split)


# -- the records worker's side: announce what changed, in its transaction ---------------------
def note_change(session: Session, row: Any, before: dict[str, Any] | None) -> None:
    """Remember that a mirrored record changed (called by the records worker before it commits).
    `row` needs ref_key, system, entity, source_id, version and canonical."""
    if row.entity in ROUTED_ENTITIES and row.system != "hub" and before != row.canonical:
        session.info.setdefault("route_changes", []).append((row.ref_key, row.system, row.entity, row.source_id,
                                                            row.version, before, row.canonical))


def publish_changes(session: Session, config: RoutingConfig | None = None, *,
                    per_message: int = EVENTS_PER_MESSAGE) -> int:
    """Announce, in the outbox of this transaction, each noted change that a route or alert of
    `config` can act on (every change when no config is given): one `route.changed.batch` per
    source system of up to `per_message` changes, each item a `route.changed` payload. Returns
    how many changes were announced."""
    by_system = noted_changes(session, config)
    announce_changes(session, by_system, per_message=per_message)
    return sum(len(items) for items in by_system.values())


def noted_changes(session: Session, config: RoutingConfig | None = None) -> dict[str, list[dict[str, Any]]]:
    """The `route.changed` payloads of the changes noted in this transaction that a route or alert
    of `config` can act on, by source system (the noted changes are taken)."""
    noted = session.info.pop("route_changes", [])
    by_system: dict[str, list[dict[str, Any]]] = {}
    for _ref_key, system, entity, source_id, version, before, after in noted:
        changed = changed_paths(entity, before, after) if before is not None else {}  # new: all of it
        if before is not None and not changed:
            continue
        if config is not None and not acts_on(config, system, entity, before is None, changed, after):
            continue
        by_system.setdefault(system, []).append({
            "ref": {"system": system, "entity": entity, "source_id": source_id}, "version": version,
            "created": before is None, "changed": changed})
    return by_system


def announce_changes(session: Session, by_system: dict[str, list[dict[str, Any]]], *,
                     per_message: int = EVENTS_PER_MESSAGE) -> None:
    """`route.changed.batch` messages of these payloads, in the outbox of this transaction."""
    add_to_outbox(session, [env for system, items in by_system.items()
                            for env in batch_envelopes(MessageType.ROUTE_CHANGED_BATCH, system, items,
                                                       per_message=per_message)])


def acts_on(config: RoutingConfig, system: str, entity: str, created: bool, changed: dict[str, Any],
            after: dict[str, Any] | None) -> bool:
    """Whether the routing worker would do anything with this change: a route whose `when` it
    matches, or an alert rule it can trigger (a new or changed involvement, a person who moved).
    Mirrors `RoutingWorker._route` and `_alerts`, so the initial load is not announced twice."""
    if config.alert and (entity == "involvement" or (
            entity == "person" and not created and "address" in {group_of(p) for p in changed})):
        return True
    routes = [r for r in config.route if r.when.entity == entity and (not created or r.when.include_new)
              and ("*" in r.when.source_system or system in r.when.source_system)]
    if not routes:
        return False
    current = flatten(entity, after)
    effective = {p: v for p, v in current.items() if v is not None} if created else changed
    change = Change(system=system, entity=entity, source_id="", changed=effective, current=current, created=created)
    return bool(deliveries(config.model_copy(update={"route": routes}), change))


def apply_envelope(system: str, writeback: WriteBack, *, kind: str, canonical_entity: str,
                   write_id: str | None = None, route: str | None = None,
                   correlation_id: uuid.UUID | None = None) -> Envelope:
    """A `route.apply` message; flat values become the paths the mapping files' `write.columns` name."""
    values = writeback_paths(canonical_entity, dict(writeback.values))
    return Envelope(type=MessageType.ROUTE_APPLY, source_system=system, correlation_id=correlation_id, payload={
        "target": system, "kind": kind, "write_id": write_id, "route": route,
        "writeback": {"entity": writeback.entity, "operation": writeback.operation,
                      "source_id": writeback.source_id, "values": values,
                      "expected_version": writeback.expected_version}})


def delivery_values(env: Envelope) -> dict[str, Any]:
    """The `routing_delivery` row of a `route.apply` message, pending."""
    p = env.payload
    wb = p["writeback"]
    return {"message_id": str(env.message_id), "kind": p["kind"], "write_id": p.get("write_id"),
            "route": p.get("route"), "system": p["target"], "entity": wb["entity"], "operation": wb["operation"],
            "source_id": wb.get("source_id"), "status": "pending"}


def record_delivery(session: Session, env: Envelope) -> None:
    session.add(DeliveryRow(**delivery_values(env)))


# -- the routing worker ----------------------------------------------------------------------
@dataclass
class _Plan:
    """What evaluating one change decided, written if its message's inbox claim holds: route
    notes, `route.apply` messages, and each alert rule's decision (by rule index)."""

    notes: list[str] = field(default_factory=list)
    out: list[Envelope] = field(default_factory=list)
    alerts: list[tuple[int, AlertDecision | None]] = field(default_factory=list)


@dataclass
class _Message:
    """A message of the batch with its changes (none for a type routing does not handle) and the
    invalid items of a `route.changed.batch`."""

    env: Envelope
    changes: list[ChangeItem]
    bad: list[BadChange]

    @property
    def size(self) -> int:
        return max(1, len(self.changes) + len(self.bad))


def _may_alert(change: ChangeItem, row: Any) -> bool:
    """Only a new or changed involvement or a move can change what a household's services are."""
    changed = {group_of(p) for p in change.changed}
    return not (row.entity == "person" and (change.created or "address" not in changed))


def _window_start(rule: AlertRule, today: dt.date) -> dt.date:
    return today - dt.timedelta(days=rule.window_days)


def _alert_envelope(cause: Envelope, decision: AlertDecision) -> Envelope:
    return Envelope(type=MessageType.ALERT_RAISED, source_system="hub", correlation_id=cause.message_id,
                    payload={"rule": decision.rule, "team": decision.team, "persons": list(decision.persons),
                             "services": list(decision.services), "explanation": decision.explanation,
                             "involvements": list(decision.involvements)})


def _alert_values(decision: AlertDecision, alert: Envelope) -> dict[str, Any]:
    return {"rule": decision.rule, "team": decision.team, "household_key": decision.household_key[:300],
            "persons": list(decision.persons), "services": list(decision.services),
            "evidence": {"explanation": decision.explanation, **decision.evidence},
            "message_id": str(alert.message_id), "raised_at": utcnow()}


class RoutingWorker:
    def __init__(self, store: Store, systems: SystemRegistry, config: RoutingConfig, *,
                 adapter_factory: AdapterFactory | None = None, journal: Journal | None = None,
                 today: Callable[[], dt.date] | None = None, max_attempts: int = 5, relay: Any = None) -> None:
        self.store, self.systems, self.config = store, systems, config
        self.relay = relay  # publishes what handling put in the outbox (deliveries, alerts) right away
        self.adapter_factory = adapter_factory or default_adapter_factory
        self.journal = journal or NullJournal()
        self.today = today or (lambda: utcnow().date())
        self.max_attempts = max_attempts
        self._adapters: dict[str, Any] = {}

    def handle(self, batch: list[Envelope]) -> None:
        """Rule evaluation set-based, `CHANGES_PER_TRANSACTION` changes at a time (see `_changed`);
        each `apply` on its own (an adapter call cannot be rolled back with the store)."""
        evaluate = [_Message(e, *change_items(e)) for e in batch if e.type != MessageType.ROUTE_APPLY]
        for group in _groups(evaluate, CHANGES_PER_TRANSACTION):
            self._changed(group)
        for env in batch:
            if env.type == MessageType.ROUTE_APPLY:
                self._apply(env)
        if self.relay is not None:
            self.relay.relay_all()

    # route.changed(.batch) -> deliveries and alerts
    def _changed(self, batch: list[_Message]) -> None:
        """Evaluate the batch's changes set-based in a read transaction (no write lock held), then
        claim its messages and write their deliveries, alerts, outbox and journal in one short write
        transaction. What must be exact is read there: the inbox claim (per message: a redelivered
        batch is a duplicate whole), and the alerts already raised naming the households that
        would alert (by index, bounded by those households)."""
        today = self.today()
        changes = [c for m in batch for c in m.changes]
        with self.store.read() as s:
            plans = self._plan(s, changes, today)
        with self.store.transaction() as s:
            fresh = claim_unseen(s, CONSUMER, [str(m.env.message_id) for m in batch])
            raised = {}
            for i, rule in enumerate(self.config.alert):
                named = {p for plan in plans if isinstance(plan, _Plan) for j, d in plan.alerts if j == i and d
                         for p in d.persons}
                raised[i] = raised_alerts(s, rule.name, _window_start(rule, today), named)
            self._write(s, batch, plans, fresh, raised)

    def _plan(self, s: Session, changes: list[ChangeItem], today: dt.date) -> list[_Plan | str]:
        """For each change its plan (or its final detail when nothing can come of it)."""
        rows = source_rows(s, {c.key for c in changes}, canonical_of={r.when.entity for r in self.config.route})
        live = {k: r for k, r in rows.items() if not r.deleted}
        subjects = persons_of_keys(s, {r.subject_key for r in live.values() if r.entity != "person" and r.subject_key})
        phases = {r.system: Phase(r.phase) for r in s.execute(select(SystemPhaseRow)).scalars()}
        person_of = {k: (r.person_id if r.entity == "person" else subjects.get(r.subject_key) if r.subject_key else None)
                     for k, r in live.items()}
        alerting = {person_of[c.key] for c in changes if (row := live.get(c.key)) is not None and _may_alert(c, row)}
        decisions = self._decide(s, alerting - {None}, today)
        plans: list[_Plan | str] = []
        for change in changes:
            row = live.get(change.key)
            if row is None:
                plans.append(NOTHING_APPLIES)
                continue
            plan = self._route(s, change, row, phases, person_of[change.key])
            if _may_alert(change, row) and person_of[change.key]:
                plan.alerts = [(i, decisions[(person_of[change.key], i)]) for i in range(len(self.config.alert))]
            plans.append(plan)
        return plans

    def _decide(self, s: Session, persons: set[str], today: dt.date) -> dict[tuple[str, int], AlertDecision | None]:
        """Each alert rule's decision for the household of each of `persons`."""
        if not persons or not self.config.alert:
            return {}
        homes = {flag: households(s, persons, same_address=flag) for flag in {r.same_address for r in self.config.alert}}
        facts = involvements(s, set().union(*(m for h in homes.values() for m in h.values())))
        out = {}
        for i, rule in enumerate(self.config.alert):
            for person in persons:
                members = sorted(homes[rule.same_address][person])
                out[(person, i)] = evaluate_household(rule, "+".join(members), members, facts_of(facts, members), today)
        return out

    def _route(self, s: Session, item: ChangeItem, row: Any, phases: dict[str, Phase],
               person_id: str | None) -> _Plan:
        plan = _Plan()
        if not any(r.when.entity == row.entity for r in self.config.route):
            return plan  # no route can match (`matches` wants the entity): spare flattening the record
        current = flatten(row.entity, row.canonical)
        created = item.created
        changed = {p: v for p, v in current.items() if v is not None} if created else item.changed
        change = Change(system=row.system, entity=row.entity, source_id=row.source_id, changed=dict(changed),
                        current=current, created=created)
        for d in deliveries(self.config, change):
            if not phases.get(d.target, Phase.CONNECTED).adapter_enabled:
                plan.notes.append(f"route {d.route}: {d.target} is {phases[d.target].value}, not sent")
                continue
            targets = _records_of(s, person_id, d.target, row.entity) if person_id else []
            if not targets:
                plan.notes.append(f"route {d.route}: no {row.entity} record of this person in {d.target}")
                continue
            for target in targets:
                block, legacy_id = legacy_row_of(s, target)
                wb = WriteBack(entity=block, operation=d.operation, source_id=legacy_id, values=d.values)
                plan.out.append(apply_envelope(d.target, wb, kind="route", canonical_entity=row.entity,
                                               route=d.route, correlation_id=item.message.message_id))
                plan.notes.append(f"route {d.route}: sent {sorted(d.values)} to {target.ref_key}")
        return plan

    def _write(self, s: Session, batch: list[_Message], plans: list[_Plan | str], fresh: set[str],
               raised: dict[int, RaisedAlerts]) -> None:
        """The claimed messages' deliveries, alerts, outbox and journal, in the batch's order (each
        change of a message in order); an alert is not raised twice for a household (alerts raised
        earlier in the batch count)."""
        events, out, alerts, done = [], [], [], set()
        plan_of = iter(plans)
        for message in batch:
            env, mid = message.env, str(message.env.message_id)
            own = [next(plan_of) for _ in message.changes]
            if mid not in fresh or mid in done:
                detail = "duplicate: already processed"
            elif env.type not in (MessageType.ROUTE_CHANGED, MessageType.ROUTE_CHANGED_BATCH):
                detail = f"no routing rule handles {env.type.value}"
            else:
                details = [self._settle(change, plan, out, alerts, raised)
                           for change, plan in zip(message.changes, own, strict=True)]
                detail = details[0] if env.type == MessageType.ROUTE_CHANGED else _batch_detail(message, details)
            done.add(mid)
            events.append(JournalEvent.of(env, "processed", queue=ROUTING_QUEUE, detail=detail))
        applies = [e for e in out if e.type == MessageType.ROUTE_APPLY]
        if applies:
            s.connection().execute(DeliveryRow.__table__.insert(), [delivery_values(e) for e in applies])
        insert_alerts(s, alerts)
        add_to_outbox(s, out)
        self.journal.record(events, s)

    def _settle(self, change: ChangeItem, plan: _Plan | str, out: list[Envelope], alerts: list[dict[str, Any]],
                raised: dict[int, RaisedAlerts]) -> str:
        """A claimed change's messages and alerts added to `out` and `alerts`; its journal detail."""
        if isinstance(plan, str):
            return plan
        notes = list(plan.notes)
        out += plan.out
        for i, decision in plan.alerts:
            if decision is None:
                continue
            rule, services = self.config.alert[i], set(decision.services)
            if raised[i].covers(decision.persons, services):
                notes.append(f"alert {rule.name}: already raised for this household")
                continue
            alert = _alert_envelope(change.message, decision)
            alerts.append(_alert_values(decision, alert))
            raised[i].note(decision.persons, services)
            out.append(alert)
            notes.append(f"alert {rule.name} raised to {decision.team}: {decision.explanation}")
        return "; ".join(notes) or NOTHING_APPLIES

    # route.apply -> adapter.apply
    def _apply(self, env: Envelope) -> None:
        p = env.payload
        wb = WriteBack(**{**p["writeback"], "values": p["writeback"]["values"]})
        with self.store.transaction() as s:
            delivery = s.execute(select(DeliveryRow).where(DeliveryRow.message_id == str(env.message_id))
                                 ).scalar_one_or_none()
            if delivery is not None and delivery.status in ("applied", "refused"):
                self.journal.record([JournalEvent.of(env, "processed", queue=ROUTING_QUEUE,
                                                     detail=f"duplicate: already {delivery.status}")], s)
                return
        try:
            result = self._adapter(p["target"]).apply(wb)
        except Exception as exc:  # the legacy system is down: recorded, then re-raised for the bus to retry
            self._failing(env, f"{type(exc).__name__}: {exc}")
            raise
        status = "applied" if result.accepted else "refused"
        with self.store.transaction() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.message_id == str(env.message_id)).values(
                status=status, detail=result.detail, source_id=result.source_id or wb.source_id,
                attempts=DeliveryRow.attempts + 1, updated_at=utcnow()))
            if p.get("write_id"):
                _settle_write(s, p["write_id"])
            self.journal.record([JournalEvent.of(env, "processed", queue=ROUTING_QUEUE, detail=(
                f"{p['kind']} {wb.operation} {wb.entity} {status} by {p['target']}: {result.detail}"))], s)

    def _failing(self, env: Envelope, error: str) -> None:
        with self.store.transaction() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.message_id == str(env.message_id)).values(
                status="failing", detail=error, attempts=DeliveryRow.attempts + 1, updated_at=utcnow()))
            if env.payload.get("write_id"):
                _settle_write(s, env.payload["write_id"])

    def _adapter(self, system: str) -> Any:
        if system not in self._adapters:
            self._adapters[system] = self.adapter_factory(self.systems.get(system))
        return self._adapters[system]


def _groups(messages: list[_Message], limit: int) -> list[list[_Message]]:
    """Consecutive messages grouped up to `limit` changes (at least one message per group)."""
    groups: list[list[_Message]] = []
    size = limit
    for m in messages:
        if size + m.size > limit:
            groups.append([])
            size = 0
        groups[-1].append(m)
        size += m.size
    return groups


def _batch_detail(message: _Message, details: list[str]) -> str:
    """A `route.changed.batch`'s journal detail: how many changes it carried and what came of them,
    then one line per change that came to something and per invalid item, with its reason."""
    lines = [f"{c.key}: {d}" for c, d in zip(message.changes, details, strict=True) if d != NOTHING_APPLIES]
    lines += [f"item {b.index}: invalid, not handled: {b.reason}" for b in message.bad]
    head = f"{len(message.changes)} change(s)"
    if message.bad:
        head += f", {len(message.bad)} invalid"
    head += f"; {len(details) - sum(d == NOTHING_APPLIES for d in details)} with a route or alert outcome"
    return "\n".join([head, *lines])


def _settle_write(s: Session, write_id: str) -> None:
    """A write's status follows its deliveries: applied when all are, failed/refused as soon as one is."""
    write = s.get(HubWriteRow, write_id)
    if write is None:
        return
    statuses = [d.status for d in s.execute(select(DeliveryRow).where(DeliveryRow.write_id == write_id)).scalars()]
    deliveries_d = [{"system": d.system, "status": d.status, "detail": d.detail, "attempts": d.attempts}
                    for d in s.execute(select(DeliveryRow).where(DeliveryRow.write_id == write_id)).scalars()]
    if "refused" in statuses:
        status = "refused"
    elif "failing" in statuses:
        status = "failing"
    elif statuses and all(x == "applied" for x in statuses):
        status = "applied" if write.mode == "legacy" else "written"
    else:
        status = write.status
    write.status = status
    write.response = {**(write.response or {}), "status": status, "deliveries": deliveries_d}


def _records_of(s: Session, person_id: str, system: str, entity: str) -> list[SourceRecordRow]:
    return list(s.execute(select(SourceRecordRow).where(
        SourceRecordRow.person_id == person_id, SourceRecordRow.system == system,
        SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))).scalars()) if entity == "person" else []


def legacy_row_of(s: Session, record: SourceRecordRow) -> tuple[str, str]:
    """The mapping entity block and legacy row id that produced a mirrored record."""
    rows = s.execute(select(AdapterRowHashRow.entity, AdapterRowHashRow.source_id, AdapterRowHashRow.record_keys)
                     .where(AdapterRowHashRow.system == record.system,
                            AdapterRowHashRow.source_id == record.source_id)).all()
    for r in rows:
        if record.ref_key in (r.record_keys or []):
            return r.entity, r.source_id
    return record.entity, record.source_id


def run_routing_worker(bus: Bus, worker: RoutingWorker, *, batch_size: int = 200, max_messages: int | None = None,
                       idle_timeout_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> int:
    """Consume the routing queue. With a relay, the outbox is relayed every `RELAY_EVERY_S` as well,
    so the records worker's `route.changed` messages flow without waiting for the next ingest."""
    if worker.relay is None or max_messages is not None:
        return bus.consume(ROUTING_QUEUE, worker.handle, batch_size=batch_size, max_messages=max_messages,
                           idle_timeout_s=idle_timeout_s, should_stop=should_stop)
    total, idle_since = 0, time.monotonic()
    while not (should_stop and should_stop()):
        relayed = worker.relay.relay_all()
        n = bus.consume(ROUTING_QUEUE, worker.handle, batch_size=batch_size,
                        idle_timeout_s=min(RELAY_EVERY_S, idle_timeout_s or RELAY_EVERY_S), should_stop=should_stop)
        total += n
        if n or relayed:
            idle_since = time.monotonic()
        elif idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
            break
    return total


def list_deliveries(store: Store, *, system: str | None = None, status: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries to legacy systems, newest first."""
    query = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
    if system:
        query = query.where(DeliveryRow.system == system)
    if status:
        query = query.where(DeliveryRow.status == status)
    with store.transaction() as s:
        return [{"id": d.id, "message_id": d.message_id, "kind": d.kind, "write_id": d.write_id, "route": d.route,
                 "system": d.system, "entity": d.entity, "operation": d.operation, "source_id": d.source_id,
                 "status": d.status, "attempts": d.attempts, "detail": d.detail,
                 "updated_at": d.updated_at.isoformat()} for d in s.execute(query).scalars()]


def list_alerts(store: Store, *, team: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts raised, newest first."""
    query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
    if team:
        query = query.where(AlertRow.team == team)
    with store.transaction() as s:
        return [{"id": a.id, "rule": a.rule, "team": a.team, "persons": a.persons, "services": a.services,
                 "status": a.status, "raised_at": a.raised_at.isoformat(), "message_id": a.message_id,
                 "explanation": (a.evidence or {}).get("explanation")} for a in s.execute(query).scalars()]


def drain(bus: Bus, relay: Any, worker: RoutingWorker, *, idle_timeout_s: float = 1.0,
          should_stop: Callable[[], bool] | None = None, forever: bool = False) -> int:
    """Relay the outbox and consume the routing queue until both stay empty (or forever)."""
    if worker.relay is not None:
        relay.relay_all()
        return run_routing_worker(bus, worker, idle_timeout_s=None if forever else idle_timeout_s,
                                  should_stop=should_stop)
    total = 0
    while not (should_stop and should_stop()):
        relay.relay_all()
        n = run_routing_worker(bus, worker, idle_timeout_s=idle_timeout_s, should_stop=should_stop)
        total += n
        if n == 0 and relay.relay_all() == 0 and not forever:
            break
    return total
