"""A bulk link raises the garbage collector's thresholds while it runs (`fewer_collections`):
its chunk's objects live until it ends, and a full collection walks all of them; the thresholds
the process had come back afterwards, also when the link fails."""

from __future__ import annotations

import gc

import pytest

from hub.identity import bulk_link
from hub.identity.model_file import load_model
from hub.identity.synthetic import people
from tests.unit.hub.test_bulk_link_context import _hold


def test_thresholds_are_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with bulk_link.fewer_collections():
        inside = gc.get_threshold()
    assert inside == (max(before[0], bulk_link.GC_YOUNG), max(before[1], bulk_link.GC_MIDDLE),
                      max(before[2], bulk_link.GC_OLD))
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), bulk_link.fewer_collections():
        raise RuntimeError("a failed chunk")
    assert gc.get_threshold() == before


def test_a_link_runs_its_chunks_with_the_raised_thresholds(store, monkeypatch):
    seen: list[tuple[int, int, int]] = []
    real = bulk_link._link_chunk

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_link, "_link_chunk", spy)
    records = list(people(12, seed=3))
    _hold(store, records)
    before = gc.get_threshold()
    bulk_link.link(store, load_model(), max_records=5, publish_events=False)
    assert len(seen) == -(-len(records) // 5) > 1 and all(t[2] >= bulk_link.GC_OLD for t in seen)
    assert gc.get_threshold() == before
