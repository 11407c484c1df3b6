"""Both cores for one notebook: train a study's independent runs in worker processes, then read them from the cache.

A study lists the runs its sequential code will train -- each as a picklable module-level function ``fn(run, *args)``
that computes one result through ``run.cached(...)``, the same call the sequential code makes -- and calls
:func:`prefill` before that code. The workers fill the on-disk cache; the notebook then finds every run there.
Results are identical to the sequential path as long as each run is seeded on its own (it does not depend on the
global random state that a previous run left), which each study's tests check.

How many workers: ``$PHENOMENA_WORKERS`` if set, else the machine's core count, capped by the number of runs. The
runners that already put notebooks side by side (``make figures``, sweeps, ``make test``) set it to 1. Nothing
happens with fewer than 2 workers, off the CPU, or with the cache disabled (``PHENOMENA_NO_CACHE``: the workers
could not hand their runs back). The parent waits for its workers with a deadline, never an open wait.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from phenomena import repro

if TYPE_CHECKING:
    from phenomena.run import Run

WORKERS_ENV = "PHENOMENA_WORKERS"
#: how long the notebook waits for its worker processes before it gives up
DEADLINE_S = 6 * 3600

#: one run to train in a worker: ``fn(child_run, *args)``, ``fn`` defined at a module's top level (picklable)
Job = tuple[Callable[..., Any], tuple[Any, ...]]


def workers_from_env(workers: int | None = None) -> int:
    """``workers`` if given, else ``$PHENOMENA_WORKERS``, else the core count; a clear error for anything but an
    int >= 1."""
    raw: Any = workers if workers is not None else os.environ.get(WORKERS_ENV) or (os.cpu_count() or 1)
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(raw, bool) or (isinstance(raw, float) and raw != n):
        raise ValueError(f"workers (or ${WORKERS_ENV}) = {raw!r} is not allowed: expected an int >= 1")
    return n


def active(run: Run, n_jobs: int, workers: int | None = None) -> int:
    """How many worker processes :func:`prefill` would start for ``n_jobs`` runs (0: none, train in-process)."""
    n = min(workers_from_env(workers), n_jobs)
    if n < 2 or run.device.type != "cpu" or os.environ.get("PHENOMENA_NO_CACHE"):
        return 0
    return n


def _child(fn: Callable[..., Any], run: Run, args: tuple[Any, ...]) -> str:
    """In a worker process: seed as :meth:`Run.start` does, one thread, then compute (and cache) one run."""
    repro.seed_everything(run.cfg.seed)
    repro.set_threads(run.threads)
    fn(run, *args)
    return getattr(fn, "__name__", "job")


def prefill(run: Run, jobs: Sequence[Job], workers: int | None = None, *, what: str = "training runs") -> int:
    """Compute ``jobs`` in worker processes so that the sequential code reads them from the cache; returns the
    number of workers used (0: nothing ran here, the sequential code trains as usual). Each worker has one thread;
    a worker's error is raised here; a deadline of :data:`DEADLINE_S` bounds the wait."""
    n = active(run, len(jobs), workers)
    if not n:
        return 0
    child = replace(run, device=torch.device("cpu"), threads=1)
    print(f"{what}: {len(jobs)} in {n} worker processes (${WORKERS_ENV}={n}; 1 trains them in this process)")
    deadline = time.monotonic() + DEADLINE_S
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_child, fn, child, tuple(args)) for fn, args in jobs]
        _, pending = wait(futures, timeout=max(1.0, deadline - time.monotonic()))
        if pending:
            for f in pending:
                f.cancel()
            raise TimeoutError(
                f"{len(pending)} of {len(jobs)} {what} did not finish within {DEADLINE_S} s in {n} worker "
                f"processes; run with {WORKERS_ENV}=1 to train them in this process"
            )
        for f in futures:
            f.result()  # re-raises a worker's error here
    return n
