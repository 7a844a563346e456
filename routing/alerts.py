"""Alert rules over the canonical data: e.g. three or more services involved with one
household within 90 days raise an early-help alert to the allocated team."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from routing.rules import AlertRule


@dataclass(frozen=True)
class InvolvementFact:
    person_id: str
    ref: str
    service_category: str
    started_on: dt.date
    ended_on: dt.date | None = None
    team: str | None = None


@dataclass(frozen=True)
class AlertDecision:
    rule: str
    household_key: str
    team: str
    persons: tuple[str, ...]
    services: tuple[str, ...]
    involvements: tuple[str, ...]
    window: tuple[dt.date, dt.date]
    explanation: str
    evidence: dict = field(default_factory=dict)


def in_window(fact: InvolvementFact, start: dt.date, end: dt.date) -> bool:
    """The involvement was active at some time between `start` and `end`."""
    return fact.started_on <= end and (fact.ended_on is None or fact.ended_on >= start)


def evaluate_household(rule: AlertRule, household_key: str, persons: Sequence[str],
                       involvements: Sequence[InvolvementFact], today: dt.date) -> AlertDecision | None:
    """An alert when at least `min_services` service categories were involved within the window."""
    start = today - dt.timedelta(days=rule.window_days)
    active = [f for f in involvements if in_window(f, start, today)]
    services = sorted({f.service_category for f in active})
    if len(services) < rule.min_services:
        return None
    allocated = sorted((f for f in active if f.service_category == rule.notify_category and f.team),
                       key=lambda f: f.started_on, reverse=True)
    team = allocated[0].team if allocated else rule.fallback_team
    return AlertDecision(
        rule=rule.name, household_key=household_key, team=team, persons=tuple(sorted(persons)),
        services=tuple(services), involvements=tuple(sorted(f.ref for f in active)), window=(start, today),
        explanation=(f"{len(services)} services ({', '.join(services)}) involved with one household of "
                     f"{len(persons)} between {start.isoformat()} and {today.isoformat()}"),
        evidence={"involvements": [{"ref": f.ref, "person_id": f.person_id, "service": f.service_category,
                                    "started_on": f.started_on.isoformat(),
                                    "ended_on": f.ended_on.isoformat() if f.ended_on else None} for f in active]})
