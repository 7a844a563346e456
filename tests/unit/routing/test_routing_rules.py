"""Routing rules: matching by system, entity, changed field and content; per-route transforms;
alert rule over a household within 90 days; the flat field vocabulary."""

from __future__ import annotations

import datetime as dt

import pytest

from routing.alerts import InvolvementFact, evaluate_household
from routing.fields import (
    UnknownPath,
    apply_person_paths,
    changed_fields,
    changed_paths,
    flatten_person,
    writeback_paths,
)
from routing.rules import (
    AlertRule,
    Change,
    Route,
    RoutingConfig,
    RoutingConfigError,
    Transform,
    deliveries,
    load_routing,
    matches,
    transform,
)

PERSON = {"names": [{"given": "Amy", "family": "Smith", "type": "legal"}],
          "addresses": [{"lines": ["1 High St"], "postcode": "AB1 2CD", "uprn": "100"}], "sex": "female"}
MOVED = {**PERSON, "addresses": [{"lines": ["9 New Rd"], "postcode": "ZZ9 9ZZ", "uprn": "200"}]}


def change(system: str = "social_care", before=PERSON, after=MOVED) -> Change:
    return Change(system, "person", "C1", changed_paths("person", before, after), flatten_person(after))


ADDRESS_ROUTE = Route.model_validate({
    "name": "address", "when": {"source_system": "social_care", "changed": ["address"]},
    "to": ["education", "youth_service", "social_care"],
    "transform": {"select": ["address"], "drop": ["address.uprn"], "rename": {"address.line1": "address.street"},
                  "set": {"note": "from social care"}}})


def test_changed_fields_and_paths():
    assert changed_fields("person", PERSON, MOVED) == ["address"]
    assert changed_paths("person", PERSON, MOVED) == {"address.line1": "9 New Rd", "address.postcode": "ZZ9 9ZZ",
                                                       "address.uprn": "200"}
    assert changed_fields("person", PERSON, PERSON) == []
    assert "name" in changed_fields("person", None, PERSON)


def test_route_matches_system_entity_changed_field_and_content():
    assert matches(ADDRESS_ROUTE, change())
    assert not matches(ADDRESS_ROUTE, change(system="education"))
    new = Change("social_care", "person", "C9", changed_paths("person", None, MOVED), flatten_person(MOVED), True)
    assert not matches(ADDRESS_ROUTE, new)  # a record seen for the first time is not a change of address
    assert matches(ADDRESS_ROUTE.model_copy(update={"when": ADDRESS_ROUTE.when.model_copy(
        update={"include_new": True})}), new)
    renamed = {**PERSON, "names": [{"given": "Amy", "family": "Jones", "type": "legal"}]}
    assert not matches(ADDRESS_ROUTE, change(after=renamed))
    by_content = Route.model_validate({"name": "c", "when": {"changed": ["address"], "match": {"sex": "male"}},
                                       "to": ["x"]})
    assert not matches(by_content, change())
    assert matches(by_content.model_copy(update={"when": by_content.when.model_copy(
        update={"match": {"sex": "female"}})}), change())


def test_route_transforms_and_never_sends_back_to_the_source():
    out = deliveries(RoutingConfig(route=[ADDRESS_ROUTE]), change())
    assert [d.target for d in out] == ["education", "youth_service"]
    assert out[0].values == {"address.street": "9 New Rd", "address.postcode": "ZZ9 9ZZ",
                             "note": "from social care"}


def test_transform_map_recodes_values():
    t = Transform(map={"sex": {"female": "F"}}, select=["sex"])
    assert transform(t, {"sex": "female", "ethnicity": "x"}) == {"sex": "F"}


def test_routing_file_is_validated(tmp_path):
    f = tmp_path / "routing.toml"
    f.write_text('[[route]]\nname = "r"\nwhen = { entity = "person" }\n')
    with pytest.raises(RoutingConfigError, match=r"routing.toml: route.0.to: Field required"):
        load_routing(f)
    f.write_text('[readiness]\nquiet_days = -1\n')
    with pytest.raises(RoutingConfigError, match="readiness.quiet_days"):
        load_routing(f)
    assert load_routing(tmp_path / "none.toml") == RoutingConfig()


def test_repository_config_loads():
    config = load_routing("config/routing.toml")
    assert config.route and config.alert and config.readiness.quiet_days >= 0


RULE = AlertRule(name="eh", min_services=3, window_days=90, notify_category="early_help", fallback_team="EH Hub")
TODAY = dt.date(2026, 9, 1)


def fact(person: str, category: str, started: dt.date, ended: dt.date | None = None, team: str | None = None):
    return InvolvementFact(person, f"{category}/{person}/{started}", category, started, ended, team)


def test_alert_when_three_services_within_90_days_to_the_allocated_team():
    facts = [fact("P1", "social_care", dt.date(2026, 8, 1)), fact("P2", "education", dt.date(2025, 1, 1)),
             fact("P2", "early_help", dt.date(2026, 7, 1), team="Early Help North"),
             fact("P3", "youth_justice", dt.date(2026, 1, 1), ended=dt.date(2026, 3, 1))]
    decision = evaluate_household(RULE, "H", ["P1", "P2", "P3"], facts, TODAY)
    assert decision is not None
    assert decision.services == ("early_help", "education", "social_care")  # youth justice ended before the window
    assert decision.team == "Early Help North"
    assert "3 services" in decision.explanation and "2026-06-03" in decision.explanation


def test_no_alert_below_the_threshold_or_outside_the_window_and_fallback_team():
    old = [fact("P1", "social_care", dt.date(2025, 1, 1), ended=dt.date(2025, 2, 1)),
           fact("P1", "education", dt.date(2026, 8, 1)), fact("P2", "youth_service", dt.date(2026, 8, 2))]
    assert evaluate_household(RULE, "H", ["P1", "P2"], old, TODAY) is None
    three = old + [fact("P2", "health", dt.date(2026, 8, 20))]
    assert evaluate_household(RULE, "H", ["P1", "P2"], three, TODAY).team == "EH Hub"


def test_person_changes_apply_to_current_values_and_unknown_paths_are_refused():
    out = apply_person_paths(PERSON, {"name.family": "Jones", "address.postcode": "XY1 1ZZ", "contact.phone": "01"})
    flat = flatten_person(out)
    assert (flat["name.family"], flat["address.line1"], flat["address.postcode"], flat["contact.phone"]) == (
        "Jones", "1 High St", "XY1 1ZZ", "01")
    with pytest.raises(UnknownPath, match="shoe_size"):
        apply_person_paths(PERSON, {"shoe_size": 3})
    assert writeback_paths("person", {"name.given": "A", "address.line1": "x"}) == {
        "person.names[0].given": "A", "person.addresses[0].lines[0]": "x"}
    assert writeback_paths("involvement", {"ended_on": "2026-01-01"}) == {"involvement.ended_on": "2026-01-01"}
