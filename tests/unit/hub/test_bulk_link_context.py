"""A bulk link reads only the blocks it compares (hub/identity/bulk_link.py with
`identity_index.blocking.context_blocks`): the stored records filed under its new records'
chosen (refined) blocks and their relatives, sized by the store's counts. It compares the very
pairs and makes the very clusters a clustering with every linked record at hand would, while
reading a fraction of the index; and migration 0016 files the records of an older store under
their refined levels."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from alembic import command
from sqlalchemy import select, text

from hub.bench.identity_rebuild import _source_row
from hub.identity import bulk_link
from hub.identity import repository as repo
from hub.identity.model_file import load_model
from hub.identity.synthetic import people
from hub.store.engine import alembic_config
from hub.store.tables.identity import IdentityBlockKeyRow, IdentityRecordRow, IdentityRelativeRow
from hub.store.tables.records import SourceRecordRow
from identity_index.blocking import block_keys, filed_keys, level_key, rules_named
from identity_index.engine import link_batch
from identity_index.features import PersonFeatures, features_from_canonical

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _hold(store, records) -> None:
    with store.transaction() as s:
        s.execute(SourceRecordRow.__table__.insert(), [_source_row(r, None, NOW) for r in records])
        bulk_link.hold(s, [r.ref for r in records])
    edges = [(f"{a.ref}~{b.ref}", b.ref, a.ref, "parent")  # b is a's parent: household evidence
             for a, b in itertools.pairwise(records[::7]) if a.ref.split("/")[0] != b.ref.split("/")[0]]
    with store.transaction() as s:
        repo.save_relationships(s, edges)


def _stored_features(store) -> list[PersonFeatures]:
    with store.read() as s:
        return [PersonFeatures.from_json(f) for f in s.execute(select(IdentityRecordRow.features)).scalars()]


def _multi(result) -> set[frozenset[str]]:
    return {frozenset(m) for m in result.clusters.clusters().values() if len(m) > 1}


def test_a_bulk_link_reads_a_fraction_of_the_index_and_clusters_as_with_all_of_it(store, monkeypatch):
    model = load_model()
    records = list(people(1500, seed=11))
    first, second = records[:-400], records[-400:]
    _hold(store, first)
    bulk_link.link(store, model, publish_events=False)
    linked = _stored_features(store)
    _hold(store, second)
    new = [features_from_canonical(r.ref, r.person) for r in second]

    calls = []

    def spy(records_, model_, **kw):
        result = link_batch(records_, model_, **kw)
        calls.append((records_, kw, result))
        return result

    monkeypatch.setattr(bulk_link, "link_batch", spy)
    report = bulk_link.link(store, model, publish_events=False)
    (_records, kw, result), = calls
    rel = IdentityRelativeRow.__table__
    with store.read() as s:  # what it read before: every linked record under a coarse key
        coarse = repo.refs_under_keys(s, (k for f in new for k in block_keys(f, rules_named(model.blocking_rules))))
    # (at this size few blocks split: at 1,000,000 people most coarse keys hold thousands)
    assert report.records == len(new) and report.context < len(coarse), (report.context, len(coarse))
    with store.read() as s:  # every household edge of the store
        rels = bulk_link._relationships(s.execute(select(
            rel.c.ref_key, rel.c.relative_ref, rel.c.role, rel.c.relationship_ref)).all(),
            {f.ref for f in new + linked})
    assert len(rels) > len(kw["relationships"]) > 0
    # the same clustering with every linked record as context, blocks sized by their members
    whole = link_batch(sorted(new, key=lambda f: f.ref) + linked, model, relationships=rels,
                       distinct_scores=False, focus=len(new))
    assert result.pairs_compared == whole.pairs_compared > 0
    assert _multi(result) == _multi(whole)
    with store.read() as s:
        assert bulk_link.pending_count(s) == 0


def test_migration_0016_sets_the_detail_of_the_keys_stored_before_it(store):
    model = load_model()
    rules = rules_named(model.blocking_rules)
    _hold(store, list(people(120, seed=5)))
    bulk_link.link(store, model, publish_events=False)
    keys = IdentityBlockKeyRow.__table__

    def filed() -> set[tuple[str, str, str, str]]:
        with store.read() as s:
            return set(s.execute(select(keys.c.ref_key, keys.c.rule, keys.c.key, keys.c.detail)))

    expected = {(f.ref, r, k, d) for f in _stored_features(store) for r, k, d in filed_keys(f, rules)}
    assert filed() == expected and any(d for *_rest, d in expected)
    cfg = alembic_config()
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "refined_block_keys@base")  # the keys as an older store holds them
    with store.read() as s:
        assert set(s.execute(select(text("ref_key, rule, key FROM identity_block_key")))) == {
            (ref, r, k) for ref, r, k, _d in expected}
    store.migrate()
    assert filed() == expected


def test_the_refined_blocks_are_read_by_index_seeks_not_a_scan_of_the_rule(store):
    """SQLite without statistics planned `rule = ? AND (… OR …)` as a scan of every key of the
    rule: a bulk link at 1,000,000 people stalled there. Each term now seeks the index."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL plans the OR as a bitmap of index scans either way")
    statements = []
    with store.read() as s:
        driver = s.connection().connection.driver_connection
        driver.set_trace_callback(statements.append)  # as run, its values in place (it goes through the driver)
        try:
            refs = repo.refs_in_blocks(s, [("surname_year", "SM0|2015", ("03", "14")),
                                           ("surname_year", "SM0|2016", ("04",)), ("dob", "2015-03-14", ("a",))],
                                       {"surname_year": 2, "dob": 2})
        finally:
            driver.set_trace_callback(None)
        assert refs == set()
        refined = [st for st in statements if ".detail " in st]
        assert len(refined) == 2  # the exact term, then the two ranged ones
        plans = [" ".join(str(row[-1]) for row in driver.execute("EXPLAIN QUERY PLAN " + st)) for st in refined]
    assert all("SCAN" not in plan for plan in plans) and "MULTI-INDEX OR" in plans[1], plans


