"""The `sql` kind's trigger-based change capture, on the early help mapping itself
(systems/early_help.toml: two query entities joining family_members to families, and a table
entity), on a SQLite file and on the real PostgreSQL: every insert, update and delete of each
table is captured and announced, a change to a joined table re-announces the rows it affects,
a crash between reading and committing re-delivers, and nothing captured is no work."""

from __future__ import annotations

import copy
import pathlib
import tomllib
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.kinds import sql as sql_kind
from adapters.kinds.common import SourceConfigError
from adapters.kinds.sql.capture import CLAIM_CURSOR, FULL_RUN_CURSOR, CaptureLog
from adapters.kinds.sql.config import SqlCapture
from adapters.kinds.sql.triggers import CaptureTriggers
from canonical.records import content_hash
from hub.reconcile import NothingCommitted
from tests.contract.adapter_factories import Crash, MemoryState, run

MAPPING = tomllib.loads((pathlib.Path(__file__).parents[3] / "systems" / "early_help.toml").read_text())
SCHEMA = [
    ("CREATE TABLE families (family_id TEXT PRIMARY KEY, family_name TEXT, address TEXT, postcode TEXT, "
    "keyworker TEXT, opened TEXT)"),
    ("CREATE TABLE family_members (member_id INTEGER PRIMARY KEY, family_id TEXT NOT NULL, full_name TEXT, "
    "dob TEXT, sex TEXT, role TEXT, nhs_number TEXT, school TEXT)"),
    ("CREATE TABLE episodes (episode_id INTEGER PRIMARY KEY, family_id TEXT NOT NULL, member_id INTEGER, "
    "start_date TEXT, end_date TEXT, reason TEXT, outcome TEXT, lead_practitioner TEXT)"),
    "CREATE INDEX ix_members_family ON family_members (family_id)",
]
FAMILIES = [("F1", "Okafor", "1 High St, Matlock", "DE4 3AA", "J. Brown", "01/02/2020"),
            ("F2", "Hughes", "2 Low Rd, Bakewell", "DE45 1BB", "K. Green", "03/04/2021")]
MEMBERS = [(1, "F1", "OKAFOR, Amara", "04/03/2012", "Female", "Child", "", "Hill School"),
           (2, "F1", "OKAFOR, Grace", "01/01/1985", "Female", "Mother", "", ""),
           (3, "F1", "OKAFOR, Tobi", "05/06/2014", "Male", "Child", "", "Hill School"),
           (4, "F2", "HUGHES, Ben", "21/11/2010", "Male", "Child", "", ""),
           (5, "F2", "HUGHES, Dan", "02/02/1980", "Male", "Father", "", "")]
EPISODES = [(1, "F1", 1, "01/09/2023", "", "Parenting", "Ongoing", "J. Brown"),
            (2, "F2", 4, "01/10/2023", "01/03/2024", "Housing", "Needs met", "K. Green")]


class EarlyHelpDb:
    """The early help tables in a fresh database, read through systems/early_help.toml."""

    def __init__(self, url: str, tmp_path: pathlib.Path, *, batch_size: int = 2) -> None:
        self.url, self.tmp_path = url, tmp_path
        self.engine = sa.create_engine(url)
        self.source: dict[str, Any] = {**copy.deepcopy(MAPPING["source"]), "url": url, "batch_size": batch_size}
        self.entities: dict[str, Any] = copy.deepcopy(MAPPING["entities"])
        for ddl in SCHEMA:
            self.sql(ddl)
        for table, rows in (("families", FAMILIES), ("family_members", MEMBERS), ("episodes", EPISODES)):
            marks = ", ".join(f":c{i}" for i in range(len(rows[0])))
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {table} VALUES ({marks})"),
                             [{f"c{i}": v for i, v in enumerate(r)} for r in rows])

    def adapter(self) -> sql_kind.SqlAdapter:
        return sql_kind.build("early_help", self.source, self.entities, base_dir=self.tmp_path, env={})

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def scalar(self, statement: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(statement)).scalar()

    def log(self) -> CaptureLog:
        return CaptureLog(self.engine, SqlCapture.model_validate(self.source["capture"]))

    def triggers(self) -> CaptureTriggers:
        return CaptureTriggers(self.engine, SqlCapture.model_validate(self.source["capture"]))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db(request, tmp_path):
    if request.param == "sqlite":
        made = EarlyHelpDb(f"sqlite:///{tmp_path}/early_help.db", tmp_path)
        yield made
        made.engine.dispose()
        return
    from tests.support.services import create_pg_database, drop_pg_database

    url = create_pg_database("hub_capture")
    made = EarlyHelpDb(url, tmp_path)
    yield made
    made.engine.dispose()
    drop_pg_database(url)


def loaded(db: EarlyHelpDb) -> MemoryState:
    """The first (full) run committed: every row read, triggers installed."""
    state = MemoryState()
    first = run(db.adapter(), state)
    assert len(first.changes) == 5 + 3 + 2  # members, links (child x adult of the same family), episodes
    assert state.cursor(CLAIM_CURSOR) == "0" and state.cursor(FULL_RUN_CURSOR)
    assert db.triggers().installed()
    return state


