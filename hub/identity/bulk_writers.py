"""A bulk link's write transactions from several forked processes.

Each part of a clustered chunk (a few thousand records of whole persons) is prepared before its
write transaction: the golden records read and worked out, the rows and events built. One
process prepared and wrote each part in turn, so the write lock was idle while it prepared and
the other core was idle while it wrote. Forked writers share the parts: while one writes, the
other prepares its next part; on PostgreSQL they write at once. On SQLite a lock among them lets
one write at a time, each pausing after its commit as `bulk_link.let_others_write` asks, so an
ingest waiting for SQLite's lock still gets it between them. Only the write is under that lock:
until 2026-12-07 the preparation was too, so on SQLite the writers took turns at everything and
the second one gained nothing. Nor do the writers' commits checkpoint the WAL (copying ~80 MB of
pages into the database, 14 % of a writer's time at 100,000 people): each checkpoints after it has
let go of the lock, beside the next writer's commit (`Store.checkpoint`).

Fork, not spawn: a chunk's features and clusters are gigabytes at county scale, and a forked
process reads them where they are (the garbage collector's objects are frozen first, so that its
walks do not copy every page). Only a process without threads may fork safely: the bulk link's
own child process (hub/identity/bulk_process.py) asks for writers, a worker's thread never does.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from hub.store.engine import Store
from identity_index.forked import die_with_parent

ERROR_CHARS = 4000  # of a writer's traceback, sent back to the process that forked it
T = TypeVar("T")
P = TypeVar("P")


class BulkWriteError(RuntimeError):
    """A forked writer failed; the parts it did not commit stay held for the next run."""


def write_parts(url: str, parts: Sequence[T], prepare: Callable[[Store, T], P], commit: Callable[[Store, P], None],
                writers: int, gap_s: float) -> None:
    """`commit(store, prepare(store, part))` for every part, from `writers` forked processes (each
    its own connection to `url`, each taking the next part when it is free; on SQLite one commits
    at a time, while the others prepare); returns once all have ended, raises `BulkWriteError`
    with their tracebacks if any failed (its other parts may be written)."""
    if not parts:
        return
    sqlite = url.startswith("sqlite")
    context = multiprocessing.get_context("fork")
    lock = context.Lock() if sqlite else None
    taken = context.Value("q", 0)  # the next part to write: each writer takes the next one when free
    gc.collect()
    gc.freeze()
    children: list[tuple[int, int]] = []
    errors = []
    try:
        parent = os.getpid()
        for _k in range(min(writers, len(parts))):
            try:
                readable, writable = os.pipe()
                pid = os.fork()
            except OSError as exc:  # no more processes or memory: the writers started go on alone
                errors.append(f"could not start a bulk writer: {exc}")
                break
            if pid == 0:
                os.close(readable)
                os._exit(_writer(url, _next_parts(parts, taken), prepare, commit, lock, gap_s if sqlite else 0.0,
                                 writable, parent))
            os.close(writable)
            children.append((pid, readable))
        for pid, readable in children:  # every writer started is waited for, whatever happened
            with os.fdopen(readable, "rb") as pipe:
                message = pipe.read().decode(errors="replace")
            _, status = os.waitpid(pid, 0)
            if status:
                errors.append(message or f"bulk writer {pid} ended with status {status}")
    finally:
        gc.unfreeze()
    if errors:
        raise BulkWriteError("; ".join(errors))


def _next_parts(parts: Sequence[T], taken: Any) -> Iterator[T]:
    """The parts this writer takes, one at a time as it is free (a writer dealt a fixed share
    could be left writing alone at the end)."""
    while True:
        with taken.get_lock():
            i = taken.value
            taken.value = i + 1
        if i >= len(parts):
            return
        yield parts[i]


def _writer(url: str, parts: Iterable[Any], prepare: Callable[[Store, Any], Any], commit: Callable[[Store, Any], None],
            lock: Any, gap_s: float, pipe: int, parent: int) -> int:
    """In the forked process: write these parts on a store of its own (the connections it
    inherited belong to its parent and are never touched; `os._exit` skips their finalisers)."""
    die_with_parent(parent)
    gc.disable()  # a collection would walk, and so copy, every inherited object
    try:
        store = Store(url, pool_size=1, checkpoint_at_commit=lock is None)
        for part in parts:
            prepared = prepare(store, part)
            if lock is None:
                commit(store, prepared)
                continue
            with lock:
                commit(store, prepared)
                time.sleep(gap_s)
            store.checkpoint()  # beside the next writer's commit, not before it
        store.dispose()
        return 0
    except BaseException:  # noqa: BLE001 - any failure goes back to the parent, which raises it
        os.write(pipe, traceback.format_exc()[-ERROR_CHARS:].encode())
        return 1
    finally:
        os.close(pipe)
