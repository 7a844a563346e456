"""Clusters of records that describe one person, under constraints that automation
never breaks: two different NHS numbers are never in one person, and a steward's
"not the same person" is never overridden.

`assign` places one arriving record (incremental); `cluster_batch` re-clusters a
whole set of records from scored pairs (rebuild). Both are pure: the hub supplies
the candidates, the constraints and the persons' NHS numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from identity_index.scoring import Decision, MadeBy, PairScore

# A review-band pair goes to a steward when the record is at least this likely to be that pair's
# person (`plausible_reviews`): so a record has at most three such pairs, however many people share
# its name. Without it, a record with a common name and no date of birth was a review pair with
# every namesake: 130,635 pairs at 100,000 people, 99.6 % of them two different people.
REVIEW_SHARE = 0.25
_MAX_P = 1.0 - 1e-12  # a rule's probability of 1.0 has finite odds


@dataclass(frozen=True)
class Candidate:
    """A scored pair (arriving record, candidate record) and the person the candidate belongs to."""

    score: PairScore
    person_id: str


@dataclass(frozen=True)
class Assignment:
    person_id: str | None  # None: a new person
    link: PairScore | None  # the evidence for the chosen person (None: new or kept as it was)
    merge: tuple[str, ...] = ()  # other persons the record proves to be the same: merged into person_id
    reviews: tuple[PairScore, ...] = ()  # possible matches for a steward to decide


@dataclass
class PersonFacts:
    """What the constraints need to know of an existing person."""

    nhs: frozenset[str] = frozenset()
    size: int = 1


def nhs_compatible(*sets: Iterable[str]) -> bool:
    values: set[str] = set()
    for s in sets:
        values.update(s)
    return len(values) <= 1


def assign(nhs: str, candidates: Sequence[Candidate], persons: dict[str, PersonFacts], *,
           current_person: str | None = None, forbidden_persons: frozenset[str] = frozenset(),
           confirmed_persons: frozenset[str] = frozenset(),
           can_merge: Callable[[list[str]], bool] = lambda _ids: True) -> Assignment:
    """Choose the person for one record.

    `forbidden_persons` hold a record a steward said is not this one; `confirmed_persons`
    hold one a steward said is. Persons the record links to are merged when the
    constraints allow; those they forbid become review pairs instead.
    """
    own = frozenset({nhs}) if nhs else frozenset()
    best: dict[str, PairScore] = {}
    for c in candidates:
        prior = best.get(c.person_id)
        if prior is None or _rank(c.score) > _rank(prior):
            best[c.person_id] = c.score

    def allowed(pid: str) -> bool:
        return pid not in forbidden_persons and nhs_compatible(own, persons.get(pid, PersonFacts()).nhs)

    linked = [pid for pid, s in best.items() if (s.decision == Decision.LINK or pid in confirmed_persons)
              and allowed(pid)]
    if current_person and allowed(current_person) and current_person not in linked:
        linked.append(current_person)
    linked.sort(key=lambda pid: (pid in confirmed_persons, pid == current_person,
                                 persons.get(pid, PersonFacts()).size,
                                 _rank(best[pid]) if pid in best else (0, 0.0)), reverse=True)
    group: list[str] = []
    nhs_union: set[str] = set(own)
    leftovers: list[str] = []
    for pid in linked:
        facts = persons.get(pid, PersonFacts())
        if nhs_compatible(nhs_union, facts.nhs) and (not group or can_merge(group + [pid])):
            group.append(pid)
            nhs_union |= facts.nhs
        else:
            leftovers.append(pid)
    reviews = [best[pid] for pid in leftovers if pid in best]
    reviews += [s for pid, s in best.items() if s.decision == Decision.REVIEW and pid not in group
                and pid not in forbidden_persons and pid not in leftovers]
    if not group:
        return Assignment(None, None, (), tuple(plausible_reviews(reviews)))
    chosen = group[0]
    return Assignment(chosen, best.get(chosen), tuple(group[1:]), tuple(plausible_reviews(reviews, best.get(chosen))))


def plausible_reviews(pairs: Sequence[PairScore], link: PairScore | None = None, *,
                      share: float = REVIEW_SHARE) -> list[PairScore]:
    """Of one record's candidate pairs (the best one per other person), those worth a steward's
    decision. A record describes one person at most, so its candidates compete: with odds
    o = p / (1 − p) for each candidate person and for the person the record is linked to (`link`),
    the chance it is candidate i is o_i / (1 + Σ o), the 1 being "none of them". A review-band pair
    is kept when that chance is at least `share`; a pair the model would link (a constraint
    refused it) is always kept: automation could not act on strong evidence. Only pairs at or above
    the review threshold count (below it the scores say little, and which were scored at all
    depends on blocking)."""
    if not pairs:
        return []
    odds = [_odds(p) for p in pairs]
    total = 1.0 + sum(odds) + (_odds(link) if link is not None else 0.0)
    return [p for p, o in zip(pairs, odds) if p.decision == Decision.LINK or o / total >= share]


class BestPairs:
    """Each record's best pair per other person among some scored pairs, and which of those
    persons the record is plausibly (`plausible_reviews` over them, against its `links` pair):
    the check from both records' sides that both linkers make before queueing a review pair, so
    that a record without a date of birth is no more plausibly each of twelve namesakes than they
    are each plausibly it. `person(ref)` is the person a record is (None: leave the record out);
    pairs within one person are settled and left out; `rank` orders two pairs of one record and
    other person (the higher is kept; the first on a tie)."""

    def __init__(self, pairs: Iterable[PairScore], person: Callable[[str], str | None],
                 links: Callable[[str], PairScore | None],
                 rank: Callable[[PairScore], object] = lambda s: s.probability) -> None:
        self.best: dict[str, dict[str, PairScore]] = {}  # ref → other person → best pair
        self._links = links
        self._plausible: dict[str, set[str]] = {}
        for s in pairs:
            for own, other in ((s.ref_a, s.ref_b), (s.ref_b, s.ref_a)):
                mine, theirs = person(own), person(other)
                if mine is None or theirs is None or mine == theirs:
                    continue
                best = self.best.setdefault(own, {})
                if theirs not in best or rank(s) > rank(best[theirs]):  # type: ignore[operator]
                    best[theirs] = s

    def plausible(self, ref: str) -> set[str]:
        """The other persons this record is plausibly."""
        found = self._plausible.get(ref)
        if found is None:
            best = self.best.get(ref, {})
            kept = {id(s) for s in plausible_reviews(list(best.values()), self._links(ref))}
            found = self._plausible[ref] = {theirs for theirs, s in best.items() if id(s) in kept}
        return found


def _odds(score: PairScore) -> float:
    p = min(score.probability, _MAX_P)
    return p / (1.0 - p)


def _rank(score: PairScore) -> tuple[int, float]:
    return (1 if score.made_by == MadeBy.RULE and score.decision == Decision.LINK else 0, score.probability)


def ranked(scores: Iterable[PairScore]) -> list[PairScore]:
    """`scores` by `_rank`, highest first, equal ranks in their given order (as a stable sort by
    `_rank` gives them): sorted by probability, then the rule links moved ahead. A chunk sorts
    millions of scores up to four times (a clustering and each corroboration round); this way no
    Python call and no tuple is made per score for the sort."""
    rule_links, others = [], []
    for s in sorted(scores, key=attrgetter("probability"), reverse=True):
        (rule_links if s.made_by == MadeBy.RULE and s.decision == Decision.LINK else others).append(s)
    return rule_links + others


@dataclass
class _Cluster:
    members: set[str]
    nhs: set[str]
    forbidden: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class BatchClusters:
    cluster_of: dict[str, int]  # ref → cluster number
    links: dict[str, PairScore]  # ref → the pair that joined it to its cluster
    reviews: tuple[PairScore, ...]
    refused: tuple[PairScore, ...]  # links the constraints refused

    def clusters(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for ref, cid in self.cluster_of.items():
            out.setdefault(cid, []).append(ref)
        return out


def cluster_batch(refs: Sequence[str], nhs_of: dict[str, str], scores: Iterable[PairScore], *,
                  must_link: Iterable[tuple[str, str]] = (),
                  cannot_link: Iterable[tuple[str, str]] = ()) -> BatchClusters:
    """Greedy constrained clustering: steward links first, then rule links, then model
    links by falling probability; a join that would break a constraint is refused."""
    parent = {r: r for r in refs}
    # a cluster object only once a record is joined or constrained: a million singletons
    # with three sets each would cost most of a rebuild's memory
    clusters: dict[str, _Cluster] = {}

    def cluster(root: str) -> _Cluster:
        found = clusters.get(root)
        if found is None:
            found = clusters[root] = _Cluster({root}, {nhs_of[root]} if nhs_of.get(root) else set())
        return found

    for a, b in cannot_link:
        if a in parent and b in parent:
            cluster(a).forbidden.add(b)
            cluster(b).forbidden.add(a)

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links: dict[str, PairScore] = {}
    refused: list[PairScore] = []

    def join(a: str, b: str, score: PairScore | None) -> bool:
        ra, rb = find(a), find(b)
        if ra == rb:
            return True
        ca, cb = cluster(ra), cluster(rb)
        if len(ca.nhs | cb.nhs) > 1 or ca.forbidden & cb.members or cb.forbidden & ca.members:
            return False
        if len(ca.members) < len(cb.members):
            ra, rb, ca, cb = rb, ra, cb, ca
        parent[rb] = ra
        ca.members |= cb.members
        ca.nhs |= cb.nhs
        ca.forbidden |= cb.forbidden
        del clusters[rb]
        if score is not None:
            links.setdefault(score.ref_b, score)
            links.setdefault(score.ref_a, score)
        return True

    for a, b in must_link:
        if a in parent and b in parent:
            join(a, b, None)
    ordered = ranked(scores)
    reviews: list[PairScore] = []
    for s in ordered:
        if s.decision == Decision.LINK:
            if not join(s.ref_a, s.ref_b, s):
                refused.append(s)
        elif s.decision == Decision.REVIEW:
            reviews.append(s)
    roots = {}
    cluster_of = {}
    for r in refs:
        root = find(r)
        cluster_of[r] = roots.setdefault(root, len(roots))
    open_reviews = tuple(s for s in reviews + refused if cluster_of[s.ref_a] != cluster_of[s.ref_b])
    return BatchClusters(cluster_of, links, open_reviews, tuple(refused))
