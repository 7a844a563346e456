"""What a worker derives from a stored record's features, kept between batches.

Every batch loads into a fresh `IncrementalIndex` the stored records sharing a blocking
key with its records; most of them were loaded by earlier batches too. Decoding their
features, computing their blocking keys and encoding their scoring rows was half of the
worker's time. This cache maps a record's stored features, as text, to those derived
values: they are a pure function of that text (and of the encoder that interned the
row's strings, shared by every batch index of this thread), so a hit is exact whatever
other workers or stewards did in between; the record's person is still read each batch.

Bounded: least recently used entries go past `max_records`; when the shared encoder has
interned `max_strings` strings it is replaced, with every row encoded by it.
One cache per thread (the encoder interns without a lock).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hub.store.engine import json_loads
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures
from identity_index.model import Model
from identity_index.vectorised import Encoder, PairScorer

MAX_RECORDS = 100_000
MAX_STRINGS = 500_000


@dataclass(frozen=True)
class Derived:
    text: str
    features: PersonFeatures
    blocks: list[int]  # the hash of each block the features are filed in (`IncrementalIndex._block_ids`)
    row: list[int]


class _RowCache(Encoder):
    """An encoder that hands back the cached row of a cached features object."""

    def __init__(self, owner: SliceCache) -> None:
        super().__init__()
        self.owner = owner

    def row(self, f: PersonFeatures) -> list[int]:
        d = self.owner.derived_of(f)
        return d.row if d is not None else super().row(f)


class CachedIndex(IncrementalIndex):
    """A batch's index sharing the thread's encoder, pair caches and derived values."""

    def __init__(self, model: Model, cache: SliceCache, new_person_id: Callable[[], str] | None = None) -> None:
        super().__init__(model, new_person_id=new_person_id)
        self.cache = cache
        self.pair_scorer = cache.pair_scorer

    def _block_ids(self, f: PersonFeatures) -> list[int]:
        d = self.cache.derived_of(f)
        return d.blocks if d is not None else super()._block_ids(f)


class SliceCache:
    def __init__(self, model: Model, *, max_records: int = MAX_RECORDS, max_strings: int = MAX_STRINGS) -> None:
        self.model = model
        self.max_records, self.max_strings = max_records, max_strings
        self.hits = self.misses = self.resets = 0
        self._by_ref: OrderedDict[str, Derived] = OrderedDict()
        self._new_encoder()

    def _new_encoder(self) -> None:
        self.pair_scorer = PairScorer(self.model, _RowCache(self))
        self._by_ref.clear()

    def index(self, new_person_id: Callable[[], str] | None = None) -> CachedIndex:
        """A fresh index for one batch (the encoder is replaced here, between batches, when full)."""
        self.renew_encoder()
        return CachedIndex(self.model, self, new_person_id=new_person_id)

    def renew_encoder(self) -> None:
        """Between batches: a full encoder is replaced, with every row it encoded."""
        if len(self.pair_scorer.encoder.strings) > self.max_strings:
            self.resets += 1
            self._new_encoder()

    def derived_of(self, f: PersonFeatures) -> Derived | None:
        d = self._by_ref.get(f.ref)
        return d if d is not None and d.features is f else None

    def remember(self, f: PersonFeatures, blocks: list[int], text: str) -> None:
        """Features this worker computed and is about to store as `text` (the store's JSON
        serializer applied to `to_json`; SQLite keeps exactly that text), so the next batch's
        re-read of the record is a hit instead of a decode, and this batch's index finds their
        blocks and row. `blocks`: those of `f` (`IncrementalIndex._block_ids`). Encoding here
        interns the record's strings in the order the batch places it, as placing it would have."""
        self._by_ref[f.ref] = Derived(text, f, blocks, Encoder.row(self.pair_scorer.encoder, f))
        self._by_ref.move_to_end(f.ref)
        while len(self._by_ref) > self.max_records:
            self._by_ref.popitem(last=False)

    def stored(self, ref: str, text: str) -> PersonFeatures:
        """The features stored as `text`: the cached object on a hit, else decoded without
        caching (nothing is interned: the encoder sees records in the order the index loads them)."""
        d = self._by_ref.get(ref)
        if d is not None and d.text == text:
            return d.features
        return PersonFeatures.from_json(json_loads(text))

    def features(self, ref: str, text: str, index: IncrementalIndex) -> PersonFeatures:
        """The features stored as `text` (decoded, keyed and encoded only on a miss)."""
        d = self._by_ref.get(ref)
        if d is not None and d.text == text:
            self.hits += 1
            self._by_ref.move_to_end(ref)
            return d.features
        self.misses += 1
        f = PersonFeatures.from_json(json_loads(text))
        blocks = [hash(k) for k in IncrementalIndex._keys(index, f)]
        row = Encoder.row(self.pair_scorer.encoder, f)
        self._by_ref[ref] = Derived(text, f, blocks, row)
        self._by_ref.move_to_end(ref)
        while len(self._by_ref) > self.max_records:
            self._by_ref.popitem(last=False)
        return f

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class ThreadCaches:
    """One `SliceCache` per thread for a linker."""

    def __init__(self, model: Model, **limits: int) -> None:
        self.model, self.limits = model, limits
        self._local = threading.local()

    def get(self) -> SliceCache:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = SliceCache(self.model, **self.limits)
        return cache
