"""The routing worker on `route.changed.batch` messages: each change decided as a one-change
message would be (alerts once per household, deliveries made), the inbox per message (a
redelivered batch raises nothing twice), an invalid item journalled with its reason while the
others are handled, and the batches the records worker publishes found by record and person in
the message console, their payloads redacted change by change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from admin_ui import create_app
from canonical.messages import Envelope, MessageType
from hub import routing_worker
from hub.access.policy import parse_policy
from hub.outbox import add_to_outbox
from hub.routing_worker import list_alerts, list_deliveries, run_routing_worker
from hub.services.message_payloads import message_payload
from hub.services.messages import MessageQuery, dead_letters, list_messages, message_journey
from hub.services.persons import SearchQuery, search_persons
from hub.store.tables.messaging import MessageJournalRow, OutboxRow
from tests.integration.routing_legacy import LegacySystem, make_hub, sync
from tests.integration.test_routing_batch_alerts import estate_hub
from tests.support.auth import create_user, login_client

ALERT = "alert early-help-multi-service-household"
POLICY = """
[systems]
social_care = "social_care"
[roles.sees_addresses]
label = "Sees addresses"
permissions = ["console"]
categories = { social_care = "full" }
fields = { address = "summary" }
[roles.no_addresses]
label = "Sees no addresses"
permissions = ["console"]
categories = { social_care = "full" }
fields = { address = "none" }
"""


@pytest.fixture
def estate(store, tmp_path, monkeypatch):
    hub = estate_hub(store, tmp_path, monkeypatch)
    yield hub
    hub.close()


def change(system: str, source_id: str, entity: str = "involvement") -> dict:
    return {"ref": {"system": system, "entity": entity, "source_id": source_id}, "version": 1, "created": True,
            "changed": {}}


def batch(*items, system: str = "social_care") -> Envelope:
    return Envelope(type=MessageType.ROUTE_CHANGED_BATCH, source_system=system, payload={"items": list(items)})


def events(hub, env: Envelope) -> list[tuple[str, str | None]]:
    with hub.store.transaction() as s:
        return [(e, d) for e, d in s.execute(select(MessageJournalRow.event, MessageJournalRow.detail).where(
            MessageJournalRow.message_id == str(env.message_id)).order_by(MessageJournalRow.id))]


def processed(hub, env: Envelope) -> list[str]:
    return [d for e, d in events(hub, env) if e == "processed"]


def test_a_batch_raises_one_alert_per_household_and_says_what_came_of_each_change(estate):
    hub = estate
    changes = batch(change("social_care", "ep-1"), change("social_care", "ep-2"), change("early_help", "ep-1"))
    hub.extras["routing_worker"].handle([changes])
    alerts = list_alerts(hub.store)
    assert len(alerts) == 1 and alerts[0]["services"] == ["early_help", "education", "social_care"]
    [detail] = processed(hub, changes)
    head, first, second = detail.split("\n")
    assert head == "3 change(s); 2 with a route or alert outcome"
    assert first.startswith(f"social_care/involvement/ep-1: {ALERT} raised to Early Help North: 3 services")
    assert second == f"early_help/involvement/ep-1: {ALERT}: already raised for this household"
    assert hub.bus.stats("alerts").ready == 1
    with hub.store.transaction() as s:
        [body] = s.execute(select(OutboxRow.body).where(OutboxRow.type == "alert.raised")).scalars()
    assert Envelope.from_json(body).correlation_id == changes.message_id  # caused by the batch
    later = Envelope(type=MessageType.ROUTE_CHANGED, source_system="education", payload=change("education", "ep-1"))
    hub.extras["routing_worker"].handle([later])  # a one-change message still counts the batch's alert
    assert processed(hub, later) == [f"{ALERT}: already raised for this household"]
    assert len(list_alerts(hub.store)) == 1


def test_a_redelivered_batch_raises_no_alert_twice(estate):
    hub = estate
    worker = hub.extras["routing_worker"]
    changes = batch(change("social_care", "ep-1"), change("early_help", "ep-1"))
    worker.handle([changes, changes])  # twice in one delivery
    worker.handle([changes])  # and again later
    [first, again, later] = processed(hub, changes)
    assert f"{ALERT} raised" in first and again == later == "duplicate: already processed"
    assert len(list_alerts(hub.store)) == 1 and hub.bus.stats("alerts").ready == 1
    fresh = batch(change("early_help", "ep-1"), change("education", "ep-1"))  # the same household, a new message
    worker.handle([fresh])
    assert processed(hub, fresh) == ["\n".join([
        "2 change(s); 2 with a route or alert outcome",
        f"early_help/involvement/ep-1: {ALERT}: already raised for this household",
        f"education/involvement/ep-1: {ALERT}: already raised for this household"])]
    assert len(list_alerts(hub.store)) == 1


def test_an_invalid_item_is_journalled_with_its_reason_and_the_others_are_handled(estate):
    hub = estate
    changes = batch({"ref": "social_care/involvement/ep-1"}, change("social_care", "ep-1"), 42,
                    change("early_help", "ep-1"))
    with hub.store.transaction() as s:
        add_to_outbox(s, [changes])
    hub.relay.relay_all()
    assert run_routing_worker(hub.bus, hub.extras["routing_worker"], idle_timeout_s=0.5) >= 1
    assert [e for e, _d in events(hub, changes)] == ["published", "processed"]  # no retry, no dead letter
    lines = processed(hub, changes)[0].split("\n")
    assert lines[0] == "2 change(s), 2 invalid; 2 with a route or alert outcome"
    assert lines[-2:] == ["item 0: invalid, not handled: ref: missing (an object with system, entity and source_id)",
                          "item 2: invalid, not handled: a change is an object, not int"]
    assert len(list_alerts(hub.store)) == 1
    assert dead_letters(hub.bus, ["routing"]) == []


def test_a_delivery_is_evaluated_a_bounded_number_of_changes_at_a_time_never_splitting_a_message(estate, monkeypatch):
    hub = estate
    worker = hub.extras["routing_worker"]
    groups: list[list[int]] = []
    real = worker._changed

    def spy(group):
        groups.append([len(m.changes) for m in group])
        real(group)

    monkeypatch.setattr(routing_worker, "CHANGES_PER_TRANSACTION", 2)
    monkeypatch.setattr(worker, "_changed", spy)
    big = batch(change("social_care", "ep-1"), change("social_care", "ep-2"), change("early_help", "ep-1"))
    one = Envelope(type=MessageType.ROUTE_CHANGED, source_system="education", payload=change("education", "ep-1"))
    linked = Envelope(type=MessageType.IDENTITY_LINKED, source_system="identity", payload={"person_id": "x"})
    worker.handle([big, one, linked])
    assert groups == [[3], [1, 0]]
    assert processed(hub, one) == [f"{ALERT}: already raised for this household"]
    assert processed(hub, linked) == ["no routing rule handles identity.linked"]
    assert len(list_alerts(hub.store)) == 1


@pytest.fixture
def routed(store, tmp_path, monkeypatch):
    """Amy in social care and education; her address changes in social care and is routed."""
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    systems = {name: LegacySystem(tmp_path, name, name) for name in ("social_care", "education", "early_help")}
    hub = make_hub(store, tmp_path)
    sc, ed = systems["social_care"], systems["education"]
    sc.client("C1", "Amy", "Smith")
    ed.client("U1", "Amy", "Smith")
    sync(hub, "social_care", "education")
    sc.execute("UPDATE clients SET line1 = '9 New Road', postcode = 'ZZ9 9ZZ' WHERE client_id = 'C1'")
    sync(hub, "social_care")
    yield hub, ed
    hub.close()


def test_the_records_workers_batches_make_deliveries_and_are_found_by_record_and_person(routed):
    hub, education = routed
    assert (education.row("U1")["line1"], education.row("U1")["postcode"]) == ("9 New Road", "ZZ9 9ZZ")
    [delivery] = list_deliveries(hub.store)
    assert (delivery["route"], delivery["system"], delivery["status"]) == (
        "address-change-from-social-care", "education", "applied")
    by_record = list_messages(hub.store, MessageQuery(ref_key="social_care/person/C1", page_size=100)).results
    types = {m["type"] for m in by_record}
    assert {"source.record.batch", "identity.batch", "route.changed.batch"} <= types
    assert "route.changed" not in types and "identity.linked" not in types
    pid = search_persons(hub.store, SearchQuery(name="amy")).results[0]["id"]
    by_person = list_messages(hub.store, MessageQuery(person_id=pid, page_size=100)).results
    assert {m["message_id"] for m in by_record} <= {m["message_id"] for m in by_person}
    route = next(m for m in by_record if m["type"] == "route.changed.batch")
    journey = message_journey(hub.store, route["message_id"])
    assert journey["records"] == ["social_care/person/C1"] and journey["status"] == "processed"
    assert "social_care/person/C1: route address-change-from-social-care: sent" in journey["events"][-1]["detail"]
    applied = message_journey(hub.store, delivery["message_id"])
    assert (applied["type"], applied["status"]) == ("route.apply", "processed")


def test_the_console_lists_and_shows_the_batches(routed):
    hub, _education = routed
    create_user(hub, "admin", ["integration_admin"])
    client = login_client(create_app(hub, testing=True), "admin")
    listing = client.get("/console/messages?type=route.changed.batch").get_data(as_text=True)
    assert "A batch of changes: open the message" in listing
    assert "A batch of identity events: open the message" in client.get(
        "/console/messages?type=identity.batch").get_data(as_text=True)
    route = list_messages(hub.store, MessageQuery(type="route.changed.batch", system="social_care")).results[0]
    page = client.get(f"/console/messages/{route['message_id']}").get_data(as_text=True)
    assert "Records carried (1)" in page and "social_care/person/C1" in page


def test_a_batch_payload_is_redacted_change_by_change(routed):
    hub, _education = routed
    policy = parse_policy(POLICY)
    moved = next(m for m in list_messages(hub.store, MessageQuery(type="route.changed.batch", system="social_care",
                                                                  page_size=100)).results
                 if "sent" in (m["detail"] or ""))
    sees = message_payload(hub.store, policy, ["sees_addresses"], moved["message_id"])
    [item] = sees.payload["items"]
    assert item["changed"]["address.postcode"] == "ZZ9 9ZZ" and sees.withheld == []
    hidden = message_payload(hub.store, policy, ["no_addresses"], moved["message_id"])
    [item] = hidden.payload["items"]
    assert not any(p.startswith("address.") for p in item["changed"]) and item["ref"]["source_id"] == "C1"
    assert "changed.address.postcode" in hidden.withheld and "changed.address.line1" in hidden.withheld
    identity = list_messages(hub.store, MessageQuery(type="identity.batch", page_size=1)).results[0]
    shown = message_payload(hub.store, policy, ["no_addresses"], identity["message_id"])
    assert shown.payload["items"] and all(i["type"] == "identity.linked" for i in shown.payload["items"])
