"""Lifecycle of legacy systems in the store: phases, readiness, audited transitions,
the final archive of decommissioning, the system-of-record matrix, and the ingest
gate that keeps a read-only or decommissioned system's adapter from running.

The rules themselves are in `routing.lifecycle` and `routing.readiness`; this module
gathers their facts from the store and records what was decided.
"""


from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.port import RawChange
from hub.audit import AuditEvent, append
from hub.ingest import IngestService, RunFigures
from hub.lifecycle.archive import ArchiveWriter, verify_archive
from hub.lifecycle.sor import DEFAULT_SOR_FILE, load_phases, overrides_of, sor_file
from hub.outbox import OutboxRelay
from hub.reconcile import Reconciler, ReconciliationFailed
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import IngestRunRow
from hub.store.tables.lifecycle import (
    DeliveryRow,
    PhaseTransitionRow,
    SystemArchiveRow,
    SystemPhaseRow,
)
from hub.store.tables.records import QuarantineRow, SourceRecordRow
from hub.systems import SystemRegistry, UnknownSystem
from routing.lifecycle import (
    GATES,
    CheckResult,
    Direction,
    Phase,
    PhaseGateFailed,
    Transition,
    TransitionRefused,
    decide,
    target_of,
)
from routing.readiness import ReadinessFacts, ReadinessPolicy, evaluate
from routing.sor import SorMatrix

ReviewBacklog = Callable[[str], "int | None"]


