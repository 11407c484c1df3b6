"""Null and oracle controls of the rehearsal study (see :mod:`phenomena.controls`), through the study's own
``compute`` assembly (tables, per-environment means, exponent sweep, long horizon) and ``summarize``.

- null: every environment's network really trained through the real stream, with learning switched off (Adam's
  learning rate 1e-12): no task is learned, so nothing is forgotten and nothing is rehearsed usefully;
- oracle: learners whose accuracy matrices are known. A task j is learned to 0.95 when it arrives and keeps
  chance + (0.95 - chance) x retention(L) L = i - j phases later: the power law and the recency environment keep 0.99
  and power law + EWC
  has perfect memory (retention 1: the combination helps), uniform rehearsal is constructed worse (0.97), the exponential forgets its
  old tasks (0.97 - 0.2 (1 - e^-L/2)), the regularisers keep 0.8, no rehearsal 0.3, joint training learns every
  task to 0.97 and keeps it. The power-law learner also learns each new task faster than the one before (new-task
  accuracy 0.5 + 0.05 t after the probe's budget), the others do not (0.5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import Job, compute
from phenomena.studies.powerlaw_rehearsal.schedules import make_schedule, schedule_form
from phenomena.studies.powerlaw_rehearsal.stream import EnvResult, run_environment
from phenomena.studies.powerlaw_rehearsal.summary import summarize

if TYPE_CHECKING:
    from phenomena.run import Run

NULL = "every environment trained through the real stream with learning switched off (Adam lr 1e-12)"
ORACLE = (
    "constructed accuracy matrices: near-perfect memory for the power law and recency (0.99; perfect with EWC), uniform rehearsal a "
    "little worse, the exponential forgetting its oldest tasks, regularisers keeping 80%, no rehearsal 30%; the "
    "power law also learns later tasks faster"
)
ORACLE_CANNOT: dict[str, str] = {}

CHANCE, LEARNED = 0.1, 0.95
RETENTION = {
    "powerlaw": lambda L: 0.99,
    "recency": lambda L: 0.99,
    "powerlaw_ewc": lambda L: 1.0,
    "uniform": lambda L: 0.97,
    "exponential": lambda L: 0.97 - 0.2 * (1 - math.exp(-L / 2)),
    "ewc": lambda L: 0.8,
    "online_ewc": lambda L: 0.8,
    "si": lambda L: 0.8,
    "none": lambda L: 0.3,
    "joint": lambda L: 1.0,
}


def config() -> Config:
    """Every environment of the full preset on sklearn's 8x8 digits at a small scale (the null trains for real)."""
    return Config.from_preset(
        "smoke",
        environments=Config.from_preset("full").environments,
        sweep_exponents=(1.0, 5.6),
        horizon_tasks=6,
        horizon_oldest=2,
        n_tasks=4,
        epochs=1,
        robust_tasks=(3,),  # one more value per robustness axis, so that its row is evaluated
        robust_widths=(32,),
        robust_budgets=(0.5,),
    )


def null_runner(cfg: Config, job: Job, run: Run | None) -> EnvResult:
    env, seed, var = job
    return run_environment(cfg.replace(lr=1e-12), env, seed, _device(), **var)


def _device() -> Any:
    import torch

    return torch.device("cpu")


def oracle_runner(cfg: Config, job: Job, run: Run | None) -> EnvResult:
    """An :class:`EnvResult` of the known learner of ``job``'s environment (see the module docstring)."""
    env, seed, var = job
    T = var.get("n_tasks", cfg.n_tasks)
    top = 0.97 if env == "joint" else LEARNED
    R = np.full((T, T), CHANCE)
    for i in range(T):
        for j in range(i + 1):
            R[i, j] = top if i == j else CHANCE + (top - CHANCE) * RETENTION[env](i - j)
    faster = env in ("powerlaw", "powerlaw_ewc")
    speed = np.array([0.5 + (0.05 * t if faster else 0.0) for t in range(T)])
    kw = {k: var[k] for k in ("exponent", "budget", "offset") if k in var}
    schedule = make_schedule(schedule_form(env), cfg, n_tasks=T, seed=seed, **kw)
    return EnvResult(env, seed, R, np.full(T, CHANCE), speed, schedule, extra={"ff_step_acc": speed.tolist()})


def null(cfg: Config) -> dict[str, Any]:
    return summarize(cfg, compute(cfg, None, runner=null_runner))


def oracle(cfg: Config) -> dict[str, Any]:
    return summarize(cfg, compute(cfg, None, runner=oracle_runner))
