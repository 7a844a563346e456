"""The person view's data (`get_person`) and browsing read without SQLite's write lock: a view
polled while a records worker holds the lock neither waits for it nor makes the worker wait
(at 1,000,000 people a polled view held a stored change back by seconds)."""

from __future__ import annotations

import sqlite3
import threading

from hub.services.persons import SearchQuery, get_person, search_persons
from hub.store.engine import sqlite_file
from hub.store.tables.records import PersonRow


def test_a_view_and_a_browse_read_while_another_connection_holds_the_write_lock(sqlite_store):
    with sqlite_store.transaction() as s:
        s.add(PersonRow(id="P1", golden={}, display_name="Ann Smith", family_key="smith", given_key="ann"))
    writer = sqlite3.connect(sqlite_file(sqlite_store.url), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a worker's write transaction, open
    seen: dict[str, object] = {}

    def read() -> None:
        seen["view"] = get_person(sqlite_store, "P1")["name"]
        seen["browse"] = [h["id"] if isinstance(h, dict) else h.id for h in search_persons(sqlite_store, SearchQuery()).results]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)  # a write transaction would wait for the lock (minutes: WRITE_LOCK_PATIENCE_S)
    try:
        assert not reader.is_alive(), "the view waited for SQLite's write lock"
        assert seen == {"view": "Ann Smith", "browse": ["P1"]}
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join(60)
