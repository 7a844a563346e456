"""The candidate index kept between records-worker batches (hub/identity/live_index.py): each
batch's index holds exactly what a fresh index loaded by `repo.load_slice` in the same
transaction holds, whatever another worker, a steward or a rolled-back batch did in between."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import insert, select

from hub.bulk import update_rows
from hub.identity import live_index, stewardship, synthetic
from hub.identity import repository as repo
from hub.identity.linker import BATCH_STATE, IdentityLinker
from hub.identity.model_file import load_model
from hub.store.tables.identity import IdentityBlockKeyRow, IdentityRecordRow
from hub.store.tables.records import PersonIdentifierRow
from identity_index import blocking, engine
from identity_index.blocking import block_keys, filed_keys
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures, features_from_canonical


@pytest.fixture(scope="module")
def people() -> list[PersonFeatures]:
    return [features_from_canonical(r.ref, r.person) for r in synthetic.people(400, seed=5)]


@pytest.fixture(scope="module")
def model():
    return load_model()


def _live(linker: IdentityLinker) -> live_index.LiveSlice:
    return linker.caches.get().live


def _norm(table: dict) -> dict:
    return {k: set(v) for k, v in table.items() if v}


def _same_as_fresh(session, linker: IdentityLinker, feats: list[PersonFeatures]) -> IncrementalIndex:
    """Prepare the batch through the kept slice and check it against a fresh `load_blocks`, and
    its candidates against a fresh index holding every record under the batch's keys."""
    linker.prepare_features(session, feats)
    index = session.info[BATCH_STATE].index
    assert isinstance(index, live_index.BatchIndex)
    fresh = IncrementalIndex(linker.model)
    repo.load_blocks(session, fresh, feats)
    whole = IncrementalIndex(linker.model)
    repo.load_slice(session, whole, {k for f in feats for k in block_keys(f, linker.rules)}, {f.ref for f in feats})
    _sizes_agree(index, whole, feats)
    assert index.person_of == fresh.person_of
    assert _norm(index.members) == _norm(fresh.members)
    assert _norm(index.person_nhs) == _norm(fresh.person_nhs)
    assert _norm(index.cannot) == _norm(fresh.cannot)
    assert _norm(index.confirmed) == _norm(fresh.confirmed)
    for f in feats:
        assert index.candidates(f) == fresh.candidates(f)
        assert {r: index.records[r] for r in index.candidates(f)} == {r: fresh.records[r] for r in fresh.candidates(f)}
    return index


def _sizes_agree(index: IncrementalIndex, whole: IncrementalIndex, feats: list[PersonFeatures]) -> None:
    """Every block of these records' keys is as large in `index` (loaded and counted records) as in
    `whole` (every record under their keys loaded), and each record has the same candidates."""
    for f in feats:
        assert index.candidates(f) == whole.candidates(f)
        for block_key in whole._keys(f):
            block_id = hash(block_key)
            size = len(index.blocks.get(block_id, ())) + index.outside.get(block_id, 0)
            assert size == len(whole.blocks.get(block_id, ())), block_key


def _batch(store, linker: IdentityLinker, feats: list[PersonFeatures], *, check: bool = True) -> dict[str, str]:
    with store.transaction() as session:
        if check:
            _same_as_fresh(session, linker, feats)
        return linker.place_many(session, feats).persons


def _moved(f: PersonFeatures, postcode: str = "ZZ9 9ZZ") -> PersonFeatures:
    return dataclasses.replace(f, postcode=postcode, postcodes=frozenset({postcode}))


def test_batches_decide_as_with_a_fresh_index_every_batch(store, model, people):
    kept, fresh = IdentityLinker(model, publish_events=False), IdentityLinker(model, publish_events=False,
                                                                                live_index=False)
    ours = {}
    for i in range(0, 300, 60):
        ours.update(_batch(store, kept, people[i:i + 60]))
    assert _live(kept).batches == 5 and _live(kept).resets == 1  # the first batch starts it
    with store.transaction() as session:  # the same records again, as updates, against what is stored
        again = fresh.place_many(session, people[:300]).persons
    assert again == ours


def test_another_workers_changes_between_batches_are_seen(store, model, people):
    a, b = (IdentityLinker(model, publish_events=False) for _ in range(2))
    _batch(store, a, people[:100])
    _batch(store, b, people[100:200])  # new records in a's keys
    _batch(store, b, [_moved(f) for f in people[:20]])  # a's records, moved
    with store.transaction() as session:
        b.forget_many(session, [people[20].ref, people[21].ref])  # deleted
        session.execute(insert(PersonIdentifierRow), [{  # a person's NHS number written elsewhere
            "person_id": repo.current_person(session, people[30].ref), "scheme": "nhs_number",
            "value": "9434765919", "record_key": "other/person/1"}])
    index = None
    with store.transaction() as session:
        index = _same_as_fresh(session, a, people[100:150] + people[200:260])
        a.place_many(session, people[100:150] + people[200:260])
    assert people[20].ref not in _live(a).records
    assert _live(a).resets == 1  # applied from the log, not reloaded
    _batch(store, a, people[260:300] + [_moved(f, "AB1 2CD") for f in people[:10]])
    assert index is not None


