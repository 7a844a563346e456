"""Training without labels: u from random pairs, m and the prior by expectation
maximisation over the blocked candidate pairs, term frequencies of names.

Vectorised with numpy: every pair becomes a row of comparison levels (−1 where a
value is missing) and EM works on that matrix. Steward decisions, where known,
fix a pair's match probability at 1 or 0 so they feed back into training.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from identity_index.blocking import candidate_pairs, rules_named
from identity_index.comparisons import COMPARISONS, Comparison
from identity_index.features import PersonFeatures
from identity_index.model import LevelParams, Model
from identity_index.vectorised import NAMES, Encoder, pair_levels

M_FLOOR = 1e-6
U_FLOOR = 1e-7
TF_KEEP = 20_000  # most frequent names kept in the model file; rarer ones use the default


def gamma_matrix(records: Sequence[PersonFeatures], pairs: Sequence[tuple[int, int]],
                 comparisons: tuple[Comparison, ...] = COMPARISONS) -> np.ndarray:
    """Levels of every comparison for every pair: shape (pairs, comparisons), −1 = missing.
    Column-wise (`vectorised.pair_levels`), a million pairs at a time."""
    if len(pairs) == 0:
        return np.full((0, len(comparisons)), -1, dtype=np.int8)
    encoder = Encoder()
    table = encoder.table(records)
    index = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    columns = [NAMES.index(c.name) for c in comparisons]
    parts = [pair_levels(encoder, table, records, index[s:s + 1_000_000, 0], index[s:s + 1_000_000, 1])[:, columns]
             for s in range(0, len(index), 1_000_000)]
    return np.concatenate(parts)


def level_frequencies(gamma: np.ndarray, weights: np.ndarray | None, comparisons: tuple[Comparison, ...],
                      floor: float) -> list[tuple[float, ...]]:
    """Per comparison, the (weighted) share of each level among pairs where it is not missing."""
    out = []
    for k, c in enumerate(comparisons):
        col = gamma[:, k]
        present = col >= 0
        w = np.ones(len(col)) if weights is None else weights
        counts = np.bincount(col[present], weights=w[present], minlength=len(c.levels))[:len(c.levels)]
        total = counts.sum()
        shares = counts / total if total > 0 else np.full(len(c.levels), 1.0 / len(c.levels))
        shares = np.maximum(shares, floor)
        out.append(tuple(float(x) for x in shares / shares.sum()))
    return out


def random_pairs(n: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    if n < 2:
        return []
    total = n * (n - 1) // 2
    if total <= count:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    pairs = set()
    while len(pairs) < count:
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def estimate_u(records: Sequence[PersonFeatures], *, max_pairs: int = 200_000, seed: int = 1,
               comparisons: tuple[Comparison, ...] = COMPARISONS) -> list[tuple[float, ...]]:
    """u per level from random pairs: nearly all random pairs are of different people."""
    pairs = random_pairs(len(records), max_pairs, random.Random(seed))
    return level_frequencies(gamma_matrix(records, pairs, comparisons), None, comparisons, U_FLOOR)


@dataclass(frozen=True)
class EMResult:
    m: list[tuple[float, ...]]
    prior: float
    iterations: int
    converged: bool
    match_probability: np.ndarray


def expectation_maximisation(gamma: np.ndarray, m0: Sequence[Sequence[float]], u: Sequence[Sequence[float]],
                             prior0: float, comparisons: tuple[Comparison, ...] = COMPARISONS, *,
                             labels: np.ndarray | None = None, max_iterations: int = 100,
                             tolerance: float = 1e-6) -> EMResult:
    """Estimate m and the prior with u held fixed. `labels`: per pair NaN (unknown), 1 or 0."""
    m = [np.asarray(x, dtype=float) for x in m0]
    log_u = _log_table(u)
    prior = prior0
    p = np.zeros(len(gamma))
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        log_m = _log_table(m)
        lm = _pair_log_likelihood(gamma, log_m)
        lu = _pair_log_likelihood(gamma, log_u)
        logit = np.log(prior) - np.log1p(-prior) + lm - lu
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        if labels is not None:
            known = ~np.isnan(labels)
            p[known] = labels[known]
        new_m = [np.asarray(x) for x in level_frequencies(gamma, p, comparisons, M_FLOOR)]
        new_prior = float(np.clip(p.mean(), 1e-6, 1 - 1e-6)) if len(p) else prior
        change = max(max(float(np.max(np.abs(a - b))) for a, b in zip(new_m, m)), abs(new_prior - prior))
        m, prior = new_m, new_prior
        if change < tolerance:
            converged = True
            break
    return EMResult([tuple(float(v) for v in x) for x in m], prior, iterations, converged, p)


def _log_table(params: Sequence[Sequence[float]]) -> list[np.ndarray]:
    # one extra entry, log 1 = 0, indexed by −1: a missing value contributes nothing
    return [np.append(np.log(np.asarray(x, dtype=float)), 0.0) for x in params]


def _pair_log_likelihood(gamma: np.ndarray, log_table: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(gamma))
    for k, table in enumerate(log_table):
        total += table[gamma[:, k]]
    return total


def term_frequencies(records: Sequence[PersonFeatures], fields: Sequence[str] = ("given", "family")
                     ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Share of records holding each name; rare names (beyond TF_KEEP) fall back to the default."""
    tables: dict[str, dict[str, float]] = {}
    defaults: dict[str, float] = {}
    n = max(1, len(records))
    for name in fields:
        counts = Counter(getattr(r, name) for r in records if getattr(r, name))
        tables[name] = {v: c / n for v, c in counts.most_common(TF_KEEP) if c > 1}
        defaults[name] = 1.0 / n
    return tables, defaults


