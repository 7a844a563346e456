"""Whole-index runs over the store: train a model from the data, evaluate the links
against a ground truth, and rebuild (re-cluster) every person record at once."""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from canonical.messages import Envelope, MessageType, identity_item
from hub.bulk import insert_rows, update_rows
from hub.identity import repository as repo
from hub.identity.review import open_review_count, steward_decisions
from hub.identity.stewardship import StewardshipError, features_of, merge_persons
from hub.outbox import add_items_at_commit
from hub.persons import new_person_id, refresh_persons
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.identity import (
    IdentityBlockKeyRow,
    IdentityConstraintRow,
    IdentityRecordRow,
    IdentityRelativeRow,
    IdentityReviewRow,
)
from hub.store.tables.records import PersonRow, SourceRecordRow
from identity_index import evaluation as ev
from identity_index.blocking import (
    BlockingRule,
    blocking_report,
    candidate_pairs,
    filed_keys,
    rules_named,
)
from identity_index.engine import MAX_BLOCK, link_batch
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.households import INVERSE, corroborate, relatives_of
from identity_index.model import Model
from identity_index.scoring import Scorer
from identity_index.training import train

BULK = 5000  # rows per executemany


def live_person_records(session: Session) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """(ref, person id, canonical JSON) of every live person record, streamed."""
    query = (select(SourceRecordRow.ref_key, SourceRecordRow.person_id, SourceRecordRow.canonical)
             .where(SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))
             .order_by(SourceRecordRow.ref_key).execution_options(yield_per=2000))
    yield from session.execute(query)


def relationships(session: Session) -> list[tuple[str, str, str]]:
    """(subject ref, related ref, kind) of every live relationship record."""
    out = []
    query = (select(SourceRecordRow.ref_key, SourceRecordRow.canonical)
             .where(SourceRecordRow.entity == "relationship", SourceRecordRow.deleted.is_(False))
             .execution_options(yield_per=2000))
    for _ref_key, canonical in session.execute(query):
        subject, related = canonical.get("subject") or {}, canonical.get("related") or {}
        if subject.get("source_id") and related.get("source_id"):
            out.append((_ref(subject), _ref(related), str(canonical.get("kind", "household_member"))))
    return out


def _ref(ref: dict[str, Any]) -> str:
    return f"{ref['system']}/{ref.get('entity', 'person')}/{ref['source_id']}"


def store_features(store: Store) -> list[PersonFeatures]:
    with store.transaction() as s:
        return [features_from_canonical(ref, canonical) for ref, _pid, canonical in live_person_records(s)]


def train_from_store(store: Store, base: Model, out: str | Path, *, seed: int = 1) -> Model:
    """Train on every live person record, with stewards' decisions as labels; write the model file."""
    feats = store_features(store)
    if len(feats) < 2:
        raise ValueError("training needs at least two person records in the store")
    model = train(feats, base, seed=seed, decisions=steward_decisions(store))
    model.save(out)
    return model


def read_truth(estate_dir: str | Path) -> dict[str, str]:
    """`truth.csv` of a sample estate: person-record ref → true person id."""
    path = Path(estate_dir) / "truth.csv"
    out = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("kind", "person") == "person" and not row.get("defect"):
                out[f"{row['system']}/person/{row['source_id']}"] = row["person_id"]
    return out


@dataclass(frozen=True)
class Evaluation:
    records: int
    pairwise: ev.PairwiseScores
    b_cubed: ev.BCubed
    review_open: int
    reduction_ratio: float
    pairs_completeness: float | None
    pairs_compared: int

    def rows(self) -> list[tuple[str, Any]]:
        return [("person records evaluated", self.records), ("pairwise precision", self.pairwise.precision),
                ("pairwise recall", self.pairwise.recall), ("pairwise F1", self.pairwise.f1),
                ("B-cubed precision", self.b_cubed.precision), ("B-cubed recall", self.b_cubed.recall),
                ("B-cubed F1", self.b_cubed.f1), ("review queue (open + unsure)", self.review_open),
                ("pairs compared", self.pairs_compared), ("reduction ratio", self.reduction_ratio),
                ("pairs completeness", self.pairs_completeness if self.pairs_completeness is not None else "n/a")]


