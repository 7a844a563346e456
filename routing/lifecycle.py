"""Lifecycle of a legacy system: connected → hub_primary → read_only → decommissioned.

Pure rules: which step is allowed from which phase, which readiness checks gate a
step forward, and the decision itself. Stepping back needs no check (it makes the
legacy system more authoritative again, never less) but is impossible once the
system is decommissioned: its adapter is off and its final archive written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    CONNECTED = "connected"
    HUB_PRIMARY = "hub_primary"
    READ_ONLY = "read_only"
    DECOMMISSIONED = "decommissioned"

    @property
    def rank(self) -> int:
        return ORDER.index(self)

    @property
    def legacy_is_system_of_record(self) -> bool:
        return self is Phase.CONNECTED

    @property
    def adapter_enabled(self) -> bool:
        """Ingest runs in these phases; read_only only reconciles; decommissioned is off."""
        return self in (Phase.CONNECTED, Phase.HUB_PRIMARY)

    @property
    def subscribed(self) -> bool:
        """Changes made through the hub are still sent to the legacy system (its front end is in use)."""
        return self is Phase.HUB_PRIMARY


ORDER: tuple[Phase, ...] = (Phase.CONNECTED, Phase.HUB_PRIMARY, Phase.READ_ONLY, Phase.DECOMMISSIONED)


class Direction(StrEnum):
    ADVANCE = "advance"
    REVERT = "revert"


# The readiness checks that must pass before a system may ENTER each phase.
GATES: dict[Phase, tuple[str, ...]] = {
    Phase.HUB_PRIMARY: ("reconciliation_clean", "quarantine_cleared", "review_backlog_low", "no_pending_writes"),
    Phase.READ_ONLY: ("reconciliation_clean", "quarantine_cleared", "review_backlog_low", "no_pending_writes",
                      "system_of_record_is_hub", "no_recent_writes"),
    Phase.DECOMMISSIONED: ("reconciliation_clean", "quarantine_cleared", "review_backlog_low",
                           "no_pending_writes", "system_of_record_is_hub", "no_recent_writes",
                           "final_archive_written"),
}


class LifecycleError(Exception):
    """Base of the lifecycle's refusals."""


class TransitionRefused(LifecycleError):
    """The step does not exist from this phase (past the ends, or back from decommissioned)."""


@dataclass(frozen=True)
class CheckResult:
    """One readiness check with the evidence it was decided on."""

    name: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "evidence": self.evidence}


class PhaseGateFailed(LifecycleError):
    """A readiness check failed: the step forward is refused, with every failing check."""

    def __init__(self, system: str, target: Phase, failed: Sequence[CheckResult]) -> None:
        self.system, self.target, self.failed = system, target, list(failed)
        reasons = "; ".join(f"{c.name}: {c.detail}" for c in self.failed)
        super().__init__(f"{system} cannot move to {target.value}: {reasons}")


@dataclass(frozen=True)
class Transition:
    system: str
    from_phase: Phase
    to_phase: Phase
    direction: Direction
    checks: tuple[CheckResult, ...] = ()


def target_of(current: Phase, direction: Direction) -> Phase:
    """The phase one step away, or TransitionRefused when there is none."""
    i = current.rank + (1 if direction is Direction.ADVANCE else -1)
    if direction is Direction.REVERT and current is Phase.DECOMMISSIONED:
        raise TransitionRefused("a decommissioned system cannot be stepped back: its adapter is off and "
                                "its final archive is the legacy data of record")
    if not 0 <= i < len(ORDER):
        where = "last" if direction is Direction.ADVANCE else "first"
        raise TransitionRefused(f"{current.value} is the {where} phase: there is no step to {direction.value}")
    return ORDER[i]


def required_checks(target: Phase, direction: Direction) -> tuple[str, ...]:
    return GATES.get(target, ()) if direction is Direction.ADVANCE else ()


def decide(system: str, current: Phase, direction: Direction, results: Sequence[CheckResult]) -> Transition:
    """Allow the step when every required check is among `results` and passed; else raise."""
    target = target_of(current, direction)
    required = required_checks(target, direction)
    by_name = {r.name: r for r in results}
    failed = [by_name.get(name) or CheckResult(name, False, "not evaluated") for name in required
              if not (by_name.get(name) and by_name[name].passed)]
    if failed:
        raise PhaseGateFailed(system, target, failed)
    return Transition(system, current, target, direction, tuple(by_name[n] for n in required))
