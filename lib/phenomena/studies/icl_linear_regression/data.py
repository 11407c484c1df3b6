"""Prompts of the in-context regression task (Garg et al. 2022, Sec. 3), task pools (Raventós et al. 2023) and the
out-of-distribution queries of Garg's App. B.2.

A prompt is (x_1, y_1, ..., x_n, y_n) with x_i ~ N(0, I_d), w ~ N(0, I_d) drawn fresh for every prompt (or uniformly
from a fixed pool of M tasks) and y_i = w . x_i (+ noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from phenomena.studies.icl_linear_regression.config import Config


@dataclass
class Prompts:
    """A batch of regression prompts. xs: (B, n, d); ys: (B, n); ws: (B, d)."""

    xs: Tensor
    ys: Tensor
    ws: Tensor

    def to(self, device: torch.device | str) -> Prompts:
        return Prompts(self.xs.to(device), self.ys.to(device), self.ws.to(device))


def sample_prompts(
    batch: int,
    n_points: int,
    d: int,
    gen: torch.Generator,
    *,
    d_active: int | None = None,
    noise_std: float = 0.0,
    pool: Tensor | None = None,
    x_scale: float = 1.0,
) -> Prompts:
    """Draw ``batch`` prompts: x ~ N(0, I) (first ``d_active`` coordinates, rest zero), w ~ N(0, I) or uniform
    from ``pool`` (M, d), y = w . x + noise_std * N(0, 1). Everything comes from ``gen`` (CPU)."""
    d_active = d if d_active is None else d_active
    if not 1 <= d_active <= d:
        raise ValueError(f"d_active must be in [1, {d}], got {d_active}")
    xs = torch.randn(batch, n_points, d, generator=gen) * x_scale
    ws = (
        torch.randn(batch, d, generator=gen)
        if pool is None
        else pool[torch.randint(len(pool), (batch,), generator=gen)]
    )
    if d_active < d:
        xs[..., d_active:] = 0.0
        ws = ws.clone()
        ws[:, d_active:] = 0.0
    ys = torch.einsum("bnd,bd->bn", xs, ws)
    if noise_std > 0:
        ys = ys + noise_std * torch.randn(ys.shape, generator=gen)
    return Prompts(xs, ys, ws)


def curriculum_at(step: int, cfg: Config) -> tuple[int, int]:
    """Garg's curriculum: (active dims, points) at ``step``: dims 5 -> d by +1 and points 11 -> n by +2 every
    ``curriculum_every`` steps. Without a curriculum, (d, n_points)."""
    if not cfg.curriculum:
        return cfg.d, cfg.n_points
    inc = step // cfg.curriculum_every
    return min(cfg.d, 5 + inc), min(cfg.n_points, 11 + 2 * inc)


def task_pool(M: int, d: int, seed: int) -> Tensor | None:
    """Raventós's finite pretraining pool: M fixed w ~ N(0, I_d) (None for M = 0, i.e. infinite diversity)."""
    if M == 0:
        return None
    return torch.randn(M, d, generator=torch.Generator().manual_seed(10_000 + seed))


def prefix_stats(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """Gram matrices G_k = sum_{j<k} x_j x_j^T (B, n, d, d) and moments b_k = sum_{j<k} x_j y_j (B, n, d)."""
    outer = torch.einsum("bni,bnj->bnij", xs, xs)
    xy = xs * ys.unsqueeze(-1)
    G = F.pad(outer.cumsum(1), (0, 0, 0, 0, 1, 0))[:, :-1]
    b = F.pad(xy.cumsum(1), (0, 0, 1, 0))[:, :-1]
    return G, b


def orthogonal_queries(xs: Tensor) -> Tensor:
    """Query k orthogonal to span(x_<k), rescaled to |x_k| (B, n, d); NaN where k >= d (the span is full).

    The span is read off the SVD of the prefix's design matrix (right singular vectors whose singular value is
    above max(k, d) * machine epsilon * sigma_max), and x_k is projected onto its orthogonal complement."""
    x = xs.double()
    n, d = xs.shape[1], xs.shape[2]
    keep = torch.ones(n, n, dtype=torch.float64).tril(-1)  # keep[k, j] = j < k
    _, sv, Vh = torch.linalg.svd(
        x.unsqueeze(1) * keep[None, :, :, None], full_matrices=False
    )  # Vh (B, n, r, d)
    rank_tol = max(n, d) * torch.finfo(torch.float64).eps * sv.amax(-1, keepdim=True)
    inside = (sv > rank_tol).double()  # (B, n, r): directions that span x_<k
    coords = torch.einsum("bnrd,bnd->bnr", Vh, x) * inside
    q = x - torch.einsum("bnr,bnrd->bnd", coords, Vh)
    norm = q.norm(dim=-1, keepdim=True)
    q = torch.where(
        norm > 1e-6 * x.norm(dim=-1, keepdim=True),
        q / norm.clamp_min(1e-300) * x.norm(dim=-1, keepdim=True),
        torch.nan,
    )
    return q.float()


def repeated_queries(xs: Tensor, gen: torch.Generator) -> Tensor:
    """Query k equal to a uniformly chosen earlier context point x_j, j < k (B, n, d); query 0 is x_0."""
    B, n, _ = xs.shape
    k = torch.arange(n).clamp_min(1).float()
    j = (torch.rand(B, n, generator=gen) * k).long()  # j in [0, k)
    return xs.gather(1, j.unsqueeze(-1).expand_as(xs))
