"""Redaction of one person's bundle, without a store: hidden services leave no trace, `exists`
says only "known to", restricted involvements need a relationship, and the address of a child
in care is decided so that withholding it gives nothing away."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from hub.access.policy import Context, Level, load_policy
from hub.access.redaction import Redactor, in_care, on_caseload
from hub.services.persons import PersonBundle
from tests.unit.access.access_estate import TODAY, involvement, person

POLICY = load_policy("config/access_policy.toml")


def _rec(record) -> dict:
    d = record.model_dump(mode="json")
    return {"ref": record.ref.key, "system": record.ref.system, "entity": record.ref.entity.value,
            "source_id": record.ref.source_id, "version": 1, "observed_at": d["observed_at"],
            "content_hash": record.content_hash, "canonical": d["canonical"], "provenance": d["provenance"],
            "subject_key": None, "person_id": "P1"}


def bundle(*, hidden_extra: bool = False, looked_after: bool = False, restricted: bool = False) -> PersonBundle:
    members = [_rec(person("education", "ED-1", "Ann", "Lee", dt.date(2014, 1, 1), nhs="9434765919"))]
    invs = [_rec(involvement("education", "ED-I1", "ED-1", "education", team="education team", sensitivity="restricted" if restricted
                             else "normal"))]
    if hidden_extra:
        members.append(_rec(person("youth_justice", "YO-1", "Ann", "Lee", dt.date(2014, 1, 1), nhs="9434765919")))
        invs.append(_rec(involvement("youth_justice", "YO-I1", "YO-1", "youth_justice")))
    if looked_after:
        members.append(_rec(person("social_care", "SO-1", "Ann", "Lee", dt.date(2014, 1, 1), nhs="9434765919")))
        invs.append(_rec(involvement("social_care", "SO-I1", "SO-1", "social_care")))
    return PersonBundle("P1", "P1", 1, "Ann Lee", "2014-01-01", {}, members, invs, [], {}, [])


def view(roles, b, context=None):
    return Redactor(POLICY, POLICY.clearance(roles, context or Context()), TODAY).person(b)


def test_a_hidden_service_leaves_no_trace_at_all():
    plain = view(["education_welfare_officer"], bundle())
    with_hidden = view(["education_welfare_officer"], bundle(hidden_extra=True))
    assert json.dumps(plain, sort_keys=True) == json.dumps(with_hidden, sort_keys=True)
    assert "youth_justice" not in json.dumps({k: v for k, v in with_hidden.items() if k != "access"})


def test_the_same_hidden_service_is_shown_to_a_role_that_may_see_it():
    yjo = view(["youth_justice_officer"], bundle(hidden_extra=True))
    assert {s["category"] for s in yjo["services"]} == {"education", "youth_justice"}
    assert [t["category"] for t in yjo["timeline"]] == ["youth_justice"]  # education is only `exists` for a YJO
    assert {r["system"] for r in yjo["source_records"]} == {"youth_justice"}


def test_exists_says_known_to_and_nothing_more():
    eh = view(["early_help_worker"], bundle())
    assert eh["services"] == [{"category": "education", "level": "exists", "open": None, "involvements": None,
                               "last_started": None, "workers": None}]
    assert eh["timeline"] == [] and eh["open_involvements"] == []
    assert eh["collective_occurrences"]["last_90_days"]["child"] == ["education"]


def test_summary_shows_dates_and_worker_but_not_the_detail():
    sw = view(["social_worker"], bundle())
    (item,) = sw["timeline"]
    assert item["level"] == "summary" and item["started_on"] == "2026-09-01" and item["team"] == "education team"
    assert item["summary"] is None and item["source_id"] is None
    ewo = view(["education_welfare_officer"], bundle())
    assert ewo["timeline"][0]["summary"] and ewo["timeline"][0]["source_id"] == "ED-I1"


def test_a_restricted_involvement_needs_a_relationship_or_break_glass():
    base = view(["education_welfare_officer"], bundle(restricted=True))
    assert base["services"][0]["level"] == "exists" and base["timeline"] == []
    related = view(["education_welfare_officer"], bundle(restricted=True), Context(relationship=True))
    assert related["timeline"][0]["level"] == "full"


@pytest.mark.parametrize("field,ewo_value", [("ethnicity", None), ("health_conditions", None),
                                             ("first_language", "English")])
def test_fields_at_level_none_are_withheld(field, ewo_value):
    assert view(["education_welfare_officer"], bundle())["summary"][field] == ewo_value


def test_a_field_at_level_exists_says_only_whether_it_is_recorded():
    policy = load_policy("config/access_policy.toml")
    policy.document.roles["education_welfare_officer"].fields["ethnicity"] = Level.EXISTS
    out = Redactor(policy, policy.clearance(["education_welfare_officer"]), TODAY).person(bundle())
    assert out["summary"]["ethnicity"] == {"recorded": True}


def test_the_address_of_a_child_in_care_is_withheld_without_giving_away_that_the_child_is_in_care():
    # An education welfare officer may not know about social care; address_in_care is none for the role.
    not_in_care = view(["education_welfare_officer"], bundle())
    in_care_view = view(["education_welfare_officer"], bundle(looked_after=True))
    assert not_in_care["summary"]["address"] is None and in_care_view["summary"]["address"] is None
    assert json.dumps(not_in_care, sort_keys=True) == json.dumps(in_care_view, sort_keys=True)
    # A social worker knows about social care, sees an ordinary address in full, a placement at summary.
    sw_plain = view(["social_worker"], bundle())
    sw_care = view(["social_worker"], bundle(looked_after=True))
    assert sw_plain["summary"]["address"]["postcode"] == "DE1 1AA"
    assert sw_care["summary"]["address"]["postcode"] == "DE1 1AA"
    # Early help knows social care exists, and address_in_care is none: withheld only for the child in care.
    assert view(["early_help_worker"], bundle())["summary"]["address"]["postcode"] == "DE1 1AA"
    assert view(["early_help_worker"], bundle(looked_after=True))["summary"]["address"] is None


def test_caseload_by_worker_or_team_and_in_care():
    invs = [{"canonical": {"allocated_worker": "Sam Worker", "team": "Team North", "kind": "looked_after",
                           "status": "open"}}]
    assert on_caseload(invs, "sam worker", [])
    assert on_caseload(invs, None, ["team north"])
    assert not on_caseload(invs, "Someone Else", ["Team South"])
    assert not on_caseload(invs, None, [])
    assert in_care(invs, TODAY)
    closed = copy.deepcopy(invs)
    closed[0]["canonical"].update(status="closed", ended_on="2026-01-01")
    assert not in_care(closed, TODAY)
