"""The access policy through the web pages and the JSON API, role by role, on both stores: every
sample role × every service category and sensitive field shows exactly what the policy allows."""

from __future__ import annotations

import re

import pytest

from admin_ui import create_app
from hub.access.policy import CATEGORIES, Context, Level, load_policy
from tests.support.auth import create_user, login_client
from tests.unit.access.access_estate import SUMMARY_TEXT, estate_records, ids, load, make_hub

POLICY = load_policy("config/access_policy.toml")
VIEWERS = [r for r in POLICY.roles if POLICY.permits([r], "view")]
NON_VIEWERS = [r for r in POLICY.roles if not POLICY.permits([r], "view")]
FIELD_IDS = ("identifiers", "ethnicity", "first_language", "health_conditions", "contacts")


@pytest.fixture
def estate(store, tmp_path):
    hub = make_hub(store.url, str(tmp_path / "systems"))
    assert load(hub, estate_records()) == len(estate_records())
    app = create_app(hub, testing=True)
    clients = {}
    for n, role in enumerate(POLICY.roles):
        create_user(hub, f"user{n}", [role])
        clients[role] = login_client(app, f"user{n}")
    yield hub, app, clients, ids(hub)
    hub.bus.close()
    hub.store.dispose()


def _expected(role: str) -> tuple[dict[str, Level], dict[str, Level]]:
    c = POLICY.clearance([role], Context())
    return {k: c.category(k) for k in CATEGORIES}, {f: c.field(f) for f in c.fields}


def test_every_role_sees_exactly_what_the_policy_allows_in_the_api_and_the_pages(estate):
    _, _, clients, people = estate
    amy = people["amy"]
    for role in VIEWERS:
        cats, fields = _expected(role)
        api = clients[role].get(f"/api/v1/persons/{amy}")
        assert api.status_code == 200, role
        p = api.get_json()
        shown = {c for c, lvl in cats.items() if lvl >= Level.EXISTS}
        detailed = {c for c, lvl in cats.items() if lvl >= Level.SUMMARY}
        assert {s["category"] for s in p["services"]} == shown, role
        for s in p["services"]:
            assert s["level"] == cats[s["category"]].label, (role, s)
            assert (s["involvements"] is None) == (cats[s["category"]] == Level.EXISTS), (role, s)
        assert {t["category"] for t in p["timeline"]} == detailed, role
        for t in p["timeline"]:
            assert (t["summary"] == SUMMARY_TEXT) == (cats[t["category"]] == Level.FULL), (role, t)
        assert {r["system"] for r in p["source_records"]} == detailed, role
        assert set(p["collective_occurrences"]["last_365_days"]["child"]) == shown, role
        summary = p["summary"]
        for field in FIELD_IDS:
            level = fields[field]
            value = summary[field]
            if level == Level.NONE:
                assert value is None, (role, field)
            elif level == Level.EXISTS:
                assert value == {"recorded": True}, (role, field)
            else:
                assert value and value != {"recorded": True}, (role, field)
        # Amy is looked after: her address is governed by address_in_care.
        assert (summary["address"] is not None) == (fields["address_in_care"] >= Level.SUMMARY), role
        assert (p["household"] != []) == (fields["address_in_care"] >= Level.SUMMARY), role
        assert ([f["name"] for f in p["family"]] == ["Jane Smith"]) == (cats["social_care"] >= Level.SUMMARY), role

        html = clients[role].get(f"/persons/{amy}").get_data(as_text=True)
        for c in CATEGORIES:
            assert (f'data-category="{c}"' in html) == (c in shown), (role, c)
            if c not in shown and c != "health":  # "health" is also the footer's /health link
                assert c not in html, (role, c)
        assert (SUMMARY_TEXT in html) == any(lvl == Level.FULL for lvl in cats.values()), role
        for field in FIELD_IDS:
            cell = re.search(rf'id="field-{field}">(.*?)</dd>', html, re.DOTALL).group(1)
            assert ("Not shown to your role" in cell) == (fields[field] == Level.NONE), (role, field)


def test_roles_without_view_are_refused_everywhere(estate):
    _, _, clients, people = estate
    for role in NON_VIEWERS:
        assert clients[role].get(f"/persons/{people['amy']}").status_code == 403
        assert clients[role].get(f"/api/v1/persons/{people['amy']}").status_code == 403
        assert clients[role].get("/api/v1/persons?name=amy").status_code == 403
        assert clients[role].get("/persons?name=amy").status_code == 403


def test_a_relationship_raises_the_level(estate):
    hub, app, _, people = estate
    create_user(hub, "ewo_on_case", ["education_welfare_officer"], teams=["Team North"])
    create_user(hub, "ewo_mother", ["education_welfare_officer"], worker_name="Erin Helper")
    for username in ("ewo_on_case", "ewo_mother"):  # Amy's own social worker's team; her mother's worker
        client = login_client(app, username)
        p = client.get(f"/api/v1/persons/{people['amy']}").get_json()
        assert p["access"]["relationship"] is True, username
        cats = {s["category"]: s["level"] for s in p["services"]}
        assert cats["social_care"] == "exists" and cats["early_help"] == "summary", username
    other = login_client(app, "user" + str(POLICY.roles.index("education_welfare_officer")))
    p = other.get(f"/api/v1/persons/{people['amy']}").get_json()
    assert p["access"]["relationship"] is False
    assert "social_care" not in {s["category"] for s in p["services"]}


def test_an_unknown_person_is_404_and_someone_elses_id_gives_no_more_than_the_role_allows(estate):
    _, _, clients, people = estate
    ewo = clients["education_welfare_officer"]
    assert ewo.get("/api/v1/persons/PNOSUCHPERSON").status_code == 404
    assert ewo.get("/persons/PNOSUCHPERSON").status_code == 404
    jane = ewo.get(f"/api/v1/persons/{people['jane']}").get_json()
    # Jane is known to social care (hidden from the role) and early help (exists): nothing else shows.
    assert [s["category"] for s in jane["services"]] == ["early_help"]
    assert jane["services"][0]["involvements"] is None and jane["family"] == []


def test_subject_access_export_holds_everything_with_provenance_for_stewards_only(estate):
    _, _, clients, people = estate
    steward = clients["data_steward"]
    exported = steward.get(f"/persons/{people['amy']}/export.json")
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    body = exported.get_json()
    assert {r["system"] for r in body["records"] if r["entity"] == "person"} == set(CATEGORIES)
    assert all(r["provenance"]["adapter"] == "test" for r in body["records"])
    assert {r["entity"] for r in body["records"]} == {"person", "involvement", "relationship"}
    csv_text = steward.get(f"/persons/{people['amy']}/export.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("person_id,system,entity,source_id,observed_at,adapter")
    assert "health_conditions[0],asthma" in csv_text
    assert clients["social_worker"].get(f"/persons/{people['amy']}/export.json").status_code == 403
    assert steward.get(f"/persons/{people['amy']}/export.xml").status_code == 404
