"""One bulk link at a time across the workers of a SQLite store too (`bulk_link_turn`): a bulk
link reads and clusters without SQLite's write lock, so two embedded workers would otherwise
cluster the same held records at once."""

from __future__ import annotations

import multiprocessing

from hub.store.engine import Store
from hub.worker_locks import bulk_link_turn


def _turn_in_another_process(url: str, answer) -> None:
    store = Store(url)
    with bulk_link_turn(store) as mine:
        answer.put(mine)
    store.dispose()


def test_one_worker_at_a_time_links_a_sqlite_store(tmp_path):
    url = f"sqlite:///{tmp_path}/hub.db"
    store = Store(url)
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    try:
        with bulk_link_turn(store) as first:
            assert first
            with bulk_link_turn(store) as second:  # another worker's try, not waited for
                assert not second
            other = context.Process(target=_turn_in_another_process, args=(url, answer))
            other.start()
            other.join(60)
            assert answer.get(timeout=5) is False  # a worker process of its own: not its turn either
        with bulk_link_turn(store) as again:  # the first has ended: the next may link
            assert again
    finally:
        store.dispose()


def test_an_in_memory_store_has_one_worker():
    store = Store("sqlite://")
    try:
        with bulk_link_turn(store) as first, bulk_link_turn(store) as second:
            assert first and second
    finally:
        store.dispose()
