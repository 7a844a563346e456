"""The message console: journal listing and journeys, dead letters and replay through the
service, the CLI and the API, and the queue figures (embedded bus on SQLite)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from admin_ui import create_app
from hub.bootstrap import bootstrap
from hub.bus.figures import bus_figures, processing_latency
from hub.cli import main
from hub.config import HubConfig
from hub.outbox import add_to_outbox
from hub.persons import DeterministicLinker
from hub.services import messages as svc
from hub.worker import RecordsWorker, run_worker
from tests.support.auth import api_token, bearer, create_user
from tests.unit.bus.bus_records import valid_nhs_number
from tests.unit.hub.records_factory import person_record, upserted


class BrokenForOneRecord:
    """A linker with a bug for one record, until it is fixed: the poison-message case."""

    def __init__(self, source_id: str) -> None:
        self.source_id, self.fixed, self.inner = source_id, False, DeterministicLinker()

    def link(self, session, row, person):
        if row.source_id == self.source_id and not self.fixed:
            raise ValueError(f"mapping bug: record {row.source_id} has no usable name")
        return self.inner.link(session, row, person)


@pytest.fixture
def hub(sqlite_store, tmp_path):
    config_file = tmp_path / "hub.toml"
    config_file.write_text(f'[store]\nurl = "{sqlite_store.url}"\n[bus]\nbase_delay_s = 0.01\nmax_attempts = 3\n'
                           f'[systems]\ndir = "{tmp_path / "systems"}"\n')
    h = bootstrap(HubConfig.model_validate({"store": {"url": sqlite_store.url},
                                            "bus": {"base_delay_s": 0.01, "max_attempts": 3},
                                            "systems": {"dir": str(tmp_path / "systems")}}), migrate=False)
    h.extras["config_file"] = str(config_file)
    h.worker = RecordsWorker(h.store, linker=BrokenForOneRecord("BAD1"), journal=h.journal)
    yield h
    h.bus.close()


def _flow(hub, envelopes=()) -> int:
    if envelopes:
        with hub.store.transaction() as s:
            add_to_outbox(s, list(envelopes))
        hub.relay.relay_all()
    return run_worker(hub.bus, hub.worker, batch_size=10, idle_timeout_s=1.0)


def _people():
    good = [person_record("social_care", f"C{i}", f"Given{i}", "Smith", dt.date(2015, 1, 1 + i),
                          nhs=valid_nhs_number(i)) for i in range(3)]
    bad = person_record("education", "BAD1", "Bea", "Jones", dt.date(2014, 2, 2))
    return [upserted(r) for r in good], upserted(bad)


def test_a_dead_letter_is_listed_with_its_journey_and_processed_after_replay(hub):
    good, bad = _people()
    assert _flow(hub, [*good, bad]) == 3
    processed = svc.list_messages(hub.store, svc.MessageQuery(status="processed"))
    assert processed.total == 3 and {m["ref_key"] for m in processed.results} == {
        "social_care/person/C0", "social_care/person/C1", "social_care/person/C2"}
    dead = svc.list_messages(hub.store, svc.MessageQuery(status="dead_lettered"))
    assert [m["message_id"] for m in dead.results] == [str(bad.message_id)]
    assert svc.list_messages(hub.store, svc.MessageQuery(system="education")).total == 1

    letters = svc.dead_letters(hub.bus)
    assert [(d["message_id"], d["queue"], d["attempts"]) for d in letters] == [(str(bad.message_id), "records", 3)]
    assert "mapping bug: record BAD1" in letters[0]["error"]
    journey = svc.message_journey(hub.store, str(bad.message_id))
    assert [e["event"] for e in journey["events"]] == ["published", "retried", "retried", "dead_lettered"]
    assert journey["status"] == "dead_lettered" and journey["attempts"] == 3
    assert journey["ref_key"] == "education/person/BAD1"

    hub.worker.linker.fixed = True
    assert svc.replay(hub.bus, [str(bad.message_id), "00000000-0000-0000-0000-000000000000"]) == {
        "replayed": 1, "by_queue": {"records": 1}, "not_found": 1,
        "detail": "1 of the named message(s) were not dead letters"}
    assert _flow(hub) == 1
    journey = svc.message_journey(hub.store, str(bad.message_id))
    assert [e["event"] for e in journey["events"]][-2:] == ["replayed", "processed"]
    assert svc.dead_letters(hub.bus) == []


def test_messages_of_one_person_and_unknown_filters(hub):
    good, bad = _people()
    _flow(hub, [*good, bad])
    from hub.services.persons import SearchQuery, search_persons

    person = search_persons(hub.store, SearchQuery(identifier=valid_nhs_number(1))).results[0]
    mine = svc.list_messages(hub.store, svc.MessageQuery(person_id=person["id"]))
    assert [m["ref_key"] for m in mine.results] == ["social_care/person/C1"]
    assert svc.list_messages(hub.store, svc.MessageQuery(since=dt.datetime.now(dt.UTC)
                                                         + dt.timedelta(minutes=5))).total == 0
    with pytest.raises(svc.MessageQueryError):
        svc.list_messages(hub.store, svc.MessageQuery(status="lost"))
    with pytest.raises(svc.MessageNotFound):
        svc.message_journey(hub.store, "no-such-id")


def test_figures_count_depth_rates_and_latency_from_the_journal(hub):
    good, bad = _people()
    with hub.store.transaction() as s:
        add_to_outbox(s, [*good, bad])
    hub.relay.relay_all()
    before = {q["queue"]: q for q in bus_figures(hub.bus, hub.store)["queues"]}
    assert before["records"]["ready"] == 4 and before["records"]["rates_from"] == "journal"
    assert before["records"]["publish_rate"] == pytest.approx(4 / 60, abs=0.001)
    _flow(hub)
    after = bus_figures(hub.bus, hub.store)
    records = next(q for q in after["queues"] if q["queue"] == "records")
    assert (records["ready"], records["dead"]) == (0, 1)
    assert records["deliver_rate"] == pytest.approx(3 / 60, abs=0.001)
    latency = processing_latency(hub.store)
    assert latency.processed == 3 and 0 <= latency.p50_ms <= latency.p95_ms <= latency.max_ms


def test_cli_lists_shows_and_replays(hub, monkeypatch):
    good, bad = _people()
    _flow(hub, [*good, bad])
    runner = CliRunner()
    cfg = ["--config", hub.extras["config_file"]]
    out = runner.invoke(main, [*cfg, "messages", "list", "--status", "dead_lettered", "--json"])
    assert out.exit_code == 0, out.output
    assert [m["message_id"] for m in json.loads(out.output)["results"]] == [str(bad.message_id)]
    out = runner.invoke(main, [*cfg, "messages", "show", str(bad.message_id)])
    assert out.exit_code == 0 and "dead_lettered" in out.output and "education/person/BAD1" in out.output
    assert runner.invoke(main, [*cfg, "messages", "show", "nope"]).exit_code == 1
    out = runner.invoke(main, [*cfg, "messages", "dead-letters"])
    assert "mapping bug" in out.output and "1 dead letter(s)" in out.output
    assert runner.invoke(main, [*cfg, "messages", "replay"]).exit_code == 2  # neither ids nor --all
    out = runner.invoke(main, [*cfg, "messages", "replay", "--all"])
    assert out.exit_code == 0 and json.loads(out.output)["replayed"] == 1
    out = runner.invoke(main, [*cfg, "messages", "figures"])
    assert out.exit_code == 0 and "records" in out.output and "processing latency" in out.output


def test_api_lists_reads_and_replays_for_the_console_permission_only(hub):
    good, bad = _people()
    _flow(hub, [*good, bad])
    create_user(hub, "ops", ["integration_admin"])
    create_user(hub, "sw", ["social_worker"])
    client = create_app(hub, testing=True).test_client()
    ops, sw = bearer(api_token(hub, "ops")), bearer(api_token(hub, "sw"))
    assert client.get("/api/v1/messages", headers=sw).status_code == 403
    assert client.post("/api/v1/dead-letters/replay", json={"all": True}, headers=sw).status_code == 403

    page = client.get("/api/v1/messages?status=processed", headers=ops).get_json()
    assert page["total"] == 3
    assert client.get("/api/v1/messages?status=lost", headers=ops).status_code == 400
    assert client.get("/api/v1/messages?since=yesterday", headers=ops).status_code == 400
    journey = client.get(f"/api/v1/messages/{bad.message_id}", headers=ops).get_json()
    assert journey["status"] == "dead_lettered"
    assert client.get("/api/v1/messages/unknown", headers=ops).status_code == 404
    letters = client.get("/api/v1/dead-letters", headers=ops).get_json()
    assert letters["total"] == 1 and letters["results"][0]["message_id"] == str(bad.message_id)
    assert client.post("/api/v1/dead-letters/replay", json={}, headers=ops).status_code == 400
    assert client.post("/api/v1/dead-letters/replay", json={"message_ids": [str(bad.message_id)],
                                                            "queue": "nowhere"}, headers=ops).status_code == 400
    hub.worker.linker.fixed = True
    done = client.post("/api/v1/dead-letters/replay", json={"message_ids": [str(bad.message_id)]}, headers=ops)
    assert done.get_json() == {"replayed": 1, "by_queue": {"records": 1}}
    assert _flow(hub) == 1
    figures = client.get("/api/v1/queues", headers=ops).get_json()
    assert figures["backend"] == "StoreQueueBus" and figures["latency"]["processed"] == 4
    spec = client.get("/api/v1/openapi.json", headers=ops).get_json()
    assert {"/api/v1/messages", "/api/v1/messages/{message_id}", "/api/v1/dead-letters",
            "/api/v1/dead-letters/replay", "/api/v1/queues"} <= spec["paths"].keys()


def test_a_record_batch_is_found_by_each_record_it_carried_and_by_its_person(hub):
    from hub.ingest import RecordMessages
    from hub.outbox import add_serialized_to_outbox
    from hub.services.persons import SearchQuery, search_persons

    records = [person_record("social_care", f"B{i}", f"Given{i}", "Smith", dt.date(2015, 1, 1 + i),
                             nhs=valid_nhs_number(10 + i)) for i in range(3)]
    announced = RecordMessages("social_care", dt.datetime.now(dt.UTC))
    announced.announce(records, 1, [])
    [batch] = announced.messages()
    with hub.store.transaction() as s:
        add_serialized_to_outbox(s, [batch])
    hub.relay.relay_all()
    assert run_worker(hub.bus, hub.worker, batch_size=10, idle_timeout_s=1.0) == 1
    found = svc.list_messages(hub.store, svc.MessageQuery(ref_key="social_care/person/B1"))
    assert [m["message_id"] for m in found.results] == [batch.message_id]
    assert found.results[0]["detail"] == "3 record(s)"
    person = search_persons(hub.store, SearchQuery(identifier=valid_nhs_number(12))).results[0]
    assert [m["message_id"] for m in svc.list_messages(hub.store, svc.MessageQuery(
        person_id=person["id"])).results] == [batch.message_id]
    journey = svc.message_journey(hub.store, batch.message_id)
    assert journey["records"] == [f"social_care/person/B{i}" for i in range(3)] and journey["ref_key"] is None
