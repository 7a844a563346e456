"""Readiness checks of a legacy system, decided from facts the hub gathers.

Each check is a small named function over `ReadinessFacts`; it returns a
`CheckResult` with its evidence, so a refused step explains itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from routing.lifecycle import CheckResult, Phase


class ReadinessPolicy(BaseModel):
    """Thresholds of the checks (`[readiness]` in config/routing.toml)."""

    model_config = ConfigDict(extra="forbid")

    max_review_backlog: int = Field(0, ge=0, description="open identity-review pairs touching the system's records")
    quiet_days: int = Field(7, ge=0, description="no writes to the system for this many days before read_only")
    examples: int = Field(5, ge=0, description="examples of each kind of difference kept as evidence")


@dataclass(frozen=True)
class ReconciliationSummary:
    legacy_count: int
    hub_count: int
    missing: int
    extra: int
    drifted: int
    unmirrored: int
    explained: int
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def unexplained(self) -> int:
        return self.missing + self.extra + self.drifted + self.unmirrored

    @property
    def clean(self) -> bool:
        return self.unexplained == 0


@dataclass(frozen=True)
class ReadinessFacts:
    system: str
    phase: Phase
    reconciliation: ReconciliationSummary | None
    reconciliation_error: str | None = None
    open_quarantine: int = 0
    review_backlog: int | None = None  # None: the store has no identity review queue
    pending_writes: int = 0
    days_since_last_write: float | None = None  # None: never written to
    legacy_owned_fields: tuple[str, ...] = ()  # "entity.field" still owned by the legacy system
    archive: dict[str, Any] | None = None  # manifest of the final archive, when written and verified


def reconciliation_clean(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    if f.reconciliation is None:
        return CheckResult("reconciliation_clean", False,
                           f"reconciliation could not run: {f.reconciliation_error or 'no result'}")
    r = f.reconciliation
    evidence = {"legacy_count": r.legacy_count, "hub_count": r.hub_count, "missing": r.missing, "extra": r.extra,
                "drifted": r.drifted, "unmirrored": r.unmirrored, "explained": r.explained, "examples": r.examples}
    if r.clean:
        return CheckResult("reconciliation_clean", True,
                           f"{r.legacy_count} legacy rows match the hub ({r.explained} explained by quarantine)",
                           evidence)
    return CheckResult("reconciliation_clean", False,
                       f"{r.unexplained} unexplained difference(s): {r.missing} missing, {r.extra} extra, "
                       f"{r.drifted} drifted, {r.unmirrored} not mirrored", evidence)


def quarantine_cleared(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    ok = f.open_quarantine == 0
    return CheckResult("quarantine_cleared", ok,
                       "no open quarantine entries" if ok else
                       f"{f.open_quarantine} open quarantine entr{'y' if f.open_quarantine == 1 else 'ies'}: "
                       "re-run after a mapping fix or accept with a reason", {"open": f.open_quarantine})


def review_backlog_low(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    if f.review_backlog is None:
        return CheckResult("review_backlog_low", True, "no identity review queue in this store",
                           {"open": None, "max": p.max_review_backlog})
    ok = f.review_backlog <= p.max_review_backlog
    return CheckResult("review_backlog_low", ok,
                       f"{f.review_backlog} open review pair(s) touch its records (at most "
                       f"{p.max_review_backlog} allowed)", {"open": f.review_backlog, "max": p.max_review_backlog})


def no_pending_writes(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    ok = f.pending_writes == 0
    return CheckResult("no_pending_writes", ok,
                       "no write waits to be applied to it" if ok else
                       f"{f.pending_writes} write(s) made through the hub are not yet applied to it",
                       {"pending": f.pending_writes})


def system_of_record_is_hub(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    ok = not f.legacy_owned_fields
    return CheckResult("system_of_record_is_hub", ok,
                       "the hub is system of record for all its entities" if ok else
                       f"it is still system of record for {', '.join(f.legacy_owned_fields)} "
                       "(config/sor.toml overrides)", {"legacy_owned": list(f.legacy_owned_fields)})


def no_recent_writes(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    days = f.days_since_last_write
    ok = days is None or days >= p.quiet_days
    detail = ("never written to through the hub or changed at the source" if days is None else
              f"last write {days:.1f} day(s) ago ({p.quiet_days} quiet day(s) required)")
    return CheckResult("no_recent_writes", ok, detail, {"days_since_last_write": days, "quiet_days": p.quiet_days})


def final_archive_written(f: ReadinessFacts, p: ReadinessPolicy) -> CheckResult:
    if not f.archive:
        return CheckResult("final_archive_written", False, "no verified final archive of its raw data")
    return CheckResult("final_archive_written", True,
                       f"archive {f.archive.get('path')} ({f.archive.get('rows')} rows, sha256 "
                       f"{str(f.archive.get('sha256'))[:12]}…) verified", dict(f.archive))


CHECKS: dict[str, Callable[[ReadinessFacts, ReadinessPolicy], CheckResult]] = {
    fn.__name__: fn for fn in (reconciliation_clean, quarantine_cleared, review_backlog_low, no_pending_writes,
                               system_of_record_is_hub, no_recent_writes, final_archive_written)
}


def evaluate(names: tuple[str, ...], facts: ReadinessFacts, policy: ReadinessPolicy) -> list[CheckResult]:
    """Run the named checks in order."""
    return [CHECKS[name](facts, policy) for name in names]
