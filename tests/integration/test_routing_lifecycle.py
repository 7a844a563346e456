"""Lifecycle on both stores with real legacy systems (SQLite databases read by the sql adapter):
a refused advance explained, a revert, the full path to decommissioned with its archive, and the
consolidated view answering the same facts after every step."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.lifecycle import verify_archive
from hub.services import quarantine as q
from hub.services.persons import SearchQuery, get_person, search_persons
from hub.store.tables.access import AuditRow
from hub.store.tables.lifecycle import PhaseTransitionRow
from routing.lifecycle import Phase, PhaseGateFailed, TransitionRefused
from routing.readiness import ReadinessPolicy
from tests.integration.routing_legacy import LegacySystem, make_hub, sync


@pytest.fixture
def estate(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    sc = LegacySystem(tmp_path, "social_care", "social_care")
    ed = LegacySystem(tmp_path, "education", "education")
    sc.client("C1", "Amy", "Smith")
    sc.client("C2", "Ben", "Jones", dob="2012-07-09")
    ed.client("U1", "Amy", "Smith")
    hub = make_hub(store, tmp_path)
    hub.extras["lifecycle"].policy = ReadinessPolicy(quiet_days=0)
    sync(hub, "social_care", "education")
    yield hub, sc, ed
    hub.close()


def facts(hub) -> dict:
    """What the consolidated view answers for every person: golden values with provenance, records."""
    out = {}
    for p in search_persons(hub.store, SearchQuery(page_size=100)).results:
        person = get_person(hub.store, p["id"])
        out[person["name"]] = (person["golden"]["values"], person["golden"]["provenance"],
                               sorted(r["ref"] for r in person["source_records"]))
    return out


def transitions(hub, system: str) -> list[PhaseTransitionRow]:
    with hub.store.transaction() as s:
        return list(s.execute(select(PhaseTransitionRow).where(PhaseTransitionRow.system == system)
                              .order_by(PhaseTransitionRow.id)).scalars())


def test_refused_advance_is_explained_and_audited_then_passes_once_fixed(estate):
    hub, sc, _ = estate
    lifecycle = hub.extras["lifecycle"]
    sc.client("C3", "Cal", None)  # no surname: the mapping quarantines it
    sync(hub, "social_care")
    with pytest.raises(PhaseGateFailed) as refused:
        lifecycle.advance("social_care", who="pat", reason="front end moves to the hub")
    assert [c.name for c in refused.value.failed] == ["quarantine_cleared"]
    assert "1 open quarantine entry" in str(refused.value)
    audit = transitions(hub, "social_care")[-1]
    assert (audit.outcome, audit.who, audit.why, audit.to_phase) == ("refused", "pat", "front end moves to the hub",
                                                                     "hub_primary")
    assert {c["name"]: c["passed"] for c in audit.checks}["quarantine_cleared"] is False
    assert lifecycle.phase("social_care") is Phase.CONNECTED

    entry = q.list_quarantine(hub.store, system="social_care")["entries"][0]
    q.accept(hub.store, entry["id"], "test record, never a real child")
    result = lifecycle.advance("social_care", who="pat", reason="quarantine accepted")
    assert (result["from"], result["to"]) == ("connected", "hub_primary")
    assert transitions(hub, "social_care")[-1].outcome == "done"
    with hub.store.transaction() as s:  # and in the hash-chained audit log
        audit_rows = s.execute(select(AuditRow.outcome, AuditRow.actor, AuditRow.purpose).where(
            AuditRow.action == "phase_change").order_by(AuditRow.seq)).all()
    assert [tuple(r) for r in audit_rows] == [("refused", "pat", "front end moves to the hub"),
                                              ("ok", "pat", "quarantine accepted")]


def test_drift_behind_the_hubs_back_blocks_the_step_until_ingested(estate):
    hub, sc, _ = estate
    lifecycle = hub.extras["lifecycle"]
    sc.execute("UPDATE clients SET postcode = 'ZZ9 9ZZ' WHERE client_id = 'C2'")
    checks = lifecycle.checks("social_care")
    rec = next(c for c in checks["checks"] if c["name"] == "reconciliation_clean")
    assert not checks["ready"] and rec["evidence"]["drifted"] == 1
    assert rec["evidence"]["examples"] == {"drifted": ["clients/C2"]}
    sync(hub, "social_care")
    assert lifecycle.checks("social_care")["ready"]


def test_revert_is_allowed_until_decommissioned_and_every_step_keeps_the_same_facts(estate):
    hub, sc, _ = estate
    lifecycle = hub.extras["lifecycle"]
    before = facts(hub)
    lifecycle.advance("social_care", who="pat", reason="step 1")
    assert facts(hub) == before
    back = lifecycle.revert("social_care", who="pat", reason="front end not ready")
    assert (back["from"], back["to"]) == ("hub_primary", "connected")
    with pytest.raises(TransitionRefused, match="first phase"):
        lifecycle.revert("social_care", who="pat", reason="again")
    with pytest.raises(TransitionRefused, match="needs a reason"):
        lifecycle.advance("social_care", who="pat", reason=" ")
    for step in ("hub_primary", "read_only", "decommissioned"):
        assert lifecycle.advance("social_care", who="pat", reason=f"to {step}")["to"] == step
        assert facts(hub) == before, f"the view changed when social_care moved to {step}"
    detail = lifecycle.detail("social_care")
    assert detail["phase"] == "decommissioned" and not detail["adapter_enabled"]
    assert [t["outcome"] for t in detail["transitions"]][:1] == ["done"]
    with pytest.raises(TransitionRefused, match="cannot be stepped back"):
        lifecycle.revert("social_care", who="pat", reason="oops")
    assert transitions(hub, "social_care")[-1].outcome == "refused"

    figures = hub.ingest.run("social_care")
    assert figures.status == "refused" and "decommissioned: its adapter is off" in figures.error
    archive = detail["archive"]
    manifest = json.loads(Path(archive["path"].removesuffix(".jsonl.gz") + ".manifest.json").read_text())
    assert verify_archive(manifest) and manifest["rows"] == 2 and manifest["by_entity"] == {"clients": 2}
    with gzip.open(archive["path"], "rt") as f:
        assert {json.loads(line)["source_id"] for line in f} == {"C1", "C2"}
    sc.execute("DELETE FROM clients")  # the legacy database is gone: the hub still answers
    assert facts(hub) == before


def test_read_only_needs_the_hub_as_system_of_record_and_quiet_days(estate, tmp_path, monkeypatch):
    hub, sc, _ = estate
    lifecycle = hub.extras["lifecycle"]
    lifecycle.advance("social_care", who="pat", reason="step 1")
    sor = tmp_path / "sor.toml"
    sor.write_text('[[override]]\nsystem = "social_care"\nentity = "person"\nfield = "birth_date"\n'
                   'owner = "legacy"\nreason = "dates of birth stay with social care"\n')
    lifecycle.sor_path = str(sor)
    with pytest.raises(PhaseGateFailed) as refused:
        lifecycle.advance("social_care", who="pat", reason="freeze")
    assert [c.name for c in refused.value.failed] == ["system_of_record_is_hub"]
    assert "person.birth_date" in refused.value.failed[0].detail
    lifecycle.sor_path = str(tmp_path / "none.toml")
    sc.execute("UPDATE clients SET forename = 'Benjamin' WHERE client_id = 'C2'")
    sync(hub, "social_care")
    lifecycle.policy = ReadinessPolicy(quiet_days=3)
    with pytest.raises(PhaseGateFailed) as noisy:
        lifecycle.advance("social_care", who="pat", reason="freeze")
    assert [c.name for c in noisy.value.failed] == ["no_recent_writes"]
    ingest = hub.ingest.run("social_care")
    assert ingest.status == "ok"  # hub_primary still mirrors
    lifecycle.policy = ReadinessPolicy(quiet_days=0)
    lifecycle.advance("social_care", who="pat", reason="freeze")
    assert hub.ingest.run("social_care").status == "refused"
    assert hub.extras["reconciler"].run("social_care").summary.clean  # read_only still reconciles