def evaluate_store(store: Store, truth: dict[str, str], model: Model) -> Evaluation:
    """The store's current persons against the truth, and blocking measured on the same records."""
    with store.transaction() as s:
        rows = list(live_person_records(s))
    predicted = {ref: pid for ref, pid, _c in rows if pid and ref in truth}
    feats = [features_from_canonical(ref, c) for ref, _pid, c in rows if ref in truth]
    pairs = candidate_pairs(feats, rules_named(model.blocking_rules), max_block=MAX_BLOCK)
    report = blocking_report(feats, pairs, truth)
    return Evaluation(len(predicted), ev.pairwise(predicted, truth), ev.b_cubed(predicted, truth),
                      open_review_count(store), report.reduction_ratio, report.pairs_completeness, len(pairs))


def corroborate_reviews(store: Store, model: Model, *, actor: str = "identity-index") -> int:
    """Link the open review pairs that household evidence settles: the same name, and each
    record a relative in the same role of one person (or of records at one address).
    Returns the number of pairs linked; each is resolved in the queue."""
    linked = 0
    with store.transaction() as s:
        reviews = list(s.execute(select(IdentityReviewRow).where(IdentityReviewRow.status == "open")).scalars())
        if not reviews:
            return 0
        relatives = relatives_of(relationships(s))
        refs = {r for row in reviews for r in (row.ref_a, row.ref_b)}
        kin = {k for r in refs for k, _role in relatives.get(r, ())}
        feats = features_of(s, sorted(refs | kin))
        owner = {ref: pid for ref, pid in s.execute(select(IdentityRecordRow.ref_key, IdentityRecordRow.person_id)
                                                    .where(IdentityRecordRow.ref_key.in_(sorted(refs | kin))))}
        scorer = Scorer(model)
        scores = [scorer.score(feats[row.ref_a], feats[row.ref_b]) for row in reviews
                  if row.ref_a in feats and row.ref_b in feats]
        homes = {ref: f.postcode for ref, f in feats.items() if f.postcode}
        by_pair = {(row.ref_a, row.ref_b): row for row in reviews}
        for score in corroborate(scores, relatives, owner, homes):
            a, b = repo.current_person(s, score.ref_a), repo.current_person(s, score.ref_b)
            row = by_pair.get((score.ref_a, score.ref_b)) or by_pair.get((score.ref_b, score.ref_a))
            try:
                if a and b and a != b:
                    merge_persons(s, a, b, actor=actor, reason="shared relative", model=model, made_by="rule",
                                  rule="shared_relative")
            except StewardshipError:
                continue
            row.status, row.decided_by, row.decided_at = "resolved", actor, utcnow()
            row.reason = "linked by rule shared_relative: same name, relatives of one person in the same role"
            linked += 1
    return linked


@dataclass
class RebuildReport:
    records: int = 0
    persons_before: int = 0
    persons_after: int = 0
    merges: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    records_moved: int = 0
    reviews_added: int = 0
    pairs_compared: int = 0
    seconds: float = 0.0


