"""Why a true pair was missed: every pair of records truth says are one person but the
clusters keep apart, put down to one cause, so recall work goes where the losses are.

Causes: `blocking` (the pair was never compared), `distinct` (scored below the review
threshold), `review` (between the thresholds), `guard:<name>` (a guard turned a model
link into a review pair), `refused` (a link the constraints refused). A pair compared
and linked whose clusters still differ counts as `refused` too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from identity_index.features import PersonFeatures
from identity_index.scoring import Decision, MadeBy, PairScore, Scorer


@dataclass(frozen=True)
class Miss:
    ref_a: str
    ref_b: str
    cause: str
    score: PairScore


def missed_pairs(cluster_of: dict[str, object], truth: dict[str, str]) -> list[tuple[str, str]]:
    """True pairs (both refs labelled and clustered) that are in different clusters."""
    by_entity: dict[str, list[str]] = defaultdict(list)
    for ref in sorted(cluster_of):
        if ref in truth:
            by_entity[truth[ref]].append(ref)
    return [(a, b) for refs in by_entity.values() for a, b in combinations(refs, 2)
            if cluster_of[a] != cluster_of[b]]


def explain_misses(records: Sequence[PersonFeatures], cluster_of: dict[str, object], truth: dict[str, str],
                   compared: Iterable[PairScore], scorer: Scorer,
                   blocked: set[frozenset[str]] | None = None) -> list[Miss]:
    """Each missed true pair with its cause; pairs never compared are scored here only to show
    why. `compared` may leave out distinct pairs (as `link_batch` does); `blocked`, the ref
    pairs blocking compared, then tells a distinct pair from one blocking never compared."""
    by_ref = {r.ref: r for r in records}
    seen = {frozenset((s.ref_a, s.ref_b)): s for s in compared}
    out = []
    for a, b in missed_pairs(cluster_of, truth):
        score = seen.get(frozenset((a, b)))
        if score is None:
            cause = "distinct" if blocked is not None and frozenset((a, b)) in blocked else "blocking"
            out.append(Miss(a, b, cause, scorer.score(by_ref[a], by_ref[b])))
        elif score.decision == Decision.LINK:
            out.append(Miss(a, b, "refused", score))
        elif score.decision == Decision.REVIEW:
            guard = score.rule if score.made_by == MadeBy.RULE else None
            out.append(Miss(a, b, f"guard:{guard}" if guard else "review", score))
        else:
            out.append(Miss(a, b, "distinct", score))
    return out


def cause_counts(misses: Iterable[Miss]) -> Counter[str]:
    """Missed pairs per cause, and per cause and pair of source systems."""
    counts: Counter[str] = Counter()
    for m in misses:
        systems = "+".join(sorted((m.ref_a.split("/")[0], m.ref_b.split("/")[0])))
        counts[m.cause] += 1
        counts[f"{m.cause} {systems}"] += 1
    return counts
