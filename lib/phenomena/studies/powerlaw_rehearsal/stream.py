"""The stream: one network trained through every phase of an environment, evaluated on every task after every phase,
and GEM's metrics (Lopez-Paz & Ranzato 2017).

Accuracy matrix R[i, j] (task j after phase i), b[j] (at init); ACC = mean_j R[T-1, j],
BWT = mean_{j<T-1} (R[T-1, j] - R[j, j]), FWT = mean_{j>=1} (R[j-1, j] - b[j]); beside BWT, the max-based forgetting
of Chaudhry et al. 2018 (Riemannian Walk), F = mean_{j<T-1} (max_{j<=l<T-1} R[l, j] - R[T-1, j]). Learning speed on the new task
(forward facilitation) is read after a fixed number of its examples and after a fixed number of optimiser steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from phenomena.studies.powerlaw_rehearsal.config import ENVIRONMENTS, Config
from phenomena.studies.powerlaw_rehearsal.data import make_tasks
from phenomena.studies.powerlaw_rehearsal.regularisers import Regulariser
from phenomena.studies.powerlaw_rehearsal.schedules import make_schedule, schedule_form
from phenomena.train import Hook, make_optimizer, train


def make_mlp(d_in: int, hidden: tuple[int, ...], n_classes: int = 10, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(d_in, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d_in = width
    layers.append(nn.Linear(d_in, n_classes))
    return nn.Sequential(*layers)


@dataclass
class EnvResult:
    """Outcome of one environment run: R (T, T), b (T,), new-task accuracy after ``ff_examples`` new-task
    examples in each phase (T,) (``extra["ff_step_acc"]``: after ``ff_steps`` optimiser steps), schedule (T, T)."""

    env: str
    seed: int
    R: np.ndarray
    b: np.ndarray
    ff_acc: np.ndarray
    schedule: np.ndarray
    seconds: float = 0.0
    extra: dict[str, Any] = dc_field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "seed": self.seed,
            "R": self.R.tolist(),
            "b": self.b.tolist(),
            "ff_acc": self.ff_acc.tolist(),
            "schedule": self.schedule.tolist(),
            "seconds": self.seconds,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvResult:
        return cls(
            d["env"],
            d["seed"],
            np.array(d["R"]),
            np.array(d["b"]),
            np.array(d["ff_acc"]),
            np.array(d["schedule"]),
            d["seconds"],
            d.get("extra", {}),
        )


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    acc = (model(x).argmax(-1) == y).float().mean().item()
    model.train()
    return acc


class PhaseBatches:
    """The loss of one phase as the shared training loop wants it (``loss(model, step)``): ``epochs`` passes over
    the phase's samples in minibatches, reshuffled (from ``gen``) at the start of every pass."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, gen: torch.Generator) -> None:
        self.x, self.y, self.batch_size, self.gen = x, y, batch_size, gen
        self.n_batches = math.ceil(len(x) / batch_size)
        self.order = torch.empty(0, dtype=torch.long)
        self.batch = self.order

    def __call__(self, model: nn.Module, step: int) -> Tensor:
        if step % self.n_batches == 0:  # a new pass: a new shuffle
            self.order = torch.randperm(len(self.x), generator=self.gen).to(self.x.device)
        i = (step % self.n_batches) * self.batch_size
        self.batch = self.order[i : i + self.batch_size]
        return F.cross_entropy(model(self.x[self.batch]), self.y[self.batch])


class PhaseProbe(Hook):
    """Measures learning speed on the new task during a phase: its test accuracy after ``ff_steps`` optimiser steps
    and after the first ``ff_examples`` of its own examples (``is_new`` marks them among the phase's samples)."""

    def __init__(
        self, cfg: Config, test: tuple[Tensor, Tensor], is_new: Tensor, batches: PhaseBatches
    ) -> None:
        self.cfg, self.test, self.is_new, self.batches = cfg, test, is_new, batches
        self.seen_new = 0
        self.step_acc: float | None = None
        self.example_acc: float | None = None

    def after_step(self, model: nn.Module, step: int) -> None:
        before = self.seen_new
        self.seen_new += int(self.is_new[self.batches.batch.cpu()].sum())
        if step + 1 == self.cfg.ff_steps:
            self.step_acc = accuracy(model, *self.test)
        if before < self.cfg.ff_examples <= self.seen_new:
            self.example_acc = accuracy(model, *self.test)


