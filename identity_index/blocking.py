"""Blocking: which pairs are compared at all.

Each blocking rule turns a record into zero or more keys; two records are
candidates when they share a key under any rule. Rules are named so a model file
and `hub.toml` can list the ones in use. `blocking_report` measures the reduction
ratio (share of all pairs never compared) and, given labels, pairs completeness
(share of true pairs that blocking keeps).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
import numpy as np

from identity_index.comparisons import _name_family
from identity_index.features import PersonFeatures


@dataclass(frozen=True)
class BlockingRule:
    """`refine`, when set, splits a block larger than `SPLIT_AT` by a second value (and a block
    still too large by the next) instead of letting it grow to `max_block` and be dropped: at a
    million records "smith, born 2015" is thousands of records, "smith, born 14 March 2015" a few."""

    name: str
    keys: Callable[[PersonFeatures], set[str]]
    description: str
    refine: tuple[Callable[[PersonFeatures], str], ...] = ()


SPLIT_AT = 50
WINDOW = 25
"""A block still larger than SPLIT_AT at its finest level (records without a date of birth, whose
refining values are all "") is compared in a sliding window: each record with the WINDOW - 1
records before and after it in `window_order`. Pairs grow with the number of records, not with
the square of a block that grows with the estate: at 1,000,000 people, 45 % of the pairs were in
such blocks (parents named only as pupils' contacts: "david smith", no date of birth, hundreds)."""


# a load keys millions of records by a few hundred thousand distinct names: each coded once
_metaphone = lru_cache(maxsize=1 << 17)(jellyfish.metaphone)
_soundex = lru_cache(maxsize=1 << 17)(jellyfish.soundex)


def window_order(f: PersonFeatures) -> tuple[str, ...]:
    """The order a sliding window runs in (the sorted-neighbourhood method): exact names first,
    then address, phone and date of birth, so the records of one person sit side by side."""
    return (f.given, f.family, f.postcode, min(f.phones, default=""),
            f.dob.isoformat() if f.dob is not None else "", f.ref)


def _surnames(f: PersonFeatures) -> set[str]:
    return {n for n in ({f.family} | set(f.family_alts)) if n}


def surname_year(f: PersonFeatures) -> set[str]:
    """Metaphone of every family name (current, previous, hyphen parts) with the birth year;
    the given name too, so records with given and family swapped still meet."""
    if f.dob is None:
        return set()
    names = _surnames(f) | ({f.given} if f.given else set())
    return {f"{_metaphone(n)}|{f.dob.year}" for n in names}


def dob_key(f: PersonFeatures) -> set[str]:
    """Birth date with day and month in either order (a transposed date still meets)."""
    if f.dob is None or f.dob_precision != "day":
        return set()
    low, high = sorted((f.dob.day, f.dob.month))
    return {f"{f.dob.year}-{low:02d}-{high:02d}"}


def postcode_initial(f: PersonFeatures) -> set[str]:
    if not f.given:
        return set()
    return {f"{pc}|{f.given[0]}" for pc in ({f.postcode} | set(f.postcodes)) if pc}


def given_soundex_dob_month(f: PersonFeatures) -> set[str]:
    """Soundex of the given name with year and month of birth: family name changed and moved."""
    if f.dob is None or f.dob_precision == "year" or not f.given:
        return set()
    return {f"{_soundex(f.given)}|{f.dob.year}-{f.dob.month:02d}"}


def full_name(f: PersonFeatures) -> set[str]:
    """Metaphones of given and family name, in either order: records that carry little else
    (parents named only as a pupil's contact) still meet their other records, through typos
    and swapped names."""
    if not f.given or not f.family:
        return set()
    given = _metaphone(f.given)
    return {"|".join(sorted((given, _metaphone(family)))) for family in {f.family} | set(f.family_alts)}


def given_initial(f: PersonFeatures) -> str:
    return f.given[:1]


def birth_month(f: PersonFeatures) -> str:
    return f"{f.dob.month:02d}" if f.dob is not None and f.dob_precision != "year" else ""


def birth_day(f: PersonFeatures) -> str:
    return f"{f.dob.day:02d}" if f.dob is not None and f.dob_precision == "day" else ""


def sex_of(f: PersonFeatures) -> str:
    return f.sex or ""


def birth_date(f: PersonFeatures) -> str:
    return f.dob.isoformat() if f.dob is not None else ""


def birth_year(f: PersonFeatures) -> str:
    return str(f.dob.year) if f.dob is not None else ""


def family_initial(f: PersonFeatures) -> set[str]:
    """Metaphone of every family name + the given name's initial, or the initial of any of its
    nicknames or canonical forms (Dick → d, r): parents known only by name as a pupil's
    contact, spelt differently in each contact record (Henry / Harry, J / Julie, a typo in the
    given name that changes its metaphone)."""
    if not f.given:
        return set()
    initials = {f.given[0]} | {n[0] for n in _name_family(f.given) if n}
    return {f"{_metaphone(n)}|{i}" for n in _surnames(f) for i in initials}


def nhs_key(f: PersonFeatures) -> set[str]:
    return {f.nhs} if f.nhs else set()


def upn_key(f: PersonFeatures) -> set[str]:
    return {f.upn} if f.upn else set()


def phone_key(f: PersonFeatures) -> set[str]:
    return set(f.phones)


RULES: dict[str, BlockingRule] = {r.name: r for r in (
    BlockingRule("surname_year", surname_year, "phonetic (metaphone) family name + birth year",
                 refine=(birth_month, birth_day)),
    BlockingRule("dob", dob_key, "full date of birth, day and month in either order", refine=(given_initial, sex_of)),
    BlockingRule("postcode_initial", postcode_initial, "any postcode + first initial"),
    BlockingRule("given_dob_month", given_soundex_dob_month, "soundex given name + birth year and month"),
    BlockingRule("full_name", full_name, "metaphones of given and family name, in either order",
                 refine=(birth_year, birth_month)),
    BlockingRule("family_initial", family_initial, "metaphone family name + given initial (or a nickname's)",
                 refine=(birth_date,)),
    BlockingRule("nhs", nhs_key, "NHS number"),
    BlockingRule("upn", upn_key, "unique pupil number"),
    BlockingRule("phone", phone_key, "any phone number"),
)}

DEFAULT_RULES: tuple[str, ...] = tuple(RULES)


class UnknownBlockingRule(KeyError):
    """A model file or setting names a blocking rule this version does not have."""


def rules_named(names: Iterable[str]) -> list[BlockingRule]:
    try:
        return [RULES[n] for n in names]
    except KeyError as exc:
        raise UnknownBlockingRule(f"unknown blocking rule {exc.args[0]!r}; known: {', '.join(RULES)}") from exc


def block_keys(f: PersonFeatures, rules: Sequence[BlockingRule]) -> list[tuple[str, str]]:
    """Every (rule, key) of a record, sorted."""
    return sorted((r.name, k) for r in rules for k in r.keys(f))


def filed_keys(f: PersonFeatures, rules: Sequence[BlockingRule],
               keys: Sequence[tuple[str, str]] | None = None) -> list[tuple[str, str, str]]:
    """Every (rule, key, detail) a record is filed under in the store: its block keys (`keys`,
    when computed already), each with the values that refine it under a rule that splits large
    blocks ("03#14": born in March, on the 14th; "" under other rules). From the store's counts by
    key and detail a bulk link works out which refined block each new record is compared within
    and reads only those blocks (`context_blocks`), not every record under a coarse key."""
    keys = block_keys(f, rules) if keys is None else keys
    details = {r.name: "#".join(refine(f) for refine in r.refine) for r in rules if r.refine}
    return sorted((name, key, details.get(name, "")) for name, key in keys)


Block = tuple[str, str, tuple[str, ...]]
"""A block as the store files it: (rule, key, refining values), the key's whole block when there
are none, else the refined block they name."""


def level_key(block: Block) -> tuple[str, str]:
    """The block as `refined_keys` names it (what an index's `blocks` are keyed by the hash of)."""
    name, key, values = block
    return name + "#" * len(values), "#".join((key, *values))


def row_blocks(name: str, key: str, detail: str, refining: Collection[str]) -> list[Block]:
    """Every block a stored (rule, key, detail) row is in, from the key's down to its finest."""
    values = tuple(detail.split("#")) if name in refining else ()
    return [(name, key, values[:depth]) for depth in range(len(values) + 1)]


def level_sizes(stored: Mapping[tuple[str, str, str], int], rules: Sequence[BlockingRule]) -> Counter[Block]:
    """Stored records per block at every level, from the store's counts by (rule, key, detail)."""
    level: Counter[Block] = Counter()
    refining = {r.name for r in rules if r.refine}
    for (name, key, detail), n in stored.items():
        level[(name, key, ())] += n
        if name in refining:
            values = tuple(detail.split("#"))
            for depth in range(1, len(values) + 1):
                level[(name, key, values[:depth])] += n
    return level


def key_chains(new: Sequence[PersonFeatures], rules: Sequence[BlockingRule],
               keys_of: Callable[[PersonFeatures], Iterable[tuple[str, str]]] | None = None) -> list[list[Block]]:
    """Per record and key, its blocks from the key's down to its finest (`keys_of`: each record's
    `block_keys`, when the caller has them already)."""
    keys_of = keys_of or (lambda f: block_keys(f, rules))
    refiners = {r.name: r.refine for r in rules}
    out = []
    for f in new:
        values: dict[str, tuple[str, ...]] = {}
        for name, key in keys_of(f):
            found = values.get(name)
            if found is None:
                found = values[name] = tuple(r(f) for r in refiners[name])
            out.append([(name, key, found[:depth]) for depth in range(len(found) + 1)])
    return out


def placing_blocks(chains: Iterable[list[Block]], sizes: Mapping[Block, int], max_block: int = 1000) -> set[Block]:
    """The stored blocks a batch of new records is compared within when placed one by one
    (`engine.IncrementalIndex.candidates`), given their `key_chains` and `sizes`: the stored
    records per block, less the records being placed. Under each of its keys a record placed
    first meets the first level whose size, counting it, is at most SPLIT_AT (or the last),
    unless that holds more than `max_block`; a record placed later finds the records placed
    before it there too, so its level is that one or a finer block inside it. Reading these
    blocks whole is reading every record any of them can be compared with: at 1,000,000 people
    a changed record's keys hold thousands of stored records ("smith, born 2015"), the blocks
    it is compared within dozens."""
    out: set[Block] = set()
    for levels in chains:
        for depth, block in enumerate(levels):
            n = sizes.get(block, 0)
            if not n:
                break
            if depth + 1 < len(levels) and n + 1 > SPLIT_AT:
                continue
            if n <= max_block:
                out.add(block)
            break
    return out


@dataclass(frozen=True)
class ContextPlan:
    """What a bulk link of some new records must read besides them: the blocks whose stored
    records it compares with them (`blocks`: (rule, key, refining values) – the key's block
    when there are none, else the refined block those values name), and the size of every
    block they are in, stored records and new ones together (`sizes`: rule name → block key →
    size, as `candidate_pair_array` takes them), so that their blocks split exactly as they
    would with every stored record at hand."""

    blocks: frozenset[Block]
    sizes: dict[str, dict[str, int]]


def context_blocks(new: Sequence[PersonFeatures], rules: Sequence[BlockingRule],
                   stored: Mapping[tuple[str, str, str], int], max_block: int = 1000) -> ContextPlan:
    """The blocks a batch of `new` records (not in the store) is compared within, given
    `stored`: how many stored records each (rule, key, detail) of their keys (`filed_keys`)
    holds. Under each of its keys a record is compared within the first level no larger than
    SPLIT_AT (or the last), as `candidate_pair_array` splits blocks; a block larger than
    `max_block` is not compared at all, and one without a stored record has nothing to read, so
    neither is read (the first bulk link of a load, into an empty index, read every block: 12.6 %
    of its time at 100,000 people). Only keys holding a stored record are sized: under any other
    the new records are the whole block, and `candidate_pair_array` sizes it by them alone (the
    first chunk of a 1,000,000-person load spent a third of its time sizing every block of an
    empty index, PostgreSQL, 2026-12-07). The stored counts are summed once, at the levels a
    refined block names (`_StoredSizes`), and only the new records' blocks are sized: building
    every level of every stored count was a quarter of a chunk's clustering at 1,000,000 people."""
    sized = _StoredSizes(stored, rules)
    # the new records counted by their finest block (a chain) first, then each chain's count
    # added to its every level: one count per record and key, not one per level of it
    chains: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
    for rule in rules:
        name, keys, refine, held = rule.name, rule.keys, rule.refine, sized.keys.get(rule.name)
        if not held:
            continue
        if refine:
            chains.update((name, key, values) for f in new if (found := [k for k in keys(f) if k in held])
                          for values in (tuple(r(f) for r in refine),) for key in found)
        else:
            chains.update((name, key, ()) for f in new for key in keys(f) if key in held)
    new_at: Counter[Block] = Counter()
    for (name, key, values), n in chains.items():
        for depth in range(len(values) + 1):
            new_at[(name, key, values[:depth])] += n

    total: dict[Block, int] = {}  # stored + new records, every block of the new records' chains
    read: set[Block] = set()  # those holding a stored record: a block without one has nothing to read
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    for block, n in new_at.items():
        name, key, values = block
        there = sized.of(name, key, values)
        total[block] = there + n
        if there:
            read.add(block)
        sizes[name]["#".join((key, *values))] = there + n
    blocks = set()
    for name, key, values in chains:
        for depth in range(len(values) + 1):
            block = (name, key, values[:depth])
            if depth < len(values) and total[block] > SPLIT_AT:
                continue
            if total[block] <= max_block and block in read:
                blocks.add(block)
            break
    return ContextPlan(frozenset(blocks), dict(sizes))


class _StoredSizes:
    """The stored records of a block at any level, from the counts by (rule, key, detail): the
    key's total and, under a rule refined by more than one value, the totals of each shorter run
    of values, summed in one pass; a block naming every value is one detail, looked up."""

    def __init__(self, stored: Mapping[tuple[str, str, str], int], rules: Sequence[BlockingRule]) -> None:
        self.stored = stored
        self.depth = {r.name: len(r.refine) for r in rules}
        deep = {name for name, n in self.depth.items() if n > 1}
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.partial: dict[Block, int] = defaultdict(int)
        self.keys: dict[str, set[str]] = defaultdict(set)  # rule → its keys holding a stored record
        totals, partial = self.totals, self.partial
        for (name, key, detail), n in stored.items():
            totals[(name, key)] += n
            if name in deep:
                values = tuple(detail.split("#"))
                for k in range(1, len(values)):
                    partial[(name, key, values[:k])] += n
        for name, key in totals:
            self.keys[name].add(key)

    def of(self, name: str, key: str, values: tuple[str, ...]) -> int:
        if not values:
            return self.totals.get((name, key), 0)
        if len(values) >= self.depth.get(name, 0):
            return self.stored.get((name, key, "#".join(values)), 0)
        return self.partial.get((name, key, values), 0)


def candidate_pairs(records: Sequence[PersonFeatures], rules: Sequence[BlockingRule],
                    max_block: int = 1000) -> set[tuple[int, int]]:
    """Index pairs (i < j) sharing a key under any rule. Blocks larger than `max_block`
    are skipped: a key that common carries no evidence and would swamp the comparisons."""
    left, right = candidate_pair_array(records, rules, max_block)
    return set(zip(left.tolist(), right.tolist(), strict=True))


StoredMembers = Mapping[str, tuple[Sequence[int], Sequence[str]]]
"""Per rule name, the context records filed in the blocks a bulk link compares (their indices in
the batch) and the block each is in, named as `level_key` names it ("key#03"), from the store's
rows (`hub.identity.repository.block_rows`)."""


def candidate_pair_array(records: Sequence[PersonFeatures], rules: Sequence[BlockingRule],
                         max_block: int = 1000, focus: int | None = None,
                         sizes: Mapping[str, Mapping[str, int]] | None = None,
                         window: int | None = WINDOW,
                         stored: StoredMembers | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`candidate_pairs` as two sorted index arrays (left < right), built block by block with
    numpy: a million records give tens of millions of pairs, too many for Python tuples.
    With `focus`, only pairs with one of the first `focus` records: the rest are context (records
    already linked, met only through the new ones); blocks are still sized with them.
    `sizes` (rule name → block key → size) sizes the blocks it names instead of their members
    here: the context is then only the blocks compared (`context_blocks`), and a block splits
    and is dropped as it would with all its records at hand. `window`: the sliding window of a
    block too large at its finest level (None: every pair of it, as before the window, for a
    benchmark's baseline). `stored` (with `focus` and `sizes`): the context's blocks as the store
    files them, so only the first `focus` records' keys are worked out here: a bulk link's context
    is most of a large index, and working out its every key and refining value was a third of the
    clustering at 1,000,000 people. A context record is then in only the blocks compared with a
    new one, which are the only blocks that give pairs under `focus`."""
    n = len(records)
    keyed = range(focus) if stored is not None and focus is not None else range(n)
    found = [np.zeros(0, dtype=np.int64)]
    for rule in rules:
        ids: dict[str, int] = {}
        keys: list[int] = []
        members: list[int] = []
        for i in keyed:
            for key in rule.keys(records[i]):
                keys.append(ids.setdefault(key, len(ids)))
                members.append(i)
        key_arr, member_arr = np.array(keys, dtype=np.int64), np.array(members, dtype=np.int64)
        known = (sizes or {}).get(rule.name)
        for refine in rule.refine:
            key_arr = _refined(refine, records, key_arr, member_arr, ids, known)
        if stored is not None and rule.name in stored:  # in their blocks already: after the refining
            at, blocks = stored[rule.name]
            key_arr = np.concatenate([key_arr, np.array([ids.setdefault(b, len(ids)) for b in blocks],
                                                        dtype=np.int64)])
            member_arr = np.concatenate([member_arr, np.asarray(at, dtype=np.int64)])
        if not len(key_arr):
            continue
        order = np.lexsort((member_arr, key_arr))
        key_arr, member_arr = key_arr[order], member_arr[order]
        starts = np.flatnonzero(np.r_[True, key_arr[1:] != key_arr[:-1]])
        members_in = np.diff(np.r_[starts, len(key_arr)])
        whole = np.maximum(members_in, _known_sizes(ids, known)[key_arr[starts]]) if known else members_in
        compared = (members_in > 1) & (whole <= max_block)
        windowed = compared & (whole > SPLIT_AT) & (members_in > (window or max_block))
        if windowed.any():
            found.append(_window_pairs(records, member_arr, starts[windowed], members_in[windowed], n, focus,
                                       window or WINDOW))
            compared &= ~windowed
        for size in np.unique(members_in[compared]).tolist():
            block_starts = starts[(members_in == size) & compared]
            i, j = np.triu_indices(size, 1)
            for chunk in range(0, len(block_starts), max(1, 4_000_000 // len(i))):
                grid = member_arr[block_starts[chunk:chunk + max(1, 4_000_000 // len(i))][:, None]
                                  + np.arange(size)]
                first, second = grid[:, i], grid[:, j]  # first < second: members sorted in a block
                if focus is not None:
                    keep = first < focus
                    first, second = first[keep], second[keep]
                found.append((first * n + second).ravel())
        # this rule's pairs sorted alone, then merged with the earlier rules' (timsort of two runs)
        found = [_sorted_unique(np.concatenate([found[0], _sorted_unique(np.concatenate(found[1:]))]), "stable")] \
            if len(found) > 1 else found
    packed = found[0]
    del found
    left = (packed // n).astype(np.int32)
    packed %= n
    return left, packed.astype(np.int32)


def _window_pairs(records: Sequence[PersonFeatures], member_arr: np.ndarray, starts: np.ndarray,
                  sizes: np.ndarray, n: int, focus: int | None, window: int) -> np.ndarray:
    """Packed pairs (low * n + high) of blocks compared in a sliding window: each block's
    members ordered by `window_order`, each paired with the next `window` - 1."""
    offsets = np.cumsum(np.r_[0, sizes[:-1]])
    at = np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))
    members = member_arr[at]
    block = np.repeat(np.arange(len(starts)), sizes)
    distinct = np.unique(members)
    keys = [window_order(records[i]) for i in distinct.tolist()]
    rank = np.empty(n, dtype=np.int64)
    rank[distinct[sorted(range(len(keys)), key=keys.__getitem__)]] = np.arange(len(keys))
    order = np.lexsort((rank[members], block))
    members, block = members[order], block[order]
    out = []
    for step in range(1, window):
        same = block[:-step] == block[step:]
        a, b = members[:-step][same], members[step:][same]
        low, high = np.minimum(a, b), np.maximum(a, b)
        if focus is not None:
            keep = low < focus
            low, high = low[keep], high[keep]
        out.append(low * n + high)
    return np.concatenate(out)


def _known_sizes(ids: dict[str, int], known: Mapping[str, int] | None) -> np.ndarray:
    """Per key id, the size `known` gives it (0 where it gives none)."""
    out = np.zeros(len(ids), dtype=np.int64)
    if known:
        for key, n in known.items():
            i = ids.get(key)
            if i is not None:
                out[i] = n
    return out


def _refined(refine: Callable[[PersonFeatures], str], records: Sequence[PersonFeatures], key_arr: np.ndarray,
             member_arr: np.ndarray, ids: dict[str, int], known: Mapping[str, int] | None = None) -> np.ndarray:
    """Keys of blocks larger than SPLIT_AT (counting the size `known` gives a key, where larger)
    replaced by key + "#" + the refining value."""
    counts = np.bincount(key_arr, minlength=len(ids))
    if known:
        counts = np.maximum(counts, _known_sizes(ids, known))
    big = np.flatnonzero(counts[key_arr] > SPLIT_AT)
    if not len(big):
        return key_arr
    key_arr = key_arr.copy()
    names = list(ids)
    for at in big.tolist():
        fine = f"{names[key_arr[at]]}#{refine(records[member_arr[at]])}"
        key_arr[at] = ids.setdefault(fine, len(ids))
    return key_arr


def refined_keys(rule: BlockingRule, key: str, f: PersonFeatures) -> list[tuple[str, str]]:
    """The blocks under (rule, key) from coarse to fine: (rule, key), (rule#, key#v1), … (`level_key`
    of each: the names an index's blocks are hashed by, whether built from features or from the
    store's counts)."""
    values = tuple(refine(f) for refine in rule.refine)
    return [level_key((rule.name, key, values[:depth])) for depth in range(len(values) + 1)]


def _sorted_unique(values: np.ndarray, kind: str = "quicksort") -> np.ndarray:
    """Sorted distinct values; numpy 2's hash-based `np.unique` is several times slower on
    tens of millions of packed pairs than a sort."""
    values.sort(kind=kind)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


@dataclass(frozen=True)
class BlockingReport:
    records: int
    total_pairs: int
    candidate_pairs: int
    true_pairs: int | None
    true_pairs_kept: int | None

    @property
    def share_compared(self) -> float:
        return self.candidate_pairs / self.total_pairs if self.total_pairs else 0.0

    @property
    def reduction_ratio(self) -> float:
        return 1.0 - self.share_compared

    @property
    def pairs_completeness(self) -> float | None:
        if self.true_pairs is None:
            return None
        return self.true_pairs_kept / self.true_pairs if self.true_pairs else 1.0


def blocking_report(records: Sequence[PersonFeatures], pairs: set[tuple[int, int]],
                    truth: dict[str, str] | None = None) -> BlockingReport:
    """Reduction ratio of `pairs` over all pairs; pairs completeness when `truth` maps ref → entity."""
    n = len(records)
    total = n * (n - 1) // 2
    if truth is None:
        return BlockingReport(n, total, len(pairs), None, None)
    true_pairs = count_true_pairs(truth[r.ref] for r in records if r.ref in truth)
    kept = sum(1 for i, j in pairs if truth.get(records[i].ref) is not None
               and truth.get(records[i].ref) == truth.get(records[j].ref))
    return BlockingReport(n, total, len(pairs), true_pairs, kept)


def count_true_pairs(entities: Iterable[str]) -> int:
    sizes: dict[str, int] = defaultdict(int)
    for e in entities:
        sizes[e] += 1
    return sum(s * (s - 1) // 2 for s in sizes.values())