class LifecycleService:
    def __init__(self, store: Store, systems: SystemRegistry, reconciler: Reconciler, *,
                 policy: ReadinessPolicy | None = None, sor_path: str | None = None,
                 archive_dir: str | Path = "var/archive", review_backlog: ReviewBacklog | None = None) -> None:
        self.store, self.systems, self.reconciler = store, systems, reconciler
        self.policy = policy or ReadinessPolicy()
        self.sor_path = sor_path or sor_file()
        self.archive_dir = Path(archive_dir)
        self.review_backlog = review_backlog

    # -- reading ---------------------------------------------------------------------
    def names(self) -> list[str]:
        with self.store.transaction() as s:
            known = set(load_phases(s))
        return sorted(set(self.systems.names()) | known)

    def phase(self, system: str) -> Phase:
        with self.store.transaction() as s:
            row = s.get(SystemPhaseRow, system)
            if row is not None:
                return Phase(row.phase)
        self.systems.get(system)  # raises UnknownSystem for a name no mapping file defines
        return Phase.CONNECTED

    def phases(self) -> dict[str, Phase]:
        with self.store.transaction() as s:
            stored = load_phases(s)
        return {name: stored.get(name, Phase.CONNECTED) for name in self.names()}

    def sor(self) -> SorMatrix:
        return SorMatrix(self.phases(), overrides_of(self.sor_path))

    def overview(self) -> list[dict[str, Any]]:
        """One row per system: phase, since when, by whom, adapter on/off, last reconciliation."""
        from hub.reconcile import latest

        with self.store.transaction() as s:
            rows = {r.system: r for r in s.execute(select(SystemPhaseRow)).scalars()}
            counts = dict(s.execute(select(SourceRecordRow.system, func.count()).where(
                SourceRecordRow.deleted.is_(False)).group_by(SourceRecordRow.system)).all())
        out = []
        for name in self.names():
            row = rows.get(name)
            phase = Phase(row.phase) if row else Phase.CONNECTED
            rec = latest(self.store, name)
            out.append({"system": name, "phase": phase.value, "since": row.changed_at.isoformat() if row else None,
                        "changed_by": row.changed_by if row else None, "reason": row.reason if row else None,
                        "adapter_enabled": phase.adapter_enabled, "subscribed": phase.subscribed,
                        "records": counts.get(name, 0),
                        "reconciliation": None if rec is None else {
                            "at": rec["at"], "clean": rec["clean"], "unexplained": rec.get("unexplained"),
                            "error": rec.get("error")}})
        return out

    def detail(self, system: str) -> dict[str, Any]:
        from hub.reconcile import latest

        phase = self.phase(system)
        with self.store.transaction() as s:
            history = s.execute(select(PhaseTransitionRow).where(PhaseTransitionRow.system == system)
                                .order_by(PhaseTransitionRow.id.desc()).limit(50)).scalars().all()
            archive = s.execute(select(SystemArchiveRow).where(SystemArchiveRow.system == system)
                                .order_by(SystemArchiveRow.id.desc()).limit(1)).scalar_one_or_none()
            transitions = [_transition(t) for t in history]
            archive_d = None if archive is None else {"path": archive.path, "sha256": archive.sha256,
                                                      "rows": archive.rows, "created_at": archive.created_at.isoformat()}
        return {"system": system, "phase": phase.value, "adapter_enabled": phase.adapter_enabled,
                "subscribed": phase.subscribed, "next": _step(phase, Direction.ADVANCE),
                "previous": _step(phase, Direction.REVERT), "transitions": transitions,
                "reconciliation": latest(self.store, system), "archive": archive_d,
                "system_of_record": [r for r in self.sor().rows([system])]}

    # -- readiness -------------------------------------------------------------------
    def facts(self, system: str, *, archive: dict[str, Any] | None = None, reconcile: bool = True,
              sink: Callable[[RawChange], None] | None = None) -> ReadinessFacts:
        phase = self.phase(system)
        summary, error = None, None
        if reconcile:
            try:
                summary = self.reconciler.run(system, trigger="readiness", sink=sink).summary
            except (ReconciliationFailed, UnknownSystem) as exc:
                error = str(exc)
        with self.store.transaction() as s:
            open_q = s.execute(select(func.count()).select_from(QuarantineRow).where(
                QuarantineRow.system == system, QuarantineRow.status == "open")).scalar_one()
            pending = s.execute(select(func.count()).select_from(DeliveryRow).where(
                DeliveryRow.system == system, DeliveryRow.status.in_(("pending", "failing")))).scalar_one()
            last = _last_write(s, system)
        days = None if last is None else (utcnow() - _aware(last)).total_seconds() / 86400
        return ReadinessFacts(system=system, phase=phase, reconciliation=summary, reconciliation_error=error,
                              open_quarantine=open_q, review_backlog=self.review_backlog(system)
                              if self.review_backlog else None, pending_writes=pending,
                              days_since_last_write=days, legacy_owned_fields=tuple(self.sor().legacy_owned_fields(system)),
                              archive=archive)

    def checks(self, system: str, direction: Direction = Direction.ADVANCE) -> dict[str, Any]:
        """The checks gating the next step (every check of the gate, with evidence), without acting."""
        phase = self.phase(system)
        try:
            target = target_of(phase, direction)
        except TransitionRefused as exc:
            return {"system": system, "phase": phase.value, "target": None, "ready": False, "detail": str(exc),
                    "checks": []}
        names = GATES.get(target, ()) if direction is Direction.ADVANCE else ()
        archive_pending = "final_archive_written" in names
        results = evaluate(tuple(n for n in names if n != "final_archive_written"), self.facts(system), self.policy)
        if archive_pending:
            results.append(CheckResult("final_archive_written", all(r.passed for r in results),
                                       "written and verified when the system is decommissioned, once every "
                                       "other check passes" if all(r.passed for r in results) else
                                       "not written: other checks fail"))
        return {"system": system, "phase": phase.value, "target": target.value,
                "ready": all(r.passed for r in results), "checks": [r.as_dict() for r in results]}

    # -- acting ----------------------------------------------------------------------
    def advance(self, system: str, *, who: str, reason: str) -> dict[str, Any]:
        """Move one phase forward if every check of its gate passes; audited either way."""
        _need_reason(reason)
        phase = self.phase(system)
        try:
            target = target_of(phase, Direction.ADVANCE)
        except TransitionRefused:
            self._audit(system, phase, phase, Direction.ADVANCE, "refused", who, reason, [])
            raise
        names = GATES[target]
        if target is Phase.DECOMMISSIONED:
            results = self._decommission_checks(system)
        else:
            results = evaluate(names, self.facts(system), self.policy)
        try:
            transition = decide(system, phase, Direction.ADVANCE, results)
        except PhaseGateFailed:
            self._audit(system, phase, target, Direction.ADVANCE, "refused", who, reason, results)
            raise
        return self._apply(transition, who, reason)

    def revert(self, system: str, *, who: str, reason: str) -> dict[str, Any]:
        """Step one phase back (no gate); refused once decommissioned; audited either way."""
        _need_reason(reason)
        phase = self.phase(system)
        try:
            transition = decide(system, phase, Direction.REVERT, [])
        except TransitionRefused:
            self._audit(system, phase, phase, Direction.REVERT, "refused", who, reason, [])
            raise
        return self._apply(transition, who, reason)

    def _decommission_checks(self, system: str) -> list[CheckResult]:
        """Final reconciliation while writing the archive from the same read; then verify the archive."""
        writer = ArchiveWriter(self.archive_dir, system)
        try:
            facts = self.facts(system, sink=writer.add)
        finally:
            writer.close()
        others = evaluate(tuple(n for n in GATES[Phase.DECOMMISSIONED] if n != "final_archive_written"), facts,
                          self.policy)
        archive = None
        if all(r.passed for r in others):
            manifest = writer.finish(reconciliation=facts.reconciliation)
            with self.store.transaction() as s:
                s.add(SystemArchiveRow(system=system, path=manifest["path"], sha256=manifest["sha256"],
                                       rows=manifest["rows"], manifest=manifest))
            archive = manifest if verify_archive(manifest) else None
        else:
            writer.discard()
        final = evaluate(("final_archive_written",), _with_archive(facts, archive), self.policy)
        return others + final

    def _apply(self, transition: Transition, who: str, reason: str) -> dict[str, Any]:
        with self.store.transaction() as s:
            row = s.get(SystemPhaseRow, transition.system)
            if row is not None and row.phase != transition.from_phase.value:
                raise TransitionRefused(f"{transition.system} moved to {row.phase} meanwhile; ask again")
            if row is None:
                row = SystemPhaseRow(system=transition.system, phase=transition.to_phase.value)
                s.add(row)
            row.phase, row.changed_at, row.changed_by, row.reason = (transition.to_phase.value, utcnow(), who,
                                                                     reason)
            self._audit_in(s, transition.system, transition.from_phase, transition.to_phase, transition.direction,
                           "done", who, reason, list(transition.checks))
        return {"system": transition.system, "from": transition.from_phase.value, "to": transition.to_phase.value,
                "direction": transition.direction.value, "who": who, "why": reason,
                "checks": [c.as_dict() for c in transition.checks]}

    def _audit(self, system: str, from_phase: Phase, to_phase: Phase, direction: Direction, outcome: str,
               who: str, why: str, checks: list[CheckResult]) -> None:
        with self.store.transaction() as s:
            self._audit_in(s, system, from_phase, to_phase, direction, outcome, who, why, checks)

    @staticmethod
    def _audit_in(s: Session, system: str, from_phase: Phase, to_phase: Phase, direction: Direction,
                  outcome: str, who: str, why: str, checks: list[CheckResult]) -> None:
        s.add(PhaseTransitionRow(system=system, from_phase=from_phase.value, to_phase=to_phase.value,
                                 direction=direction.value, outcome=outcome, who=who, why=why,
                                 checks=[c.as_dict() for c in checks], at=utcnow()))
        append(s, AuditEvent(who, "phase_change", outcome="ok" if outcome == "done" else "refused", target=system,
                             purpose=why, detail={"from": from_phase.value, "to": to_phase.value,
                                                  "direction": direction.value,
                                                  "failed": [c.name for c in checks if not c.passed]}))