def rebuild(store: Store, model: Model, *, actor: str = "rebuild", refeature: bool = False) -> RebuildReport:
    """Re-cluster every live person record with `model` under the stewards' constraints.
    Each new cluster keeps the old person id most of its records had (ids stay stable);
    persons left empty redirect to where most of their records went. Features come from
    `identity_record` (kept current by the linker); `refeature` recomputes them all from the
    canonical records (after the feature code changed) and rewrites every index row."""
    started = time.perf_counter()
    report = RebuildReport()
    with store.transaction() as s:
        feats, old, indexed = _live_features(s, refeature)
        constraints = _constraints(s, old)
        result = link_batch(feats, model, must_link=[(a, b) for a, b, same in constraints if same],
                            cannot_link=[(a, b) for a, b, same in constraints if not same],
                            relationships=_rewrite_relative_edges(s), distinct_scores=False)
        new = _stable_ids(result.clusters.clusters(), old)
        report.records, report.pairs_compared = len(feats), result.pairs_compared
        report.persons_before = len({p for p in old.values() if p})
        report.persons_after = len(set(new.values()))
        _write_index(s, feats, indexed, new, model)
        del feats
        _persist(s, old, new, model, result, report)
        queued = select(func.count()).select_from(IdentityReviewRow)
        before = s.execute(queued).scalar_one()
        repo.add_reviews(s, list(result.clusters.reviews), model_version=model.version,  # in bulk, not one by one
                         prior_weight=model.prior_weight)
        report.reviews_added = s.execute(queued).scalar_one() - before
        repo.audit(s, actor, "rebuild", {"records": report.records, "merges": len(report.merges),
                                         "splits": len(report.splits), "moved": report.records_moved,
                                         "model_version": model.version})
    report.seconds = time.perf_counter() - started
    return report


def _live_features(s: Session, refeature: bool) -> tuple[list[PersonFeatures], dict[str, str | None],
                                                         dict[str, str]]:
    """Features of every live person record, its person, and ref → person of the records
    `identity_record` holds. Stored features are decoded (no canonical JSON read); only the
    records missing there (or all, with `refeature`) are computed from their canonical form."""
    source, index = SourceRecordRow.__table__, IdentityRecordRow.__table__
    indexed: dict[str, str] = {}
    if not refeature:
        indexed = dict(s.execute(select(index.c.ref_key, index.c.person_id)).all())
    feats, old, missing = [], {}, []
    query = (select(source.c.ref_key, source.c.person_id, index.c.features)
             .select_from(source.outerjoin(index, index.c.ref_key == source.c.ref_key))
             .where(source.c.entity == "person", source.c.deleted.is_(False)).order_by(source.c.ref_key))
    for ref, pid, stored in s.execute(query.execution_options(yield_per=BULK)):
        old[ref] = pid
        if stored is not None and not refeature:
            feats.append(PersonFeatures.from_json(stored))
        else:
            missing.append(ref)
    for part in repo.chunks(missing, 500):
        feats += [features_from_canonical(ref, canonical) for ref, canonical in s.execute(
            select(source.c.ref_key, source.c.canonical).where(source.c.ref_key.in_(part)))]
    return feats, old, indexed


