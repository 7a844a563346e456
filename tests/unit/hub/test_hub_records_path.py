"""The hub's path on both stores: outbox → bus → worker → store → services and API."""

from __future__ import annotations

import datetime as dt

import pytest

from admin_ui import create_app
from hub.bootstrap import bootstrap
from hub.config import HubConfig
from hub.outbox import add_to_outbox
from hub.services.persons import PersonNotFound, SearchQuery, get_person, search_persons
from hub.worker import run_worker
from tests.support.auth import create_user, login_client
from tests.unit.hub.records_factory import deleted, involvement_record, person_record, upserted

NHS_A = "9434765919"


@pytest.fixture
def hub(store, tmp_path):
    config = HubConfig.model_validate({"store": {"url": store.url},
                                       "bus": {"base_delay_s": 0.01, "max_attempts": 2},
                                       "systems": {"dir": str(tmp_path / "systems")}})
    h = bootstrap(config, migrate=False)
    yield h
    h.bus.close()
    h.store.dispose()


def _flow(hub, envelopes):
    with hub.store.transaction() as s:
        add_to_outbox(s, envelopes)
    hub.relay.relay_all()
    return run_worker(hub.bus, hub.worker, batch_size=50, idle_timeout_s=0.3)


def test_records_are_stored_linked_and_searchable(hub):
    a1 = person_record("social_care", "C1", "Amy", "Smith", dt.date(2015, 3, 2), nhs=NHS_A, version=2)
    a2 = person_record("education", "U9", "Amy", "Smyth", dt.date(2015, 3, 2), nhs=NHS_A)
    a3 = person_record("youth_service", "Y7", "Amy", "Smith", dt.date(2015, 3, 2))
    b1 = person_record("social_care", "C2", "Ben", "Jones", dt.date(2012, 7, 9))
    inv = involvement_record("social_care", "R1", "C1")
    assert _flow(hub, [upserted(r) for r in (a1, a2, a3, b1, inv)]) == 5

    page = search_persons(hub.store, SearchQuery(name="amy"))
    assert page.total == 1
    person = get_person(hub.store, page.results[0]["id"])
    assert sorted(r["ref"] for r in person["source_records"]) == [
        "education/person/U9", "social_care/person/C1", "youth_service/person/Y7"]
    assert [i["source_id"] for i in person["involvements"]] == ["R1"]
    assert person["golden"]["values"]["birth_date"]["value"] == "2015-03-02"
    assert person["golden"]["provenance"]["name"]["system"] in {"social_care", "education", "youth_service"}
    assert search_persons(hub.store, SearchQuery(identifier=NHS_A)).total == 1
    assert search_persons(hub.store, SearchQuery(identifier="C2")).results[0]["name"] == "Ben Jones"
    assert search_persons(hub.store, SearchQuery(birth_date="2012-07-09")).total == 1


def test_redelivery_is_harmless_and_older_versions_never_win(hub):
    v2 = person_record("social_care", "C1", "Amelia", "Smith", dt.date(2015, 3, 2), version=2)
    v1 = person_record("social_care", "C1", "Amy", "Smith", dt.date(2015, 3, 2), version=1)
    msg = upserted(v2)
    _flow(hub, [msg, upserted(v1)])
    hub.bus.publish([msg, msg])  # the broker delivers the same message again, twice
    assert run_worker(hub.bus, hub.worker, batch_size=1, idle_timeout_s=0.3) == 2
    page = search_persons(hub.store, SearchQuery())
    assert page.total == 1
    person = get_person(hub.store, page.results[0]["id"])
    assert person["source_records"][0]["version"] == 2
    assert person["name"] == "Amelia Smith"


def test_deletion_keeps_person_but_removes_record_from_view(hub):
    rec = person_record("social_care", "C1", "Amy", "Smith", dt.date(2015, 3, 2))
    other = person_record("education", "U1", "Amy", "Smith", dt.date(2015, 3, 2))
    _flow(hub, [upserted(rec), upserted(other), deleted(rec, version=2)])
    pid = search_persons(hub.store, SearchQuery(name="smith")).results[0]["id"]
    assert [r["ref"] for r in get_person(hub.store, pid)["source_records"]] == ["education/person/U1"]
    with pytest.raises(PersonNotFound):
        get_person(hub.store, "PNOSUCHPERSON")


def test_api_lists_reads_and_documents_persons(hub):
    _flow(hub, [upserted(person_record("social_care", "C1", "Amy", "Smith", dt.date(2015, 3, 2)))])
    create_user(hub, "sw", ["social_worker"])
    client = login_client(create_app(hub, testing=True), "sw")
    listing = client.get("/api/v1/persons?name=smi").get_json()
    assert listing["total"] == 1
    pid = listing["results"][0]["id"]
    person = client.get(f"/api/v1/persons/{pid}").get_json()
    assert person["source_records"][0]["provenance"]["adapter"] == "test"
    assert client.get("/api/v1/persons/PNOPE").status_code == 404
    assert client.get("/api/v1/persons?page=0").status_code == 400
    doc = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/persons", "/api/v1/persons/{person_id}", "/api/v1/quarantine"} <= set(doc["paths"])
    assert "Person" in doc["components"]["schemas"]
