"""`hub bench blocking`: the pairs per record of each rule, from the county-shaped population."""

from __future__ import annotations

from click.testing import CliRunner

from hub.bench.blocking import command, partners_per_record, population_features
from identity_index.blocking import RULES, candidate_pair_array
from identity_index.features import PersonFeatures


def test_the_population_has_the_contacts_refining_cannot_split():
    records = population_features(2000, seed=3)
    contacts = [f for f in records if "contact-of" in f.ref]
    assert contacts and all(f.dob is None and f.given and f.family for f in contacts)
    assert len({f.ref.split("/")[0] for f in records}) == 2000


def test_partners_per_record_are_the_bulk_links_pairs():
    records = population_features(1500, seed=4)
    figures = partners_per_record(records, ("family_initial", "dob"))
    left, _ = candidate_pair_array(records, [RULES["family_initial"]])
    assert figures["family_initial"] == 2 * len(left) / len(records)
    assert set(figures) == {"family_initial", "dob"}
    namesakes = [PersonFeatures(ref=f"contact/{i}", given="david", family="smith") for i in range(120)]
    windowed = partners_per_record(records + namesakes, ("family_initial",))
    without = partners_per_record(records + namesakes, ("family_initial",), window=None)
    assert without["family_initial"] > windowed["family_initial"]  # 120 contacts without a birth date: one block


def test_the_command_prints_each_rule_at_each_scale():
    result = CliRunner().invoke(command, ["--people", "400", "--people", "800"])
    assert result.exit_code == 0, result.output
    assert "partners / record, 400 people" in result.output and "800 people" in result.output
    assert all(name in result.output for name in RULES)
