"""A large bulk link in a child process of its own (`worker.bulk_link_process_at` held records or
more), when it starts with no ingest running: beside an ingest, on a 2-core machine, the child took
the ingest's core (docs/performance.md, seventh session), so such a link stays on the thread.

A records worker links held records on a thread (hub/worker.py), and that thread shares the
worker's interpreter lock with the thread storing the queue's next records: at 1,000,000 people
the worker used one core of two, storing ~1,700 records/s between the bulk link's bytecodes,
while the other core idled once the ingest had ended. In a child process the link has a core and
an interpreter of its own, the worker stores at its own pace beside it, and the memory a
clustering takes (gigabytes at county scale) goes back to the system when the child ends instead
of staying in the worker's heap.

The child opens the store afresh (a database connection does not survive a process boundary),
runs `bulk_link.link` exactly as the thread would and returns its report. It is killed if the
worker dies (Linux: the parent-death signal), so no link outlives the worker that holds the
turn to link (`hub.worker_locks.bulk_link_turn`). An error in the child is raised in the worker;
what was written is no longer held, the rest stays held for the next try.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from hub.identity import bulk_link
from hub.store.engine import Store
from identity_index.forked import die_with_parent
from identity_index.model import Model

WRITERS = 2  # forked processes writing a chunk's parts (hub/identity/bulk_writers.py): this machine's cores


def link(url: str, model: Model, **options: Any) -> bulk_link.BulkLinkReport:
    """`bulk_link.link(Store(url), model, **options)`, run in a child process (spawned: the
    worker has threads, and forking a process with threads can copy a held lock)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        return pool.submit(_link, url, model, options).result()


def _link(url: str, model: Model, options: dict[str, Any]) -> bulk_link.BulkLinkReport:
    store = Store(url, pool_size=1)
    try:
        return bulk_link.link(store, model, writers=min(WRITERS, os.cpu_count() or 1), **options)
    finally:
        store.dispose()
