"""Null and oracle controls of the ICL study (see :mod:`phenomena.controls`), through the study's own evaluation.

Both replace the trained transformers by a *learner net*: a module that reads the same interleaved (x, y) tokens as
the transformer and predicts each y_k from the context before it, so :func:`experiment.evaluate` (every baseline,
the out-of-distribution probes, the SPDs, the task-diversity comparison) and ``summarize`` run unchanged.

- null: the zero predictor, for the main model, every task-pool model and every depth-panel model (learning
  switched off);
- oracle: least squares whose output saturates at three standard deviations of an in-distribution label (exact in
  distribution, degrading when the inputs are scaled: the out-of-distribution behaviour Garg et al. report), and
  for the task pools Raventós et al.'s two Bayes predictors -- dMMSE on the smallest pool, ridge (lambda = sigma^2)
  on the larger ones and the infinite pool; for the depth panel, one step of GD (blended 10% towards least squares,
  so that no SPD is exactly zero) at the shallowest depth and least squares (saturating as above) at the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.data import Prompts, task_pool
from phenomena.studies.icl_linear_regression.experiment import evaluate
from phenomena.studies.icl_linear_regression.learners import (
    ICLModel,
    baseline_predictions,
    dmmse_predictions,
)
from phenomena.studies.icl_linear_regression.summary import summarize
from phenomena.train import History

NULL = "the zero predictor in place of every transformer (main, task-pool and depth-panel models)"
ORACLE = (
    "least squares saturating at 3 standard deviations of an in-distribution label (main model and the deeper "
    "depth-panel models); one GD step (10% towards least squares) at the shallowest depth; dMMSE on the smallest "
    "task pool and ridge on the larger and infinite pools (Raventós' Bayes predictors)"
)
ORACLE_CANNOT: dict[str, str] = {}

Predictor = Callable[[Tensor, Tensor], Tensor]  # (xs (B, n, d), ys (B, n)) -> predictions (B, n)


class LearnerNet(nn.Module):
    """A stand-in for the transformer: tokens (B, 2n, d) in Garg's layout -> (B, 2n, 1), where the output at x_k's
    position is ``predictor``'s prediction of y_k from the pairs before it (x_k itself is the query)."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self.predictor = predictor
        self.anchor = nn.Parameter(torch.zeros(()))  # predict() reads the device from a parameter

    def forward(self, tokens: Tensor) -> Tensor:
        xs, ys = tokens[:, 0::2], tokens[:, 1::2, 0]
        out = torch.zeros(*tokens.shape[:2], 1, dtype=tokens.dtype, device=tokens.device)
        out[:, 0::2, 0] = self.predictor(xs, ys).to(tokens.dtype)
        return out


def learner_model(cfg: Config, predictor: Predictor, task_diversity: bool = False) -> ICLModel:
    """An :class:`ICLModel` whose network is ``predictor``."""
    return ICLModel(cfg.model_config(task_diversity=task_diversity), net=LearnerNet(predictor)).eval()


def zero(xs: Tensor, ys: Tensor) -> Tensor:
    return torch.zeros_like(ys)


def method(name: str, ridge_lambda: float = 0.1, clip: float | None = None) -> Predictor:
    """A closed-form baseline as a predictor, optionally clipped to [-clip, clip]."""

    def predictor(xs: Tensor, ys: Tensor) -> Tensor:
        pred = baseline_predictions(Prompts(xs, ys, None), name, ridge_lambda=ridge_lambda)  # type: ignore[arg-type]
        return pred if clip is None else pred.clamp(-clip, clip)

    return predictor


def dmmse(pool: Tensor, noise_var: float) -> Predictor:
    def predictor(xs: Tensor, ys: Tensor) -> Tensor:
        return dmmse_predictions(Prompts(xs, ys, None), pool, noise_var)  # type: ignore[arg-type]

    return predictor


def blend(a: Predictor, b: Predictor, weight: float) -> Predictor:
    """(1 - weight) * a + weight * b."""

    def predictor(xs: Tensor, ys: Tensor) -> Tensor:
        return (1.0 - weight) * a(xs, ys) + weight * b(xs, ys)

    return predictor


def config() -> Config:
    """The full preset's task and panels (every row: the task pools and the depth panel), with fewer evaluation
    prompts (the controls take seconds)."""
    return Config.from_preset("full", eval_prompts=512, td_eval_prompts=256)


def null(cfg: Config) -> dict[str, Any]:
    """Metrics of the zero predictor, evaluated exactly as a trained model is."""
    td = {M: learner_model(cfg, zero, task_diversity=True) for M in cfg.td_pool_sizes}
    depth = {L: learner_model(cfg, zero) for L in cfg.depth_layers}
    return summarize(cfg, evaluate(cfg, learner_model(cfg, zero), History(), td, depth))


def oracle(cfg: Config) -> dict[str, Any]:
    """Metrics of learners known to have each property (see the module docstring)."""
    clip = 3.0 * math.sqrt(cfg.d)  # y = w.x with w, x ~ N(0, I): std sqrt(d)
    ols = method("ols", clip=clip)
    main = learner_model(cfg, ols)
    shallow = min(cfg.depth_layers)
    depth = {
        n: learner_model(cfg, blend(method("gd"), ols, 0.1) if n == shallow else ols)
        for n in cfg.depth_layers
    }
    finite = sorted(M for M in cfg.td_pool_sizes if M > 0)
    var = max(cfg.td_noise_var, 1e-6)
    td = {}
    for M in cfg.td_pool_sizes:
        if finite and finite[0] == M:
            pool = task_pool(M, cfg.td_d, cfg.seed)
            td[M] = learner_model(cfg, dmmse(pool, cfg.td_noise_var), task_diversity=True)
        else:
            td[M] = learner_model(cfg, method("ridge", ridge_lambda=var), task_diversity=True)
    return summarize(cfg, evaluate(cfg, main, History(), td, depth))
