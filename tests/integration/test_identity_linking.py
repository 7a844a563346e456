"""The identity index through the real worker on both stores: batch linking with stored
explanations, constraints, merges with redirects, stewards' decisions surviving re-links and
rebuilds, events, and the review API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from admin_ui import create_app
from canonical import SourceRecord
from canonical.messages import Envelope, MessageType
from hub.bootstrap import bootstrap
from hub.config import HubConfig
from hub.identity import review as rv
from hub.identity.runs import corroborate_reviews, rebuild
from hub.identity.stewardship import unlink_record
from hub.outbox import add_to_outbox
from hub.services.persons import get_person
from hub.store.tables.identity import IdentityLinkRow, IdentityReviewRow
from hub.store.tables.messaging import OutboxRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from hub.worker import run_worker
from tests.support.auth import api_token, bearer, create_user
from tests.unit.identity.identity_factory import record, relationship, upserted_envelope

NHS_A, NHS_B = "9434765919", "4010232137"
UPN = "A123456789012"


@pytest.fixture
def hub(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_IDENTITY_MODEL", str(tmp_path / "no-model-yet.json"))
    config = HubConfig.model_validate({"store": {"url": store.url}, "bus": {"base_delay_s": 0.01, "max_attempts": 2},
                                       "systems": {"dir": str(tmp_path / "systems")}})
    h = bootstrap(config, migrate=False)
    yield h
    h.bus.close()
    h.store.dispose()


def flow(hub, records: list[SourceRecord]) -> int:
    with hub.store.transaction() as s:
        add_to_outbox(s, [upserted_envelope(r) for r in records])
    hub.relay.relay_all()
    return run_worker(hub.bus, hub.worker, batch_size=50, idle_timeout_s=0.3)


def persons(hub) -> dict[str, str]:
    with hub.store.transaction() as s:
        return dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id).where(
            SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))).all())


def latest_link(hub, ref: str) -> IdentityLinkRow:
    with hub.store.transaction() as s:
        return s.execute(select(IdentityLinkRow).where(IdentityLinkRow.ref_key == ref)
                         .order_by(IdentityLinkRow.id.desc()).limit(1)).scalar_one()


def test_a_batch_is_linked_with_explanations_reviews_and_events(hub):
    batch = [
        record("social_care", "C1", "Amy", "Smith", "2015-03-02", nhs=NHS_A),
        record("education", "U1", "Aimee", "Smyth", "2015-02-03", nhs=NHS_A, postcode="NE9 9ZZ"),
        record("youth_service", "Y1", "Amy", "Smith", "2015-03-02"),
        record("early_help", "E1", "Peter", "Smith", "2015-03-02", sex="male"),  # a twin brother
        record("social_care", "C2", "Ben", "Jones", "2012-07-09", nhs=NHS_B, postcode="NE3 1AA"),
    ]
    assert flow(hub, batch) == 5
    p = persons(hub)
    amy = p["social_care/person/C1"]
    assert p["education/person/U1"] == amy and p["youth_service/person/Y1"] == amy
    assert p["early_help/person/E1"] != amy and p["social_care/person/C2"] != amy

    by_rule = latest_link(hub, "education/person/U1")
    assert (by_rule.made_by, by_rule.rule) == ("rule", "nhs_match")
    by_model = latest_link(hub, "youth_service/person/Y1")
    assert by_model.made_by == "model" and by_model.probability >= 0.95
    fields = {f["comparison"]: f["level"] for f in by_model.explanation["fields"]}
    assert fields["given"] == "exact" and fields["dob"] == "exact"
    assert latest_link(hub, "social_care/person/C1").made_by == "new"

    queue = rv.list_reviews(hub.store)
    twins = [i for i in queue.items if "early_help/person/E1" in (i["ref_a"], i["ref_b"])]
    assert twins and twins[0]["evidence"]["rule"] in ("given_name_conflict", "sex_conflict")
    pair = rv.get_review(hub.store, twins[0]["id"])
    assert {r["given"] for r in pair["records"]} >= {"Peter"}
    assert any(f["comparison"] == "dob" and f["level"] == "exact" for f in pair["fields"])

    with hub.store.transaction() as s:
        types = [i["type"] for (body,) in s.execute(select(OutboxRow.body).where(OutboxRow.type == "identity.batch"))
                 for i in json.loads(body)["payload"]["items"]]
    assert types.count("identity.linked") >= 5


def test_two_nhs_numbers_never_share_a_person(hub):
    flow(hub, [record("social_care", "C1", "Amy", "Smith", "2015-03-02", nhs=NHS_A),
               record("education", "U1", "Amy", "Smith", "2015-03-02", nhs=NHS_B),
               record("youth_service", "Y1", "Amy", "Smith", "2015-03-02")])
    p = persons(hub)
    assert p["social_care/person/C1"] != p["education/person/U1"]


def test_a_bridging_record_merges_persons_and_the_retired_id_still_resolves(hub):
    flow(hub, [record("social_care", "C1", "Amy", "Smith", "2015-03-02", nhs=NHS_A),
               record("social_care", "C2", "Amy", "Smith", "2015-03-02", nhs=NHS_A),
               record("education", "U1", "Amelia", "Okafor", None, upn=UPN, postcode=None)])
    before = persons(hub)
    retired = before["education/person/U1"]
    assert retired != before["social_care/person/C1"]
    flow(hub, [record("childrens_centres", "K1", "Amy", "Smith", "2015-03-02", nhs=NHS_A, upn=UPN)])
    after = persons(hub)
    survivor = after["social_care/person/C1"]
    assert after["education/person/U1"] == survivor == after["childrens_centres/person/K1"]
    view = get_person(hub.store, retired)
    assert view["id"] == survivor and view["requested_id"] == retired
    with hub.store.transaction() as s:
        merged = [json.dumps(i["payload"]) for r in s.execute(select(OutboxRow).where(
            OutboxRow.type == "identity.batch")).scalars()
            for i in json.loads(r.body)["payload"]["items"] if i["type"] == "identity.merged"]
    assert merged and retired in merged[0]


def test_steward_decisions_survive_relinks_and_rebuilds(hub):
    model = hub.worker.linker.model
    flow(hub, [record("social_care", "C1", "Amy", "Smith", "2015-03-02"),
               record("education", "U1", "Amy", "Smith", "2015-03-02"),
               record("youth_service", "Y1", "Sam", "Patel", "2010-05-05", postcode="NE2 2BB"),
               record("early_help", "E1", "Sam", "Patel", "2010-05-19", postcode="NE30 1AA", sex="unknown")])
    p = persons(hub)
    assert p["social_care/person/C1"] == p["education/person/U1"]
    with hub.store.transaction() as s:
        pid = unlink_record(s, "education/person/U1", actor="steward", reason="different child, checked with school",
                            model=model)
    assert persons(hub)["education/person/U1"] == pid != p["social_care/person/C1"]
    flow(hub, [record("education", "U1", "Amy", "Smith", "2015-03-02", postcode="NE1 4AB")])  # a new version
    assert persons(hub)["education/person/U1"] != persons(hub)["social_care/person/C1"]

    pair = next(i for i in rv.list_reviews(hub.store).items if "youth_service/person/Y1" in (i["ref_a"], i["ref_b"]))
    with pytest.raises(rv.ReviewRejected):
        rv.decide(hub.store, pair["id"], "link", user="steward", reason=" ", model=model)
    decided = rv.decide(hub.store, pair["id"], "link", user="steward", reason="same child, confirmed by GP",
                        model=model)
    assert decided["status"] == "linked" and decided["same_person_now"]

    report = rebuild(hub.store, model)
    p = persons(hub)
    assert p["education/person/U1"] != p["social_care/person/C1"]
    assert p["youth_service/person/Y1"] == p["early_help/person/E1"]
    assert report.records == 4


def test_deleted_records_are_no_longer_candidates(hub):
    first = record("social_care", "C1", "Amy", "Smith", "2015-03-02")
    flow(hub, [first])
    with hub.store.transaction() as s:
        add_to_outbox(s, [Envelope(type=MessageType.RECORD_DELETED, source_system="social_care",
                                   payload={"ref": first.ref.model_dump(mode="json"), "version": 10_000})])
    hub.relay.relay_all()
    run_worker(hub.bus, hub.worker, batch_size=50, idle_timeout_s=0.3)
    flow(hub, [record("education", "U1", "Amy", "Smith", "2015-03-02")])
    with hub.store.transaction() as s:
        rows = dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id)).all())
    assert rows["education/person/U1"] != rows["social_care/person/C1"]


def test_review_api_lists_shows_and_decides(hub):
    flow(hub, [record("social_care", "C1", "Amy", "Smith", "2015-03-02"),
               record("early_help", "E1", "Peter", "Smith", "2015-03-02", sex="male")])
    create_user(hub, "steward", ["data_steward"])
    create_user(hub, "sw", ["social_worker"])
    app = create_app(hub, testing=True)
    client = app.test_client()
    steward, worker = bearer(api_token(hub, "steward")), bearer(api_token(hub, "sw"))
    assert client.get("/api/v1/review", headers=worker).status_code == 403
    listing = client.get("/api/v1/review", headers=steward).get_json()
    assert listing["total"] == 1
    review_id = listing["items"][0]["id"]
    pair = client.get(f"/api/v1/review/{review_id}", headers=steward).get_json()
    assert len(pair["records"]) == 2 and pair["fields"]
    assert client.get("/api/v1/review/999999", headers=steward).status_code == 404
    bad = client.post(f"/api/v1/review/{review_id}/decision", json={"decision": "not_same"}, headers=steward)
    assert bad.status_code == 400
    ok = client.post(f"/api/v1/review/{review_id}/decision", headers=steward,
                     json={"decision": "not_same", "reason": "twins: different NHS records"})
    assert ok.status_code == 200 and ok.get_json()["status"] == "not_same"
    assert ok.get_json()["decided_by"] == "steward"
    with hub.store.transaction() as s:
        assert s.get(IdentityReviewRow, review_id).status == "not_same"
    assert "/api/v1/review/{review_id}/decision" in client.get("/api/v1/openapi.json", headers=steward).get_json()[
        "paths"]


def test_household_evidence_links_a_parent_known_only_by_name(hub):
    model = hub.worker.linker.model
    flow(hub, [
        record("education", "X1", "Amy", "Smith", "2015-03-02", upn=UPN),
        record("education", "C1", "Jane", "Smith", None, postcode=None, sex="unknown"),  # a pupil's contact
        relationship("education", "R1", "X1", "C1"),
        record("early_help", "Y1", "Amy", "Smith", "2015-03-02"),
        record("early_help", "M1", "Jane", "Smith", "1985-06-01", postcode="NE2 2BB"),
    ])
    p = persons(hub)
    assert p["education/person/X1"] == p["early_help/person/Y1"]
    assert p["education/person/C1"] != p["early_help/person/M1"]  # names alone never link
    flow(hub, [relationship("early_help", "R2", "Y1", "M1")])  # M1 is Y1's parent: the same household
    p = persons(hub)
    assert p["education/person/C1"] == p["early_help/person/M1"]
    rules = {latest_link(hub, "education/person/C1").rule, latest_link(hub, "early_help/person/M1").rule}
    assert "shared_relative" in rules
    assert corroborate_reviews(hub.store, model) == 0  # nothing left for the batch job
    assert rebuild(hub.store, model).records == 4
    p = persons(hub)
    assert p["education/person/C1"] == p["early_help/person/M1"]


def test_a_merge_made_by_a_relationship_in_the_same_batch_moves_the_batch_s_own_records(hub):
    """The batch places M1, then its relationship R2 proves M1 and C1 one person: M1's record must
    end on the survivor, not on the person placement gave it before the merge."""
    flow(hub, [
        record("education", "X1", "Amy", "Smith", "2015-03-02", upn=UPN),
        record("education", "C1", "Jane", "Smith", None, postcode=None, sex="unknown"),
        relationship("education", "R1", "X1", "C1"),
        record("early_help", "Y1", "Amy", "Smith", "2015-03-02"),
    ])
    flow(hub, [record("early_help", "M1", "Jane", "Smith", "1985-06-01", postcode="NE2 2BB"),
               relationship("early_help", "R2", "Y1", "M1")])
    p = persons(hub)
    assert p["education/person/C1"] == p["early_help/person/M1"]
    with hub.store.transaction() as s:
        retired = set(s.execute(select(PersonRow.id).where(PersonRow.merged_into.is_not(None))).scalars())
    assert not set(p.values()) & retired, "a live record still points at a retired person"


def test_one_fact_stated_under_two_ids_by_one_system_is_shown_once(hub):
    """group_relationships makes each child-adult fact from both rows of the pair (grp-C-P, grp-P-C)."""
    flow(hub, [
        record("childrens_centres", "C", "Amy", "Smith", "2015-03-02"),
        record("childrens_centres", "P", "Jane", "Smith", "1985-06-01", postcode="NE2 2BB"),
        record("childrens_centres", "Q", "John", "Smith", "1984-02-11", postcode="NE2 2BB"),
        relationship("childrens_centres", "grp-C-P", "C", "P"),
        relationship("childrens_centres", "grp-P-C", "C", "P"),
        relationship("childrens_centres", "grp-C-Q", "C", "Q"),  # a second parent: a fact of its own
    ])
    child = get_person(hub.store, persons(hub)["childrens_centres/person/C"])
    assert sorted(r["ref"] for r in child["relationships"]) == [
        "childrens_centres/relationship/grp-C-P", "childrens_centres/relationship/grp-C-Q"]
