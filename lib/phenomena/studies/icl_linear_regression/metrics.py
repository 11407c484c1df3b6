"""How learners are scored: Garg's normalised squared error, its bootstrap band, and Akyürek et al.'s squared
prediction difference SPD(A1, A2)(k) = E (A1 - A2)^2 / d."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def squared_errors(pred: Tensor, target: Tensor, d: int) -> Tensor:
    """Per-prompt normalised squared error (B, n): (pred - target)^2 / d (the zero predictor scores ~1)."""
    return (pred - target) ** 2 / d


def bootstrap_band(
    errors: Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Mean over prompts and a ``level`` bootstrap band for each column of errors (B, n): (mean, lo, hi)."""
    rng = np.random.default_rng(seed)
    e = errors.double().numpy()
    idx = rng.integers(0, len(e), size=(n_boot, len(e)))
    means = e[idx].mean(axis=1)  # (n_boot, n)
    q = (1 - level) / 2
    return e.mean(0), np.quantile(means, q, axis=0), np.quantile(means, 1 - q, axis=0)


def spd(a: Tensor, b: Tensor, d: int) -> Tensor:
    """Akyürek et al.'s squared prediction difference per k: mean over prompts of (a - b)^2 / d -> (n,)."""
    return ((a - b) ** 2).mean(0) / d
