"""The lifecycle state machine: every allowed and refused step, and the readiness gate."""

from __future__ import annotations

import itertools

import pytest

from routing.lifecycle import (
    GATES,
    ORDER,
    CheckResult,
    Direction,
    Phase,
    PhaseGateFailed,
    TransitionRefused,
    decide,
    target_of,
)
from routing.readiness import ReadinessFacts, ReadinessPolicy, ReconciliationSummary, evaluate

ADV, REV = Direction.ADVANCE, Direction.REVERT


def passing(target: Phase) -> list[CheckResult]:
    return [CheckResult(n, True, "ok") for n in GATES.get(target, ())]


@pytest.mark.parametrize(("current", "target"), list(itertools.pairwise(ORDER)))
def test_every_forward_step_is_allowed_when_its_checks_pass(current, target):
    t = decide("sc", current, ADV, passing(target))
    assert (t.from_phase, t.to_phase, t.direction) == (current, target, ADV)
    assert [c.name for c in t.checks] == list(GATES[target])


@pytest.mark.parametrize(("current", "target"), [(Phase.HUB_PRIMARY, Phase.CONNECTED),
                                                 (Phase.READ_ONLY, Phase.HUB_PRIMARY)])
def test_stepping_back_needs_no_check(current, target):
    assert decide("sc", current, REV, []).to_phase is target


def test_refused_steps():
    with pytest.raises(TransitionRefused, match="last phase"):
        target_of(Phase.DECOMMISSIONED, ADV)
    with pytest.raises(TransitionRefused, match="first phase"):
        target_of(Phase.CONNECTED, REV)
    with pytest.raises(TransitionRefused, match="decommissioned system cannot be stepped back"):
        decide("sc", Phase.DECOMMISSIONED, REV, [])


@pytest.mark.parametrize("target", [Phase.HUB_PRIMARY, Phase.READ_ONLY, Phase.DECOMMISSIONED])
def test_one_failing_or_missing_check_refuses_the_step_and_names_it(target):
    current = ORDER[target.rank - 1]
    checks = passing(target)
    checks[0] = CheckResult(checks[0].name, False, "3 drifted rows")
    with pytest.raises(PhaseGateFailed) as refused:
        decide("sc", current, ADV, checks)
    assert [c.name for c in refused.value.failed] == [checks[0].name]
    assert "3 drifted rows" in str(refused.value)
    with pytest.raises(PhaseGateFailed) as missing:
        decide("sc", current, ADV, checks[1:])
    assert missing.value.failed[0].detail == "not evaluated"


def test_phase_properties():
    assert [p.legacy_is_system_of_record for p in ORDER] == [True, False, False, False]
    assert [p.adapter_enabled for p in ORDER] == [True, True, False, False]
    assert [p.subscribed for p in ORDER] == [False, True, False, False]


def clean(**kw) -> ReconciliationSummary:
    return ReconciliationSummary(**{"legacy_count": 10, "hub_count": 10, "missing": 0, "extra": 0, "drifted": 0,
                                    "unmirrored": 0, "explained": 0, **kw})


def facts(**kw) -> ReadinessFacts:
    return ReadinessFacts(**{"system": "sc", "phase": Phase.HUB_PRIMARY, "reconciliation": clean(), **kw})


WEEK = ReadinessPolicy(quiet_days=7)


def results(f: ReadinessFacts, policy: ReadinessPolicy = WEEK) -> dict[str, CheckResult]:
    return {r.name: r for r in evaluate(GATES[Phase.DECOMMISSIONED], f, policy)}


def test_readiness_checks_pass_with_clean_facts():
    r = results(facts(days_since_last_write=8.0, archive={"path": "a.gz", "rows": 10, "sha256": "ab" * 32}))
    assert all(c.passed for c in r.values()), [c for c in r.values() if not c.passed]


def test_readiness_checks_explain_each_failure_with_evidence():
    r = results(facts(reconciliation=clean(drifted=2, missing=1, examples={"drifted": ["clients/C1"]}),
                      open_quarantine=3, review_backlog=4, pending_writes=1, days_since_last_write=2.0,
                      legacy_owned_fields=("person.birth_date",)))
    assert not any(c.passed for c in r.values())
    assert r["reconciliation_clean"].evidence["examples"] == {"drifted": ["clients/C1"]}
    assert "3 unexplained" in r["reconciliation_clean"].detail
    assert "3 open quarantine entries" in r["quarantine_cleared"].detail
    assert r["review_backlog_low"].evidence == {"open": 4, "max": 0}
    assert "person.birth_date" in r["system_of_record_is_hub"].detail
    assert "7 quiet day(s) required" in r["no_recent_writes"].detail
    assert "no verified final archive" in r["final_archive_written"].detail


def test_reconciliation_that_could_not_run_fails_and_explained_differences_pass():
    r = results(facts(reconciliation=None, reconciliation_error="database is locked"))
    assert not r["reconciliation_clean"].passed and "database is locked" in r["reconciliation_clean"].detail
    assert results(facts(reconciliation=clean(explained=5)))["reconciliation_clean"].passed
    assert results(facts(review_backlog=None))["review_backlog_low"].passed
    assert results(facts(review_backlog=2), ReadinessPolicy(max_review_backlog=2))["review_backlog_low"].passed
