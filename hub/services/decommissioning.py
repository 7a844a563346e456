"""Figures for the decommissioning dashboard: each system's data-quality score and the
burndown of systems and records still outside the hub, towards "one database".

Quality score of a system = the mean of three shares, each explained on its page:
rows not quarantined (mirrored records ÷ mirrored + open quarantine entries), person
records carrying a strong identifier, and person records linked to a person of the index.

Burndown: a daily snapshot (`burndown_snapshot`, taken by the scheduler each day and
after every phase change) of how many systems are not yet decommissioned and how many
mirrored records they hold; today's point is always computed live.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import distinct, func, select

from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.lifecycle import SystemPhaseRow
from hub.store.tables.records import PersonIdentifierRow, QuarantineRow, SourceRecordRow
from hub.store.tables.scheduling import BurndownSnapshotRow

DECOMMISSIONED = "decommissioned"


@dataclass(frozen=True)
class QualityScore:
    system: str
    records: int
    open_quarantine: int
    accepted_quarantine: int
    person_records: int
    with_identifier: int
    linked: int

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def not_quarantined(self) -> float | None:
        return self._share(self.records, self.records + self.open_quarantine)

    @property
    def identifiers_present(self) -> float | None:
        return self._share(self.with_identifier, self.person_records)

    @property
    def linked_share(self) -> float | None:
        return self._share(self.linked, self.person_records)

    @property
    def score(self) -> float | None:
        """Mean of the shares that can be computed; None for a system with nothing mirrored yet."""
        parts = [p for p in (self.not_quarantined, self.identifiers_present, self.linked_share) if p is not None]
        return sum(parts) / len(parts) if parts else None

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "score": self.score, "records": self.records,
                "open_quarantine": self.open_quarantine, "accepted_quarantine": self.accepted_quarantine,
                "person_records": self.person_records, "with_identifier": self.with_identifier,
                "linked": self.linked, "not_quarantined": self.not_quarantined,
                "identifiers_present": self.identifiers_present, "linked_share": self.linked_share}


def quality_scores(store: Store, systems: list[str]) -> dict[str, QualityScore]:
    """The quality score of each named system, counted in the store."""
    rec = SourceRecordRow
    with store.transaction() as s:
        records = dict(s.execute(select(rec.system, func.count()).where(rec.deleted.is_(False))
                                 .group_by(rec.system)).all())
        persons = dict(s.execute(select(rec.system, func.count()).where(rec.deleted.is_(False), rec.entity == "person")
                                 .group_by(rec.system)).all())
        linked = dict(s.execute(select(rec.system, func.count()).where(
            rec.deleted.is_(False), rec.entity == "person", rec.person_id.is_not(None)).group_by(rec.system)).all())
        identified = dict(s.execute(
            select(rec.system, func.count(distinct(PersonIdentifierRow.record_key)))
            .join(PersonIdentifierRow, PersonIdentifierRow.record_key == rec.ref_key)
            .where(rec.deleted.is_(False), rec.entity == "person").group_by(rec.system)).all())
        quarantine = s.execute(select(QuarantineRow.system, QuarantineRow.status, func.count())
                               .group_by(QuarantineRow.system, QuarantineRow.status)).all()
    by_status: dict[tuple[str, str], int] = {(sys, st): int(n) for sys, st, n in quarantine}
    return {name: QualityScore(
        system=name, records=int(records.get(name, 0)), open_quarantine=by_status.get((name, "open"), 0),
        accepted_quarantine=by_status.get((name, "accepted"), 0), person_records=int(persons.get(name, 0)),
        with_identifier=int(identified.get(name, 0)), linked=int(linked.get(name, 0))) for name in systems}


@dataclass(frozen=True)
class BurndownPoint:
    day: str
    systems_total: int
    systems_outside: int
    records_total: int
    records_outside: int


def current_point(store: Store, systems: list[str], *, today: dt.date | None = None) -> BurndownPoint:
    """What is outside the hub right now: systems not decommissioned and the records they hold."""
    with store.transaction() as s:
        phases = {r.system: r.phase for r in s.execute(select(SystemPhaseRow)).scalars()}
        counts = dict(s.execute(select(SourceRecordRow.system, func.count())
                                .where(SourceRecordRow.deleted.is_(False)).group_by(SourceRecordRow.system)).all())
    outside = [name for name in systems if phases.get(name, "connected") != DECOMMISSIONED]
    return BurndownPoint(day=(today or utcnow().date()).isoformat(), systems_total=len(systems),
                         systems_outside=len(outside), records_total=int(sum(counts.get(n, 0) for n in systems)),
                         records_outside=int(sum(counts.get(n, 0) for n in outside)))


def record_snapshot(store: Store, point: BurndownPoint) -> BurndownPoint:
    """Keep `point` as its day's snapshot (a later snapshot the same day replaces it)."""
    with store.transaction() as s:
        row = s.get(BurndownSnapshotRow, point.day, with_for_update=True)
        if row is None:
            row = BurndownSnapshotRow(day=point.day)
            s.add(row)
        row.systems_total, row.systems_outside = point.systems_total, point.systems_outside
        row.records_total, row.records_outside = point.records_total, point.records_outside
        row.taken_at = utcnow()
    return point


