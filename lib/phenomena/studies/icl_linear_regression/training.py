"""Training the in-context regressors: a fresh batch of prompts every step, mean squared error over every prefix
prediction (Garg eq. 1), Garg's curriculum when configured; the main model and one model per task-pool size."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.data import curriculum_at, sample_prompts, task_pool
from phenomena.studies.icl_linear_regression.learners import ICLModel, predict
from phenomena.studies.icl_linear_regression.metrics import squared_errors
from phenomena.train import History, train


def make_loss_fn(
    n_points: int,
    d: int,
    gen: torch.Generator,
    batch_size: int,
    device: torch.device,
    *,
    curriculum: Callable[[int], tuple[int, int]] | None = None,
    noise_std: float = 0.0,
    pool: Tensor | None = None,
) -> Callable[[nn.Module, int], Tensor]:
    """Loss of a fresh batch at each step: mean squared error over all prefix predictions (Garg eq. 1).

    ``curriculum(step) -> (active dims, points)`` implements Garg's curriculum."""

    def loss_fn(model: nn.Module, step: int) -> Tensor:
        d_active, n = curriculum(step) if curriculum else (d, n_points)
        p = sample_prompts(batch_size, n, d, gen, d_active=d_active, noise_std=noise_std, pool=pool).to(
            device
        )
        return F.mse_loss(model(p.xs, p.ys), p.ys)

    return loss_fn


def train_icl(cfg: Config, device: torch.device, *, progress: bool = True) -> tuple[ICLModel, History]:
    """Train the main model (fresh w every prompt). Evaluates the normalised error at k = d//2, d, 2d on a fixed
    set of 256 prompts every ``eval_every`` steps (the learning curve, where the 'lull' shows)."""
    torch.manual_seed(cfg.seed)
    model = ICLModel(cfg.model_config()).to(device)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe = sample_prompts(256, cfg.n_points, cfg.d, torch.Generator().manual_seed(cfg.seed + 2))
    ks = {"k_half_d": cfg.d // 2, "k_d": cfg.d, "k_2d": min(2 * cfg.d, cfg.n_points - 1)}

    def evaluate(m: nn.Module, step: int) -> dict[str, float]:
        err = squared_errors(predict(m, probe), probe.ys, cfg.d).mean(0)  # type: ignore[arg-type]
        return {f"err_{name}": float(err[k]) for name, k in ks.items()}

    curriculum = (lambda s: curriculum_at(s, cfg)) if cfg.curriculum else None
    loss_fn = make_loss_fn(cfg.n_points, cfg.d, gen, cfg.batch_size, device, curriculum=curriculum)
    history = train(
        model,
        loss_fn,
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        schedule=cfg.schedule,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        progress=progress,
        desc=f"ICL d={cfg.d}",
        precision=cfg.precision,
    )
    return model, history


def train_task_diversity(cfg: Config, M: int, device: torch.device, *, progress: bool = True) -> ICLModel:
    """Pretrain a task-diversity model on the pool of size M (0 = fresh tasks) with label noise sigma^2."""
    torch.manual_seed(cfg.seed)
    model = ICLModel(cfg.model_config(task_diversity=True)).to(device)
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    loss_fn = make_loss_fn(
        cfg.td_n_points,
        cfg.td_d,
        gen,
        cfg.batch_size,
        device,
        noise_std=math.sqrt(cfg.td_noise_var),
        pool=task_pool(M, cfg.td_d, cfg.seed),
    )
    train(
        model,
        loss_fn,
        steps=cfg.pool_steps(M),
        lr=cfg.td_lr,
        warmup_steps=cfg.td_warmup_steps,
        schedule=cfg.schedule,
        progress=progress,
        desc=f"M={M or 'inf'}",
        precision=cfg.precision,
    )
    return model