def test_stewards_merges_splits_and_constraints_are_seen(store, model, people):
    worker = IdentityLinker(model, publish_events=False)
    placed = _batch(store, worker, people[:200])
    by_person: dict[str, list[str]] = {}
    for ref, pid in placed.items():
        by_person.setdefault(pid, []).append(ref)
    multi = [refs for refs in by_person.values() if len(refs) > 1]
    single = [refs[0] for refs in by_person.values() if len(refs) == 1]
    with store.transaction() as session:
        stewardship.unlink_record(session, multi[0][0], actor="steward", reason="not the same", model=model)
        stewardship.merge_persons(session, placed[single[0]], placed[single[1]], actor="steward",
                                  reason="the same", model=model)
        repo.set_constraint(session, single[2], single[3], same=True, actor="steward", reason="the same")
    _batch(store, worker, people[200:260] + [_moved(f) for f in people[:30]])
    with store.transaction() as session:
        repo.set_constraint(session, single[2], single[3], same=False, actor="steward", reason="not after all")
    _batch(store, worker, people[260:320] + [_moved(f, "AB1 2CD") for f in people[:30]])
    assert _live(worker).resets == 1


def test_a_rolled_back_batch_leaves_no_trace(store, model, people):
    worker = IdentityLinker(model, publish_events=False)
    _batch(store, worker, people[:150])
    with pytest.raises(RuntimeError), store.transaction() as session:
        worker.forget_many(session, [people[0].ref])
        worker.place_many(session, [_moved(f) for f in people[1:60]] + people[150:200])
        raise RuntimeError("the batch fails after placing")
    with store.transaction() as session:
        assert repo.current_person(session, people[0].ref) is not None
        assert repo.current_person(session, people[160].ref) is None
    resets = _live(worker).resets
    _batch(store, worker, people[150:220] + people[1:20])
    assert _live(worker).resets == resets + 1  # what the failed batch left in memory is gone


def test_eviction_keeps_whole_keys_within_the_bound(store, model, people):
    worker = IdentityLinker(model, publish_events=False)
    live = live_index.live_slice(worker.caches.get())
    live.max_refs = 60
    for i in range(0, 400, 50):
        _batch(store, worker, people[i:i + 50] + [_moved(f) for f in people[max(0, i - 30):i - 20]])
    with store.transaction() as session:
        live.begin(session)  # what a batch does first: the slice is within its bound before it loads more
        assert live.evicted > 0 and len(live.records) <= 60
        loaded = list(live.key_refs.items())[:200]  # a loaded block holds all its records
        stored = repo.block_members(session, [block for block, _refs in loaded], live.levels)
        assert loaded and all(refs == stored[block] for block, refs in loaded)


def test_a_worker_behind_the_pruned_log_starts_again(store, model, people, monkeypatch):
    monkeypatch.setattr(live_index, "KEEP", 10)
    monkeypatch.setattr(live_index, "PRUNE_EVERY", 1)
    a, b = (IdentityLinker(model, publish_events=False) for _ in range(2))
    _batch(store, a, people[:50])
    _batch(store, b, people[50:100])
    _batch(store, b, people[100:150])  # b prunes what a has not read
    _batch(store, a, people[150:200] + people[60:80])
    assert _live(a).resets == 2
    monkeypatch.setattr(live_index, "RESET_AT", 5)  # a rebuild's worth of changes: start again too
    _batch(store, b, people[200:250])
    _batch(store, a, people[250:300])
    assert _live(a).resets == 3


