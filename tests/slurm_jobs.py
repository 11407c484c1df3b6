"""Functions the Slurm tests submit as jobs (:mod:`tests.test_slurm`): standard library only, so that a job
starts in a fraction of the time a job importing :mod:`phenomena` (torch) takes."""

from __future__ import annotations

import os
import signal
import time


def misbehave(seed: int) -> dict[str, int]:
    """By seed: 0 and 4 sleep (to be cancelled), 1 raises, 2 is killed by a signal (it dies outside Python), 3
    returns ``{"seed": 3}``."""
    if seed in (0, 4):
        time.sleep(300)
    if seed == 1:
        raise ValueError("seed 1 refuses")
    if seed == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"seed": seed}