def test_block_rows_name_each_record_s_block_as_the_blocking_names_it(store):
    """`repository.block_rows` (what a bulk link passes `link_batch` so the context's keys are not
    worked out again) lists the records of each block `block_members` lists, the database naming
    each one's block as `identity_index.blocking.level_key` does, on SQLite and PostgreSQL."""
    model = load_model()
    _hold(store, list(people(600, seed=13)))
    bulk_link.link(store, model, publish_events=False)
    rules = rules_named(model.blocking_rules)
    levels = {r.name: len(r.refine) for r in rules}
    with store.read() as s:
        stored = s.execute(select(IdentityBlockKeyRow.rule, IdentityBlockKeyRow.key, IdentityBlockKeyRow.detail)).all()
    blocks = set()
    for i, (rule, key, detail) in enumerate(stored[::5]):  # whole keys, ranges of details, single details
        values = tuple(detail.split("#")) if levels[rule] else ()
        blocks.add((rule, key, values[:i % (len(values) + 1)]))
    assert any(0 < len(b[2]) < levels[b[0]] for b in blocks)  # a range: the first of two values
    assert {len(b[2]) for b in blocks} == {0, 1, 2}
    with store.read() as s:
        rows = repo.block_rows(s, blocks, levels)
        members = repo.block_members(s, blocks, levels)
    want = {(rule, ref, level_key(block)[1]) for block, refs in members.items() for ref in refs
            for rule in (block[0],)}
    got = {(rule, ref, name) for rule, (refs, names) in rows.items() for ref, name in zip(refs, names, strict=True)}
    assert got == want and len(got) == sum(len(n) for _r, n in rows.values())


def test_block_rows_name_blocks_refined_by_several_values_to_the_depth_asked_for(store):
    """A rule refined by three values (none of the model's is yet): a block naming two of them is
    a range of details, and `block_rows` names each of its records' block by those two values,
    as `block_members` lists them, beside blocks of one value and of all three."""
    details = ["a#b#c", "a#b#d", "a#e#c", "f#b#c", "a#b#c"]
    rows = [{"rule": "r3", "key": key, "detail": detail, "ref_key": f"s/person/{key}{i}"}
            for key in ("k1", "k2") for i, detail in enumerate(details)]
    with store.transaction() as s:
        s.execute(IdentityBlockKeyRow.__table__.insert(), rows)
    blocks = {("r3", "k1", ("a", "b")), ("r3", "k1", ("a",)), ("r3", "k2", ("a", "b", "c")),
              ("r3", "k2", ("f", "b")), ("r3", "k2", ())}
    levels = {"r3": 3}
    with store.read() as s:
        found = repo.block_rows(s, blocks, levels)
        members = repo.block_members(s, blocks, levels)
    refs, names = found["r3"]
    got = sorted(zip(refs, names, strict=True))
    want = sorted((ref, level_key(block)[1]) for block, block_refs in members.items() for ref in block_refs)
    assert got == want
    assert ("s/person/k11", "k1#a#b") in got and ("s/person/k23", "k2#f#b") in got and ("s/person/k24", "k2") in got
