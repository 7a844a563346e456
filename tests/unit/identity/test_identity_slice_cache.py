"""The worker's slice cache: a batch index loaded through it decides exactly as one loaded
from decoded features; a hit needs the same stored text; bounded; one per thread."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from hub.identity import synthetic
from hub.identity.slice_cache import SliceCache, ThreadCaches
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.model import default_model


@pytest.fixture(scope="module")
def people() -> list[PersonFeatures]:
    return [features_from_canonical(r.ref, r.person) for r in synthetic.people(300, seed=11)]


def _text(f: PersonFeatures) -> str:
    return json.dumps(f.to_json())


def _decisions(index: IncrementalIndex, stored: list[PersonFeatures], placing: list[PersonFeatures],
               load) -> list[tuple[str, bool, tuple[str, ...], int]]:
    for i, f in enumerate(stored):
        index.load(load(f, index), f"S{i // 2:05d}")  # pairs of stored records share a person
    out = []
    for f in placing:
        p = index.place(f)
        out.append((p.person_id, p.created, tuple(p.assignment.merge), p.compared))
    return out


def test_batches_through_the_cache_decide_as_batches_without_it(people):
    model, stored, placing = default_model(), people[:240], people[240:]
    cache = SliceCache(model)
    for _batch in range(3):  # the second and third batches load every stored record from the cache
        ids = iter(f"N{i:05d}" for i in range(10_000))
        plain = _decisions(IncrementalIndex(model, new_person_id=lambda ids=ids: next(ids)), stored, placing,
                           lambda f, _i: PersonFeatures.from_json(json.loads(_text(f))))
        ids = iter(f"N{i:05d}" for i in range(10_000))
        cached = _decisions(cache.index(lambda ids=ids: next(ids)), stored, placing,
                            lambda f, index: cache.features(f.ref, _text(f), index))
        assert cached == plain
        assert any(not created for _p, created, _m, _c in plain)  # some placements link to stored persons
    assert cache.misses == len(stored) and cache.hits == 2 * len(stored)


def test_a_hit_needs_the_same_stored_text(people):
    cache = SliceCache(default_model())
    index = cache.index()
    f = people[0]
    first = cache.features(f.ref, _text(f), index)
    assert cache.features(f.ref, _text(f), index) is first
    moved = dataclasses.replace(f, postcode="ZZ1 1ZZ", postcodes=frozenset({"ZZ1 1ZZ"}))
    second = cache.features(f.ref, _text(moved), index)
    assert second == moved and second is not first
    assert (cache.hits, cache.misses) == (1, 2)
    assert cache.derived_of(first) is None  # the old object no longer answers for the record
    assert cache.derived_of(second).blocks == [hash(k) for k in IncrementalIndex._keys(index, moved)]


def test_least_recently_used_records_go_past_the_bound(people):
    cache = SliceCache(default_model(), max_records=2)
    index = cache.index()
    a, b, c = people[:3]
    for f in (a, b, a, c):
        cache.features(f.ref, _text(f), index)
    cache.features(a.ref, _text(a), index)
    cache.features(b.ref, _text(b), index)
    assert (cache.hits, cache.misses) == (2, 4)  # b was evicted by c, a was kept (used after b)


def test_a_full_encoder_is_replaced_between_batches_with_its_rows(people):
    cache = SliceCache(default_model(), max_strings=50)
    index = cache.index()
    for f in people[:40]:
        cache.features(f.ref, _text(f), index)
    old = cache.pair_scorer
    fresh = cache.index()
    assert cache.resets == 1 and cache.pair_scorer is not old and fresh.pair_scorer is cache.pair_scorer
    cache.features(people[0].ref, _text(people[0]), fresh)
    assert cache.misses == 41  # its row was encoded by the old encoder: decoded again


def test_each_thread_has_its_own_cache():
    caches = ThreadCaches(default_model())
    other: list[SliceCache] = []
    thread = threading.Thread(target=lambda: other.append(caches.get()))
    thread.start()
    thread.join()
    assert caches.get() is caches.get() and other[0] is not caches.get()
