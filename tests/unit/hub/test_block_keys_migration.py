"""Migration 0018_block_keys_by_record: identity_block_key becomes one B-tree keyed by the whole
row (WITHOUT ROWID on SQLite; no id, no ref_key index), each record's keys are listed on its
identity_record row, a key filed twice keeps one row; the downgrade restores the rowid table
and both indexes, with the same keys."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, inspect, select, text

from hub.identity import repository as repo
from hub.identity import synthetic
from hub.store.engine import alembic_config
from hub.store.tables.identity import IdentityBlockKeyRow
from identity_index.blocking import filed_keys, rules_named
from identity_index.features import features_from_canonical
from identity_index.model import default_model

OLD_INDEXES = {"ix_identity_block_key_rule_key_detail", "ix_identity_block_key_ref"}


def _shape(store) -> tuple[list[str], set[str], list[str]]:
    with store.engine.connect() as connection:
        found = inspect(connection)
        return ([c["name"] for c in found.get_columns("identity_block_key")],
                {i["name"] for i in found.get_indexes("identity_block_key")},
                found.get_pk_constraint("identity_block_key")["constrained_columns"])


def _keys(store) -> set[tuple[str, str, str, str]]:
    with store.engine.connect() as connection:
        return set(connection.execute(text("SELECT ref_key, rule, key, detail FROM identity_block_key")))


def test_the_keys_move_to_one_tree_and_their_records_list_them(store):
    rules = rules_named(default_model().blocking_rules)
    feats = [features_from_canonical(r.ref, r.person) for r in synthetic.people(60, seed=3)]
    filed = {f.ref: filed_keys(f, rules) for f in feats}
    cfg = alembic_config()
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "block_keys_by_record@base")
    columns, indexes, pk = _shape(store)
    assert "id" in columns and pk == ["id"] and OLD_INDEXES <= indexes
    with store.transaction() as s:  # as the old schema held them, one key filed twice
        records, keys = repo.new_record_rows([(f, f"P{i:04d}", filed[f.ref], False) for i, f in enumerate(feats)])
        s.execute(insert(repo._IR), [{k: v for k, v in r.items() if k != "block_keys"} for r in records])
        s.execute(insert(IdentityBlockKeyRow.__table__), keys + keys[:1])
    old = _keys(store)

    store.migrate()
    columns, indexes, pk = _shape(store)
    assert "id" not in columns and pk == ["rule", "key", "detail", "ref_key"] and not (OLD_INDEXES & indexes)
    assert _keys(store) == old
    with store.read() as s:
        listed = repo.stored_keys(s, filed)
    assert {ref: sorted(keys) for ref, keys in listed.items()} == {r: sorted(set(k)) for r, k in filed.items() if k}
    if store.dialect == "sqlite":
        with store.engine.connect() as connection:
            sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'identity_block_key'")).scalar()
        assert "WITHOUT ROWID" in sql.upper()

    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "block_keys_by_record@base")
    columns, indexes, pk = _shape(store)
    assert "id" in columns and pk == ["id"] and OLD_INDEXES <= indexes
    assert _keys(store) == old
    store.migrate()
    with store.read() as s:
        assert s.execute(select(IdentityBlockKeyRow.rule).limit(1)).first() is not None
