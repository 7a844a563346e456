"""Comparison levels of many pairs at once, column by column, for `rebuild` on a million
records and for placing one record against hundreds of candidates.

Each record is encoded once as a row of small integers (interned names and postcodes,
date parts, identifiers, up to `K` members of each set-valued feature). Levels are then
computed with numpy over arrays of pair indices; name similarities (Jaro–Winkler,
nicknames) are computed once per distinct pair of names and cached. The levels equal
`comparisons.comparison_vector` exactly (tests check it); a pair whose record has more
set members than fit in a row is scored by the scalar functions instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter

import numpy as np
from rapidfuzz.distance import JaroWinkler

from identity_index.comparisons import (
    COMPARISONS,
    FAMILY_LEVELS,
    GIVEN_LEVELS,
    JW_HIGH,
    JW_MID,
    _name_family,
    comparison_vector,
)
from identity_index.features import PersonFeatures
from identity_index.households import FAMILY_AGREE, GIVEN_AGREE
from identity_index.model import Model
from identity_index.scoring import PairScore, Scorer, weight_of

K = 4  # members kept per set-valued feature; more sets the row's overflow flag
MISSING = -1  # level code of a missing value

GIVEN, FAMILY, YEAR, MONTH, DAY, PREC, SEX, POSTCODE, DISTRICT, UPRN, NHS, UPN, OVERFLOW = range(13)
G_ALTS = slice(13, 13 + K)
F_ALTS = slice(13 + K, 13 + 2 * K)
PCS = slice(13 + 2 * K, 13 + 3 * K)
PHONES = slice(13 + 3 * K, 13 + 4 * K)
WIDTH = 13 + 4 * K
GA0, FA0 = G_ALTS.start, F_ALTS.start
PRECISION = {"day": 0, "month": 1, "year": 2}
SEXES = {"male": 1, "female": 2}
NAMES = [c.name for c in COMPARISONS]


class Encoder:
    """Interns strings (0 is "missing", so a missing value never equals a present one) and
    turns features into rows; holds the name-pair caches, so keep one per index or batch."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {"": 0}
        self.strings: list[str] = [""]
        self._given_base: dict[int, int] = {}
        self._family_base: dict[int, int] = {}
        self._jw_high: dict[int, bool] = {}

    def intern(self, value: str) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.strings)
            self.strings.append(value)
        return found

    def _set(self, values: frozenset[str]) -> tuple[list[int], bool]:
        ids = sorted(self.intern(v) for v in values if v)
        return (ids + [-1] * K)[:K], len(ids) > K

    def row(self, f: PersonFeatures) -> list[int]:
        """The record as WIDTH integers."""
        g_alts, o1 = self._set(f.given_alts)
        f_alts, o2 = self._set(f.family_alts)
        pcs, o3 = self._set(f.postcodes)
        phones, o4 = self._set(f.phones)
        dob = f.dob
        out = [self.intern(f.given), self.intern(f.family),
               dob.year if dob else 0, dob.month if dob else 0, dob.day if dob else 0,
               PRECISION.get(f.dob_precision, 1), SEXES.get(f.sex or "", 0),
               self.intern(f.postcode), self.intern(f.postcode[:-3]), self.intern(f.uprn),
               self.intern(f.nhs), self.intern(f.upn), int(o1 or o2 or o3 or o4)]
        return out + g_alts + f_alts + pcs + phones

    def table(self, records: Sequence[PersonFeatures]) -> np.ndarray:
        """`row` of every record (int32: ids, date parts and flags all fit), built column by
        column: a bulk link encodes its whole context, millions of records, and a Python call per
        record and field was a sixth of its clustering at 1,000,000 people. The same values as
        `row` gives, but for the order strings are first interned in."""
        n = len(records)
        out = np.empty((n, WIDTH), dtype=np.int32)
        if not n:
            return out

        def column(name: str) -> list:
            return list(map(attrgetter(name), records))

        for col, name in ((GIVEN, "given"), (FAMILY, "family"), (POSTCODE, "postcode"), (UPRN, "uprn"),
                          (NHS, "nhs"), (UPN, "upn")):
            values = column(name)
            out[:, col] = self._ids(values)
            if col == POSTCODE:
                out[:, DISTRICT] = self._ids([v[:-3] for v in values])
        dobs = column("dob")
        out[:, YEAR] = [d.year if d else 0 for d in dobs]
        out[:, MONTH] = [d.month if d else 0 for d in dobs]
        out[:, DAY] = [d.day if d else 0 for d in dobs]
        out[:, PREC] = [PRECISION.get(p, 1) for p in column("dob_precision")]
        out[:, SEX] = [SEXES.get(x or "", 0) for x in column("sex")]
        out[:, OVERFLOW] = 0
        for part, name in ((G_ALTS, "given_alts"), (F_ALTS, "family_alts"), (PCS, "postcodes"), (PHONES, "phones")):
            out[:, part] = -1
            sets = column(name)
            single = [i for i, values in enumerate(sets) if len(values) == 1]  # most sets: one member or none
            if single:
                first = np.array(self._ids([next(iter(sets[i])) for i in single]), dtype=np.int32)
                out[single, part.start] = np.where(first == 0, -1, first)  # "" is no member
            for i, values in enumerate(sets):
                if len(values) > 1:
                    members, over = self._set(values)
                    out[i, part] = members
                    if over:
                        out[i, OVERFLOW] = 1
        return out

    def _ids(self, values: list[str]) -> list[int]:
        """The interned id of each value: the values not seen yet interned first, then all looked
        up in one pass."""
        ids = self.ids
        for value in dict.fromkeys(values).keys() - ids.keys():
            self.intern(value)
        return list(map(ids.__getitem__, values))

    # name pairs --------------------------------------------------------------
    def _pair_values(self, cache: dict, x: np.ndarray, y: np.ndarray, compute) -> np.ndarray:
        """cache[(x, y)] for each pair, computing the pairs not seen before in one call."""
        keys = x.astype(np.int64) * (1 << 32) + y
        uniq, inverse = np.unique(keys, return_inverse=True)
        if not len(uniq):
            return np.zeros(0, dtype=np.int64)
        # one C-level pass of dict lookups (-1: not seen; every value is a level ≥ 1 or a bool):
        # two Python loops over the distinct pairs were 10 % of a bulk link's first chunk
        values = np.fromiter(map(cache.get, uniq.tolist(), repeat(-1)), dtype=np.int64, count=len(uniq))
        missing = np.flatnonzero(values < 0)
        if len(missing):
            todo = uniq[missing]
            computed = compute((todo >> 32).tolist(), (todo & 0xFFFFFFFF).tolist())
            values[missing] = computed
            cache.update(zip(todo.tolist(), computed, strict=True))
        return values[inverse]

    def _jw(self, xs: list[int], ys: list[int]) -> np.ndarray:
        # one call per distinct pair (cached by the caller); rapidfuzz's cpdist rounds 0.7999… up
        # to 0.8, which would move pairs across the Jaro–Winkler bands of the scalar comparisons
        s, similarity = self.strings, JaroWinkler.similarity
        return [similarity(s[i], s[j]) for i, j in zip(xs, ys, strict=True)]

    def _given_levels(self, xs: list[int], ys: list[int]) -> list[int]:
        sims = self._jw(xs, ys)
        out = []
        for x, y, sim in zip(xs, ys, sims, strict=True):
            a, b = self.strings[x], self.strings[y]
            if b in _name_family(a) or a in _name_family(b):
                out.append(1)
            elif sim >= JW_HIGH:
                out.append(2)
            elif sim >= JW_MID:
                out.append(3)
            elif (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
                out.append(4)
            else:
                out.append(6)
        return out

    def _family_levels(self, xs: list[int], ys: list[int]) -> list[int]:
        return [2 if s >= JW_HIGH else 3 if s >= JW_MID else 5 for s in self._jw(xs, ys)]

    def _high(self, xs: list[int], ys: list[int]) -> list[bool]:
        return [bool(s >= JW_HIGH) for s in self._jw(xs, ys)]

    def _one(self, cache: dict, x: int, y: int, compute) -> object:
        key = x * (1 << 32) + y
        found = cache.get(key)
        if found is None:
            found = cache[key] = compute([x], [y])[0]
        return found

    def levels_one(self, a: list[int], b: list[int]) -> list[int]:
        """`levels` of one pair of rows (as lists), in plain Python."""
        ga, gb, fa, fb = a[GIVEN], b[GIVEN], a[FAMILY], b[FAMILY]
        swapped = (ga > 0 and gb > 0 and fa > 0 and fb > 0 and ga != gb
                   and self._one(self._jw_high, ga, fb, self._high) and self._one(self._jw_high, fa, gb, self._high))
        if ga > 0 and gb > 0:
            if ga == gb or (b[GA0] >= 0 and ga in b[G_ALTS]) or (a[GA0] >= 0 and gb in a[G_ALTS]):
                given = 0
            else:
                given = self._one(self._given_base, ga, gb, self._given_levels)
                if swapped and given != 1:
                    given = 5
        else:
            given = MISSING
        if fa > 0 and fb > 0:
            if fa == fb:
                family = 0
            elif (b[FA0] >= 0 and (fa in b[F_ALTS] or (a[FA0] >= 0 and _shared(a[F_ALTS], b[F_ALTS])))) or \
                    (a[FA0] >= 0 and fb in a[F_ALTS]):
                family = 1
            elif swapped:
                family = 4
            else:
                family = self._one(self._family_base, fa, fb, self._family_levels)
        else:
            family = MISSING
        ya, yb = a[YEAR], b[YEAR]
        if ya == 0 or yb == 0:
            dob = MISSING
        elif a[PREC] != 0 or b[PREC] != 0:
            dob = 3 if ya == yb and (a[PREC] == 2 or b[PREC] == 2 or a[MONTH] == b[MONTH]) else 4
        else:
            differing = (ya != yb) + (a[MONTH] != b[MONTH]) + (a[DAY] != b[DAY])
            dob = (0 if differing == 0 else 1 if ya == yb and a[DAY] == b[MONTH] and a[MONTH] == b[DAY]
                   else 2 if differing == 1 else 4)
        sex = MISSING if a[SEX] == 0 or b[SEX] == 0 else int(a[SEX] != b[SEX])
        if a[UPRN] > 0 and a[UPRN] == b[UPRN]:
            address = 0
        elif a[POSTCODE] == 0 or b[POSTCODE] == 0:
            address = MISSING
        else:
            address = (0 if a[POSTCODE] == b[POSTCODE] else 1 if _overlap_one(a, b, PCS)
                       else 2 if a[DISTRICT] == b[DISTRICT] else 3)
        nhs = MISSING if a[NHS] == 0 or b[NHS] == 0 else int(a[NHS] != b[NHS])
        upn = MISSING if a[UPN] == 0 or b[UPN] == 0 else int(a[UPN] != b[UPN])
        phone = (MISSING if a[PHONES.start] < 0 or b[PHONES.start] < 0
                 else 0 if _overlap_one(a, b, PHONES) else 1)
        return [given, family, dob, sex, address, nhs, upn, phone]

    # levels ------------------------------------------------------------------
    def levels(self, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
        """Levels (pairs × comparisons, MISSING where a value is missing) of row pairs ta[i], tb[i]."""
        n = len(ta)
        out = np.full((n, len(NAMES)), MISSING, dtype=np.int8)
        if n == 0:
            return out
        ga, gb, fa, fb = ta[:, GIVEN], tb[:, GIVEN], ta[:, FAMILY], tb[:, FAMILY]
        all_names = (ga > 0) & (gb > 0) & (fa > 0) & (fb > 0) & (ga != gb)
        swapped = np.zeros(n, dtype=bool)
        if all_names.any():
            idx = np.flatnonzero(all_names)
            h1 = self._pair_values(self._jw_high, ga[idx], fb[idx], self._high).astype(bool)
            h2 = self._pair_values(self._jw_high, fa[idx], gb[idx], self._high).astype(bool)
            swapped[idx] = h1 & h2

        both = (ga > 0) & (gb > 0)
        given = np.full(n, MISSING, dtype=np.int8)
        differ = both & (ga != gb)
        if differ.any():
            idx = np.flatnonzero(differ)
            given[idx] = self._pair_values(self._given_base, ga[idx], gb[idx], self._given_levels)
        given[differ & swapped & (given != 1)] = 5
        exact = both & ((ga == gb) | _member(ga, tb[:, G_ALTS]) | _member(gb, ta[:, G_ALTS]))
        given[exact] = 0
        out[:, 0] = given

        both = (fa > 0) & (fb > 0)
        family = np.full(n, MISSING, dtype=np.int8)
        differ = both & (fa != fb)
        if differ.any():
            idx = np.flatnonzero(differ)
            family[idx] = self._pair_values(self._family_base, fa[idx], fb[idx], self._family_levels)
        family[differ & swapped] = 4
        alts = _member(fa, tb[:, F_ALTS]) | _member(fb, ta[:, F_ALTS]) | _overlap(ta[:, F_ALTS], tb[:, F_ALTS])
        family[differ & alts] = 1
        family[both & (fa == fb)] = 0
        out[:, 1] = family

        out[:, 2] = _dob_levels(ta, tb)
        sa, sb = ta[:, SEX], tb[:, SEX]
        out[:, 3] = np.where((sa > 0) & (sb > 0), (sa != sb).astype(np.int8), MISSING)

        pa, pb = ta[:, POSTCODE], tb[:, POSTCODE]
        address = np.where(ta[:, DISTRICT] == tb[:, DISTRICT], 2, 3).astype(np.int8)
        address[_overlap(ta[:, PCS], tb[:, PCS])] = 1
        address[pa == pb] = 0
        address[(pa == 0) | (pb == 0)] = MISSING
        address[(ta[:, UPRN] > 0) & (ta[:, UPRN] == tb[:, UPRN])] = 0
        out[:, 4] = address

        for col, field in ((5, NHS), (6, UPN)):
            xa, xb = ta[:, field], tb[:, field]
            out[:, col] = np.where((xa > 0) & (xb > 0), (xa != xb).astype(np.int8), MISSING)
        has_a, has_b = ta[:, PHONES.start] >= 0, tb[:, PHONES.start] >= 0
        out[:, 7] = np.where(has_a & has_b, (~_overlap(ta[:, PHONES], tb[:, PHONES])).astype(np.int8), MISSING)
        return out


def _shared(a: list[int], b: list[int]) -> bool:
    return any(x >= 0 and x in b for x in a)


def _overlap_one(a: list[int], b: list[int], part: slice) -> bool:
    """Rows a and b share a member of `part`; members are sorted with padding (-1) last,
    so an empty set has -1 first and a single member has -1 second."""
    first_a, first_b = a[part.start], b[part.start]
    if first_a < 0 or first_b < 0:
        return False
    if a[part.start + 1] < 0 and b[part.start + 1] < 0:
        return first_a == first_b
    return _shared(a[part], b[part])


def _member(value: np.ndarray, members: np.ndarray) -> np.ndarray:
    """value[i] is one of members[i, :] (padding is -1, values are ≥ 0)."""
    return (members == value[:, None]).any(axis=1)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row i of `a` and row i of `b` share a member (padding -1 never matches). Members are
    sorted with the padding last, so only rows where both sets have members are compared, and
    where both have one, by their first column alone (most postcode and phone sets): every member
    against every other was 6 % of a bulk link."""
    hit = np.zeros(len(a), dtype=bool)
    both = np.flatnonzero((a[:, 0] >= 0) & (b[:, 0] >= 0))
    if not len(both):
        return hit
    sa, sb = a[both], b[both]
    out = sa[:, 0] == sb[:, 0]
    several = np.flatnonzero((sa[:, 1] >= 0) | (sb[:, 1] >= 0))
    if len(several):
        ma, mb = sa[several], sb[several]
        shared = np.zeros(len(several), dtype=bool)
        for j in range(ma.shape[1]):
            col = ma[:, j]
            shared |= (col >= 0) & (mb == col[:, None]).any(axis=1)
        out[several] = shared
    hit[both] = out
    return hit


def _dob_levels(ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    ya, ma, da, pa = ta[:, YEAR], ta[:, MONTH], ta[:, DAY], ta[:, PREC]
    yb, mb, db, pb = tb[:, YEAR], tb[:, MONTH], tb[:, DAY], tb[:, PREC]
    same_year, same_month, same_day = ya == yb, ma == mb, da == db
    differing = (~same_year).astype(np.int8) + (~same_month) + (~same_day)
    fine = np.where(differing == 0, 0, np.where(same_year & (da == mb) & (ma == db), 1,
                                                  np.where(differing == 1, 2, 4)))
    coarse_year = (pa == 2) | (pb == 2)
    coarse = np.where(same_year & (coarse_year | same_month), 3, 4)
    level = np.where((pa != 0) | (pb != 0), coarse, fine).astype(np.int8)
    level[(ya == 0) | (yb == 0)] = MISSING
    return level


def pair_levels(encoder: Encoder, table: np.ndarray, records: Sequence[PersonFeatures],
                left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Levels of the pairs (records[left[i]], records[right[i]]); rows with overflowing sets
    are scored by the scalar comparisons, so the result always equals them."""
    ta, tb = table[left], table[right]
    levels = encoder.levels(ta, tb)
    for i in np.flatnonzero((ta[:, OVERFLOW] > 0) | (tb[:, OVERFLOW] > 0)):
        vector = comparison_vector(records[left[i]], records[right[i]])
        levels[i] = [MISSING if v is None else v for v in vector]
    return levels


class PairScorer:
    """Scores many pairs of one record table with a model: levels and weights column-wise,
    then a `PairScore` (built by `Scorer.score_levels`, so identical to `Scorer.score`)
    only for the pairs that can matter: those that may link or go to review, that a rule
    may decide, or whose names agree (household corroboration may link them)."""

    def __init__(self, model: Model, encoder: Encoder | None = None) -> None:
        self.scorer = Scorer(model)
        self.encoder = encoder or Encoder()
        self.columns = [NAMES.index(c.name) for c in self.scorer.comparisons]
        # one row per comparison: weight per level, and 0 for "missing" in the last slot
        width = max(len(c.levels) for c in self.scorer.comparisons) + 1
        self.weights = np.zeros((len(self.columns), width))
        for i, c in enumerate(self.scorer.comparisons):
            self.weights[i, :len(c.levels)] = self.scorer._weights[c.name]
        self._tf: dict[tuple[str, int], float] = {}
        self.lower_weight = weight_of(model.thresholds.lower) - 1e-6
        self.given_agree = np.array([GIVEN_LEVELS[i] in GIVEN_AGREE for i in range(len(GIVEN_LEVELS))])
        self.family_agree = np.array([FAMILY_LEVELS[i] in FAMILY_AGREE for i in range(len(FAMILY_LEVELS))])

    def _tf_of(self, name: str, ids: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(ids, return_inverse=True)
        model = self.scorer.model
        values = []
        for i in uniq:
            key = (name, int(i))
            if key not in self._tf:
                self._tf[key] = model.tf_adjustment(name, self.encoder.strings[int(i)])
            values.append(self._tf[key])
        return np.array(values)[inverse]

    def weights_of(self, levels: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Match weights (prior + Σ field weight + TF), summed in `Scorer.score`'s order."""
        total = np.zeros(len(levels))
        for i, (col, c) in enumerate(zip(self.columns, self.scorer.comparisons, strict=True)):
            lv = levels[:, col].astype(np.int64)
            w = self.weights[i][np.where(lv < 0, self.weights.shape[1] - 1, lv)]
            if c.tf_field:
                field = GIVEN if c.tf_field == "given" else FAMILY
                exact = np.flatnonzero(lv == 0)
                if len(exact):
                    w = w.copy()
                    w[exact] = w[exact] + self._tf_of(c.name, left[exact, field])
            total = total + w
        return self.scorer.model.prior_weight + total

    def may_matter(self, levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
        g, f = levels[:, 0], levels[:, 1]
        agree = ((g >= 0) & self.given_agree[np.maximum(g, 0)] & (f >= 0) & self.family_agree[np.maximum(f, 0)]
                 & (levels[:, 2] != 4) & (levels[:, 3] != 1) & (levels[:, 5] != 1))
        return (weights >= self.lower_weight) | (levels[:, 5] == 0) | (levels[:, 6] == 0) | (levels[:, 7] == 0) \
            | agree

    def score_rows(self, left_rows: np.ndarray, right_rows: np.ndarray, left: Sequence[PersonFeatures],
                   right: Sequence[PersonFeatures], keep: np.ndarray | None = None) -> list[tuple[int, PairScore]]:
        """(pair index, score) of the pairs that may matter (and those `keep` marks) of the
        row pairs left_rows[i], right_rows[i] whose features are left[i], right[i]."""
        return self.scores_of(*self.mattering(left_rows, right_rows, left, right, keep), left, right)

    def mattering(self, left_rows: np.ndarray, right_rows: np.ndarray, left: Sequence[PersonFeatures],
                  right: Sequence[PersonFeatures], keep: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The column-wise part of `score_rows`, as arrays (what a forked helper sends back):
        the indices of the pairs that may matter (or `keep` marks), their levels, and the left
        record's names a frequency adjustment reads (interned; -1 where the level is not exact)."""
        levels = self.encoder.levels(left_rows, right_rows)
        for i in np.flatnonzero((left_rows[:, OVERFLOW] > 0) | (right_rows[:, OVERFLOW] > 0)):
            levels[i] = [MISSING if v is None else v for v in comparison_vector(left[i], right[i])]
        weights = self.weights_of(levels, left_rows)
        mask = self.may_matter(levels, weights)
        if keep is not None:
            mask |= keep
        kept = np.flatnonzero(mask)
        levels = levels[kept]
        names = np.full((len(kept), len(self.scorer._tf)), -1, dtype=np.int64)
        for j, (i, field) in enumerate(self.scorer._tf):
            exact = levels[:, self.columns[i]] == 0
            names[exact, j] = left_rows[kept[exact], GIVEN if field == "given" else FAMILY]
        return kept, levels, names

    def scores_of(self, kept: np.ndarray, levels: np.ndarray, names: np.ndarray, left: Sequence[PersonFeatures],
                  right: Sequence[PersonFeatures]) -> list[tuple[int, PairScore]]:
        """(pair index, score) of the `mattering` pairs. The pairs are grouped by their levels
        and frequency-adjusted names first, and each group weighed once (`Scorer.weighed_levels`):
        a `PairScore` built pair by pair was a quarter of a bulk link's clustering at 1,000,000
        people; now each pair costs only its deterministic rules (`Scorer.finish`)."""
        if not len(kept):
            return []
        mine = np.zeros((len(kept), -(-len(self.columns) // 8) * 8), dtype=np.int8)
        mine[:, :len(self.columns)] = levels[:, self.columns]
        # each pair's levels packed into whole int64 words beside its names: few columns to sort
        combos = np.concatenate([mine.view(np.int64), names], axis=1)
        _uniq, first, inverse = np.unique(combos, axis=0, return_index=True, return_inverse=True)
        at = kept.tolist()
        lefts, rights = _take(left, at), _take(right, at)
        known = [self.scorer.weighed_levels(lefts[f], [None if v < 0 else v for v in mine[f, :len(self.columns)].tolist()])
                 for f in first.tolist()]
        finish = self.scorer.finish
        return [(i, finish(a, b, known[c]))
                for i, a, b, c in zip(at, lefts, rights, inverse.ravel().tolist(), strict=True)]

    def score_one(self, f: PersonFeatures, query: list[int], rows: list[list[int]],
                  others: Sequence[PersonFeatures], keep: set[int] | None = None) -> list[tuple[int, PairScore]]:
        """`score_rows` for one record against its candidates (rows as lists): a few hundred
        pairs are faster in plain Python than through numpy's per-call overhead. Same levels,
        same weights summed in the same order, same pairs kept."""
        enc = self.encoder
        # per comparison: weight by level, the exact level's TF adjustment folded in as
        # `Scorer` adds it (w + tf), and "missing" (0.0) last so level -1 indexes it
        tables = []
        for k, c in enumerate(self.scorer.comparisons):
            row = self.weights[k].tolist()
            if c.tf_field:
                value = enc.strings[query[GIVEN if c.tf_field == "given" else FAMILY]]
                row[0] = row[0] + (self.scorer.model.tf_adjustment(c.name, value) if value else 0.0)
            tables.append((NAMES.index(c.name), row))
        prior, lower = self.scorer.model.prior_weight, self.lower_weight
        agree_g, agree_f = self.given_agree.tolist(), self.family_agree.tolist()
        cols = self.columns
        out = []
        overflow = query[OVERFLOW]
        levels_one = enc.levels_one
        for i, row in enumerate(rows):
            if overflow or row[OVERFLOW]:
                lv = [MISSING if v is None else v for v in comparison_vector(f, others[i])]
            else:
                lv = levels_one(query, row)
            weight = prior + sum([table[lv[col]] for col, table in tables])
            if not (weight >= lower or lv[5] == 0 or lv[6] == 0 or lv[7] == 0
                    or (lv[0] >= 0 and agree_g[lv[0]] and lv[1] >= 0 and agree_f[lv[1]] and lv[2] != 4
                        and lv[3] != 1 and lv[5] != 1) or (keep is not None and i in keep)):
                continue
            out.append((i, self.scorer.score_levels(f, others[i], [None if lv[c] < 0 else lv[c] for c in cols])))
        return out


def _take(records: Sequence[PersonFeatures], at: list[int]) -> list[PersonFeatures]:
    """[records[i] for i in at]; in one pass where the sequence offers it (`engine._Picker.many`:
    a chunk's pairs index the clustering's records through arrays)."""
    many = getattr(records, "many", None)
    return many(at) if many is not None else [records[i] for i in at]
