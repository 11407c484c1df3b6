"""A lock per cache entry across processes, so that processes sharing a cache folder compute each entry once.

:meth:`phenomena.run.Run.cached` takes it around :func:`phenomena.cache.cached` when the entry is missing. It lives
outside :mod:`phenomena.cache` and is imported by no study package, so it is no part of any study's source hash
(``tests/test_infra.py`` checks that): changing how processes wait for each other does not stale a committed result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

#: the longest a process waits for another one computing the same cache entry before computing it itself
LOCK_WAIT_S = 3600.0


@contextmanager
def entry_lock(path: Path, wait_s: float | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on ``<entry>.lock`` beside a cache entry while it is computed, so that processes
    sharing a cache folder (notebooks run side by side, the test suite's front ends) compute each entry once: a
    second one waits for the first and reads its result. A lock is released when its process ends, however it
    ends; its holder removes the lock file before releasing it (a process that opened it before then and locks it
    next finds the entry written). Waits at most ``wait_s`` (default :data:`LOCK_WAIT_S`), then computes without the
    lock, as it does where the folder cannot be locked (no ``fcntl``, a file system without locks). Yields whether
    the lock is held."""
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        handle = open(lock, "a+")  # noqa: SIM115 (held until the finally below)
    except (ImportError, OSError):
        yield False
        return
    held, deadline = False, time.monotonic() + wait_s
    try:
        while not held:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
            except OSError:
                break
        yield held
    finally:
        if held:
            with suppress(OSError):  # the lock file, unless another process has since made a new one there
                if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                    lock.unlink()
        handle.close()  # closing the file releases the lock
