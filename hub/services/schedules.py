"""Adapters and their schedules, for the console: each system's status, its last runs with
their figures, its next run; and the switches (run now, pause, resume) the scheduler obeys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from hub.scheduling import (
    ScheduleControl,
    ScheduleError,
    ScheduleSpec,
    ScheduleState,
    as_utc,
    system_schedule,
)
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import IngestRunRow
from hub.store.tables.lifecycle import SystemPhaseRow

SCHEDULER_STALE_AFTER = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class IngestRun:
    id: int
    system: str
    trigger: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    figures: dict[str, Any]
    error: str | None

    @property
    def duration_s(self) -> float | None:
        if self.figures.get("duration_s") is not None:
            return float(self.figures["duration_s"])
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass
class AdapterStatus:
    name: str
    kind: str
    description: str
    schedule: ScheduleSpec | None
    schedule_error: str | None
    phase: str
    state: ScheduleState
    runs: list[IngestRun] = field(default_factory=list)
    scheduler_running: bool = False

    @property
    def last_run(self) -> IngestRun | None:
        return self.runs[0] if self.runs else None

    @property
    def adapter_enabled(self) -> bool:
        return self.phase in ("connected", "hub_primary")

    @property
    def status(self) -> str:
        """One word for the tag: off, paused, running, failed, ok or never run."""
        if not self.adapter_enabled:
            return "off"
        if self.state.paused:
            return "paused"
        if self.last_run is None:
            return "not_run"
        return self.last_run.status

    @property
    def next_run(self) -> dt.datetime | None:
        if self.state.paused or not self.adapter_enabled or not self.scheduler_running:
            return None
        return self.state.next_run_at


def _run(row: IngestRunRow) -> IngestRun:
    return IngestRun(row.id, row.system, row.trigger, row.status, as_utc(row.started_at),  # type: ignore[arg-type]
                     as_utc(row.finished_at), dict(row.figures or {}), row.error)


def system_phases(store: Store) -> dict[str, str]:
    """Each system's lifecycle phase (a system with no row is `connected`)."""
    with store.transaction() as s:
        return {r.system: r.phase for r in s.execute(select(SystemPhaseRow)).scalars()}


def recent_runs(store: Store, system: str | None = None, limit: int = 10) -> list[IngestRun]:
    query = select(IngestRunRow).order_by(IngestRunRow.id.desc()).limit(limit)
    if system:
        query = query.where(IngestRunRow.system == system)
    with store.transaction() as s:
        return [_run(r) for r in s.execute(query).scalars()]


def run_by_id(store: Store, run_id: int) -> IngestRun | None:
    with store.transaction() as s:
        row = s.get(IngestRunRow, run_id)
        return _run(row) if row else None


def adapter_statuses(hub: Any, runs_per_system: int = 5) -> list[AdapterStatus]:
    """Every registered system with its schedule, switches, phase and last runs."""
    control = ScheduleControl(hub.store)
    states = control.states()
    phases = system_phases(hub.store)
    now = utcnow()
    out = []
    for defn in hub.systems.all():
        try:
            spec, error = system_schedule(defn), None
        except ScheduleError as exc:
            spec, error = None, str(exc)
        state = states.get(defn.name, ScheduleState(defn.name))
        seen = state.scheduler_seen_at
        out.append(AdapterStatus(
            name=defn.name, kind=str(getattr(defn, "kind", "")), description=str(getattr(defn, "description", "") or ""),
            schedule=spec, schedule_error=error, phase=phases.get(defn.name, "connected"), state=state,
            runs=recent_runs(hub.store, defn.name, runs_per_system),
            scheduler_running=bool(seen and now - seen < SCHEDULER_STALE_AFTER)))
    return out


def adapter_status(hub: Any, name: str, runs: int = 20) -> AdapterStatus:
    """One system (raises `hub.systems.UnknownSystem` for a name no mapping file defines)."""
    hub.systems.get(name)
    return next(a for a in adapter_statuses(hub, runs_per_system=runs) if a.name == name)


def run_counts(store: Store) -> dict[tuple[str, str], int]:
    """Ingest runs by (system, status), for the metrics endpoint."""
    with store.transaction() as s:
        rows = s.execute(select(IngestRunRow.system, IngestRunRow.status, func.count())
                         .group_by(IngestRunRow.system, IngestRunRow.status)).all()
    return {(system, status): int(n) for system, status, n in rows}


def adapter_enabled_check(hub: Any) -> Callable[[str], bool]:
    """For the scheduler: is the system's adapter still polled in its current lifecycle phase?"""

    def enabled(name: str) -> bool:
        return system_phases(hub.store).get(name, "connected") in ("connected", "hub_primary")

    return enabled


def daily_job(hub: Any) -> Callable[[], Any]:
    """The scheduler's daily work: reconcile every system still readable, then the burndown snapshot
    of what is still outside the hub."""

    def run() -> Any:
        from hub.reconcile import reconcile_all
        from hub.services.decommissioning import take_snapshot

        phases = {name: phase.value for name, phase in hub.extras["lifecycle"].phases().items()}
        reconcile_all(hub.extras["reconciler"], phases)  # the scheduled reconciliation (issue 7)
        return take_snapshot(hub)

    return run
