"""`rebuild` rewrites only what changed in `identity_record` and `identity_block_key`: the
result must equal a full rewrite (every live record, its new person, its keys under the model)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from hub.bench.identity_rebuild import fill_store
from hub.identity.runs import rebuild
from hub.store.engine import Store
from hub.store.tables.identity import IdentityBlockKeyRow, IdentityRecordRow
from hub.store.tables.records import SourceRecordRow
from identity_index.blocking import filed_keys, rules_named
from identity_index.features import features_from_canonical
from identity_index.model import Model


def _index(store: Store) -> tuple[dict[str, str], set[tuple[str, str, str, str]], dict[str, str]]:
    with store.transaction() as s:
        records = dict(s.execute(select(IdentityRecordRow.ref_key, IdentityRecordRow.person_id)).all())
        keys = set(s.execute(select(IdentityBlockKeyRow.rule, IdentityBlockKeyRow.key, IdentityBlockKeyRow.detail,
                                    IdentityBlockKeyRow.ref_key)))
        persons = dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id).where(
            SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))).all())
    return records, keys, persons


def _expected_keys(store: Store, model: Model) -> set[tuple[str, str, str, str]]:
    rules = rules_named(model.blocking_rules)
    with store.transaction() as s:
        rows = s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.canonical).where(
            SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))).all()
    return {(r, k[:200], d, ref) for ref, c in rows for r, k, d in filed_keys(features_from_canonical(ref, c), rules)}


def test_partial_index_writes_equal_a_full_rewrite(tmp_path):
    url = f"sqlite:///{tmp_path}/hub.db"
    fill_store(url, 300, 5, tmp_path / "model.json", 2000)
    store = Store(url)
    model = Model.load(tmp_path / "model.json")
    with store.transaction() as s:
        refs = list(s.execute(select(IdentityRecordRow.ref_key).order_by(IdentityRecordRow.ref_key)).scalars())
        unindexed, gone = refs[3], refs[7]
        s.execute(delete(IdentityBlockKeyRow).where(IdentityBlockKeyRow.ref_key == unindexed))
        s.execute(delete(IdentityRecordRow).where(IdentityRecordRow.ref_key == unindexed))
        s.execute(update(SourceRecordRow).where(SourceRecordRow.ref_key == gone).values(deleted=True))
    report = rebuild(store, model)
    records, keys, persons = _index(store)
    assert report.merges and report.records == len(refs) - 1
    assert records == persons and unindexed in records and gone not in records
    assert keys == _expected_keys(store, model)

    narrower = Model.from_json({**model.to_json(), "blocking_rules": list(model.blocking_rules[:2])})
    rebuild(store, narrower)  # other rules: every key is rewritten
    assert _index(store)[1] == _expected_keys(store, narrower)
    store.dispose()