class PhaseGatedIngest(IngestService):
    """Ingest that refuses, with a clear message, a system whose adapter is off in its phase."""

    def __init__(self, store: Store, systems: SystemRegistry, relay: OutboxRelay | None,
                 lifecycle: LifecycleService) -> None:
        super().__init__(store, systems, relay)
        self.lifecycle = lifecycle

    def run(self, system: str, *, trigger: str = "manual") -> RunFigures:
        phase = self.lifecycle.phase(system)
        if not phase.adapter_enabled:
            reason = ("is decommissioned: its adapter is off and its records are kept in the hub with provenance"
                      if phase is Phase.DECOMMISSIONED else
                      "is read-only: the legacy system is frozen and its adapter only reconciles")
            return RunFigures(system=system, status="refused", error=f"{system} {reason}")
        return super().run(system, trigger=trigger)


def _with_archive(facts: ReadinessFacts, archive: dict[str, Any] | None) -> ReadinessFacts:
    from dataclasses import replace

    return replace(facts, archive=archive)


def _last_write(s: Session, system: str) -> dt.datetime | None:
    """When the system was last written to: a delivery applied to it, or a change mirrored from it."""
    applied = s.execute(select(func.max(DeliveryRow.updated_at)).where(
        DeliveryRow.system == system, DeliveryRow.status == "applied")).scalar()
    runs = s.execute(select(IngestRunRow.finished_at, IngestRunRow.figures).where(
        IngestRunRow.system == system, IngestRunRow.status == "ok").order_by(IngestRunRow.id.desc()).limit(200)).all()
    changed = next((r.finished_at for r in runs if r.finished_at and (
        (r.figures or {}).get("changed", 0) + (r.figures or {}).get("deleted", 0)) > 0), None)
    stamps = [_aware(t) for t in (applied, changed) if t is not None]
    return max(stamps) if stamps else None


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _step(phase: Phase, direction: Direction) -> str | None:
    try:
        return target_of(phase, direction).value
    except TransitionRefused:
        return None


