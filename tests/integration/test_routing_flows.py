"""Routes, alerts and reconciliation on both stores, through the real bus and legacy systems:
a change of address reported by social care reaches education; three services with one
household within 90 days raise an early-help alert; reconciliation reports each difference."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from hub.reconcile import latest, reconcile_all
from hub.routing_worker import list_alerts, list_deliveries, run_routing_worker
from hub.services.persons import SearchQuery, get_person, search_persons
from hub.store.tables.messaging import MessageJournalRow
from hub.store.tables.records import SourceRecordRow
from hub.worker import run_worker
from tests.integration.routing_legacy import LegacySystem, make_hub, sync

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def estate(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    systems = {name: LegacySystem(tmp_path, name, name) for name in ("social_care", "education", "early_help")}
    hub = make_hub(store, tmp_path)
    yield hub, systems
    hub.close()


def journal(hub, **where) -> list[MessageJournalRow]:
    with hub.store.transaction() as s:
        return list(s.execute(select(MessageJournalRow).filter_by(**where).order_by(MessageJournalRow.id)).scalars())


def test_change_of_address_in_social_care_is_routed_to_education_and_journalled(estate):
    hub, systems = estate
    sc, ed = systems["social_care"], systems["education"]
    sc.client("C1", "Amy", "Smith")
    ed.client("U1", "Amy", "Smith")
    sync(hub, "social_care", "education")
    assert not list_deliveries(hub.store)  # new records alone route nothing: no address changed
    sc.execute("UPDATE clients SET line1 = '9 New Road', postcode = 'ZZ9 9ZZ' WHERE client_id = 'C1'")
    hub.ingest.run("social_care")
    run_worker(hub.bus, hub.worker, idle_timeout_s=0.2)  # its route.changed waits in the outbox
    assert run_routing_worker(hub.bus, hub.extras["routing_worker"], idle_timeout_s=1.5) == 2  # relays it itself
    assert (ed.row("U1")["line1"], ed.row("U1")["postcode"]) == ("9 New Road", "ZZ9 9ZZ")
    delivery = list_deliveries(hub.store)[0]
    assert (delivery["kind"], delivery["route"], delivery["system"], delivery["status"]) == (
        "route", "address-change-from-social-care", "education", "applied")
    changed = [j for j in journal(hub, type="route.changed.batch", event="processed") if j.source_system == "social_care"]
    assert any("sent ['address.line1', 'address.postcode'] to education/person/U1" in (j.detail or "")
               for j in changed)
    applied = journal(hub, message_id=delivery["message_id"])
    assert [j.event for j in applied][:1] == ["published"] and applied[-1].event == "processed"
    sync(hub, "education")  # education's own change comes back; no route leads from it: no echo
    assert len(list_deliveries(hub.store)) == 1
    pid = search_persons(hub.store, SearchQuery(name="amy")).results[0]["id"]
    assert get_person(hub.store, pid)["golden"]["values"]["address"]["postcode"] == "ZZ9 9ZZ"


def test_three_services_with_one_household_within_90_days_raise_one_early_help_alert(estate):
    hub, systems = estate
    sc, ed, eh = systems["social_care"], systems["education"], systems["early_help"]
    sc.client("C1", "Amy", "Smith", line1="4 Mill Lane", postcode="MK1 1AA")
    ed.client("U1", "Amy", "Smith", line1="4 Mill Lane", postcode="MK1 1AA")
    eh.client("E7", "Ben", "Smith", dob="2012-01-01", line1="4 Mill Lane", postcode="MK1 1AA")  # her brother
    sc.episode("C1", TODAY - dt.timedelta(days=10), team="Referral and Assessment")
    ed.episode("U1", TODAY - dt.timedelta(days=200), ended=TODAY - dt.timedelta(days=120))  # outside the window
    sync(hub, "social_care", "education", "early_help")
    assert list_alerts(hub.store) == []
    eh.episode("E7", TODAY - dt.timedelta(days=30), team="Early Help North")
    ed.episode("U1", TODAY - dt.timedelta(days=5))
    sync(hub, "education", "early_help")
    alerts = list_alerts(hub.store)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["team"] == "Early Help North" and alert["services"] == ["early_help", "education", "social_care"]
    assert len(alert["persons"]) == 2 and "one household of 2" in alert["explanation"]
    assert hub.bus.stats("alerts").ready == 1
    assert [j.event for j in journal(hub, message_id=alert["message_id"])] == ["published"]
    sc.episode("C1", TODAY - dt.timedelta(days=1))
    sync(hub, "social_care")
    assert len(list_alerts(hub.store)) == 1  # the same household and services: not raised twice


def test_reconciliation_reports_missing_extra_drifted_unmirrored_and_explained(estate):
    hub, systems = estate
    sc = systems["social_care"]
    for cid, name in (("C1", "Amy"), ("C2", "Ben"), ("C3", "Cal")):
        sc.client(cid, name, "Smith", dob=f"2015-0{cid[1]}-01")
    sc.client("C5", "Dee", None)  # quarantined: explained
    sync(hub, "social_care")
    report = hub.extras["reconciler"].run("social_care")
    assert report.summary.clean and report.summary.explained == 1 and report.summary.legacy_count == 4
    sc.client("C4", "Eve", "Jones")
    sc.execute("DELETE FROM clients WHERE client_id = 'C2'")
    sc.execute("UPDATE clients SET forename = 'Calum' WHERE client_id = 'C3'")
    with hub.store.transaction() as s:
        s.execute(update(SourceRecordRow).where(SourceRecordRow.ref_key == "social_care/person/C1")
                  .values(deleted=True))
    result = hub.extras["reconciler"].run("social_care", trigger="test").as_dict()
    assert (result["missing"], result["extra"], result["drifted"], result["unmirrored"], result["explained"]) == (
        1, 1, 1, 1, 1)
    assert result["examples"] == {"missing": ["clients/C4"], "extra": ["clients/C2"], "drifted": ["clients/C3"],
                                  "unmirrored": ["clients/C1"]}
    assert not result["clean"] and result["unexplained"] == 4
    recorded = latest(hub.store, "social_care")
    assert recorded["run_id"] == result["run_id"] and recorded["trigger"] == "test" and not recorded["clean"]

    systems["education"].execute("ALTER TABLE clients RENAME TO gone")  # cannot be read: reported, others run
    every = reconcile_all(hub.extras["reconciler"], {"social_care": "read_only", "education": "connected",
                                                      "early_help": "decommissioned"})
    assert sorted(every) == ["education", "social_care"] and every["social_care"]["unexplained"] == 4
    assert "education: the adapter could not read the system" in every["education"]["error"]
    assert latest(hub.store, "education")["error"] == every["education"]["error"]