def source_hashes(db: EarlyHelpDb) -> dict[str, dict[str, str]]:
    """Each entity's rows as a full read (what reconciliation sees) hashes them."""
    out: dict[str, dict[str, str]] = {}
    for batch in db.adapter().extract(NothingCommitted()):
        for c in batch.changes:
            out.setdefault(c.entity, {})[c.source_id] = content_hash(dict(c.raw or {}))
    return out


def ids(result, entity: str) -> list[str]:
    return sorted(c.source_id for c in result.changes if c.entity == entity and not c.deleted)


def row(result, entity: str, source_id: str) -> dict[str, Any]:
    return next(dict(c.raw) for c in result.changes if c.entity == entity and c.source_id == source_id and c.raw)


def deleted(result, entity: str) -> list[str]:
    return sorted(c.source_id for c in result.changes if c.entity == entity and c.deleted)


def test_first_run_is_full_and_installs_the_triggers_once(db):
    state = loaded(db)
    assert db.triggers().install() == []  # as configured already: nothing rewritten
    again = run(db.adapter(), state)
    assert again.changes == [] and again.batches == [] and again.unchanged == 0  # nothing captured: no work


def test_insert_update_delete_of_family_members_are_announced(db):
    state = loaded(db)
    db.sql("INSERT INTO family_members VALUES (6, 'F2', 'HUGHES, Cara', '07/07/2016', 'Female', 'Child', '', '')")
    result = run(db.adapter(), state)
    assert ids(result, "family_members") == ["6"]
    assert ids(result, "family_links") == ["6|5"]  # the new child's link to the family's adult
    assert row(result, "family_members", "6")["family_address"] == "2 Low Rd, Bakewell"

    db.sql("UPDATE family_members SET full_name = 'OKAFOR-SMITH, Amara' WHERE member_id = 1")
    result = run(db.adapter(), state)
    assert ids(result, "family_members") == ["1"]
    assert row(result, "family_members", "1")["full_name"] == "OKAFOR-SMITH, Amara"
    assert ids(result, "family_links") == [] and not result.deleted  # links re-read, unchanged

    db.sql("DELETE FROM family_members WHERE member_id = 6")
    result = run(db.adapter(), state)
    assert deleted(result, "family_members") == ["6"] and deleted(result, "family_links") == ["6|5"]
    assert not ids(result, "family_members")
    assert "6" not in state.row_hashes("family_members")


def test_insert_update_delete_of_episodes_are_announced(db):
    state = loaded(db)
    db.sql("INSERT INTO episodes VALUES (3, 'F1', 3, '01/01/2024', '', 'Housing', 'Ongoing', 'J. Brown')")
    assert ids(run(db.adapter(), state), "episodes") == ["3"]
    db.sql("UPDATE episodes SET outcome = 'Stepped down', end_date = '02/02/2024' WHERE episode_id = 1")
    result = run(db.adapter(), state)
    assert ids(result, "episodes") == ["1"] and row(result, "episodes", "1")["outcome"] == "Stepped down"
    assert len(result.changes) == 1
    db.sql("DELETE FROM episodes WHERE episode_id = 2")
    result = run(db.adapter(), state)
    assert deleted(result, "episodes") == ["2"] and len(result.changes) == 1


def test_a_changed_family_re_announces_its_members(db):
    state = loaded(db)
    db.sql("UPDATE families SET address = '9 New Rd, Matlock', postcode = 'DE4 9ZZ' WHERE family_id = 'F1'")
    result = run(db.adapter(), state)
    assert ids(result, "family_members") == ["1", "2", "3"]
    assert {row(result, "family_members", m)["family_postcode"] for m in ("1", "2", "3")} == {"DE4 9ZZ"}
    assert ids(result, "family_links") == [] and ids(result, "episodes") == []
    assert result.unchanged == 0 and not result.deleted  # no other row was even read

    db.sql("INSERT INTO families VALUES ('F3', 'Nowak', '3 Mill Ln, Wirksworth', 'DE4 4CC', 'J. Brown', '')")
    assert run(db.adapter(), state).changes == []  # a family with no members yet makes no row
    db.sql("INSERT INTO family_members VALUES (7, 'F3', 'NOWAK, Chloe', '30/06/2015', 'Female', 'Child', '', '')")
    db.sql("DELETE FROM families WHERE family_id = 'F3'")  # the member stays (LEFT JOIN), without address
    result = run(db.adapter(), state)
    assert ids(result, "family_members") == ["7"] and row(result, "family_members", "7")["family_address"] is None


def test_a_member_leaving_the_family_or_changing_role_removes_its_links(db):
    state = loaded(db)
    db.sql("UPDATE family_members SET family_id = 'F2' WHERE member_id = 3")  # Tobi moves to the Hughes family
    result = run(db.adapter(), state)
    assert deleted(result, "family_links") == ["3|2"]
    assert ids(result, "family_links") == ["3|5"]
    db.sql("UPDATE family_members SET role = 'Carer' WHERE member_id = 4")  # no longer a child: found by key scan
    result = run(db.adapter(), state)
    assert deleted(result, "family_links") == ["4|5"]
    assert ids(result, "family_members") == ["4"]


