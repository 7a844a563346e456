"""One piece of a clustering run in a forked process beside the one running the rest.

A bulk link clusters a chunk of records on one core, and after an initial load's ingest the
machine's other core idles (docs/performance.md). Scoring is most of that work and splits by
pairs: a forked process scores half of them, reading the records and their encoded table where
they are (copy-on-write: nothing is sent to it), and sends back only what it found, as arrays.

Fork, not spawn, and only from a process without threads (a fork copies locks that other threads
hold): the bulk link's own child process asks for it (hub/identity/bulk_process.py), never a
records worker's thread. The garbage collector's objects are frozen before the fork, so that a
collection in either process does not copy every page of a multi-gigabyte heap.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends
ERROR_CHARS = 4000  # of the helper's traceback, sent back


class HelperError(RuntimeError):
    """The forked helper failed; its traceback is the message."""


def can_fork() -> bool:
    """Whether this process may fork a helper: it has no other thread, and the system forks."""
    return threading.active_count() == 1 and hasattr(os, "fork")


def die_with_parent(parent: int) -> None:
    """Ask the kernel to end this process with its parent: a link must not go on after the
    worker that took the turn to link has gone (another worker may take the turn then)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the process ends when its work does
        pass
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


class Forked(Generic[T]):
    """`work()` started in a forked process now; `result()` waits for it and returns its value.
    When no process can be started, `work()` runs in this process when the result is asked for."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._pid = 0
        fd, self._path = tempfile.mkstemp(prefix="hub-forked-", suffix=".pickle")
        os.close(fd)
        parent = os.getpid()
        gc.collect()
        gc.freeze()
        try:
            self._pid = os.fork()
        except OSError:
            gc.unfreeze()
            return
        if self._pid == 0:
            code = 1
            try:
                die_with_parent(parent)  # a link killed with its worker leaves no helper behind
                code = self._run()
            finally:  # whatever happens, the forked process never returns into its parent's code
                os._exit(code)

    def _run(self) -> int:
        """In the forked process: the work's value (or its traceback) into the file, then leave
        without running any of the parent's finalisers (`os._exit`)."""
        gc.disable()
        try:
            value: Any = ("ok", self._work())
            code = 0
        except BaseException:  # noqa: BLE001 - any failure goes back to the parent, which raises it
            value, code = ("error", traceback.format_exc()[-ERROR_CHARS:]), 1
        with open(self._path, "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
        return code

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        """A helper whose result was never asked for (the caller failed meanwhile) is stopped."""
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
        self._unlink()

    def _unlink(self) -> None:
        try:
            os.unlink(self._path)
        except OSError:
            pass

    def _reap(self) -> int:
        pid, self._pid = self._pid, 0
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = -1
        gc.unfreeze()
        return status

    def result(self) -> T:
        try:
            if not self._pid:  # never forked
                return self._work()
            pid = self._pid
            status = self._reap()
            try:
                with open(self._path, "rb") as f:
                    kind, value = pickle.load(f)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                raise HelperError(f"forked helper {pid} ended with status {status} and no result") from exc
            if kind == "error":
                raise HelperError(value)
            return value
        finally:
            self._unlink()

