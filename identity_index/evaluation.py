"""Measuring linkage against ground truth: pairwise precision, recall and F1,
B-cubed (a cluster measure), and the size of the clerical review queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from identity_index.blocking import count_true_pairs


@dataclass(frozen=True)
class PairwiseScores:
    true_positive: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> PairwiseScores:
    """Pairs of records put in one cluster (`predicted`: ref → cluster) against true pairs
    (`truth`: ref → true entity); only refs present in both count."""
    refs = [r for r in predicted if r in truth]
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for r in refs:
        by_cluster[predicted[r]].append(r)
    predicted_pairs = sum(len(m) * (len(m) - 1) // 2 for m in by_cluster.values())
    tp = 0
    for members in by_cluster.values():
        tp += count_true_pairs(truth[r] for r in members)
    return PairwiseScores(tp, predicted_pairs, count_true_pairs(truth[r] for r in refs))


@dataclass(frozen=True)
class BCubed:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def b_cubed(predicted: dict[str, str], truth: dict[str, str]) -> BCubed:
    """Per record, the share of its cluster that is truly its entity (precision) and the share
    of its entity that is in its cluster (recall), averaged over records."""
    refs = [r for r in predicted if r in truth]
    if not refs:
        return BCubed(1.0, 1.0)
    cluster_size: dict[str, int] = defaultdict(int)
    entity_size: dict[str, int] = defaultdict(int)
    both: dict[tuple[str, str], int] = defaultdict(int)
    for r in refs:
        cluster_size[predicted[r]] += 1
        entity_size[truth[r]] += 1
        both[(predicted[r], truth[r])] += 1
    precision = sum(both[(predicted[r], truth[r])] / cluster_size[predicted[r]] for r in refs) / len(refs)
    recall = sum(both[(predicted[r], truth[r])] / entity_size[truth[r]] for r in refs) / len(refs)
    return BCubed(precision, recall)


def review_pairs_truth(pairs: Iterable[tuple[str, str]], truth: dict[str, str]) -> tuple[int, int]:
    """(review pairs, of which truly the same person)."""
    total = same = 0
    for a, b in pairs:
        total += 1
        same += truth.get(a) is not None and truth.get(a) == truth.get(b)
    return total, same
