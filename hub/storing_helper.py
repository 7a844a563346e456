"""A second process storing the records queue once a load's ingest has ended, while the records
worker's thread links a chunk of held records (`RecordsWorker.storing_helper`).

Beside an ingest a records worker links whole chunks on a thread of its own process (a child
there took the ingest's core: hub/identity/bulk_process.py), so the chunk and the storing of the
queue share one interpreter lock while the ingest has the other core. When the ingest ends that
core idles, the worker stores the rest of the queue between the chunk's bytecodes, and what it
stores meanwhile waits for further chunks: at 1,000,000 people the other core idled for ~200 s
during the second chunk, the queue was stored ~200 s after it, and the rest was linked in two more
chunks, each reading every record linked before as context (docs/performance.md, fifteenth session).

The helper is a records worker like any other (a second consumer of the queue, as a second
worker would be), but it never links: while anything is held it holds its person records too,
and it leaves linking them to the worker that holds the turn to link, once the queue is empty, all
at once. It ends when the queue has stayed empty for `IDLE_EXIT_S`, and with the worker that
started it (Linux: the parent-death signal)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from hub.identity.repository import audit
from identity_index.forked import die_with_parent

IDLE_EXIT_S = 5.0  # the queue empty for this long: the backlog is stored, the helper ends
ACTOR, ACTION = "records-worker", "storing-helper"  # its identity_audit entry when it ends
log = logging.getLogger(__name__)


def starter(config_path: str) -> Callable[[], BaseProcess]:
    """What a records worker run from `config_path` calls to start a helper (spawned: the worker
    has threads, and forking a process with threads can copy a held lock)."""

    def start() -> BaseProcess:
        process = multiprocessing.get_context("spawn").Process(
            target=_run, args=(config_path, os.getpid()), name="storing-helper", daemon=True)
        process.start()
        return process

    return start


def _run(config_path: str, parent: int) -> None:
    die_with_parent(parent)
    from hub.bootstrap import bootstrap
    from hub.config import load_config
    from hub.worker import run_worker

    hub = bootstrap(load_config(config_path), migrate=False)
    hub.worker.links = False
    started = time.monotonic()
    try:
        stored = run_worker(hub.bus, hub.worker, batch_size=hub.config.worker.batch_size, idle_timeout_s=IDLE_EXIT_S)
        seconds = round(time.monotonic() - started - IDLE_EXIT_S, 3)
        log.info("storing helper: %d message(s) stored in %.1f s", stored, seconds)
        with hub.store.transaction() as s:  # on record beside the bulk links (`hub bench estate` reports it)
            audit(s, ACTOR, ACTION, {"messages": stored, "seconds": seconds})
    finally:
        hub.close()