def fingerprint(records: Sequence[PersonFeatures]) -> str:
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda x: x.ref):
        digest.update(repr(sorted(r.to_json().items())).encode())
    return digest.hexdigest()


# EM sessions, as Splink trains: each blocks on one rule and estimates m only for the
# comparisons that rule does not condition on (a pair blocked on date of birth says
# nothing about how often matches agree on it). Each m is the mean over its sessions.
TRAINING_SESSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dob", ("dob",)),
    ("surname_year", ("family", "dob", "given")),
    ("postcode_initial", ("address", "given")),
    ("given_dob_month", ("given", "dob")),
    ("phone", ("phone",)),
    ("full_name", ("given", "family")),
)


def train(records: Sequence[PersonFeatures], base: Model, *, seed: int = 1, max_u_pairs: int = 200_000,
          decisions: dict[tuple[str, str], bool] | None = None, now: dt.datetime | None = None) -> Model:
    """A new model trained on `records`, starting EM from `base` (thresholds and rules kept).
    `decisions`: steward decisions per (ref_a, ref_b), True = same person."""
    comparisons = tuple(c for c in COMPARISONS if c.name in base.params)
    u = estimate_u(records, max_pairs=max_u_pairs, seed=seed, comparisons=comparisons)
    m0 = [base.params[c.name].m for c in comparisons]
    estimates: dict[int, list[np.ndarray]] = {k: [] for k in range(len(comparisons))}
    sessions = []
    all_pairs: set[tuple[int, int]] = set()
    for rule, conditioned in TRAINING_SESSIONS:
        if rule not in base.blocking_rules:
            continue
        pairs = sorted(candidate_pairs(records, rules_named([rule])))
        all_pairs.update(pairs)
        if not pairs:
            continue
        gamma = gamma_matrix(records, pairs, comparisons)
        skip = [k for k, c in enumerate(comparisons) if c.name in conditioned]
        gamma[:, skip] = -1
        labels = _labels(records, pairs, decisions or {})
        em = expectation_maximisation(gamma, m0, u, 0.1, comparisons, labels=labels)
        for k in range(len(comparisons)):
            if k not in skip:
                estimates[k].append(np.asarray(em.m[k]))
        sessions.append({"blocking_rule": rule, "pairs": len(pairs), "iterations": em.iterations,
                         "converged": em.converged, "match_share": round(float(em.prior), 4)})
    m = [tuple(float(x) for x in (np.mean(estimates[k], axis=0) if estimates[k] else np.asarray(m0[k])))
         for k in range(len(comparisons))]
    union = sorted(all_pairs)
    expected_matches = _expected_matches(gamma_matrix(records, union, comparisons), m, u, len(records))
    total_pairs = max(1, len(records) * (len(records) - 1) // 2)
    prior = float(np.clip(expected_matches / total_pairs, 1e-9, 0.5))
    tf, tf_default = term_frequencies(records)
    now = now or dt.datetime.now(dt.UTC)
    print_fp = fingerprint(records)
    params = {c.name: LevelParams(m[k], u[k]) for k, c in enumerate(comparisons)}
    return replace(base, params=params, prior=prior, tf=tf, tf_default=tf_default,
                   version=f"{now.strftime('%Y%m%dT%H%M%SZ')}-{print_fp[:8]}",
                   trained_at=now.isoformat(timespec="seconds"), data_fingerprint=print_fp,
                   training={"records": len(records), "candidate_pairs": len(union),
                             "u_pairs": min(max_u_pairs, total_pairs), "expected_matches": round(expected_matches),
                             "sessions": sessions, "steward_decisions": len(decisions or {})})


def _expected_matches(gamma: np.ndarray, m: Sequence[Sequence[float]], u: Sequence[Sequence[float]],
                      n_records: int, iterations: int = 30) -> float:
    """Expected number of matching pairs among the blocked pairs, by iterating the prior alone."""
    if len(gamma) == 0:
        return 0.0
    ratio = _pair_log_likelihood(gamma, _log_table(m)) - _pair_log_likelihood(gamma, _log_table(u))
    prior = min(0.5, n_records / max(1, len(gamma)))
    for _ in range(iterations):
        logit = np.log(prior) - np.log1p(-prior) + ratio
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        prior = float(np.clip(p.mean(), 1e-9, 1 - 1e-9))
    return float(p.sum())


def _labels(records: Sequence[PersonFeatures], pairs: Sequence[tuple[int, int]],
            decisions: dict[tuple[str, str], bool]) -> np.ndarray | None:
    if not decisions:
        return None
    labels = np.full(len(pairs), np.nan)
    for row, (i, j) in enumerate(pairs):
        a, b = records[i].ref, records[j].ref
        known = decisions.get((a, b), decisions.get((b, a)))
        if known is not None:
            labels[row] = 1.0 if known else 0.0
    return labels
