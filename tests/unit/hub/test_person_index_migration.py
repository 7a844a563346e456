"""Migration 0017_person_prefix_indexes: on SQLite the person name-key indexes that are
prefixes of the covering ones are dropped (each person written paid for them), PostgreSQL keeps
its text_pattern_ops ones; the downgrade restores them; and the statements that used them seek
the covering indexes instead, while the deterministic linker's look-up keeps its own index."""

from __future__ import annotations

from alembic import command
from sqlalchemy import event, inspect

from hub.persons import name_key
from hub.services.persons import SearchQuery, search_persons
from hub.store.engine import alembic_config
from hub.store.tables.records import PersonRow

PATTERN = {"ix_person_family_pattern", "ix_person_given_pattern"}
KEPT = {"ix_person_family_given", "ix_person_family_cover", "ix_person_given_cover", "ix_person_birth"}


def _indexes(store) -> set[str]:
    with store.engine.connect() as connection:
        return {i["name"] for i in inspect(connection).get_indexes("person")}


def test_the_prefix_indexes_go_on_sqlite_only_and_come_back_on_downgrade(store):
    sqlite = store.dialect == "sqlite"
    assert KEPT <= _indexes(store)
    assert not (PATTERN & _indexes(store)) if sqlite else PATTERN <= _indexes(store)
    cfg = alembic_config()
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "person_prefix_indexes@base")
    assert PATTERN | KEPT <= _indexes(store)
    store.migrate()
    assert not (PATTERN & _indexes(store)) if sqlite else PATTERN <= _indexes(store)


def test_on_sqlite_the_name_statements_seek_the_covering_indexes(sqlite_store):
    people = [("David", "Nicholson", "1980-01-01"), ("Amy", "Smith", "2015-03-02"), ("Dave", "Nicholls", "1981-02-02")]
    with sqlite_store.transaction() as s:
        for i, (given, family, born) in enumerate(people * 30):
            s.add(PersonRow(id=f"P{i:04d}", golden={}, display_name=f"{given} {family}", family_key=name_key(family),
                            given_key=name_key(given), birth_date=born))
    statements = []

    def seen(_c, _cur, statement, params, _ctx, _many) -> None:
        if "person" in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, params))

    event.listen(sqlite_store.engine, "before_cursor_execute", seen)
    try:
        for name in ("Nicholson", "Dav", "Dav Nich", "Amy Smith", "Smiht"):
            search_persons(sqlite_store, SearchQuery(name=name))
    finally:
        event.remove(sqlite_store.engine, "before_cursor_execute", seen)
    with sqlite_store.engine.connect() as connection:
        plans = [" | ".join(r[3] for r in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + st, p))
                 for st, p in statements]
        lookup = " | ".join(r[3] for r in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM person WHERE family_key = ? AND given_key = ? AND birth_date = ? "
            "AND merged_into IS NULL LIMIT 1", ("smith", "amy", "2015-03-02")))
    assert any("COVERING INDEX ix_person_family_cover" in p or "COVERING INDEX ix_person_given_cover" in p
               for p in plans), plans
    assert not any("_pattern" in p for p in plans)
    assert not any("SCAN person" in p for p in plans), plans  # every one seeks
    assert "ix_person_family_given" in lookup  # the linker's look-up: not every person born that day