def test_a_change_committed_after_a_later_numbered_one_is_seen(store, model, people):
    """PostgreSQL: the log's order is not commit order. Another worker's batch still open when
    a later-numbered change commits and this worker reads the log is still seen once it commits."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite serialises writers: the log's order is commit order")
    a, b, c = (IdentityLinker(model, publish_events=False) for _ in range(3))
    _batch(store, a, people[:100])
    with store.transaction() as session:
        _same_as_fresh(session, a, people[100:120])  # a's slice now holds people[:100] under their keys
    moved = [_moved(f) for f in people[:10]]
    with store.transaction() as open_batch:
        b.place_many(open_batch, moved)  # written first, committed last
        _batch(store, c, people[150:200])  # later log rows, committed first
        with store.transaction() as session:
            _same_as_fresh(session, a, people[120:150])  # reads c's rows; b's are not visible yet
    twins = [dataclasses.replace(f, ref=f.ref + "-twin") for f in moved]
    with store.transaction() as session:  # b's records are candidates under their new keys
        index = _same_as_fresh(session, a, twins)
        assert any(f.ref in index.candidates(t) for f, t in zip(moved, twins, strict=True))
    assert all(_live(a).records[f.ref].postcode == "ZZ9 9ZZ" for f in moved if f.ref in _live(a).records)
    assert _live(a).resets == 1


def test_an_update_rewrites_only_the_block_keys_that_changed(sqlite_store, model, people, monkeypatch):
    worker = IdentityLinker(model, publish_events=False)
    _batch(sqlite_store, worker, people[:20])
    deleted, inserted = [], []
    delete_keys, insert_rows = repo.delete_keys, repo.insert_rows
    monkeypatch.setattr(repo, "delete_keys", lambda s, rows: delete_keys(s, deleted.extend(rows) or rows))
    monkeypatch.setattr(repo, "insert_rows", lambda s, table, rows: insert_rows(s, table, inserted.extend(
        r for r in rows if table.name == "identity_block_key") or rows))
    moved = [_moved(f) for f in people[:5]]
    _batch(sqlite_store, worker, moved + people[5:10])  # 5 moved, 5 re-announced
    with sqlite_store.transaction() as session:
        after = session.execute(select(IdentityBlockKeyRow.ref_key, IdentityBlockKeyRow.rule,
                                       IdentityBlockKeyRow.key, IdentityBlockKeyRow.detail)).all()
        listed = repo.stored_keys(session, [f.ref for f in people[:20]])
    for f in moved + people[5:20]:
        filed = filed_keys(f, worker.rules)
        assert sorted((r, k, d) for ref, r, k, d in after if ref == f.ref) == filed
        assert sorted(listed[f.ref]) == filed  # the record's own list of its keys
    assert deleted and {ref for ref, _key in deleted} <= {f.ref for f in moved}  # unchanged: untouched
    assert inserted and {row["ref_key"] for row in inserted} <= {f.ref for f in moved}


def test_block_keys_rewritten_are_seen_through_their_records_rows(store, model, people):
    """Block keys have no trigger (migration 0015): a writer rewriting them writes the records'
    rows too (their lists of their keys), whose triggers name the records in the log."""
    a, b = (IdentityLinker(model, publish_events=False) for _ in range(2))
    _batch(store, b, people[:100])
    _batch(store, a, people[100:200])  # a's slice holds b's records under these keys
    with store.transaction() as session:  # filed under no key any more
        refs = [f.ref for f in people[:50]]
        repo.delete_keys(session, [(ref, k) for ref, keys in repo.stored_keys(session, refs).items()
                                         for k in keys])
        update_rows(session, IdentityRecordRow.__table__, "ref_key", [{"ref_key": r, "block_keys": "[]"}
                                                                      for r in refs])
    _batch(store, a, people[100:200])  # the same keys again: the kept slice checked against a fresh load
    assert _live(a).resets == 1  # applied from the log, not reloaded


def test_a_large_block_is_read_only_where_the_batch_is_compared(store, model, people, monkeypatch):
    """Blocks split small (as a million records split "smith, born 2015"): a batch reads only the
    refined blocks its records are compared within, not every record under their keys, and its
    index still finds exactly the candidates of one holding every record under them."""
    monkeypatch.setattr(blocking, "SPLIT_AT", 3)
    monkeypatch.setattr(engine, "SPLIT_AT", 3)
    kept = IdentityLinker(model, publish_events=False)
    for i in range(4):  # a person's records spread over the batches
        _batch(store, kept, people[i:300:4])  # each checked against a fresh and a whole-key index
    live = _live(kept)
    assert any(values for _rule, _key, values in live.key_refs)  # refined blocks were read
    batch = people[300:340] + [_moved(f) for f in people[:40]]
    kept = IdentityLinker(model, publish_events=False)  # another worker: its slice holds nothing yet
    with store.transaction() as session:
        index = _same_as_fresh(session, kept, batch)
        whole = IncrementalIndex(model)
        under_keys = repo.load_slice(session, whole, {k for f in batch for k in block_keys(f, kept.rules)},
                                     {f.ref for f in batch})
        assert len(index.person_of) < under_keys
        gone = sorted(r for r in whole.records if r not in index.records)[:30]  # counted, not loaded: deleted
        kept.forget_many(session, gone)
        for ref in gone:
            whole.remove(ref)
        assert gone
        _sizes_agree(index, whole, batch)
        kept.place_many(session, batch)
    assert live.resets == 1 and _live(kept).resets == 1