def take_snapshot(hub: Any) -> BurndownPoint:
    """Today's burndown snapshot of the hub's registered systems."""
    return record_snapshot(hub.store, current_point(hub.store, hub.systems.names()))


def burndown(store: Store, systems: list[str], *, days: int = 90) -> list[BurndownPoint]:
    """The daily snapshots of the last `days` days, ending with today's live figures."""
    today = utcnow().date()
    since = (today - dt.timedelta(days=days)).isoformat()
    with store.transaction() as s:
        rows = s.execute(select(BurndownSnapshotRow).where(BurndownSnapshotRow.day >= since)
                         .order_by(BurndownSnapshotRow.day)).scalars().all()
        points = [BurndownPoint(r.day, r.systems_total, r.systems_outside, r.records_total, r.records_outside)
                  for r in rows if r.day != today.isoformat()]
    return points + [current_point(store, systems, today=today)]


def readiness_from_last_reconciliation(lifecycle: Any, system: str) -> dict[str, Any]:
    """The checks gating `system`'s next step, decided on the LAST recorded reconciliation
    rather than a new one (the dashboard lists every system and must stay fast; the system's
    own page runs a fresh reconciliation through `lifecycle.checks`)."""
    import dataclasses

    from hub.reconcile import latest
    from routing.lifecycle import GATES, Direction, TransitionRefused, target_of
    from routing.readiness import ReconciliationSummary, evaluate

    phase = lifecycle.phase(system)
    try:
        target = target_of(phase, Direction.ADVANCE)
    except TransitionRefused as exc:
        return {"target": None, "ready": False, "checks": [], "detail": str(exc), "reconciled_at": None}
    last = latest(lifecycle.store, system)
    summary = None
    if last and not last.get("error") and "legacy_count" in last:
        summary = ReconciliationSummary(**{k: int(last.get(k) or 0) for k in (
            "legacy_count", "hub_count", "missing", "extra", "drifted", "unmirrored", "explained")},
            examples=last.get("examples") or {})
    facts = dataclasses.replace(lifecycle.facts(system, reconcile=False), reconciliation=summary,
                                reconciliation_error=(last or {}).get("error") or (
                                    None if last else "not reconciled yet"))
    names = tuple(n for n in GATES.get(target, ()) if n != "final_archive_written")
    results = [r.as_dict() for r in evaluate(names, facts, lifecycle.policy)]
    return {"target": target.value, "ready": all(r["passed"] for r in results), "checks": results,
            "detail": None, "reconciled_at": (last or {}).get("at")}