def _constraints(s: Session, refs: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Stewards' constraints touching any live record: the table is small, so read whole
    (one IN query per 500 of a million refs was 2,000 queries)."""
    rows = s.execute(select(IdentityConstraintRow.ref_a, IdentityConstraintRow.ref_b, IdentityConstraintRow.same))
    return [(a, b, same) for a, b, same in rows if a in refs or b in refs]


def _rewrite_relative_edges(s: Session) -> list[tuple[str, str, str]]:
    """`relationships`, with every `identity_relative` edge rewritten in one delete and bulk inserts."""
    s.execute(delete(IdentityRelativeRow))
    out, rows = [], []
    for ref, canonical in s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.canonical).where(
            SourceRecordRow.entity == "relationship", SourceRecordRow.deleted.is_(False))):
        subject, related = canonical.get("subject") or {}, canonical.get("related") or {}
        if subject.get("source_id") and related.get("source_id"):
            a, b, kind = _ref(subject), _ref(related), str(canonical.get("kind", "household_member"))
            out.append((a, b, kind))
            rows += [{"ref_key": b, "relative_ref": a, "role": kind, "relationship_ref": ref},
                     {"ref_key": a, "relative_ref": b, "role": INVERSE.get(kind, kind), "relationship_ref": ref}]
    for part in repo.chunks(rows, BULK):
        insert_rows(s, IdentityRelativeRow.__table__, part)
    return out


def _stable_ids(clusters: dict[int, list[str]], old: dict[str, str | None]) -> dict[str, str]:
    taken: set[str] = set()
    new: dict[str, str] = {}
    for members in sorted(clusters.values(), key=len, reverse=True):
        votes = Counter(old[r] for r in members if old.get(r))
        pid = next((p for p, _n in votes.most_common() if p not in taken), None) or new_person_id()
        taken.add(pid)
        for r in members:
            new[r] = pid
    return new


def _write_index(s: Session, feats: list[PersonFeatures], indexed: dict[str, str], new: dict[str, str],
                 model: Model) -> None:
    """`identity_record` and its block keys as the new clustering has them: records already
    indexed only get their new person (in bulk); records not indexed yet are inserted with
    their keys; the rows of records no longer live go. Every block key is rewritten only
    when the model blocks on other rules than the stored keys (or nothing was indexed)."""
    rules = rules_named(model.blocking_rules)
    index, keys = IdentityRecordRow.__table__, IdentityBlockKeyRow.__table__
    rewrite_keys = not indexed or _stored_rules_differ(s, rules, feats)
    if not indexed or rewrite_keys:
        s.execute(delete(keys))
    if not indexed:
        s.execute(delete(index))
    gone = sorted(set(indexed) - set(new))
    if not rewrite_keys:
        repo.delete_keys(s, [(ref, k) for ref, ks in repo.stored_keys(s, gone).items() for k in ks])
    for part in repo.chunks(gone, 500):
        s.execute(delete(index).where(index.c.ref_key.in_(part)))
    now = utcnow()
    fresh = [f for f in feats if f.ref not in indexed]
    filed = {f.ref: repo.filed_rows(filed_keys(f, rules)) for f in (feats if rewrite_keys else fresh)}
    for part in repo.chunks(fresh, BULK):
        insert_rows(s, index, [{"ref_key": f.ref, "person_id": new[f.ref], "features": f.to_json(),
                                "updated_at": now, "block_keys": repo.keys_text(filed[f.ref])} for f in part])
    if rewrite_keys and indexed:  # the records' own lists of their keys (their triggers log them)
        update_rows(s, index, "ref_key", [{"ref_key": f.ref, "block_keys": repo.keys_text(filed[f.ref])}
                                          for f in feats if f.ref in indexed])
    for part in repo.chunks(sorted(filed), BULK):
        insert_rows(s, keys, [row for ref in part for row in repo.key_rows(ref, filed[ref])])
    relink = [(ref, new[ref]) for ref, pid in indexed.items() if ref in new and new[ref] != pid]
    statement = update(index).where(index.c.ref_key == bindparam("b_ref")).values(person_id=bindparam("b_pid"),
                                                                                 updated_at=now)
    for part in repo.chunks(relink, BULK):
        s.execute(statement, [{"b_ref": ref, "b_pid": pid} for ref, pid in part])


def _stored_rules_differ(s: Session, rules: list[BlockingRule], feats: list[PersonFeatures]) -> bool:
    """Whether the stored block keys come from other rules than `rules`: a stored key of another
    rule, or none of a rule that gives some record a key (index look-ups, not a scan of the keys)."""
    keys = IdentityBlockKeyRow.__table__
    names = [r.name for r in rules]
    if s.execute(select(keys.c.rule).where(keys.c.rule.not_in(names)).limit(1)).first() is not None:
        return True
    for rule in rules:
        if s.execute(select(keys.c.rule).where(keys.c.rule == rule.name).limit(1)).first() is None \
                and any(rule.keys(f) for f in feats):
            return True
    return False


def _persist(s: Session, old: dict[str, str | None], new: dict[str, str], model: Model, result: Any,
             report: RebuildReport) -> None:
    """Write the new clustering: every statement an executemany of up to BULK rows (Core, not
    the ORM), and only the persons whose membership changed are refreshed."""
    now = utcnow()
    moved = [(ref, pid) for ref, pid in new.items() if old.get(ref) != pid]
    source = SourceRecordRow.__table__
    move = update(source).where(source.c.ref_key == bindparam("b_ref")).values(person_id=bindparam("b_pid"))
    for part in repo.chunks(moved, BULK):
        s.execute(move, [{"b_ref": ref, "b_pid": pid} for ref, pid in part])
        repo.add_links(s, [repo.link_row(ref, pid, made_by="rebuild", model_version=model.version,
                                         score=result.clusters.links.get(ref), prior_weight=model.prior_weight)
                           for ref, pid in part])
    report.records_moved = len(moved)
    sources: dict[str, Counter] = defaultdict(Counter)  # new person → old persons it drew from
    spread: dict[str, Counter] = defaultdict(Counter)  # old person → new persons it went to
    for ref, pid in new.items():
        if old.get(ref):
            sources[pid][old[ref]] += 1
            spread[old[ref]][pid] += 1
    survivors = set(new.values())
    retired = {old_pid: targets.most_common(1)[0][0] for old_pid, targets in spread.items()
               if old_pid not in survivors}
    person = PersonRow.__table__
    for part in repo.chunks(sorted(retired.items()), BULK):
        params = [{"b_retired": r, "b_survivor": t} for r, t in part]
        s.execute(update(person).where(person.c.id == bindparam("b_retired"))
                  .values(merged_into=bindparam("b_survivor")), params)
        s.execute(update(person).where(person.c.merged_into == bindparam("b_retired"))
                  .values(merged_into=bindparam("b_survivor")), params)
    changed = {pid for _ref, pid in moved} | {p for p in spread if len(spread[p]) > 1 and p in survivors}
    refresh_persons(s, changed)
    splits = [(old_pid, targets) for old_pid, targets in spread.items() if old_pid in survivors and len(targets) > 1]
    merges = [(pid, origins) for pid, origins in sources.items() if len(origins) > 1]
    versions = repo.person_versions(s, [p for p, _t in splits] + [p for p, _o in merges])  # next version: minus one
    events = []
    for old_pid, targets in splits:
        report.splits.append({"person_id": old_pid, "into": sorted(targets)})
        events.append(_event(MessageType.IDENTITY_UNMERGED, old_pid, versions[old_pid] - 1, {"new_person_ids": sorted(
            t for t in targets if t != old_pid)}))
    for pid, origins in merges:
        report.merges.append({"person_id": pid, "from": sorted(origins)})
        events.append(_event(MessageType.IDENTITY_MERGED, pid, versions[pid] - 1, {
            "retired": sorted(p for p in origins if p != pid and p not in survivors)}))
    # in identity.batch messages, as the records worker sends its identity events (a rebuild's tens
    # of thousands of merges are a few hundred messages, not one each)
    add_items_at_commit(s, MessageType.IDENTITY_BATCH, "identity", [identity_item(e.type, e.payload) for e in events])
    _resolve_linked_reviews(s, new, now)


def _resolve_linked_reviews(s: Session, new: dict[str, str], now: Any) -> None:
    """Open review pairs whose records now share a person need no decision: resolved in bulk."""
    review = IdentityReviewRow.__table__
    settled = [{"b_id": rid} for rid, a, b in s.execute(select(review.c.id, review.c.ref_a, review.c.ref_b)
                                                        .where(review.c.status == "open"))
               if new.get(a) is not None and new.get(a) == new.get(b)]
    statement = update(review).where(review.c.id == bindparam("b_id")).values(
        status="resolved", decided_by="rebuild", decided_at=now, reason="linked by rebuild: no decision needed")
    for part in repo.chunks(settled, BULK):
        s.execute(statement, part)


def _event(kind: MessageType, person_id: str, version: int, payload: dict[str, Any]) -> Envelope:
    return Envelope(type=kind, source_system="identity", payload={
        "person_id": person_id, "version": version, "by": "rebuild", **payload})
