"""One contract for every adapter kind: first load, unchanged, change, delete, bad record,
bounded batches and a restart that resumes with nothing lost or duplicated.

Each source holds the same five people (tests/contract/adapter_factories.py), is read
through its kind's own `build()`, and is driven the way the hub's ingest drives it:
a batch's row hashes and cursors count only once that batch is committed."""

from __future__ import annotations

import pytest
import responses

from tests.contract.adapter_factories import FACTORIES, PEOPLE, Crash, MemoryState, RestSource, run
from tests.contract.spreadsheet_factories import SPREADSHEET_FACTORIES

IDS = {p["id"] for p in PEOPLE}
BATCH_LIMIT = 2  # every factory configures batch_size = 2
KINDS = sorted([*FACTORIES, *SPREADSHEET_FACTORIES, "rest"])


@pytest.fixture(params=KINDS)
def source(request, tmp_path):
    if request.param == "rest":
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            made = RestSource(tmp_path, mock)
            yield made
            made.close()
        return
    factory = {**FACTORIES, **SPREADSHEET_FACTORIES}[request.param]
    made = factory(tmp_path)
    yield made
    made.close()


def _bounded(result) -> None:
    for batch in result.batches:
        assert len(batch.changes) + len(batch.failures) <= BATCH_LIMIT


def test_first_extract_yields_every_row_then_nothing(source):
    state = MemoryState()
    first = run(source.adapter(), state)
    assert set(first.upserted) == IDS
    assert len(first.changes) == len(IDS), "a row was announced twice"
    assert not first.failures and not first.deleted
    second = run(source.adapter(), state)
    assert second.changes == [] and second.failures == []
    assert second.unchanged in (0, len(IDS))  # 0: the kind skipped them by watermark or consumed the drop


def test_changed_row_comes_again_alone(source):
    state = MemoryState()
    run(source.adapter(), state)
    source.change("P2", surname="Hughes-Smith")
    result = run(source.adapter(), state)
    assert list(result.upserted) == ["P2"]
    assert result.upserted["P2"]["surname"] == "Hughes-Smith"
    assert not result.deleted


def test_removed_row_yields_a_deletion(source):
    state = MemoryState()
    run(source.adapter(), state)
    source.remove("P4")
    result = run(source.adapter(), state)
    assert result.deleted == ["P4"]
    assert not result.upserted
    assert "P4" not in state.row_hashes(source.entity)


def test_malformed_input_is_reported_not_dropped(source):
    state = MemoryState()
    run(source.adapter(), state)
    source.add_malformed()
    result = run(source.adapter(), state)
    assert result.failures, "the malformed record vanished"
    assert all(f.reasons and all(r.strip() for r in f.reasons) for f in result.failures)
    assert not result.deleted, "unreadable input must never be taken for deletions"
    assert set(result.upserted) <= IDS


def test_batches_are_bounded(source):
    result = run(source.adapter(), MemoryState())
    _bounded(result)
    assert len(result.batches) >= 3


def test_restart_after_crash_resumes_without_loss_or_duplicates(source):
    state = MemoryState()
    with pytest.raises(Crash):
        run(source.adapter(), state, crash_after=1)
    committed = set(state.row_hashes(source.entity))
    assert committed and committed < IDS
    resumed = run(source.adapter(), state)
    assert set(resumed.upserted) == IDS - committed
    assert len(resumed.changes) == len(IDS - committed)
    assert set(state.row_hashes(source.entity)) == IDS
