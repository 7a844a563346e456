"""System-of-record matrix: derived from phases, overridden from config; survivorship obeys it."""

from __future__ import annotations

import pytest

from hub.golden import golden_record
from routing.lifecycle import Phase
from routing.sor import HUB, SorConfigError, SorMatrix, SorOverride, load_overrides


def test_matrix_follows_phases():
    m = SorMatrix({"sc": Phase.CONNECTED, "ed": Phase.HUB_PRIMARY, "ys": Phase.READ_ONLY,
                   "cc": Phase.DECOMMISSIONED})
    assert m.owner("sc", "person", "address") == "sc"
    assert {m.owner(s, "person", "address") for s in ("ed", "ys", "cc")} == {HUB}
    assert m.owner("unknown", "involvement", "status") == "unknown"  # a new system starts connected
    assert m.owner(HUB, "person", "name") == HUB
    assert m.legacy_owned_fields("ed") == []
    assert "person.address" in m.legacy_owned_fields("sc")


def test_overrides_specific_beats_general_and_named_owner_applies_while_connected():
    overrides = [SorOverride(entity="person", owner="hub", reason="hub owns people"),
                 SorOverride(system="ed", entity="person", field="birth_date", owner="legacy", reason="UPN dob"),
                 SorOverride(entity="person", field="ethnicity", owner="sc", reason="sc asks")]
    m = SorMatrix({"sc": Phase.CONNECTED, "ed": Phase.HUB_PRIMARY}, overrides)
    assert m.owner("sc", "person", "address") == HUB  # the general override
    assert m.ownership("ed", "person", "birth_date").source == "override: UPN dob"
    assert m.owner("ed", "person", "birth_date") == "ed"  # kept by ed past hub_primary
    assert m.legacy_owned_fields("ed") == ["person.birth_date"]
    assert m.owner("ed", "person", "ethnicity") == "sc"
    gone = SorMatrix({"sc": Phase.READ_ONLY, "ed": Phase.HUB_PRIMARY}, overrides)
    assert gone.owner("ed", "person", "ethnicity") == HUB  # sc is no longer a system of record


def test_overrides_file_is_validated_with_the_file_and_entry_named(tmp_path):
    good = tmp_path / "sor.toml"
    good.write_text('[[override]]\nsystem = "sc"\nentity = "person"\nfield = "sex"\nowner = "hub"\n')
    assert load_overrides(good)[0].owner == "hub"
    assert load_overrides(tmp_path / "absent.toml") == []
    bad = tmp_path / "bad.toml"
    bad.write_text('[[override]]\nentity = "person"\nfield = "shoe_size"\nowner = "hub"\n')
    with pytest.raises(SorConfigError, match=r"bad.toml: override\[0\]: unknown entity or field person.shoe_size"):
        load_overrides(bad)
    bad.write_text('[[override]]\nentity = "person"\n')
    with pytest.raises(SorConfigError, match=r"override\[0\]: owner"):
        load_overrides(bad)


def member(system: str, family: str, at: str, dob: str = "2015-03-02") -> dict:
    return {"ref": f"{system}/person/1", "system": system, "source_id": "1", "observed_at": at,
            "person": {"names": [{"given": "Amy", "family": family, "type": "legal"}],
                       "birth_date": {"value": dob, "precision": "day"}}}


def test_survivorship_without_matrix_takes_the_most_recent():
    g = golden_record([member("sc", "Smith", "2026-01-01"), member("ed", "Smyth", "2026-02-01")])
    assert g["values"]["name"]["family"] == "Smyth"
    assert g["provenance"]["name"]["rule"] == "most_recent"


def test_survivorship_legacy_system_of_record_beats_a_newer_hub_record():
    members = [member("sc", "Smith", "2026-01-01"), member(HUB, "Jones", "2026-03-01")]
    g = golden_record(members, SorMatrix({"sc": Phase.CONNECTED}))
    assert (g["values"]["name"]["family"], g["provenance"]["name"]["rule"]) == ("Smith", "legacy_system_of_record")


def test_survivorship_hub_record_beats_newer_mirror_of_a_hub_owned_system():
    members = [member("sc", "Smith", "2026-04-01"), member(HUB, "Jones", "2026-03-01")]
    g = golden_record(members, SorMatrix({"sc": Phase.HUB_PRIMARY}))
    assert (g["values"]["name"]["family"], g["provenance"]["name"]["system"]) == ("Jones", HUB)
    assert g["provenance"]["name"]["rule"] == "hub_record"


def test_survivorship_phase_change_alone_keeps_the_same_facts():
    members = [member("sc", "Smith", "2026-01-01"), member("ed", "Smyth", "2026-02-01")]
    before = golden_record(members, SorMatrix({"sc": Phase.CONNECTED, "ed": Phase.CONNECTED}))
    after = golden_record(members, SorMatrix({"sc": Phase.HUB_PRIMARY, "ed": Phase.CONNECTED}))
    assert before["values"] == after["values"]
    assert before["provenance"]["name"]["system"] == after["provenance"]["name"]["system"] == "ed"


def test_survivorship_named_owner_override_wins_for_its_field_only():
    members = [member("health", "Smith", "2026-01-01", dob="2015-03-03"),
               member("sc", "Smyth", "2026-02-01"), member("ed", "Smyth", "2026-02-02")]
    m = SorMatrix({"health": Phase.CONNECTED}, [SorOverride(entity="person", field="birth_date", owner="health")])
    g = golden_record(members, m)
    assert g["values"]["birth_date"]["value"] == "2015-03-03"  # health's, though sc and ed agree otherwise
    assert g["provenance"]["birth_date"]["rule"].startswith("system_of_record (override)")
    assert g["provenance"]["name"]["system"] == "ed"
