"""The records worker raises CPython's young-generation threshold, never lowers one."""

from __future__ import annotations

import gc

import pytest

from hub.worker import GC_GEN0, tune_gc


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_threshold_is_raised(thresholds):
    gc.set_threshold(700, 10, 10)
    tune_gc()
    assert gc.get_threshold() == (GC_GEN0, 10, 10)


def test_a_higher_threshold_is_kept(thresholds):
    gc.set_threshold(GC_GEN0 * 3, 5, 7)
    tune_gc()
    assert gc.get_threshold() == (GC_GEN0 * 3, 5, 7)
