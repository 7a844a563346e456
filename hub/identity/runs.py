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

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from canonical.messages import Envelope, MessageType
from hub.identity import repository as repo
from hub.identity.review import open_review_count, steward_decisions
from hub.identity.stewardship import StewardshipError, features_of, merge_persons
from hub.outbox import add_to_outbox
from hub.persons import new_person_id, refresh_person
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.identity import (
    IdentityBlockKeyRow,
    IdentityRecordRow,
    IdentityRelativeRow,
    IdentityReviewRow,
)
from hub.store.tables.records import PersonRow, SourceRecordRow
from identity_index import evaluation as ev
from identity_index.blocking import block_keys, blocking_report, candidate_pairs, rules_named
from identity_index.engine import MAX_BLOCK, link_batch
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.households import corroborate, relatives_of
from identity_index.model import Model
from identity_index.scoring import Scorer
from identity_index.training import train


def live_person_records(session: Session) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """(ref, person id, canonical JSON) of every live person record, streamed."""
    query = (select(SourceRecordRow.ref_key, SourceRecordRow.person_id, SourceRecordRow.canonical)
             .where(SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))
             .order_by(SourceRecordRow.ref_key).execution_options(yield_per=2000))
    yield from session.execute(query)


def relationships(session: Session, *, refresh_edges: bool = False) -> list[tuple[str, str, str]]:
    """(subject ref, related ref, kind) of every live relationship record; with `refresh_edges`
    the linker's `identity_relative` edges are rewritten from them too."""
    out = []
    query = (select(SourceRecordRow.ref_key, SourceRecordRow.canonical)
             .where(SourceRecordRow.entity == "relationship", SourceRecordRow.deleted.is_(False))
             .execution_options(yield_per=2000))
    if refresh_edges:
        session.execute(delete(IdentityRelativeRow))
    edges = []  # written in bulk: one statement per relationship was half of a rebuild's time
    for ref, canonical in session.execute(query).all():
        subject, related = canonical.get("subject") or {}, canonical.get("related") or {}
        if subject.get("source_id") and related.get("source_id"):
            edge = (_ref(subject), _ref(related), str(canonical.get("kind", "household_member")))
            out.append(edge)
            edges.append((ref, *edge))
        if refresh_edges and len(edges) >= 5000:
            repo.save_relationships(session, edges)
            edges = []
    if refresh_edges and edges:
        repo.save_relationships(session, edges)
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


def rebuild(store: Store, model: Model, *, actor: str = "rebuild") -> RebuildReport:
    """Re-cluster every live person record with `model` under the stewards' constraints.
    Each new cluster keeps the old person id most of its records had (ids stay stable);
    persons left empty redirect to where most of their records went."""
    started = time.perf_counter()
    report = RebuildReport()
    with store.transaction() as s:
        rows = list(live_person_records(s))
        feats = [features_from_canonical(ref, c) for ref, _pid, c in rows]
        old = {ref: pid for ref, pid, _c in rows}
        constraints = [c for c in repo.constraints_touching(s, old)]
        result = link_batch(feats, model, must_link=[(a, b) for a, b, same in constraints if same],
                            cannot_link=[(a, b) for a, b, same in constraints if not same],
                            relationships=relationships(s, refresh_edges=True))
        new = _stable_ids(result.clusters.clusters(), old)
        report.records, report.pairs_compared = len(rows), result.pairs_compared
        report.persons_before = len({p for p in old.values() if p})
        report.persons_after = len(set(new.values()))
        _persist(s, feats, old, new, model, result, report)
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


def _persist(s: Session, feats: list[PersonFeatures], old: dict[str, str | None], new: dict[str, str],
             model: Model, result: Any, report: RebuildReport) -> None:
    rules = rules_named(model.blocking_rules)
    s.execute(delete(IdentityBlockKeyRow))
    s.execute(delete(IdentityRecordRow))
    now = utcnow()
    for part in repo.chunks(feats, 2000):
        s.execute(insert(IdentityRecordRow), [{"ref_key": f.ref, "person_id": new[f.ref], "features": f.to_json(),
                                                    "updated_at": now} for f in part])
        keys = [{"rule": r, "key": k[:200], "ref_key": f.ref} for f in part for r, k in block_keys(f, rules)]
        if keys:
            s.execute(insert(IdentityBlockKeyRow), keys)
    moved: dict[str, list[str]] = defaultdict(list)
    for ref, pid in new.items():
        if old.get(ref) != pid:
            moved[pid].append(ref)
    for pid, refs in moved.items():
        repo.move_records(s, refs, pid)
        for ref in refs:
            repo.add_link(s, ref, pid, made_by="rebuild", model_version=model.version,
                          score=result.clusters.links.get(ref), prior_weight=model.prior_weight)
    report.records_moved = sum(len(v) for v in moved.values())
    sources: dict[str, Counter] = defaultdict(Counter)  # new person → old persons it drew from
    spread: dict[str, Counter] = defaultdict(Counter)  # old person → new persons it went to
    for ref, pid in new.items():
        if old.get(ref):
            sources[pid][old[ref]] += 1
            spread[old[ref]][pid] += 1
    survivors = set(new.values())
    events = []
    for old_pid, targets in spread.items():
        if old_pid not in survivors:
            target = targets.most_common(1)[0][0]
            s.query(PersonRow).filter(PersonRow.id == old_pid).update({"merged_into": target})
            s.query(PersonRow).filter(PersonRow.merged_into == old_pid).update({"merged_into": target})
    s.flush()
    for pid in sorted(set(moved) | {p for p in spread if len(spread[p]) > 1 and p in survivors}):
        refresh_person(s, pid)
    for old_pid, targets in spread.items():
        if old_pid in survivors and len(targets) > 1:
            report.splits.append({"person_id": old_pid, "into": sorted(targets)})
            events.append(_event(s, MessageType.IDENTITY_UNMERGED, old_pid, {"new_person_ids": sorted(
                t for t in targets if t != old_pid)}))
    for pid, origins in sources.items():
        if len(origins) > 1:
            retired = sorted(p for p in origins if p != pid and p not in survivors)
            report.merges.append({"person_id": pid, "from": sorted(origins)})
            events.append(_event(s, MessageType.IDENTITY_MERGED, pid, {"retired": retired}))
    add_to_outbox(s, events)
    for review in s.execute(select(IdentityReviewRow).where(IdentityReviewRow.status == "open")).scalars():
        if new.get(review.ref_a) is not None and new.get(review.ref_a) == new.get(review.ref_b):
            review.status, review.decided_by, review.decided_at = "resolved", "rebuild", now
            review.reason = "linked by rebuild: no decision needed"


def _event(s: Session, kind: MessageType, person_id: str, payload: dict[str, Any]) -> Envelope:
    return Envelope(type=kind, source_system="identity", payload={
        "person_id": person_id, "version": repo.person_version(s, person_id) - 1, "by": "rebuild", **payload})
