"""`hub identity …` end to end on a SQLite store: train writes a versioned model, evaluate
reads a truth file, rebuild reports, the review queue is worked from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from canonical import Provenance, SourceRecord, SourceRef, content_hash
from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from hub.bootstrap import bootstrap
from hub.cli import main
from hub.config import HubConfig
from hub.identity import review as rv
from hub.identity.synthetic import people
from hub.outbox import add_to_outbox
from hub.store.tables.identity import IdentityLinkRow
from hub.worker import run_worker

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture
def loaded(sqlite_store, tmp_path, monkeypatch):
    env = {"HUB_STORE_URL": sqlite_store.url, "HUB_IDENTITY_MODEL": str(tmp_path / "model.json"),
           "HUB_CONFIG": str(tmp_path / "absent.toml"), "HUB_SYSTEMS_DIR": str(tmp_path / "systems")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    records = list(people(150, seed=4))
    hub = bootstrap(HubConfig.model_validate({"store": {"url": sqlite_store.url},
                                              "systems": {"dir": str(tmp_path / "systems")}}), migrate=False)
    envelopes = []
    for r in records:
        system, _, source_id = r.ref.split("/")
        envelopes.append(Envelope(type=MessageType.RECORD_UPSERTED, source_system=system, payload=SourceRecord(
            ref=SourceRef(system=system, entity=EntityKind.PERSON, source_id=source_id),
            content_hash=content_hash(r.person), observed_at=NOW, version=1,
            provenance=Provenance(adapter="test", location="synthetic", extracted_at=NOW), raw=r.person,
            canonical=r.person).model_dump(mode="json")))
    with hub.store.transaction() as s:
        add_to_outbox(s, envelopes)
    hub.relay.relay_all()
    run_worker(hub.bus, hub.worker, batch_size=100, idle_timeout_s=0.3)
    estate = tmp_path / "estate"
    estate.mkdir()
    with (estate / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["system", "entity", "source_id", "person_id", "kind", "defect"])
        for r in records:
            system, _, source_id = r.ref.split("/")
            writer.writerow([system, "people", source_id, r.truth, "person", ""])
    yield hub, estate, tmp_path
    hub.close()


def _run(*args: str):
    result = CliRunner().invoke(main, ["identity", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_rebuild_evaluate(loaded):
    _hub, estate, tmp = loaded
    out = _run("train")
    model = json.loads((tmp / "model.json").read_text())
    assert model["format"] == "hub-identity-model/1" and model["version"] in out
    assert model["data_fingerprint"] and model["trained_at"]
    assert "persons after" in _run("rebuild")
    report = _run("evaluate", "--estate", str(estate))
    values = {line.split("|")[0].strip(): line.split("|")[1].strip() for line in report.splitlines() if "|" in line}
    assert float(values["pairwise precision"]) >= 0.98 and float(values["pairwise recall"]) >= 0.9
    assert "pairs completeness" in values


def test_review_list_show_decide_explain_and_unlink(loaded):
    hub, _estate, _tmp = loaded
    queue = rv.list_reviews(hub.store, page_size=100)
    assert f"{queue.total} pair(s) open" in _run("review", "list")
    if queue.items:
        pair = queue.items[0]
        assert "given" in _run("review", "show", str(pair["id"]))
        assert "not_same" in _run("review", "decide", str(pair["id"]), "--decision", "not_same",
                                  "--reason", "checked", "--user", "steward")
    with hub.store.transaction() as session:
        ref = session.execute(select(IdentityLinkRow.ref_key).order_by(IdentityLinkRow.id).limit(1)).scalar_one()
    assert '"made_by"' in _run("explain", ref)
    assert "is now person" in _run("unlink", ref, "--reason", "wrong child", "--user", "steward")
    assert rv.link_history(hub.store, ref)[0]["made_by"] == "steward"
    assert "steward unlink" in _run("audit")
    result = CliRunner().invoke(main, ["identity", "review", "decide", "999999", "--decision", "link",
                                       "--reason", "x", "--user", "u"])
    assert result.exit_code != 0 and "no review pair" in result.output
