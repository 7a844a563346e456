"""The `sql` adapter kind: watermark and row-hash change detection, deletions, resume after a
crash, column introspection and write-back, on SQLite files and on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
import sqlalchemy as sa

from adapters.kinds import sql as sql_kind
from adapters.kinds.common import SourceConfigError
from adapters.port import WriteBack
from tests.contract.adapter_factories import (
    BASE_TIME,
    Crash,
    MemoryState,
    PostgresSqlSource,
    SqlSource,
    run,
)


@pytest.fixture
def rowhash(tmp_path):
    src = SqlSource(tmp_path, watermark=False)
    yield src
    src.close()


@pytest.fixture
def watermark(tmp_path):
    src = SqlSource(tmp_path, watermark=True)
    yield src
    src.close()


def test_rowhash_first_run_yields_every_row_in_bounded_batches(rowhash):
    result = run(rowhash.adapter(), MemoryState())
    assert sorted(result.upserted) == ["P1", "P2", "P3", "P4", "P5"]
    assert result.upserted["P2"]["forename"] == "Ben"
    assert all(len(b.changes) + len(b.failures) <= 2 for b in result.batches)
    assert result.changes[0].location == "child[P1]"


def test_rowhash_detects_unchanged_changed_and_deleted_rows(rowhash):
    state = MemoryState()
    run(rowhash.adapter(), state)
    again = run(rowhash.adapter(), state)
    assert again.changes == [] and again.unchanged == 5
    rowhash.change("P3", surname="Nowak-Smith")
    rowhash.remove("P5")
    third = run(rowhash.adapter(), state)
    assert list(third.upserted) == ["P3"] and third.upserted["P3"]["surname"] == "Nowak-Smith"
    assert third.deleted == ["P5"]
    assert third.unchanged == 3


def test_row_without_key_is_reported_and_blocks_deletions(rowhash):
    state = MemoryState()
    run(rowhash.adapter(), state)
    rowhash.add_malformed()
    rowhash.remove("P1")
    result = run(rowhash.adapter(), state)
    assert len(result.failures) == 1 and "NULL" in result.failures[0].reasons[0]
    assert result.deleted == []  # an incomplete scan never infers a deletion


def test_watermark_reads_only_rows_after_the_cursor(watermark):
    state = MemoryState()
    first = run(watermark.adapter(), state)
    assert len(first.upserted) == 5
    assert "children.watermark" in state.cursors
    watermark.change("P4", forename="Dyl")
    second = run(watermark.adapter(), state)
    assert list(second.upserted) == ["P4"] and second.unchanged == 0
    assert second.changes[0].observed_at == BASE_TIME + dt.timedelta(minutes=1)


def test_watermark_ties_resume_after_crash_without_loss_or_duplicates(watermark):
    # All five rows share one watermark value; batch_size 2 splits the tie across batches.
    state = MemoryState()
    with pytest.raises(Crash):
        run(watermark.adapter(), state, crash_after=1)
    committed = set(state.hashes["children"])
    assert committed == {"P1", "P2"}
    resumed = run(watermark.adapter(), state)
    assert sorted(resumed.upserted) == ["P3", "P4", "P5"]
    assert set(state.hashes["children"]) == {"P1", "P2", "P3", "P4", "P5"}


def test_lookback_rereads_rows_a_late_transaction_committed_behind_the_cursor(tmp_path, watermark):
    state = MemoryState()
    run(watermark.adapter(), state)
    watermark.change("P1", forename="Amy")  # modified at BASE_TIME + 1 min: the cursor moves there
    run(watermark.adapter(), state)
    late = BASE_TIME + dt.timedelta(seconds=30)  # a row committed late, stamped before the cursor
    watermark.execute("UPDATE child SET surname = 'Late', modified_at = :m WHERE id = 'P2'", m=late)
    assert run(watermark.adapter(), state).changes == []  # without a look-back it is never seen
    source, entities = watermark.config()
    entities["children"]["watermark_lookback"] = 120
    result = run(sql_kind.build("s", source, entities, base_dir=tmp_path, env={}), state)
    assert list(result.upserted) == ["P2"] and result.upserted["P2"]["surname"] == "Late"
    assert result.unchanged == 4  # P1, P3-P5 re-read inside the window: counted, not announced


def test_cursor_moves_only_with_a_committed_batch(watermark):
    state = MemoryState()
    adapter = watermark.adapter()
    batches = adapter.extract(state)
    first = next(batches)
    assert state.cursor("children.watermark") is None  # nothing persisted until the hub commits
    assert first.checkpoint["children.watermark"].endswith('"P2"]')
    batches.close()


def test_watermark_deletions_need_the_key_scan(tmp_path, watermark):
    state = MemoryState()
    run(watermark.adapter(), state)
    watermark.remove("P2")
    source, entities = watermark.config()
    entities["children"]["deletion_scan"] = False
    without_scan = sql_kind.build("s", source, entities, base_dir=tmp_path, env={})
    assert run(without_scan, state).deleted == []
    assert run(watermark.adapter(), state).deleted == ["P2"]
    assert "children.deletion_scan_at" in state.cursors


def test_periodic_deletion_scan_runs_when_due(tmp_path, watermark):
    source, entities = watermark.config()
    entities["children"] |= {"deletion_scan": False, "deletion_scan_every_s": 3600}
    now = [dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)]
    adapter = sql_kind.build("s", source, entities, base_dir=tmp_path, env={})
    adapter._clock = lambda: now[0]
    state = MemoryState()
    run(adapter, state)
    watermark.remove("P1")
    assert run(adapter, state).deleted == []  # scanned at 12:00, not due again yet
    now[0] += dt.timedelta(hours=1)
    assert run(adapter, state).deleted == ["P1"]


def test_query_entity_with_composite_key(tmp_path, rowhash):
    rowhash.execute("CREATE TABLE placement (child_id VARCHAR(5), seq INTEGER, carer VARCHAR(40))")
    for child, seq, carer in [("P1", 1, "Ash"), ("P1", 2, "Birch"), ("P2", 1, "Cedar")]:
        rowhash.execute("INSERT INTO placement VALUES (:c, :s, :n)", c=child, s=seq, n=carer)
    entities = {"placements": {"query": "SELECT child_id, seq, upper(carer) AS carer FROM placement",
                               "key": ["child_id", "seq"]}}
    adapter = sql_kind.build("s", {"url": rowhash.url}, entities, base_dir=tmp_path, env={})
    result = run(adapter, MemoryState())
    assert result.upserted == {"P1|1": {"child_id": "P1", "seq": 1, "carer": "ASH"},
                               "P1|2": {"child_id": "P1", "seq": 2, "carer": "BIRCH"},
                               "P2|1": {"child_id": "P2", "seq": 1, "carer": "CEDAR"}}


def test_columns_introspects_tables_and_queries(tmp_path, rowhash):
    source = {"url": "sqlite:///legacy.db"}  # relative to the mapping file's folder
    assert sql_kind.columns(source, {"table": "child", "key": "id"}, base_dir=tmp_path, env={}) == [
        "id", "forename", "surname", "dob", "sex", "modified_at", "row_version"]
    query = {"query": "SELECT id, dob AS birth FROM child", "key": "id"}
    assert sql_kind.columns(source, query, base_dir=tmp_path, env={}) == ["id", "birth"]
    with pytest.raises(SourceConfigError, match="'nope' does not exist"):
        sql_kind.columns(source, {"table": "nope", "key": "id"}, base_dir=tmp_path, env={})


def test_configuration_errors_name_the_field(tmp_path):
    with pytest.raises(SourceConfigError, match="entities.kids.*exactly one of `table` or `query`"):
        sql_kind.build("s", {"url": "sqlite://"}, {"kids": {"table": "a", "query": "SELECT 1", "key": "id"}},
                       base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match=r"entities.kids.key: Field required"):
        sql_kind.build("s", {"url": "sqlite://"}, {"kids": {"table": "a"}}, base_dir=tmp_path, env={})
    kids = {"kids": {"query": "SELECT 1 AS a", "key": "id"}}
    missing = sql_kind.build("s", {"url": "sqlite:///x.db"}, kids, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="x.db does not exist"):
        run(missing, MemoryState())
    assert not (tmp_path / "x.db").exists()  # never created empty by a look
    assert sql_kind.columns({"url": "sqlite:///x.db"}, kids["kids"], base_dir=tmp_path, env={}) is None
    sqlite3.connect(tmp_path / "x.db").close()
    with pytest.raises(SourceConfigError, match=r"no column\(s\) \['id'\]"):
        run(sql_kind.build("s", {"url": "sqlite:///x.db"}, kids, base_dir=tmp_path, env={}), MemoryState())
    unreachable = {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none", "connect_args": {"connect_timeout": 2}}
    assert sql_kind.columns(unreachable, {"table": "t", "key": "id"}, base_dir=tmp_path, env={}) is None


# ---- write-back ----------------------------------------------------------------------------------
WRITE = {"table": "child", "key": "id", "version_column": "row_version", "modified_column": "modified_at",
         "columns": {"person.names[0].given": "forename", "person.names[0].family": "surname",
                     "person.sex": "sex", "person.birth_date": "dob"},
         "codes": {"sex": {"male": "M", "female": "F"}},
         "close_set": {"sex": "X"}}


def _writer(src: SqlSource, tmp_path, **write):
    source, entities = src.config()
    entities["children"]["write"] = {**WRITE, **write}
    return sql_kind.build("s", source, entities, base_dir=tmp_path, env={})


def _row(src: SqlSource, person_id: str) -> dict:
    with src.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM child WHERE id = :i"), {"i": person_id}).mappings().one())


def test_apply_update_with_version_check_then_conflict(tmp_path, watermark):
    adapter = _writer(watermark, tmp_path)
    ok = adapter.apply(WriteBack("children", "update", "P1", {"person.names[0].family": "Okafor-Ade",
                                                              "person.sex": "female"}, expected_version=1))
    assert ok.accepted and ok.source_id == "P1"
    row = _row(watermark, "P1")
    assert (row["surname"], row["sex"], row["row_version"]) == ("Okafor-Ade", "F", 2)
    stale = adapter.apply(WriteBack("children", "update", "P1", {"person.names[0].family": "Lost"},
                                    expected_version=1))
    assert not stale.accepted and "expected 1, the legacy row is at 2" in stale.detail
    assert _row(watermark, "P1")["surname"] == "Okafor-Ade"
    missing = adapter.apply(WriteBack("children", "update", "P9", {"person.sex": "male"}))
    assert not missing.accepted and "no row" in missing.detail


def test_apply_create_and_close(tmp_path, watermark):
    adapter = _writer(watermark, tmp_path)
    created = adapter.apply(WriteBack("children", "create", "P6", {"person.names[0].given": "Faye",
                                                                   "person.sex": "female"}))
    assert created.accepted and created.source_id == "P6"
    assert _row(watermark, "P6")["forename"] == "Faye" and _row(watermark, "P6")["row_version"] == 1
    closed = adapter.apply(WriteBack("children", "close", "P6", {}, expected_version=1))
    assert closed.accepted and _row(watermark, "P6")["sex"] == "X"


def test_apply_names_values_this_system_does_not_hold(tmp_path, watermark):
    adapter = _writer(watermark, tmp_path)  # unmapped = "ignore" is the default
    partly = adapter.apply(WriteBack("children", "update", "P1", {"person.ethnicity": "WBRI", "person.sex": "male"}))
    assert partly.accepted and partly.detail == "updated; not held by this system: ['person.ethnicity']"
    assert _row(watermark, "P1")["sex"] == "M"
    nothing = adapter.apply(WriteBack("children", "update", "P1", {"person.ethnicity": "WBRI"}))
    assert nothing.accepted and nothing.detail == "nothing to write: child holds none of ['person.ethnicity']"
    assert _row(watermark, "P1")["row_version"] == 2  # only the first update wrote


def test_apply_writes_values_as_the_columns_hold_them(tmp_path, rowhash):
    rowhash.execute("CREATE TABLE visit (visit_id TEXT, seen_on DATE, last_modified TEXT)")
    rowhash.execute("INSERT INTO visit VALUES ('V1', '2024-01-01', '2024-01-01 09:00:00')")
    entities = {"visits": {"table": "visit", "key": "visit_id", "write": {
        "table": "visit", "modified_column": "last_modified",
        "columns": {"involvement.started_on": "seen_on", "involvement.team": "team"}}}}
    adapter = sql_kind.build("s", {"url": rowhash.url}, entities, base_dir=tmp_path, env={})
    adapter._clock = lambda: dt.datetime(2024, 6, 1, 13, 30, 5, 123, tzinfo=dt.UTC)
    wrong = adapter.apply(WriteBack("visits", "update", "V1", {"involvement.team": "North"}))
    assert not wrong.accepted and "visit has no column(s) ['team']" in wrong.detail
    entities["visits"]["write"]["columns"].pop("involvement.team")
    adapter = sql_kind.build("s", {"url": rowhash.url}, entities, base_dir=tmp_path, env={})
    adapter._clock = lambda: dt.datetime(2024, 6, 1, 13, 30, 5, 123, tzinfo=dt.UTC)
    assert adapter.apply(WriteBack("visits", "update", "V1", {"involvement.started_on": "2024-05-31"})).accepted
    with rowhash.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT seen_on, last_modified FROM visit")).one()
    assert tuple(row) == ("2024-05-31", "2024-06-01 13:30:05")  # the legacy text format, not Python's


def test_apply_create_returns_the_generated_key(tmp_path, rowhash):
    rowhash.execute("CREATE TABLE note (note_id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)")
    source, _ = rowhash.config()
    entities = {"notes": {"table": "note", "key": "note_id",
                          "write": {"table": "note", "columns": {"involvement.summary": "body"}}}}
    adapter = sql_kind.build("s", source, entities, base_dir=tmp_path, env={})
    first = adapter.apply(WriteBack("notes", "create", None, {"involvement.summary": "visit"}))
    second = adapter.apply(WriteBack("notes", "create", None, {"involvement.summary": "call"}))
    assert (first.accepted, first.source_id, second.source_id) == (True, "1", "2")


def test_apply_refusals_are_not_accepted(tmp_path, watermark):
    adapter = _writer(watermark, tmp_path, close_set={})
    strict = _writer(watermark, tmp_path, unmapped="reject")
    unmapped = strict.apply(WriteBack("children", "update", "P1", {"person.ethnicity": "x", "person.sex": "male"}))
    assert not unmapped.accepted and "['person.ethnicity'] (write.columns)" in unmapped.detail
    bad_code = adapter.apply(WriteBack("children", "update", "P1", {"person.sex": "unknown"}))
    assert not bad_code.accepted and "write.codes.sex" in bad_code.detail
    no_close = adapter.apply(WriteBack("children", "close", "P1", {}))
    assert not no_close.accepted and "close_set" in no_close.detail
    no_write = sql_kind.build("s", *watermark.config(), base_dir=tmp_path, env={})
    refused = no_write.apply(WriteBack("children", "update", "P1", {"person.sex": "male"}))
    assert not refused.accepted and "no `write` section" in refused.detail
    assert _row(watermark, "P1")["row_version"] == 1


# ---- PostgreSQL ------------------------------------------------------------------------------------
@pytest.fixture
def pg_watermark(tmp_path):
    src = PostgresSqlSource(tmp_path, watermark=True)
    yield src
    src.close()


@pytest.mark.services
def test_postgresql_watermark_resume_deletion_and_write_back(tmp_path, pg_watermark):
    state = MemoryState()
    with pytest.raises(Crash):
        run(pg_watermark.adapter(), state, crash_after=2)
    assert sorted(run(pg_watermark.adapter(), state).upserted) == ["P5"]
    pg_watermark.change("P2", forename="Benjamin")
    pg_watermark.remove("P4")
    result = run(pg_watermark.adapter(), state)
    assert list(result.upserted) == ["P2"] and result.deleted == ["P4"]
    adapter = _writer(pg_watermark, tmp_path)
    assert adapter.apply(WriteBack("children", "update", "P2", {"person.sex": "male"}, expected_version=1)).accepted
    conflict = adapter.apply(WriteBack("children", "update", "P2", {"person.sex": "female"}, expected_version=1))
    assert not conflict.accepted
    assert list(run(pg_watermark.adapter(), state).upserted) == ["P2"]
