"""The write path on both stores: routed to the legacy system of record and back through the
mirror; written to the hub and propagated once the hub is system of record; version conflicts
(409), idempotency keys, and a legacy system that is down (retried, surfaced, not lost)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.audit import verify
from hub.routing_worker import drain, list_deliveries
from hub.services.persons import SearchQuery, get_person, search_persons
from hub.store.tables.access import AuditRow
from hub.store.tables.messaging import MessageJournalRow
from hub.writes import IdempotencyKeyReused, WriteConflict, WriteRefused
from routing.readiness import ReadinessPolicy
from tests.integration.routing_legacy import LegacySystem, make_hub, sync


@pytest.fixture
def estate(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    sc = LegacySystem(tmp_path, "social_care", "social_care")
    sc.client("C1", "Amy", "Smith")
    hub = make_hub(store, tmp_path)
    hub.extras["lifecycle"].policy = ReadinessPolicy(quiet_days=0)
    sync(hub, "social_care")
    yield hub, sc
    hub.close()


def amy(hub) -> dict:
    return get_person(hub.store, search_persons(hub.store, SearchQuery(name="amy")).results[0]["id"])


def route(hub) -> int:
    return drain(hub.bus, hub.relay, hub.extras["routing_worker"], idle_timeout_s=0.2)


def test_while_legacy_is_system_of_record_the_change_goes_to_it_and_comes_back(estate):
    hub, sc = estate
    writes = hub.extras["writes"]
    person = amy(hub)
    out = writes.update_person(person["id"], {"version": person["version"],
                                              "changes": {"address.line1": "9 New Road", "address.postcode": "zz99zz"}})
    assert (out.status, out.body["mode"], out.body["status"]) == (202, "legacy", "pending")
    assert amy(hub)["golden"]["values"]["address"]["postcode"] == "AB1 2CD"  # not in the hub until it comes back
    with pytest.raises(WriteConflict, match="still being applied"):
        writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "Amelia"}})
    route(hub)
    assert (sc.row("C1")["line1"], sc.row("C1")["postcode"]) == ("9 New Road", "zz99zz")
    assert writes.get(out.body["write_id"])["status"] == "applied"
    with pytest.raises(WriteConflict, match="on its way back through the mirror"):  # applied, not yet mirrored
        writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "Amelia"}})
    sync(hub, "social_care")
    golden = amy(hub)["golden"]
    assert golden["values"]["address"]["postcode"] == "ZZ9 9ZZ"
    assert golden["provenance"]["address"]["system"] == "social_care"
    with hub.store.transaction() as s:
        details = list(s.execute(select(MessageJournalRow.detail).where(
            MessageJournalRow.type == "route.apply", MessageJournalRow.event == "processed")).scalars())
    assert any("write update clients applied by social_care" in d for d in details)


def test_once_the_hub_is_system_of_record_it_is_written_there_and_propagated(estate):
    hub, sc = estate
    hub.extras["lifecycle"].advance("social_care", who="pat", reason="front end uses the hub")
    writes = hub.extras["writes"]
    person = amy(hub)
    out = writes.update_person(person["id"], {"version": person["version"], "changes": {"name.family": "Okafor"}})
    assert (out.status, out.body["mode"], out.body["written_to_hub"]) == (200, "hub", ["name.family"])
    now = amy(hub)
    assert now["name"] == "Amy Okafor" and now["version"] == out.body["version"] > person["version"]
    assert now["golden"]["provenance"]["name"]["system"] == "hub"
    assert "hub/person/" + now["id"] in [r["ref"] for r in now["source_records"]]
    route(hub)
    assert sc.row("C1")["surname"] == "Okafor"  # social care's front end is still in use: propagated
    assert writes.get(out.body["write_id"])["status"] == "written"
    with pytest.raises(WriteConflict) as stale:
        writes.update_person(person["id"], {"version": person["version"], "changes": {"name.family": "Lost"}})
    assert stale.value.extra["current_version"] == now["version"]
    assert amy(hub)["name"] == "Amy Okafor"  # never silently overwritten

    created = writes.create_person({"person": {"names": [{"given": "Dee", "family": "Hub"}]}})
    assert created.status == 201 and get_person(hub.store, created.body["person_id"])["name"] == "Dee Hub"
    opened = writes.open_involvement({"person_id": now["id"], "system": "social_care", "involvement": {
        "service_category": "social_care", "kind": "episode", "started_on": "2026-10-01", "team": "North"}})
    assert opened.status == 201 and opened.body["ref"].startswith("hub/involvement/")
    closed = writes.close_involvement(opened.body["ref"], {"version": 1, "ended_on": "2026-10-20"})
    assert (closed.status, closed.body["version"]) == (200, 2)
    involvement = next(i for i in amy(hub)["involvements"] if i["ref"] == opened.body["ref"])
    assert involvement["canonical"]["status"] == "closed"
    with pytest.raises(WriteConflict):
        writes.close_involvement(opened.body["ref"], {"version": 1})


def test_concurrent_changes_against_the_same_version_one_wins_one_is_refused(estate):
    hub, _ = estate
    hub.extras["lifecycle"].advance("social_care", who="pat", reason="hub is SoR")
    writes = hub.extras["writes"]
    person = amy(hub)
    first = writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "Amelia"}})
    assert first.status == 200
    with pytest.raises(WriteConflict, match=f"made against version {person['version']}"):
        writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "Aimee"}})
    assert amy(hub)["name"] == "Amelia Smith"


def test_idempotency_key_returns_the_first_answer_and_refuses_a_different_request(estate):
    hub, _ = estate
    writes = hub.extras["writes"]
    body = {"person": {"names": [{"given": "Eve", "family": "Once"}]}}
    first = writes.create_person(body, idempotency_key="k-1")
    again = writes.create_person(body, idempotency_key="k-1")
    assert again.replayed and again.body["person_id"] == first.body["person_id"] and again.status == 201
    assert search_persons(hub.store, SearchQuery(name="once")).total == 1
    with pytest.raises(IdempotencyKeyReused):
        writes.create_person({"person": {"names": [{"given": "Eve", "family": "Twice"}]}}, idempotency_key="k-1")
    with hub.store.transaction() as s:  # one audit entry for the one write made
        audited = s.execute(select(AuditRow.target).where(AuditRow.action == "hub_write")).scalars().all()
    assert audited == [first.body["write_id"]]
    assert verify(hub.store).ok


def test_a_legacy_system_that_is_down_is_retried_surfaced_and_applied_after_replay(estate):
    hub, sc = estate
    writes = hub.extras["writes"]
    person = amy(hub)
    sc.execute("ALTER TABLE clients RENAME TO clients_offline")  # the legacy database refuses every write
    out = writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "Amelia"}})
    route(hub)
    write = writes.get(out.body["write_id"])
    assert write["status"] == "failing"
    delivery = list_deliveries(hub.store, system="social_care")[0]
    assert delivery["status"] == "failing" and delivery["attempts"] == 3 and "clients" in delivery["detail"]
    dead = hub.bus.dead_letters("routing")
    assert [d.envelope.payload["write_id"] for d in dead] == [out.body["write_id"]]
    with pytest.raises(WriteConflict, match="failing"):
        writes.update_person(person["id"], {"version": person["version"], "changes": {"name.given": "X"}})
    assert hub.extras["lifecycle"].checks("social_care")["ready"] is False  # no_pending_writes fails

    sc.execute("ALTER TABLE clients_offline RENAME TO clients")
    assert hub.bus.replay("routing") == 1
    route(hub)
    assert sc.row("C1")["forename"] == "Amelia" and writes.get(out.body["write_id"])["status"] == "applied"


def test_refusals_are_clear(estate):
    hub, _ = estate
    writes = hub.extras["writes"]
    person = amy(hub)
    with pytest.raises(WriteRefused, match="shoe_size"):
        writes.update_person(person["id"], {"version": person["version"], "changes": {"shoe_size": 4}})
    with pytest.raises(WriteRefused, match="unknown system 'nowhere'"):
        writes.create_person({"system": "nowhere", "person": {"names": [{"given": "A", "family": "B"}]}})
    lifecycle = hub.extras["lifecycle"]
    lifecycle.advance("social_care", who="pat", reason="1")
    lifecycle.advance("social_care", who="pat", reason="2")
    with pytest.raises(WriteRefused, match="social_care is read_only: it takes no writes"):
        writes.create_person({"system": "social_care", "person": {"names": [{"given": "A", "family": "B"}]}})
