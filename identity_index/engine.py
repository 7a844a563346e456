"""The linking engine over records held in memory.

`IncrementalIndex` places records one at a time (blocking → scoring → `assign`) and
keeps its blocks, persons and constraints up to date; the hub loads into it the
slice of the store a batch of arriving records can touch, and persists what it
decides. `link_batch` clusters a whole set of records at once (rebuild, files,
evaluation).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from identity_index import forked
from identity_index.blocking import (
    SPLIT_AT,
    Block,
    candidate_pair_array,
    level_key,
    refined_keys,
    rules_named,
)
from identity_index.clustering import (
    Assignment,
    BatchClusters,
    Candidate,
    PersonFacts,
    assign,
    cluster_batch,
)
from identity_index.features import PersonFeatures
from identity_index.households import candidates, corroborated, relatives_of, reopened, upgrade
from identity_index.model import Model
from identity_index.scoring import Decision, PairScore, Scorer
from identity_index.vectorised import WIDTH, PairScorer

MAX_BLOCK = 1000


@dataclass(frozen=True)
class Placement:
    person_id: str
    created: bool
    assignment: Assignment
    compared: int


class IncrementalIndex:
    def __init__(self, model: Model, new_person_id: Callable[[], str] | None = None) -> None:
        self.model = model
        self.scorer = Scorer(model)
        self.rules = rules_named(model.blocking_rules)
        counter = itertools.count(1)
        self.new_person_id = new_person_id or (lambda: f"P{next(counter):08d}")
        self.records: dict[str, PersonFeatures] = {}
        self.person_of: dict[str, str] = {}
        self.members: dict[str, set[str]] = defaultdict(set)
        # block → its records' refs; keyed by hash((rule, key)) and held in lists, because a
        # million records make millions of mostly tiny blocks (an empty set is 216 bytes)
        self.blocks: dict[int, list[str]] = {}
        self.person_nhs: dict[str, set[str]] = defaultdict(set)
        self.cannot: dict[str, set[str]] = defaultdict(set)
        self.confirmed: dict[str, set[str]] = defaultdict(set)
        self.retired: dict[str, str] = {}
        # every record also as an encoded row, so candidates are scored column-wise
        self.pair_scorer = PairScorer(model)
        self._rows = np.zeros((1024, WIDTH), dtype=np.int32)
        self._row_of: dict[str, int] = {}
        self._free: list[int] = []
        # stored records of a block that are not loaded (`note_stored_sizes`), by block hash: an
        # index loaded with only the blocks its records are compared within still splits a
        # block as the whole store would, and never compares within a block it has in part
        self.outside: dict[int, int] = {}
        self._outside_of: dict[tuple[str, str], list[int]] = {}

    # loading -------------------------------------------------------------
    def load(self, features: PersonFeatures, person_id: str) -> None:
        """Add a record already linked (from the store) without re-deciding it."""
        self._forget(features.ref)
        self.records[features.ref] = features
        self._store_row(features)
        self.person_of[features.ref] = person_id
        self.members[person_id].add(features.ref)
        for block_id in self._block_ids(features):
            block = self.blocks.get(block_id)
            if block is None:
                self.blocks[block_id] = [features.ref]
            else:
                block.append(features.ref)
        if features.nhs:
            self.person_nhs[person_id].add(features.nhs)

    def load_person_nhs(self, person_id: str, values: Iterable[str]) -> None:
        self.person_nhs[person_id].update(v for v in values if v)

    def note_stored_sizes(self, sizes: Mapping[Block, int]) -> None:
        """How many stored records each block of the keys being placed holds (less the records
        being placed), for an index loaded with part of them (`blocking.placing_blocks`)."""
        for block, n in sizes.items():
            block_id = hash(level_key(block))
            missing = n - len(self.blocks.get(block_id, ()))
            if missing > 0:
                self.outside[block_id] = missing
                self._outside_of.setdefault(block[:2], []).append(block_id)

    def partial_keys(self) -> set[tuple[str, str]]:
        """The (rule, key) whose blocks this index holds only in part (see `note_stored_sizes`)."""
        return set(self._outside_of)

    def loaded_whole(self, keys: Iterable[tuple[str, str]]) -> None:
        """Every stored record under these (rule, key) is loaded now: none of their blocks is partial."""
        for key in keys:
            for block_id in self._outside_of.pop(key, ()):
                self.outside.pop(block_id, None)

    def load_constraint(self, ref_a: str, ref_b: str, same: bool) -> None:
        table = self.confirmed if same else self.cannot
        table[ref_a].add(ref_b)
        table[ref_b].add(ref_a)

    # deciding ------------------------------------------------------------
    def _keys(self, f: PersonFeatures) -> list[tuple[str, str]]:
        """The blocks `f` is filed in: every (rule, key), and each refined key of a rule that
        splits its large blocks (`blocking.SPLIT_AT`)."""
        return list({k for rule in self.rules for key in rule.keys(f) for k in refined_keys(rule, key, f)})

    def _block_ids(self, f: PersonFeatures) -> list[int]:
        """`_keys` as the hashes `blocks` is keyed by (what a cache of them keeps: a fraction of
        the memory of the keys' strings)."""
        return [hash(k) for k in self._keys(f)]

    def candidates(self, f: PersonFeatures) -> set[str]:
        """Records sharing a block with `f`, as `blocking.candidate_pair_array` pairs them: a
        block over SPLIT_AT (counting `f`) gives way to its refined block."""
        refs: set[str] = set()
        indexed = f.ref in self._row_of  # else `f` is in no block: no scan of large lists for it
        outside = self.outside
        for rule in self.rules:
            for key in rule.keys(f):
                levels = refined_keys(rule, key, f) if rule.refine else [(rule.name, key)]
                for depth, block_key in enumerate(levels):
                    block_id = hash(block_key)
                    block = self.blocks.get(block_id) or ()
                    size = len(block) + outside.get(block_id, 0) if outside else len(block)
                    if not size:
                        break
                    if depth + 1 < len(levels) and size - (indexed and f.ref in block) + 1 > SPLIT_AT:
                        continue
                    if size <= MAX_BLOCK:
                        refs.update(block)
                    break
        refs.discard(f.ref)
        return refs

    def _store_row(self, f: PersonFeatures) -> None:
        row = self._free.pop() if self._free else len(self._row_of)
        if row >= len(self._rows):
            grown = np.zeros((len(self._rows) * 2, WIDTH), dtype=np.int32)
            grown[:len(self._rows)] = self._rows
            self._rows = grown
        self._rows[row] = self.pair_scorer.encoder.row(f)
        self._row_of[f.ref] = row

    def score_candidates(self, f: PersonFeatures, refs: list[str] | None = None) -> list[Candidate]:
        """The candidates that can matter (may link, review, be ruled on, agree on names, or be
        confirmed by a steward), scored column-wise; the others are distinct and change nothing."""
        if refs is None:
            refs = [r for r in sorted(self.candidates(f)) if r in self.person_of]
        if not refs:
            return []
        query = self.pair_scorer.encoder.row(f)
        rows = self._rows[[self._row_of[r] for r in refs]].tolist()
        confirmed = self.confirmed.get(f.ref)
        keep = {i for i, r in enumerate(refs) if r in confirmed} if confirmed else None
        others = [self.records[r] for r in refs]
        scored = self.pair_scorer.score_one(f, query, rows, others, keep)
        return [Candidate(score, self.person_of[refs[i]]) for i, score in scored]

    def place(self, f: PersonFeatures, *, current_person: str | None = None,
              can_merge: Callable[[list[str]], bool] | None = None) -> Placement:
        """Decide the person of `f` and update the index (merging persons where it links them)."""
        if current_person is None:
            current_person = self.person_of.get(f.ref)
        self._forget(f.ref)
        refs = [r for r in sorted(self.candidates(f)) if r in self.person_of]
        candidates = self.score_candidates(f, refs)
        facts = {pid: PersonFacts(frozenset(self.person_nhs.get(pid, ())), len(self.members.get(pid, ())))
                 for pid in {c.person_id for c in candidates} | ({current_person} if current_person else set())}
        forbidden = frozenset(self.person_of[r] for r in self.cannot.get(f.ref, ()) if r in self.person_of)
        confirmed = frozenset(self.person_of[r] for r in self.confirmed.get(f.ref, ()) if r in self.person_of)
        result = assign(f.nhs, candidates, facts, current_person=current_person, forbidden_persons=forbidden,
                        confirmed_persons=confirmed - forbidden, can_merge=can_merge or self.can_merge)
        created = result.person_id is None
        person_id = result.person_id or self.new_person_id()
        for retired in result.merge:
            self.merge(retired, person_id)
        self.load(f, person_id)
        return Placement(person_id, created, result, len(refs))

    def can_merge(self, person_ids: list[str]) -> bool:
        """No steward's "not the same" between any two of these persons' records."""
        refs = set().union(*(self.members.get(p, set()) for p in person_ids))
        return not any(self.cannot.get(r, set()) & (refs - self.members.get(self.person_of[r], set()))
                       for r in refs)

    def merge(self, retired: str, survivor: str) -> None:
        for ref in self.members.pop(retired, set()):
            self.person_of[ref] = survivor
            self.members[survivor].add(ref)
        self.person_nhs[survivor] |= self.person_nhs.pop(retired, set())
        self.retired[retired] = survivor

    def _forget(self, ref: str) -> None:
        old = self.records.pop(ref, None)
        pid = self.person_of.pop(ref, None)
        if pid is not None:
            self.members[pid].discard(ref)
        row = self._row_of.pop(ref, None)
        if row is not None:
            self._free.append(row)
        if old is not None:
            for block_id in self._block_ids(old):
                block = self.blocks.get(block_id)
                if block is not None and ref in block:
                    block.remove(ref)
                    if not block:
                        del self.blocks[block_id]
            if old.nhs and pid is not None and not any(
                    self.records[r].nhs == old.nhs for r in self.members.get(pid, ()) if r in self.records):
                self.person_nhs[pid].discard(old.nhs)

    def remove(self, ref: str) -> None:
        """A deleted record: no longer a candidate for anything."""
        self._forget(ref)


@dataclass(frozen=True)
class BatchResult:
    """`scores` holds the compared pairs that can matter (see `vectorised.PairScorer`):
    links, review pairs and rule decisions, and, when relationships were given, distinct
    pairs whose names agree (household evidence may link them); the rest are distinct."""

    refs: tuple[str, ...]
    pairs_compared: int
    scores: tuple[PairScore, ...]
    clusters: BatchClusters


def score_pairs(records: Sequence[PersonFeatures], left: np.ndarray, right: np.ndarray, model: Model,
                chunk: int = 250_000, fork: bool = False) -> Iterable[PairScore]:
    """The scores that can matter of pairs (records[left[i]], records[right[i]]), column-wise
    in chunks so memory stays flat however many pairs blocking gives. With `fork` (a process
    without threads: `identity_index.forked.can_fork`), a forked helper works out the second half of the chunks
    meanwhile (`PairScorer.mattering`: the pairs that may matter and their levels); the scores
    come in the same order either way."""
    scorer = PairScorer(model)
    table = scorer.encoder.table(records)
    starts = list(range(0, len(left), chunk))
    half = len(starts) // 2 if fork and len(starts) > 1 and forked.can_fork() else len(starts)

    def part(start: int) -> tuple[np.ndarray, np.ndarray, _Picker, _Picker]:
        li, ri = left[start:start + chunk], right[start:start + chunk]
        return li, ri, _Picker(records, li), _Picker(records, ri)

    def theirs() -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for start in starts[half:]:
            li, ri, lf, rf = part(start)
            out.append(scorer.mattering(table[li], table[ri], lf, rf))
        return out

    with forked.Forked(theirs) if half < len(starts) else nullcontext() as helper:
        for start in starts[:half]:
            li, ri, lf, rf = part(start)
            for _i, score in scorer.score_rows(table[li], table[ri], lf, rf):
                yield score
        for start, found in zip(starts[half:], helper.result() if helper else (), strict=True):
            _li, _ri, lf, rf = part(start)
            for _i, score in scorer.scores_of(*found, lf, rf):
                yield score


class _Picker:
    """records[index[i]] without building the list of every pair's features."""

    def __init__(self, records: Sequence[PersonFeatures], index: np.ndarray) -> None:
        self.records, self.index = records, index

    def __getitem__(self, i: int) -> PersonFeatures:
        return self.records[int(self.index[i])]

    def many(self, positions: list[int]) -> list[PersonFeatures]:
        """[self[i] for i in positions], in one pass."""
        return list(map(self.records.__getitem__, self.index[positions].tolist()))


def link_batch(records: Sequence[PersonFeatures], model: Model, *,
               must_link: Iterable[tuple[str, str]] = (),
               cannot_link: Iterable[tuple[str, str]] = (),
               relationships: Iterable[tuple[str, str, str]] = (),
               distinct_scores: bool = True, focus: int | None = None,
               block_sizes: Mapping[str, Mapping[str, int]] | None = None, fork: bool = False,
               stored_blocks: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None) -> BatchResult:
    """Block, score and cluster every record at once. With `relationships` (subject ref,
    related ref, kind), name-only pairs whose records share a relative's cluster are linked too.
    `distinct_scores=False` keeps only the distinct pairs corroboration can use (both records
    have relatives): the same clusters, without millions of scores held for diagnosis.
    With `focus`, only pairs with one of the first `focus` records are compared (see
    `candidate_pair_array`): the records after them are context, clustered only through them;
    `block_sizes` then sizes their blocks when the context is only the blocks compared.
    `fork`: half the scoring in a forked helper (`score_pairs`), from a process without threads.
    `stored_blocks` (with `focus` and `block_sizes`): per rule, the context records (refs) filed in
    the blocks compared and those blocks (`blocking.StoredMembers`, by ref), as the store lists
    them: the context's keys are then not worked out again."""
    stored = None
    if stored_blocks is not None:
        at = {r.ref: i for i, r in enumerate(records)}
        stored = {}
        for rule, (refs, blocks) in stored_blocks.items():
            try:
                stored[rule] = (list(map(at.__getitem__, refs)), blocks)
            except KeyError:  # a filed key whose record was not read (removed meanwhile): left out
                kept = [(at[r], b) for r, b in zip(refs, blocks, strict=True) if r in at]
                stored[rule] = ([i for i, _b in kept], [b for _i, b in kept])
    left, right = candidate_pair_array(records, rules_named(model.blocking_rules), max_block=MAX_BLOCK,
                                       focus=focus, sizes=block_sizes, stored=stored)
    relationships = list(relationships)
    relatives = relatives_of(relationships)
    # without household evidence a distinct pair can change nothing: not kept (memory)
    scores = tuple(s for s in score_pairs(records, left, right, model, fork=fork)
                   if s.decision != Decision.DISTINCT or (relationships and distinct_scores)
                   or (s.ref_a in relatives and s.ref_b in relatives))
    compared = len(left)
    del left, right
    refs = tuple(r.ref for r in records)
    nhs = {r.ref: r.nhs for r in records}
    must_link, cannot_link = list(must_link), list(cannot_link)
    clusters = cluster_batch(refs, nhs, scores, must_link=must_link, cannot_link=cannot_link)
    homes = {r.ref: r.postcode for r in records if r.postcode}
    candidate_pairs = picked = candidates(scores, relatives) if relatives else []
    for _round in range(3 if picked else 0):
        upgraded = corroborated(scores, picked, relatives, clusters.cluster_of, homes)
        if not upgraded:
            break
        changed = list(scores)
        for i in upgraded:
            changed[i] = upgrade(changed[i])
        scores = tuple(changed)
        before = clusters.cluster_of
        clusters = cluster_batch(refs, nhs, scores, must_link=must_link, cannot_link=cannot_link)
        # a pair no record of which (or of whose kin) changed cluster is decided as the last time it was
        picked = reopened(candidate_pairs, scores, relatives, before, clusters.cluster_of)
    return BatchResult(refs, compared, scores, clusters)