def _need_reason(reason: str) -> None:
    if not (reason or "").strip():
        raise TransitionRefused("a phase change needs a reason")


def _transition(t: PhaseTransitionRow) -> dict[str, Any]:
    return {"id": t.id, "from": t.from_phase, "to": t.to_phase, "direction": t.direction, "outcome": t.outcome,
            "who": t.who, "why": t.why, "at": t.at.isoformat(), "checks": t.checks}


def build_services(store: Store, systems: SystemRegistry, relay: OutboxRelay, journal: Any, *,
                   base_dir: Path, max_attempts: int = 5) -> dict[str, Any]:
    """Lifecycle, reconciliation, write path and routing worker, wired for the composition root.

    Files (relative to the directory of hub.toml): config/routing.toml (HUB_ROUTING_FILE),
    config/sor.toml (HUB_SOR_FILE), archives in var/archive (HUB_ARCHIVE_DIR)."""
    from hub.routing_worker import RoutingWorker
    from hub.writes import WriteService
    from routing.rules import load_routing

    def path(var: str, default: str) -> Path:
        p = Path(os.environ.get(var, default))
        return p if p.is_absolute() else base_dir / p

    config = load_routing(path("HUB_ROUTING_FILE", "config/routing.toml"))
    reconciler = Reconciler(store, systems, examples=config.readiness.examples)
    lifecycle = LifecycleService(store, systems, reconciler, policy=config.readiness,
                                 sor_path=str(path("HUB_SOR_FILE", DEFAULT_SOR_FILE)),
                                 archive_dir=path("HUB_ARCHIVE_DIR", "var/archive"),
                                 review_backlog=_identity_review_backlog(store))
    return {"lifecycle": lifecycle, "reconciler": reconciler, "routing_config": config,
            "writes": WriteService(store, lifecycle, relay),
            "routing_worker": RoutingWorker(store, systems, config, journal=journal, max_attempts=max_attempts,
                                            relay=relay),
            "ingest": PhaseGatedIngest(store, systems, relay, lifecycle)}


def _identity_review_backlog(store: Store) -> ReviewBacklog | None:
    """Open identity-review pairs touching a system's records, when the identity index is installed."""
    try:
        from hub.identity.review import open_review_count
    except ImportError:
        return None
    return lambda system: open_review_count(store, system)
