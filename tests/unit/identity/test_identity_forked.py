"""Half of a clustering's scoring in a forked helper (identity_index/forked.py): the same scores in
the same order as one process; a failing helper is raised with its traceback; a helper never
forks from a process with threads, and the work then runs in the process itself."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from hub.identity.model_file import load_model
from hub.identity.synthetic import people
from identity_index import engine, forked
from identity_index.blocking import candidate_pair_array, rules_named
from identity_index.features import features_from_canonical


@pytest.fixture
def no_threads(monkeypatch):
    """Forking allowed whatever threads earlier tests left (this test's own work uses none)."""
    monkeypatch.setattr(forked, "can_fork", lambda: True)


def test_a_helper_returns_what_its_work_returns_from_another_process(no_threads):
    with forked.Forked(lambda: (os.getpid(), np.arange(5))) as helper:
        pid, values = helper.result()
    assert pid != os.getpid() and values.tolist() == [0, 1, 2, 3, 4]


def test_a_failing_helper_is_raised_with_its_traceback(no_threads):
    def fails():
        raise ValueError("no such block")

    with forked.Forked(fails) as helper, pytest.raises(forked.HelperError, match="no such block"):
        helper.result()


def test_a_helper_never_asked_for_its_result_is_stopped_and_reaped(no_threads):
    with forked.Forked(lambda: threading.Event().wait(60)) as helper:
        pid = helper._pid
        assert pid
    with pytest.raises(ChildProcessError):  # killed and waited for: no process left behind
        os.waitpid(pid, os.WNOHANG)


def test_the_scores_are_the_same_and_in_the_same_order_with_a_helper(no_threads):
    model = load_model()
    records = [features_from_canonical(r.ref, r.person) for r in people(3000, seed=4)]
    left, right = candidate_pair_array(records, rules_named(model.blocking_rules))
    alone = list(engine.score_pairs(records, left, right, model, chunk=5000))
    forks = []
    real = forked.Forked.__init__

    def counted(self, work):
        real(self, work)
        forks.append(self._pid)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(forked.Forked, "__init__", counted)
        helped = list(engine.score_pairs(records, left, right, model, chunk=5000, fork=True))
    assert len(left) > 4 * 5000 and len(forks) == 1 and forks[0]
    assert helped == alone and len(alone) > 100


def test_a_process_with_threads_scores_alone(monkeypatch):
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert not forked.can_fork()
        monkeypatch.setattr(forked.Forked, "__init__", lambda *a: pytest.fail("forked beside a thread"))
        model = load_model()
        records = [features_from_canonical(r.ref, r.person) for r in people(500, seed=4)]
        left, right = candidate_pair_array(records, rules_named(model.blocking_rules))
        assert list(engine.score_pairs(records, left, right, model, chunk=100, fork=True))
    finally:
        stop.set()
        thread.join()
