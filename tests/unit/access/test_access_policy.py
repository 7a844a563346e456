"""The access policy file: every sample role × service category × field, how a relationship and
break-glass raise levels, and errors that name the file and the field."""

from __future__ import annotations

import pytest

from hub.access.policy import (
    CATEGORIES,
    FIELDS,
    Context,
    Level,
    PolicyError,
    load_policy,
    parse_policy,
)

N, E, S, F = Level.NONE, Level.EXISTS, Level.SUMMARY, Level.FULL

# The sample policy, written out: what each role sees with no relationship and no break-glass.
EXPECTED_CATEGORIES = {
    #                          social_care youth_justice early_help education youth_service childrens_centres health
    "social_worker":             (F, S, S, S, E, E, E),
    "early_help_worker":         (E, N, F, E, S, S, N),
    "education_welfare_officer": (N, N, E, F, N, N, N),
    "youth_justice_officer":     (E, F, N, E, S, N, N),
    "data_steward":              (E, E, E, E, E, E, E),
    "programme_manager":         (N, N, N, N, N, N, N),
    "integration_admin":         (N, N, N, N, N, N, N),
    "business_application":      (N, N, N, N, N, N, N),
}
EXPECTED_FIELDS = {
    #                          identifiers address address_in_care contacts ethnicity first_language health_conditions
    "social_worker":             (F, F, S, S, S, F, N),
    "early_help_worker":         (S, S, N, S, N, F, N),
    "education_welfare_officer": (S, S, N, N, N, F, N),
    "youth_justice_officer":     (S, S, N, N, N, F, N),
    "data_steward":              (F, S, N, N, N, N, N),
    "programme_manager":         (N, N, N, N, N, N, N),
    "integration_admin":         (N, N, N, N, N, N, N),
    "business_application":      (N, N, N, N, N, N, N),
}


@pytest.fixture(scope="module")
def policy():
    return load_policy("config/access_policy.toml")


def test_the_sample_policy_has_exactly_the_sample_roles(policy):
    assert set(policy.roles) == set(EXPECTED_CATEGORIES)
    assert CATEGORIES == ("social_care", "youth_justice", "early_help", "education", "youth_service",
                          "childrens_centres", "health")


@pytest.mark.parametrize("role", sorted(EXPECTED_CATEGORIES))
@pytest.mark.parametrize("index", range(len(CATEGORIES)))
def test_each_role_and_service_category(policy, role, index):
    category = CATEGORIES[index]
    assert policy.clearance([role]).category(category) == EXPECTED_CATEGORIES[role][index], (role, category)


@pytest.mark.parametrize("role", sorted(EXPECTED_FIELDS))
@pytest.mark.parametrize("index", range(len(FIELDS)))
def test_each_role_and_sensitive_field(policy, role, index):
    field = FIELDS[index]
    assert policy.clearance([role]).field(field) == EXPECTED_FIELDS[role][index], (role, field)


def test_a_relationship_raises_but_never_lowers(policy):
    base = policy.clearance(["education_welfare_officer"])
    related = policy.clearance(["education_welfare_officer"], Context(relationship=True))
    assert base.category("social_care") == N and related.category("social_care") == E
    assert related.category("early_help") == S
    for c in CATEGORIES:
        assert related.category(c) >= base.category(c)
    for f in FIELDS:
        assert related.field(f) >= base.field(f)


def test_break_glass_raises_everything_only_for_roles_allowed_to_break_glass(policy):
    raised = policy.clearance(["youth_justice_officer"], Context(break_glass=True))
    assert all(raised.category(c) == F for c in CATEGORIES)
    assert all(raised.field(f) == F for f in FIELDS)
    steward = policy.clearance(["data_steward"], Context(break_glass=True))
    assert steward.category("social_care") == E  # data stewards may not break glass


def test_several_roles_get_the_highest_level_of_each(policy):
    both = policy.clearance(["education_welfare_officer", "youth_justice_officer"])
    assert both.category("education") == F and both.category("youth_justice") == F
    assert both.category("social_care") == E


def test_unknown_roles_grant_nothing(policy):
    clearance = policy.clearance(["no_such_role"])
    assert all(lvl == N for lvl in clearance.categories.values())
    assert not policy.permits(["no_such_role"], "view")


@pytest.mark.parametrize("role,permission,allowed", [
    ("social_worker", "view", True), ("social_worker", "break_glass", True), ("social_worker", "audit", False),
    ("data_steward", "audit", True), ("data_steward", "break_glass", False), ("data_steward", "export", True),
    ("programme_manager", "console", True), ("programme_manager", "view", False),
    ("integration_admin", "users", True), ("integration_admin", "search", False),
    ("education_welfare_officer", "console", False),
    ("business_application", "write", True), ("business_application", "view", False),
])
def test_permissions(policy, role, permission, allowed):
    assert policy.permits([role], permission) is allowed


def test_an_unknown_permission_is_an_error_not_a_refusal(policy):
    with pytest.raises(PolicyError, match="unknown permission"):
        policy.permits(["social_worker"], "fly")


@pytest.mark.parametrize("text,message", [
    ('[roles.x]\nlabel = "X"\ncategories = { magic = "full" }', "roles.x.categories.*unknown service category magic"),
    ('[roles.x]\nlabel = "X"\nfields = { shoe_size = "full" }', "roles.x.fields.*unknown field shoe_size"),
    ('[roles.x]\nlabel = "X"\ncategories = { education = "most" }', "level 'most'"),
    ('[roles.x]\nlabel = "X"\npermissions = ["fly"]', "unknown permission fly"),
    ('[systems]\nsims = "schools"\n[roles.x]\nlabel = "X"', "unknown service category for sims=schools"),
    ('roles = [', "policy.toml"),
])
def test_errors_name_the_file_and_the_field(text, message):
    with pytest.raises(PolicyError, match=message) as info:
        parse_policy(text, "policy.toml")
    assert str(info.value).startswith("policy.toml")


def test_the_policy_digest_changes_with_the_file():
    a = parse_policy('[roles.x]\nlabel = "X"')
    b = parse_policy('[roles.x]\nlabel = "Y"')
    assert a.digest != b.digest
