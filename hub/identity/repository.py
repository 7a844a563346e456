"""The identity index in the store: features and blocking keys per record, link
evidence, review pairs, constraints and the identity audit log. Every function
takes the caller's session, so linking happens inside the worker's transaction.

Look-ups are per batch: one query per blocking rule for all the batch's keys, one
for the candidates' features, one for their persons' NHS numbers, one for
stewards' constraints.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, cast, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from hub.bulk import insert_rows, update_rows
from hub.identity.lookup import rows_in
from hub.identity.slice_cache import SliceCache
from hub.store.base import utcnow
from hub.store.engine import json_loads
from hub.store.tables.identity import (
    IdentityAuditRow,
    IdentityBlockKeyRow,
    IdentityConstraintRow,
    IdentityLinkRow,
    IdentityRecordRow,
    IdentityRelativeRow,
    IdentityReviewRow,
)
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow
from identity_index.blocking import (
    Block,
    BlockingRule,
    key_chains,
    level_sizes,
    placing_blocks,
    row_blocks,
)
from identity_index.engine import MAX_BLOCK, IncrementalIndex
from identity_index.features import PersonFeatures
from identity_index.households import INVERSE
from identity_index.scoring import PairScore

CHUNK = 500
_IR, _BK = IdentityRecordRow.__table__, IdentityBlockKeyRow.__table__
FiledKey = tuple[str, str, str]  # (rule, key, detail): a record's row in identity_block_key


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def refs_under_keys(session: Session, keys: Iterable[tuple[str, str]], size: int = CHUNK) -> set[str]:
    """The records filed under any of these (rule, key) blocking keys: one query per rule and
    `size` keys."""
    by_rule: dict[str, set[str]] = defaultdict(set)
    for rule, key in keys:
        by_rule[rule].add(key)
    refs: set[str] = set()
    for rule, values in by_rule.items():  # through the driver (hub.identity.lookup): no ORM rows
        refs.update(ref for (ref,) in rows_in(session, _BK, ["ref_key"], "key", sorted(values), {"rule": rule},
                                              chunk=size))
    return refs


def detail_counts(session: Session, keys: Iterable[tuple[str, str]], size: int = CHUNK) -> dict[tuple[str, str, str], int]:
    """How many records are filed under each of these (rule, key) blocking keys, by detail (the
    values refining the key: `identity_index.blocking.filed_keys`), counted by the database from
    the (rule, key, detail) index: one query per rule and `size` keys."""
    by_rule: dict[str, set[str]] = defaultdict(set)
    for rule, key in keys:
        by_rule[rule].add(key)
    counts: dict[tuple[str, str, str], int] = {}
    for rule, values in by_rule.items():  # through the driver: the ORM's rows were 5 % of a chunk at 1,000,000
        for key, detail, n in rows_in(session, _BK, ["key", "detail"], "key", sorted(values), {"rule": rule},
                                      chunk=size, counted=True):
            counts[(rule, key, detail)] = int(n)
    return counts


def _block_terms(blocks: Iterable[Block], levels: dict[str, int]) -> tuple[dict[str, list[str]], list[Any], list[Any]]:
    """`blocks` as look-ups: whole keys by rule, and the (rule, key, detail) of the refined blocks
    that name every refining value (one detail), and (rule, key, lowest, highest) of those that
    name fewer (a range of details)."""
    whole: dict[str, list[str]] = defaultdict(list)
    exact: list[Any] = []
    ranged: list[Any] = []
    for rule, key, values in blocks:
        if not values:
            whole[rule].append(key)
        elif len(values) >= levels.get(rule, 0):
            exact.append((rule, key, "#".join(values)))
        else:  # every detail starting with these values ("#" sorts just before "$")
            prefix = "#".join(values)
            ranged.append((rule, key, prefix + "#", prefix + "$"))
    return whole, exact, ranged


def _refined_rows(session: Session, terms: list[Any], columns: Sequence[str], size: int,
                  select: str | None = None) -> list[Any]:
    """`columns` of the block keys these terms name (all `_block_terms`' exact ones, or all its
    ranged ones), `size` terms a statement (`select`: the select list's text instead).
    The rule in every term: SQLite then seeks the index once per term (MULTI-INDEX OR); with
    `rule = ?` outside the OR it scanned the rule's every key (a bulk link stalled at 1M people).
    Straight through the driver, as `hub.identity.lookup` does and for its reason: SQLAlchemy
    built and keyed each statement of 200 terms anew (10.6 % of a bulk link's chunk at 1,000,000
    people, PostgreSQL, 2026-12-07); a full statement is one text the driver has seen before."""
    if not terms:
        return []
    if session.autoflush and (session.new or session.deleted or session.dirty):
        session.flush()
    sqlite = session.get_bind().dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    bk = '"identity_block_key"'
    term = (f"({bk}.rule = {mark} AND {bk}.\"key\" = {mark} AND {bk}.detail "
            + (f"= {mark})" if len(terms[0]) == 3 else f">= {mark} AND {bk}.detail < {mark})"))
    head = f"SELECT {select or ', '.join(f'{bk}.{c}' for c in columns)} FROM {bk} WHERE "
    driver = session.connection().connection.driver_connection
    rows: list[Any] = []
    for start in range(0, len(terms), size):
        part = terms[start:start + size]
        sql, params = head + " OR ".join([term] * len(part)), [v for t in part for v in t]
        rows += (driver.execute(sql, params) if sqlite else driver.execute(sql, params, prepare=False)).fetchall()
    return rows


def refs_in_blocks(session: Session, blocks: Iterable[Block], levels: dict[str, int], size: int = 200) -> set[str]:
    """The records filed under these blocks: (rule, key, refining values), the key's whole block
    when there are none, else the refined block they name (`levels`: how many values refine a
    rule's keys; a block naming all of them is one detail, a shallower one a range of details)."""
    whole, exact, ranged = _block_terms(blocks, levels)
    refs = refs_under_keys(session, ((rule, key) for rule, keys in whole.items() for key in keys))
    for terms in (exact, ranged):
        refs.update(ref for (ref,) in _refined_rows(session, terms, ["ref_key"], size))
    return refs


def block_rows(session: Session, blocks: Iterable[Block], levels: dict[str, int],
               size: int = 200) -> dict[str, tuple[list[str], list[str]]]:
    """`refs_in_blocks` with the block each record is in: per rule, the records filed under these
    blocks and, beside each, its block named as `identity_index.blocking.level_key` names it
    ("key", "key#03", "key#03#14"), what `link_batch(stored_blocks=)` takes instead of working out
    the context's keys again. The database names each row's block, and equal strings are kept
    once (`sys.intern`: a record is in several blocks, a block holds many records): at 1,000,000
    people a chunk reads ~6M such rows, and naming them in Python cost as much as the keys saved."""
    whole, exact, ranged = _block_terms(set(blocks), levels)
    bk = '"identity_block_key"'
    first = (f"substr({bk}.detail, 1, instr({bk}.detail, '#') - 1)"
             if session.get_bind().dialect.name == "sqlite" else f"split_part({bk}.detail, '#', 1)")
    rows: dict[str, list[Any]] = defaultdict(list)
    for rule, keys in whole.items():
        rows[rule] += rows_in(session, _BK, ["ref_key", "key"], "key", sorted(keys), {"rule": rule})
    for terms, name in ((exact, f"{bk}.detail"), ([t for t in ranged if t[2].count("#") == 1], first)):
        by_rule: dict[str, list[Any]] = defaultdict(list)
        for term in terms:
            by_rule[term[0]].append(term)
        for rule, part in by_rule.items():
            rows[rule] += _refined_rows(session, part, [], size, select=f"{bk}.ref_key, {bk}.\"key\" || '#' || {name}")
    by_depth: dict[int, list[Any]] = defaultdict(list)  # runs of several values, named here by their depth
    for term in ranged:
        if term[2].count("#") > 1:
            by_depth[term[2].count("#")].append(term)
    for depth, terms in by_depth.items():
        for ref, rule, key, detail in _refined_rows(session, terms, ["ref_key", "rule", '"key"', "detail"], size):
            rows[rule].append((ref, "#".join((key, *detail.split("#")[:depth]))))
    return {rule: (list(map(sys.intern, map(itemgetter(0), found))), list(map(sys.intern, map(itemgetter(1), found))))
            for rule, found in rows.items()}


def block_members(session: Session, blocks: Iterable[Block], levels: dict[str, int],
                  size: int = 200) -> dict[Block, set[str]]:
    """`refs_in_blocks`, block by block: every record filed under each of these blocks."""
    wanted = set(blocks)
    out: dict[Block, set[str]] = {b: set() for b in wanted}
    whole, exact, ranged = _block_terms(wanted, levels)
    rows: list[Any] = [(ref, rule, key, detail) for rule, keys in whole.items() for ref, key, detail in rows_in(
        session, _BK, ["ref_key", "key", "detail"], "key", sorted(keys), {"rule": rule})]
    for terms in (exact, ranged):
        rows += _refined_rows(session, terms, ["ref_key", "rule", '"key"', "detail"], size)
    refining = {rule for rule, n in levels.items() if n}
    for ref, rule, key, detail in rows:
        for block in row_blocks(rule, key, detail, refining):
            if block in wanted:
                out[block].add(ref)
    return out


def keys_of_stored(session: Session, refs: Sequence[str]) -> set[tuple[str, str]]:
    """The (rule, key) blocking keys these stored records are filed under."""
    return {(rule, key) for keys in stored_keys(session, refs).values() for rule, key, _detail in keys}


def stored_keys(session: Session, refs: Iterable[str]) -> dict[str, list[FiledKey]]:
    """The (rule, key, detail) rows each of these stored records has in `identity_block_key`, as its
    `identity_record.block_keys` lists them (records without keys are left out)."""
    out = {}
    for ref, text in rows_in(session, _IR, ["ref_key", "block_keys"], "ref_key", sorted(set(refs))):
        if text:
            out[ref] = [tuple(k) for k in json_loads(text)]
    return out


def keys_text(keys: Iterable[FiledKey]) -> str:
    """`identity_record.block_keys` of a record filing these keys (`filed_rows`)."""
    return json.dumps(sorted(keys), separators=(",", ":"))


def filed_rows(keys: Iterable[tuple[str, str, str]]) -> set[FiledKey]:
    """A record's (rule, key, detail) keys as rows of `identity_block_key`: cut to the columns'
    widths, each once (the row is the table's key)."""
    return {(r, k[:200], d[:60]) for r, k, d in keys}


def delete_keys(session: Session, rows: Iterable[tuple[str, FiledKey]]) -> None:
    """Delete these (ref, (rule, key, detail)) rows of `identity_block_key`: one seek each."""
    params = [{"b_rule": r, "b_key": k, "b_detail": d, "b_ref": ref} for ref, (r, k, d) in rows]
    if params:
        session.execute(delete(_BK).where(_BK.c.rule == bindparam("b_rule"), _BK.c.key == bindparam("b_key"),
                                          _BK.c.detail == bindparam("b_detail"),
                                          _BK.c.ref_key == bindparam("b_ref")), params)


def stored_sizes(session: Session, keys: Iterable[tuple[str, str]], rules: Sequence[BlockingRule],
                 placing: Iterable[str]) -> Counter[Block]:
    """The stored records in every block under these (rule, key) keys, less the records being
    placed (`placing`): counted by the database from the (rule, key, detail) index."""
    counts = detail_counts(session, keys)
    if not counts:
        return Counter()
    for record_keys in stored_keys(session, placing).values():
        for filed in record_keys:
            if filed in counts:
                counts[filed] -= 1
    return level_sizes(counts, rules)


def load_slice(session: Session, index: IncrementalIndex, keys: Iterable[tuple[str, str]],
               placing: set[str], cache: SliceCache | None = None) -> int:
    """Load into `index` every stored record sharing a blocking key with the records being
    placed (`placing`: their refs), their persons' NHS numbers and stewards' constraints.
    With a `cache`, features are read as text and decoded only when not cached already.
    Returns the number of records loaded."""
    keys = set(keys)
    loaded = _load_refs(session, index, refs_under_keys(session, keys), placing, cache)
    index.loaded_whole(keys)
    return loaded


def load_blocks(session: Session, index: IncrementalIndex, feats: Sequence[PersonFeatures],
                cache: SliceCache | None = None,
                keys_of: Callable[[PersonFeatures], list[tuple[str, str]]] | None = None) -> int:
    """`load_slice` of only the blocks these records are compared within when they are placed
    (`identity_index.blocking.placing_blocks`), with every other block's stored size noted, so
    the index decides as with every record under their keys loaded. Returns the records loaded."""
    placing = {f.ref for f in feats}
    chains = key_chains(feats, index.rules, keys_of)
    sizes = stored_sizes(session, {levels[0][:2] for levels in chains}, index.rules, placing)
    blocks = placing_blocks(chains, sizes, MAX_BLOCK)
    refs = refs_in_blocks(session, blocks, {r.name: len(r.refine) for r in index.rules})
    loaded = _load_refs(session, index, refs, placing, cache)
    index.note_stored_sizes(sizes)
    return loaded


def _load_refs(session: Session, index: IncrementalIndex, refs: set[str], placing: set[str],
               cache: SliceCache | None) -> int:
    refs = refs | placing
    persons: set[str] = set()
    loaded = 0
    features = cast(IdentityRecordRow.features, Text) if cache is not None else IdentityRecordRow.features
    for part in chunks(sorted(refs)):
        for ref, pid, stored in session.execute(select(IdentityRecordRow.ref_key, IdentityRecordRow.person_id,
                                                       features).where(IdentityRecordRow.ref_key.in_(part))):
            if ref not in placing:
                f = cache.features(ref, stored, index) if cache is not None else PersonFeatures.from_json(stored)
                index.load(f, pid)
                loaded += 1
            persons.add(pid)
    for part in chunks(sorted(persons)):
        nhs: dict[str, set[str]] = defaultdict(set)
        for pid, scheme, value, record_key in session.execute(select(  # scheme checked here: see live_index
                PersonIdentifierRow.person_id, PersonIdentifierRow.scheme, PersonIdentifierRow.value,
                PersonIdentifierRow.record_key).where(PersonIdentifierRow.person_id.in_(part))):
            if scheme == "nhs_number" and record_key not in placing:
                nhs[pid].add(value)
        for pid, values in nhs.items():
            index.load_person_nhs(pid, values)
    for a, b, same in constraints_touching(session, refs):
        index.load_constraint(a, b, same)
    return loaded


def constraints_touching(session: Session, refs: Iterable[str]) -> list[tuple[str, str, bool]]:
    out = []
    for part in chunks(sorted(set(refs))):
        out += [(r.ref_a, r.ref_b, r.same) for r in session.execute(select(IdentityConstraintRow).where(
            or_(IdentityConstraintRow.ref_a.in_(part), IdentityConstraintRow.ref_b.in_(part)))).scalars()]
    return out


def current_person(session: Session, ref: str) -> str | None:
    return session.execute(select(IdentityRecordRow.person_id).where(IdentityRecordRow.ref_key == ref)).scalar()


def members(session: Session, person_ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for ref, pid in rows_in(session, _IR, ["ref_key", "person_id"], "person_id", sorted(set(person_ids))):
        out[pid].append(ref)
    return out


def key_rows(ref: str, keys: Iterable[tuple[str, str, str]]) -> list[dict[str, str]]:
    """`identity_block_key` rows of one record's (rule, key, detail) keys, cut to the columns' widths."""
    return [{"rule": r, "key": k, "detail": d, "ref_key": ref} for r, k, d in sorted(filed_rows(keys))]


def save_record(session: Session, features: PersonFeatures, person_id: str,
                keys: Sequence[tuple[str, str, str]], *, existed: bool) -> None:
    """Upsert the record's features and person; replace its blocking keys ((rule, key, detail)
    each: `identity_index.blocking.filed_keys`)."""
    save_records(session, [(features, person_id, keys, existed)])


def save_records(session: Session,
                 rows: Sequence[tuple[PersonFeatures, str, Sequence[tuple[str, str, str]], bool]]) -> None:
    """`save_record` for a whole batch: (features, person id, blocking keys, existed) each, in bulk.
    A stored record's block keys are rewritten only where they changed (most updates keep them
    all): the same rows as deleting and inserting them all, without the index churn and the
    identity change log rows that would cost."""
    now = utcnow()
    wanted = {f.ref: filed_rows(ks) for f, _pid, ks, existed in rows if existed}
    updates = [{"ref_key": f.ref, "person_id": pid, "features": f.to_json(), "updated_at": now,
                "block_keys": keys_text(wanted[f.ref])} for f, pid, _keys, existed in rows if existed]
    stored = stored_keys(session, wanted)
    update_rows(session, IdentityRecordRow.__table__, "ref_key", updates)
    gone: list[tuple[str, FiledKey]] = []
    added: list[dict[str, str]] = []
    for ref, keys in wanted.items():
        have = set(stored.get(ref, ()))
        gone += [(ref, k) for k in sorted(have - keys)]
        added += [{"rule": r, "key": k, "detail": d, "ref_key": ref} for r, k, d in sorted(keys - have)]
    delete_keys(session, gone)
    inserts, keys = new_record_rows([r for r in rows if not r[3]], now)
    insert_rows(session, IdentityRecordRow.__table__, inserts)
    insert_rows(session, _BK, sorted(keys + added, key=_index_order))


def new_record_rows(rows: Sequence[tuple[PersonFeatures, str, Sequence[tuple[str, str, str]], bool]],
                    now: dt.datetime | None = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The `identity_record` and `identity_block_key` rows of records not stored yet (rows as
    `save_records` takes them), each list in the order of the index its rows go into: B-tree
    pages are then touched once each, not at random (340,000 keys into a 2.5 GB SQLite store:
    7.6 s at random, 3.1 s sorted). A bulk link builds them before its write transaction."""
    now = now or utcnow()
    filed = {f.ref: filed_rows(ks) for f, _pid, ks, _existed in rows}
    records = sorted(({"ref_key": f.ref, "person_id": pid, "features": f.to_json(), "updated_at": now,
                       "block_keys": keys_text(filed[f.ref])} for f, pid, _keys, _existed in rows),
                     key=lambda r: r["ref_key"])
    keys = [{"rule": r, "key": k, "detail": d, "ref_key": ref} for ref, ks in filed.items() for r, k, d in ks]
    return records, sorted(keys, key=_index_order)


def _index_order(row: dict[str, str]) -> tuple[str, str, str, str]:
    return row["rule"], row["key"], row["detail"], row["ref_key"]


def forget_record(session: Session, ref: str) -> None:
    """A deleted person record (its keys and features) or relationship record (its edges)."""
    forget_records(session, [ref])


def forget_records(session: Session, refs: Sequence[str]) -> None:
    delete_keys(session, [(ref, k) for ref, keys in stored_keys(session, refs).items() for k in keys])
    for part in chunks(sorted(set(refs))):
        session.execute(delete(IdentityRecordRow).where(IdentityRecordRow.ref_key.in_(part)))
        session.execute(delete(IdentityRelativeRow).where(IdentityRelativeRow.relationship_ref.in_(part)))


def save_relationship(session: Session, relationship_ref: str, subject: str, related: str, kind: str) -> None:
    """Both sides of one relationship record (replacing what an older version said)."""
    session.execute(delete(IdentityRelativeRow).where(IdentityRelativeRow.relationship_ref == relationship_ref))
    session.execute(insert(IdentityRelativeRow), [
        {"ref_key": related, "relative_ref": subject, "role": kind, "relationship_ref": relationship_ref},
        {"ref_key": subject, "relative_ref": related, "role": INVERSE.get(kind, kind),
         "relationship_ref": relationship_ref}])


def save_relationships(session: Session, edges: Sequence[tuple[str, str, str, str]]) -> None:
    """`save_relationship` for a batch: (relationship ref, subject, related, kind) each."""
    for part in chunks(sorted({e[0] for e in edges})):
        session.execute(delete(IdentityRelativeRow).where(IdentityRelativeRow.relationship_ref.in_(part)))
    insert_rows(session, IdentityRelativeRow.__table__, [row for rel, subject, related, kind in edges for row in (
        {"ref_key": related, "relative_ref": subject, "role": kind, "relationship_ref": rel},
        {"ref_key": subject, "relative_ref": related, "role": INVERSE.get(kind, kind), "relationship_ref": rel})])


def relatives_for(session: Session, refs: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for ref, other, role in rows_in(session, IdentityRelativeRow.__table__, ["ref_key", "relative_ref", "role"],
                                    "ref_key", sorted(set(refs))):
        out[ref].add((other, role))
    return out


def persons_of(session: Session, refs: Iterable[str]) -> dict[str, str]:
    return dict(rows_in(session, _IR, ["ref_key", "person_id"], "ref_key", sorted(set(refs))))


def features_for(session: Session, refs: Iterable[str], cache: SliceCache | None = None) -> dict[str, PersonFeatures]:
    """The stored features of these records; with a `cache`, read as text and decoded only
    when the cache does not hold that very text already (`SliceCache.stored`)."""
    out = {}
    for ref, features in rows_in(session, _IR, ["ref_key", "features"], "ref_key", sorted(set(refs)),
                                 as_text=("features",)):
        out[ref] = cache.stored(ref, features) if cache is not None else PersonFeatures.from_json(json_loads(features))
    return out


def persons_and_features(session: Session, refs: Iterable[str],
                         cache: SliceCache | None = None) -> tuple[dict[str, str], dict[str, PersonFeatures]]:
    """`persons_of` and `features_for` of the same records in one read."""
    owner: dict[str, str] = {}
    out: dict[str, PersonFeatures] = {}
    for ref, pid, features in rows_in(session, _IR, ["ref_key", "person_id", "features"], "ref_key",
                                      sorted(set(refs)), as_text=("features",)):
        owner[ref] = pid
        out[ref] = cache.stored(ref, features) if cache is not None else PersonFeatures.from_json(json_loads(features))
    return owner, out


def members_and_features(session: Session, person_ids: Iterable[str],
                         cache: SliceCache | None = None) -> tuple[dict[str, list[str]], dict[str, PersonFeatures]]:
    """`members` of these persons and `features_for` of those members, in one read."""
    groups: dict[str, list[str]] = defaultdict(list)
    out: dict[str, PersonFeatures] = {}
    for ref, pid, features in rows_in(session, _IR, ["ref_key", "person_id", "features"], "person_id",
                                      sorted(set(person_ids)), as_text=("features",)):
        groups[pid].append(ref)
        out[ref] = cache.stored(ref, features) if cache is not None else PersonFeatures.from_json(json_loads(features))
    return groups, out


def relatives_of_persons(session: Session, person_ids: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
    """`relatives_for` every record of these persons (one join instead of their members, then theirs)."""
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    rel = IdentityRelativeRow
    for part in chunks(sorted(set(person_ids))):
        for ref, other, role in session.execute(select(rel.ref_key, rel.relative_ref, rel.role).join(
                IdentityRecordRow, IdentityRecordRow.ref_key == rel.ref_key).where(
                IdentityRecordRow.person_id.in_(part))):
            out[ref].add((other, role))
    return out


class ReviewPair(NamedTuple):
    id: int
    ref_a: str
    ref_b: str


def open_review_pairs(session: Session, refs: Iterable[str]) -> list[ReviewPair]:
    """`open_reviews_touching` without loading the rows (their evidence is JSON): the pairs'
    ids and refs, for `resolve_reviews`."""
    out: dict[int, ReviewPair] = {}
    t = IdentityReviewRow.__table__
    keys = sorted(set(refs))
    for side in ("ref_a", "ref_b"):  # each side by its own index
        for row_id, a, b, status in rows_in(session, t, ["id", "ref_a", "ref_b", "status"], side, keys):
            if status == "open":
                out[row_id] = ReviewPair(row_id, a, b)
    return [out[i] for i in sorted(out)]


def open_review_scores(session: Session, refs: Iterable[str]) -> list[tuple[str, str, float]]:
    """(ref a, ref b, probability) of the open pairs with one of `refs` on either side: the
    candidates a record already competes with when a new pair with it is weighed."""
    out: dict[int, tuple[str, str, float]] = {}
    t = IdentityReviewRow.__table__
    keys = sorted(set(refs))
    for side in ("ref_a", "ref_b"):  # each side by its own index, as `open_review_pairs`
        for row_id, a, b, probability, status in rows_in(session, t, ["id", "ref_a", "ref_b", "probability", "status"],
                                                         side, keys):
            if status == "open":
                out[row_id] = (a, b, probability)
    return [out[i] for i in sorted(out)]


def resolve_reviews(session: Session, ids: Sequence[int], *, decided_by: str, reason: str) -> None:
    """Mark these review pairs resolved (one executemany)."""
    if not ids:
        return
    t = IdentityReviewRow.__table__
    session.execute(update(t).where(t.c.id == bindparam("b_id")).values(
        status="resolved", decided_by=decided_by, reason=reason, decided_at=bindparam("b_at")),
        [{"b_id": i, "b_at": utcnow()} for i in ids])


def open_reviews_touching(session: Session, refs: Iterable[str]) -> list[IdentityReviewRow]:
    """Open pairs with one of `refs` on either side: one look-up by each side's index (the
    status is checked here: with it in SQL the planners read every open pair instead)."""
    out: dict[int, IdentityReviewRow] = {}
    for part in chunks(sorted(set(refs))):
        for side in (IdentityReviewRow.ref_a, IdentityReviewRow.ref_b):
            for row in session.execute(select(IdentityReviewRow).where(side.in_(part))).scalars():
                if row.status == "open":
                    out[row.id] = row
    return [out[i] for i in sorted(out)]


def move_records(session: Session, refs: Sequence[str], person_id: str) -> None:
    for part in chunks(list(refs)):
        session.execute(update(IdentityRecordRow).where(IdentityRecordRow.ref_key.in_(part))
                        .values(person_id=person_id))
        session.execute(update(SourceRecordRow).where(SourceRecordRow.ref_key.in_(part))
                        .values(person_id=person_id))


def ensure_person_rows(session: Session, person_ids: Sequence[str]) -> None:
    """An empty row for each person id not stored yet (so a redirect can be written to it)."""
    ids = sorted(set(person_ids))
    have = set(session.execute(select(PersonRow.id).where(PersonRow.id.in_(ids))).scalars()) if ids else set()
    now = utcnow()
    rows = [{"id": pid, "version": 1, "golden": {}, "created_at": now, "updated_at": now}
            for pid in ids if pid not in have]
    insert_rows(session, PersonRow.__table__, rows)


def person_records(session: Session, person_ids: Sequence[str]) -> dict[str, list[str]]:
    """The person source records (live or deleted) of each person."""
    out: dict[str, list[str]] = defaultdict(list)
    for part in chunks(sorted(set(person_ids))):
        for ref, pid in session.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id).where(
                SourceRecordRow.person_id.in_(part), SourceRecordRow.entity == "person")):
            out[pid].append(ref)
    return out


def redirect_persons(session: Session, final: dict[str, str]) -> None:
    """`retire_person` for many at once: {retired: final survivor}, one executemany per statement."""
    if not final:
        return
    ensure_person_rows(session, list(final))
    rows = [{"b_retired": r, "b_survivor": s} for r, s in final.items()]
    for table, extra in ((IdentityRecordRow.__table__, None), (SourceRecordRow.__table__, "person")):
        statement = update(table).where(table.c.person_id == bindparam("b_retired"))
        if extra:
            statement = statement.where(table.c.entity == extra)
        session.execute(statement.values(person_id=bindparam("b_survivor")), rows)
    person = PersonRow.__table__
    session.execute(update(person).where(person.c.merged_into == bindparam("b_retired"))
                    .values(merged_into=bindparam("b_survivor")), rows)
    session.execute(update(person).where(person.c.id == bindparam("b_retired"))
                    .values(merged_into=bindparam("b_survivor")), rows)
    for part in chunks(sorted(final)):
        session.execute(delete(PersonIdentifierRow).where(PersonIdentifierRow.person_id.in_(part)))


def retire_person(session: Session, retired: str, survivor: str) -> list[str]:
    """Move every record of `retired` to `survivor` and leave a redirect; returns the refs moved."""
    refs = list(session.execute(select(SourceRecordRow.ref_key).where(
        SourceRecordRow.person_id == retired, SourceRecordRow.entity == "person")).scalars())
    move_records(session, refs, survivor)
    session.execute(update(PersonRow).where(PersonRow.id == retired).values(merged_into=survivor))
    session.execute(update(PersonRow).where(PersonRow.merged_into == retired).values(merged_into=survivor))
    session.execute(delete(PersonIdentifierRow).where(PersonIdentifierRow.person_id == retired))
    return refs


def add_link(session: Session, ref: str, person_id: str, *, made_by: str, model_version: str,
             score: PairScore | None = None, prior_weight: float = 0.0, rule: str | None = None,
             actor: str | None = None, note: str | None = None) -> None:
    session.execute(insert(IdentityLinkRow), [link_row(ref, person_id, made_by=made_by, model_version=model_version,
                                                       score=score, prior_weight=prior_weight, rule=rule,
                                                       actor=actor, note=note)])


def link_row(ref: str, person_id: str, *, made_by: str, model_version: str, score: PairScore | None = None,
             prior_weight: float = 0.0, rule: str | None = None, actor: str | None = None,
             note: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """One row of link evidence (for `add_link`, or a bulk insert of a batch's links; `now`: one
    timestamp for the batch, rendered once)."""
    explanation: dict[str, Any] = score.explanation(prior_weight) if score else {}
    if note:
        explanation["note"] = note
    return {"ref_key": ref, "person_id": person_id, "made_by": made_by, "rule": rule or (score.rule if score else None),
            "matched_ref": (score.ref_b if score.ref_a == ref else score.ref_a) if score else None,
            "match_weight": score.match_weight if score else None,
            "probability": score.probability if score else None,
            "explanation": explanation, "model_version": model_version, "actor": actor, "created_at": now or utcnow()}


def add_links(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, IdentityLinkRow.__table__, rows)


def add_review(session: Session, score: PairScore, *, model_version: str, prior_weight: float) -> bool:
    """Queue a pair for clerical review unless it is queued or decided already."""
    a, b = sorted((score.ref_a, score.ref_b))
    exists = session.execute(select(IdentityReviewRow.id).where(
        IdentityReviewRow.ref_a == a, IdentityReviewRow.ref_b == b)).scalar()
    if exists or constraint_between(session, a, b) is not None:
        return False
    session.execute(insert(IdentityReviewRow), [{
        "ref_a": a, "ref_b": b, "match_weight": score.match_weight, "probability": score.probability,
        "explanation": score.explanation(prior_weight), "model_version": model_version, "status": "open",
        "created_at": utcnow()}])
    return True


def add_reviews(session: Session, scores: Sequence[PairScore], *, model_version: str,
                prior_weight: float) -> set[str]:
    """`add_review` for a batch (one query for the pairs queued already, one for constraints);
    returns the refs of the pairs queued now."""
    pairs: dict[tuple[str, str], PairScore] = {}
    for score in scores:
        pairs.setdefault(tuple(sorted((score.ref_a, score.ref_b))), score)  # type: ignore[arg-type]
    if not pairs:
        return set()
    refs = sorted({r for pair in pairs for r in pair})
    taken: set[tuple[str, str]] = {(a, b) for a, b, _same in constraints_touching(session, refs)}
    for part in chunks(refs):
        taken |= {(a, b) for a, b in session.execute(select(IdentityReviewRow.ref_a, IdentityReviewRow.ref_b)
                                                      .where(IdentityReviewRow.ref_a.in_(part)))}
    now = utcnow()
    rows = [{"ref_a": a, "ref_b": b, "match_weight": s.match_weight, "probability": s.probability,
             "explanation": s.explanation(prior_weight), "model_version": model_version, "status": "open",
             "created_at": now} for (a, b), s in pairs.items() if (a, b) not in taken]
    insert_rows(session, IdentityReviewRow.__table__, rows)
    return {r for row in rows for r in (row["ref_a"], row["ref_b"])}


def constraint_between(session: Session, ref_a: str, ref_b: str) -> bool | None:
    a, b = sorted((ref_a, ref_b))
    return session.execute(select(IdentityConstraintRow.same).where(
        IdentityConstraintRow.ref_a == a, IdentityConstraintRow.ref_b == b)).scalar()


def set_constraint(session: Session, ref_a: str, ref_b: str, *, same: bool, actor: str, reason: str) -> None:
    a, b = sorted((ref_a, ref_b))
    row = session.get(IdentityConstraintRow, (a, b))
    if row is None:
        session.add(IdentityConstraintRow(ref_a=a, ref_b=b, same=same, decided_by=actor, reason=reason,
                                          created_at=utcnow()))
    else:
        row.same, row.decided_by, row.reason, row.created_at = same, actor, reason, utcnow()


def audit(session: Session, actor: str, action: str, detail: dict[str, Any]) -> None:
    session.execute(insert(IdentityAuditRow), [{"at": utcnow(), "actor": actor, "action": action, "detail": detail}])


def audit_many(session: Session, actor: str, action: str, details: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, IdentityAuditRow.__table__, [{"at": utcnow(), "actor": actor, "action": action, "detail": d}
                                                      for d in details])


def person_versions(session: Session, person_ids: Iterable[str]) -> dict[str, int]:
    """The version each person will have after its next refresh."""
    out: dict[str, int] = {}
    ids = sorted(set(person_ids))
    out.update(rows_in(session, PersonRow.__table__, ["id", "version"], "id", ids))
    return {pid: (out.get(pid) or 0) + 1 for pid in ids}


def person_version(session: Session, person_id: str) -> int:
    """The version the person will have after its next refresh."""
    version = session.execute(select(PersonRow.version).where(PersonRow.id == person_id)).scalar()
    return (version or 0) + 1