def phase_data(
    data: Any, schedule: np.ndarray, t: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """The samples of phase ``t``: ``schedule[j, t]`` fresh draws from each task j <= t's training set; returns
    inputs, labels and a mask of the new task's samples."""
    xs, ys, is_new = [], [], []
    for j in range(t + 1):
        count = int(schedule[j, t])
        if count == 0:
            continue
        xj, yj = data.train(j)
        idx = torch.randperm(len(xj), generator=gen)[:count]
        xs.append(xj[idx])
        ys.append(yj[idx])
        is_new.append(torch.full((count,), j == t))
    return torch.cat(xs), torch.cat(ys), torch.cat(is_new)


def run_environment(
    cfg: Config,
    env: str,
    seed: int,
    device: torch.device,
    *,
    n_tasks: int | None = None,
    hidden: tuple[int, ...] | None = None,
    exponent: float | None = None,
    budget: float | None = None,
    offset: float | None = None,
) -> EnvResult:
    """Train one network through all phases of ``env``; evaluate every task after every phase.

    Each phase is ``epochs`` passes over its samples in shuffled minibatches, through the shared training loop
    (:func:`phenomena.train.train`) with one Adam optimiser kept across phases; a regulariser and the
    learning-speed probe are its per-step hooks."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"environment {env!r} is not one of {ENVIRONMENTS}")
    start = time.perf_counter()
    data = make_tasks(cfg, seed, n_tasks)
    T = data.n_tasks
    schedule = make_schedule(
        schedule_form(env), cfg, n_tasks=T, exponent=exponent, budget=budget, offset=offset, seed=seed
    )
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = make_mlp(data.x_train.shape[1], hidden or cfg.hidden, dropout=cfg.dropout).to(device)
    opt = make_optimizer(list(model.parameters()), "adam", lr=cfg.lr)
    reg = Regulariser(env, cfg) if env in ("ewc", "online_ewc", "si", "powerlaw_ewc") else None
    tests = [tuple(t.to(device) for t in data.test(j)) for j in range(T)]
    b = np.array([accuracy(model, *tests[j]) for j in range(T)])
    R = np.zeros((T, T))
    ff, ff_step = np.zeros(T), np.zeros(T)
    for t in range(T):
        x, y, new = phase_data(data, schedule, t, gen)
        batches = PhaseBatches(x.to(device), y.to(device), cfg.batch_size, gen)
        probe = PhaseProbe(cfg, tests[t], new, batches)
        if reg is not None:
            reg.begin_task(model)
        train(
            model,
            batches,
            steps=cfg.epochs * batches.n_batches,
            optimizer=opt,
            hooks=[h for h in (reg, probe) if h is not None],
            progress=False,
            log_every=batches.n_batches,
            precision=cfg.precision,
        )
        ff_step[t] = probe.step_acc if probe.step_acc is not None else accuracy(model, *tests[t])
        ff[t] = probe.example_acc if probe.example_acc is not None else accuracy(model, *tests[t])
        if reg is not None:
            reg.end_task(model, data.train(t)[0].to(device), gen)
        R[t] = [accuracy(model, *tests[j]) for j in range(T)]
    extra = {"source": data.source, "ff_step_acc": ff_step.tolist()}
    return EnvResult(env, seed, R, b, ff, schedule, time.perf_counter() - start, extra)


def acc_bwt_fwt(R: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """GEM's ACC, BWT and FWT of an accuracy matrix R (T, T) and initial accuracies b (T,)."""
    R, b = np.asarray(R, dtype=float), np.asarray(b, dtype=float)
    T = len(R)
    if R.shape != (T, T) or b.shape != (T,) or T < 2:
        raise ValueError(f"R must be (T, T) and b (T,) with T >= 2; got {R.shape} and {b.shape}")
    acc = R[-1].mean()
    bwt = np.mean([R[-1, j] - R[j, j] for j in range(T - 1)])
    fwt = np.mean([R[j - 1, j] - b[j] for j in range(1, T)])
    return {"ACC": float(acc), "BWT": float(bwt), "FWT": float(fwt)}


def max_forgetting(R: np.ndarray) -> float:
    """Chaudhry et al.'s forgetting of an accuracy matrix R (T, T): the mean over tasks j < T-1 of the drop from the
    best accuracy task j had after any phase l in [j, T-2] to its final one. It is never below -BWT (the max includes
    l = j) and, unlike BWT, counts a task that was learned better after its own phase and then lost; a task that the
    last phase lifts above its earlier best adds a negative term."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    if R.shape != (T, T) or T < 2:
        raise ValueError(f"R must be (T, T) with T >= 2; got {R.shape}")
    return float(np.mean([R[j : T - 1, j].max() - R[T - 1, j] for j in range(T - 1)]))


def running_average_accuracy(R: np.ndarray) -> np.ndarray:
    """Mean accuracy over the tasks seen so far, after each phase: (T,)."""
    R = np.asarray(R, dtype=float)
    return np.array([R[t, : t + 1].mean() for t in range(len(R))])


def facilitation_slope(ff_acc: np.ndarray) -> float:
    """Forward facilitation as a trend: least-squares slope of new-task learning speed against phase (t >= 1),
    in accuracy per phase. Positive = later tasks are learned faster."""
    ff_acc = np.asarray(ff_acc, dtype=float)
    if len(ff_acc) < 3:
        return float("nan")
    return float(np.polyfit(np.arange(1, len(ff_acc)), ff_acc[1:], 1)[0])


def summary_table(results: list[EnvResult]) -> Any:
    """Per-run ACC/BWT/FWT and max-based forgetting F as a DataFrame (one row per environment and seed)."""
    return pd.DataFrame(
        [
            {
                "env": r.env,
                "seed": r.seed,
                **acc_bwt_fwt(r.R, r.b),
                "F": max_forgetting(r.R),
                "seconds": r.seconds,
            }
            for r in results
        ]
    )
