"""An incremental run reads only the row states it asks about, a batch of ids per query; a full
scan loads them once; an entity the store held nothing of is answered without reads."""

from __future__ import annotations

from sqlalchemy import event

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


def test_lookup_then_save_updates_known_rows_and_inserts_new_ones(store):  # SQLite and PostgreSQL (COPY)
    _seed(store, 3)
    state = StoreAdapterState(store, "sys")
    assert set(state.lookup("people", ["1", "9"])) == {"1"}
    changes = {"1": RowState("new", 2, []), "9": RowState("h9", 1, []), "2": None}
    with store.transaction() as s:
        state.save(s, "people", changes, {})
    state.committed("people", changes, {})
    fresh = StoreAdapterState(store, "sys")
    assert {k: v.content_hash for k, v in fresh.rows("people").items()} == {"0": "h0", "1": "new", "9": "h9"}
    assert state.lookup("people", ["1", "2"]) == {"1": RowState("new", 2, [])}


class Statements:
    """Counts the SELECT statements the store runs while it is attached."""

    def __init__(self, store) -> None:
        self.engine, self.count = store.engine, 0
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement: str, *_args) -> None:
        self.count += statement.lstrip().upper().startswith("SELECT")

    def detach(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_an_entity_the_store_held_nothing_of_is_answered_without_reads(sqlite_store):
    state = StoreAdapterState(sqlite_store, "sys")
    statements = Statements(sqlite_store)
    hashes = state.row_hashes("people")
    assert not hashes and hashes.subset([str(i) for i in range(1000)]) == {} and hashes.get("1") is None
    assert state.lookup("people", ["1", "2"]) == {}
    assert statements.count == 1  # whether the store holds any row of the entity, asked once
    changes = {"1": RowState("h1", 1, ["sys/person/1"]), "2": RowState("h2", 1, [])}
    with sqlite_store.transaction() as s:
        state.save(s, "people", changes, {})
    state.committed("people", changes, {})
    before = statements.count
    assert hashes.subset(["3", "4"]) == {} and statements.count == before  # not committed by this run
    assert state.lookup("people", ["1", "2", "3"]) == changes and hashes.subset(["1", "3"]) == {"1": "h1"}
    assert statements.count == before + 1  # the ids this run committed, read once until the next commit
    assert dict(hashes) == {"1": "h1", "2": "h2"} and bool(hashes)
    statements.detach()


def test_what_was_read_is_kept_only_until_the_entitys_next_commit(sqlite_store):
    _seed(sqlite_store, 20)
    state = StoreAdapterState(sqlite_store, "sys")
    assert set(state.lookup("people", [str(i) for i in range(10)])) == {str(i) for i in range(10)}
    changes = {"3": RowState("new", 2, [])}
    with sqlite_store.transaction() as s:
        state.save(s, "people", changes, {})
    state.committed("people", changes, {})
    assert state._read.get("people") is None  # a scan of millions of rows holds one batch of states
    assert state.lookup("people", ["3", "4"]) == {"3": RowState("new", 2, []), "4": RowState("h4", 1, ["sys/person/4"])}


def test_a_held_entity_is_read_once_per_batch_of_ids(sqlite_store):
    _seed(sqlite_store, 1200)
    state = StoreAdapterState(sqlite_store, "sys")
    statements = Statements(sqlite_store)
    hashes = state.row_hashes("people")
    ids = [str(i) for i in range(0, 2400, 2)]  # 600 held, 600 not
    found = hashes.subset(ids)
    assert found == {str(i): f"h{i}" for i in range(0, 1200, 2)}
    assert statements.count == 1 + 3  # the held check, then 1,200 ids in chunks of 500
    assert hashes.subset(ids[:10]) == {str(i): f"h{i}" for i in range(0, 20, 2)}
    assert statements.count == 4  # read already
    assert state.row_hashes("people") is hashes  # one mapping per entity and run, shared by every file
    statements.detach()
