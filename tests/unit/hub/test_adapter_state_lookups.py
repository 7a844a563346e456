"""An incremental run reads only the row states it asks about; a full scan loads them once."""

from __future__ import annotations

from hub.adapter_state import RowState, StoreAdapterState


def _seed(store, n: int) -> None:
    state = StoreAdapterState(store, "sys")
    changes = {str(i): RowState(f"h{i}", 1, [f"sys/person/{i}"]) for i in range(n)}
    with store.transaction() as s:
        state.save(s, "people", changes, {"c": "1"})
    state.committed("people", changes, {"c": "1"})


def test_row_hashes_answer_by_id_without_loading_everything(sqlite_store):
    _seed(sqlite_store, 50)
    state = StoreAdapterState(sqlite_store, "sys")
    hashes = state.row_hashes("people")
    assert hashes.get("7") == "h7" and "8" in hashes and hashes.get("nope") is None
    assert hashes._all is None
    assert bool(hashes) and not state.row_hashes("other")
    assert len(hashes) == 50 and set(hashes) == {str(i) for i in range(50)}


def test_lookup_then_save_updates_known_rows_and_inserts_new_ones(sqlite_store):
    _seed(sqlite_store, 3)
    state = StoreAdapterState(sqlite_store, "sys")
    assert set(state.lookup("people", ["1", "9"])) == {"1"}
    changes = {"1": RowState("new", 2, []), "9": RowState("h9", 1, []), "2": None}
    with sqlite_store.transaction() as s:
        state.save(s, "people", changes, {})
    state.committed("people", changes, {})
    fresh = StoreAdapterState(sqlite_store, "sys")
    assert {k: v.content_hash for k, v in fresh.rows("people").items()} == {"0": "h0", "1": "new", "9": "h9"}
    assert state.lookup("people", ["1", "2"]) == {"1": RowState("new", 2, [])}