def test_crash_between_read_and_commit_redelivers(db):
    state = loaded(db)
    db.sql("UPDATE family_members SET full_name = 'HUGHES, Benjamin' WHERE member_id = 4")
    db.sql("DELETE FROM episodes WHERE episode_id = 1")
    with pytest.raises(Crash):
        run(db.adapter(), state, crash_after=0)  # read, never committed
    assert state.cursor(CLAIM_CURSOR) == "0" and db.log().pending() == 2
    db.sql("UPDATE family_members SET sex = 'Not known' WHERE member_id = 5")  # a change made in between
    with pytest.raises(Crash):  # with batch_size 2: the first batch committed, the claim cursor not
        run(db.adapter(), state, crash_after=1)
    assert state.cursor(CLAIM_CURSOR) == "0" and db.log().pending() == 3
    run(db.adapter(), state)
    assert state.hashes == source_hashes(db)  # every change in, the deleted episode out
    assert state.cursor(CLAIM_CURSOR) == "1"
    assert db.log().pending() == 3  # consumed rows are deleted by the next run, once the claim is committed
    assert run(db.adapter(), state).changes == [] and db.log().pending() == 0


def test_malformed_row_is_reported_not_lost(db):
    state = loaded(db)
    db.sql("INSERT INTO episodes (episode_id, family_id, member_id, start_date) VALUES (9, 'F1', 1, '31/02/2024')")
    db.sql("UPDATE family_members SET full_name = NULL WHERE member_id = 2")
    result = run(db.adapter(), state)
    assert ids(result, "episodes") == ["9"] and ids(result, "family_members") == ["2"]  # translation quarantines them, the adapter reads them


def test_dropped_triggers_make_the_next_run_a_full_one(db):
    state = loaded(db)
    if db.engine.dialect.name == "sqlite":
        db.sql("DROP TRIGGER hub_capture_episodes_upd")
    else:
        db.sql("DROP TRIGGER hub_capture_episodes ON episodes")
    db.sql("UPDATE episodes SET outcome = 'Escalated to CSC' WHERE episode_id = 1")  # not captured
    assert not db.triggers().installed()
    result = run(db.adapter(), state)
    assert ids(result, "episodes") == ["1"] and len(result.changes) == 1 and result.unchanged == 9  # every row compared by hash
    assert db.triggers().installed()


def test_reconciliation_reads_everything_and_consumes_nothing(db):
    state = loaded(db)
    db.sql("UPDATE episodes SET outcome = 'Disengaged' WHERE episode_id = 1")
    scan = [c for batch in db.adapter().extract(NothingCommitted()) for c in batch.changes]  # as hub.reconcile reads
    assert len(scan) == 10
    assert db.log().pending() == 1
    assert ids(run(db.adapter(), state), "episodes") == ["1"]


def test_many_changes_make_a_full_run_and_are_consumed(db):
    db.source["capture"]["full_run_above"] = 2
    state = loaded(db)
    for m in (1, 2, 3):
        db.sql("UPDATE family_members SET school = 'Dale School' WHERE member_id = :m", m=m)
    result = run(db.adapter(), state)
    assert ids(result, "family_members") == ["1", "2", "3"] and result.unchanged == 7
    assert run(db.adapter(), state).changes == [] and db.log().pending() == 0


def test_reconciliation_is_due_after_reconcile_every_s(db):
    state = loaded(db)
    state.cursors[FULL_RUN_CURSOR] = "2000-01-01T00:00:00+00:00"
    assert run(db.adapter(), state).unchanged == 10


def test_a_match_on_a_column_the_rows_lack_is_refused_at_the_run(tmp_path):
    db = EarlyHelpDb(f"sqlite:///{tmp_path}/early_help.db", tmp_path)
    db.entities["family_links"]["capture"]["family_members"]["match"] = {"household": "family_id"}
    with pytest.raises(SourceConfigError, match=r"has no column\(s\) \['household'\]"):
        run(db.adapter(), MemoryState())


def test_a_recorded_column_added_rewrites_the_triggers(db):
    loaded(db)
    db.source["capture"]["tables"]["episodes"] = ["episode_id", "member_id"]
    assert not db.triggers().installed()
    assert db.triggers().install() == ["episodes"]
    assert db.triggers().installed()


@pytest.mark.parametrize("change, message", [
    (lambda s, e: e["family_links"].pop("capture"), "a `query` entity needs a `capture` table"),
    (lambda s, e: s["capture"]["tables"]["family_members"].remove("family_id"), "are not recorded"),
    (lambda s, e: s["capture"]["tables"].pop("episodes"), "'episodes' is not in source.capture.tables"),
    (lambda s, e: e["episodes"].update(watermark="start_date"), "are alternatives"),
    (lambda s, e: s["capture"].update(mode="logical"), "capture.mode"),
])
def test_capture_configuration_errors_name_the_field(tmp_path, change, message):
    db = EarlyHelpDb(f"sqlite:///{tmp_path}/early_help.db", tmp_path)
    change(db.source, db.entities)
    with pytest.raises(SourceConfigError, match=message):
        db.adapter()
