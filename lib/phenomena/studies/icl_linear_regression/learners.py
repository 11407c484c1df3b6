"""The learners compared in context: the transformer (read-in/read-out around the shared GPT-style model) and every
baseline, in closed form over every prompt and every prefix length at once (no Python loop over prompts or k).

Tokens use Garg's layout: x_i is one d-wide token and y_i is the token (y_i, 0, ..., 0); the prediction for y_k is
read at x_k's position, so it sees (x_1, y_1, ..., x_k). Baselines: least squares (minimum-norm when k < d;
Bayes-optimal for the noiseless Gaussian prior), ridge, one step of gradient descent from w = 0 with its optimal step
size, 3-nearest-neighbour averaging, averaging (w_hat = mean_j x_j y_j), and the discrete MMSE predictor of Raventós
et al. for a finite task pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from phenomena.studies.icl_linear_regression.data import Prompts, prefix_stats
from phenomena.transformer import Transformer, TransformerConfig

LEARNERS = ("ols", "ridge", "gd", "knn", "averaging")


def interleave(xs: Tensor, ys: Tensor) -> Tensor:
    """Garg's token layout: (B, n, d) inputs and (B, n) labels -> (B, 2n, d) tokens x_1, [y_1 0..0], x_2, ..."""
    B, n, d = xs.shape
    y_tokens = F.pad(ys.unsqueeze(-1), (0, d - 1))
    return torch.stack([xs, y_tokens], dim=2).reshape(B, 2 * n, d)


class ICLModel(nn.Module):
    """A transformer over interleaved (x, y) tokens; ``forward(xs, ys)`` returns predictions (B, n) of each y_k
    read at x_k's position. ``net`` replaces the shared transformer by any module mapping (B, T, d) tokens to
    (B, T, 1) (the benchmark passes Hugging Face's GPT-2 of the same size)."""

    def __init__(self, cfg: TransformerConfig, net: nn.Module | None = None) -> None:
        super().__init__()
        self.net: nn.Module = net if net is not None else Transformer(cfg)

    def forward(self, xs: Tensor, ys: Tensor) -> Tensor:
        out = self.net(interleave(xs, ys))  # (B, 2n, 1)
        return out[:, 0::2, 0]


@torch.no_grad()
def predict(model: ICLModel, prompts: Prompts, chunk: int = 4096) -> Tensor:
    """Model predictions (B, n) in evaluation mode, in chunks of prompts; returned on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    outs = [
        model(prompts.xs[i : i + chunk].to(device), prompts.ys[i : i + chunk].to(device)).cpu()
        for i in range(0, len(prompts.xs), chunk)
    ]
    return torch.cat(outs)


@torch.no_grad()
def predict_with_queries(model: ICLModel, prompts: Prompts, queries: Tensor, chunk: int = 4096) -> Tensor:
    """Predictions (B, n) where the k-th prediction uses context (x_<k, y_<k) and query ``queries[:, k]``.

    Built as n copies of the batch, copy k having x_k replaced; causality makes later tokens irrelevant.
    """
    B, n, d = prompts.xs.shape
    xs = prompts.xs.unsqueeze(0).repeat(n, 1, 1, 1)  # (n, B, n, d)
    ks = torch.arange(n)
    xs[ks, :, ks] = queries.transpose(0, 1)  # copy k gets queries[:, k] at position k
    ys = prompts.ys.unsqueeze(0).expand(n, B, n)
    preds = predict(model, Prompts(xs.reshape(n * B, n, d), ys.reshape(n * B, n), prompts.ws), chunk)
    return preds.view(n, B, n)[ks, :, ks].T  # (B, n)


def prefix_masked(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """Every prefix as a zero-padded design matrix: X_k (B, n, n, d) and y_k (B, n, n), rows j >= k zeroed.

    Zero rows change neither the least-squares solution nor its minimum norm, so pinv(X_k) y_k is the
    minimum-norm fit to (x_<k, y_<k)."""
    n = xs.shape[1]
    keep = torch.ones(n, n, dtype=xs.dtype, device=xs.device).tril(-1)  # keep[k, j] = j < k
    return xs.unsqueeze(1) * keep[None, :, :, None], ys.unsqueeze(1) * keep[None]


def fit_weights(
    xs: Tensor, ys: Tensor, method: str, *, ridge_lambda: float = 0.1, chunk: int = 256
) -> Tensor:
    """Weights w_hat_k (B, n, d) each linear learner fits to the prefix (x_<k, y_<k), for all k at once.

    ``ols``: minimum-norm least squares X_k^+ y_k from the SVD of the prefix's design matrix X_k itself, with
    torch's default relative cutoff (max(k, d) * machine epsilon * sigma_max: a direction is dropped only when it is
    numerically zero). ``ridge``: (G_k + lambda I)^-1 b_k with G_k = X_k^T X_k, b_k = X_k^T y_k. ``averaging``:
    b_k / k (Garg). ``gd``: one gradient step from w = 0 on the mean squared error with the step size that is
    optimal for x ~ N(0, I): eta_k = k / (k + d + 1), i.e. w_hat = eta_k b_k / k. Computed in float64.
    """
    xs64, ys64 = xs.double(), ys.double()
    n, d = xs.shape[1], xs.shape[2]
    k = torch.arange(n, dtype=torch.float64).view(1, n, 1)
    if method == "ols":
        parts = []
        for i in range(0, len(xs64), chunk):  # chunks bound the (B, n, n, d) prefix matrices
            X, y = prefix_masked(xs64[i : i + chunk], ys64[i : i + chunk])
            parts.append((torch.linalg.pinv(X) @ y.unsqueeze(-1)).squeeze(-1))
        return torch.cat(parts).float()
    G, b = prefix_stats(xs64, ys64)
    if method == "ridge":
        w = torch.linalg.solve(G + ridge_lambda * torch.eye(d, dtype=torch.float64), b)
    elif method == "averaging":
        w = b / k.clamp_min(1)
    elif method == "gd":
        w = (b / k.clamp_min(1)) * (k / (k + d + 1))
    else:
        raise ValueError(f"method={method!r}: expected ols, ridge, averaging or gd")
    return w.float()


def knn_predictions(xs: Tensor, ys: Tensor, queries: Tensor | None = None, n_neighbors: int = 3) -> Tensor:
    """k-NN regression (B, n): mean label of the ``n_neighbors`` context points nearest to query k among x_<k
    (all of them when k < n_neighbors; 0 at k = 0)."""
    queries = xs if queries is None else queries
    B, n, _ = xs.shape
    dist = torch.cdist(queries, xs)  # (B, n_query, n_context)
    later = torch.ones(n, n, dtype=torch.bool).triu()  # context j is visible to query k iff j < k
    dist = dist.masked_fill(later, float("inf"))
    m = min(n_neighbors, n)
    near, idx = dist.topk(m, dim=-1, largest=False)
    valid = torch.isfinite(near).float()
    labels = ys.gather(1, idx.view(B, -1)).view(B, n, m)
    return (labels * valid).sum(-1) / valid.sum(-1).clamp_min(1)


def baseline_predictions(
    prompts: Prompts, method: str, *, queries: Tensor | None = None, ridge_lambda: float = 0.1
) -> Tensor:
    """Predictions (B, n) of a baseline learner; query k defaults to x_k. Methods: LEARNERS + 'zero'."""
    queries = prompts.xs if queries is None else queries
    if method == "zero":
        return torch.zeros_like(prompts.ys)
    if method == "knn":
        return knn_predictions(prompts.xs, prompts.ys, queries)
    w = fit_weights(prompts.xs, prompts.ys, method, ridge_lambda=ridge_lambda)
    return torch.einsum("bnd,bnd->bn", w, queries)


def dmmse_predictions(prompts: Prompts, pool: Tensor, noise_var: float, chunk: int = 256) -> Tensor:
    """Raventós et al.'s discrete MMSE predictor (B, n): the posterior mean of y_k when w is uniform on ``pool``
    (M, d) and labels carry N(0, noise_var) noise: softmax_m(-||y_<k - X_<k w_m||^2 / (2 noise_var)) . x_k w_m."""
    var = max(noise_var, 1e-6)
    outs = []
    for i in range(0, len(prompts.xs), chunk):
        xs, ys = prompts.xs[i : i + chunk].double(), prompts.ys[i : i + chunk].double()
        fits = torch.einsum("bnd,md->bnm", xs, pool.double())  # x_j . w_m
        sq = (ys.unsqueeze(-1) - fits) ** 2
        sse = F.pad(sq.cumsum(1), (0, 0, 1, 0))[:, :-1]  # residuals over the prefix j < k
        post = torch.softmax(-sse / (2 * var), dim=-1)
        outs.append((post * fits).sum(-1).float())
    return torch.cat(outs)


def learner_predictions(
    model: ICLModel | None,
    prompts: Prompts,
    *,
    queries: Tensor | None = None,
    ridge_lambda: float = 0.1,
    learners: tuple[str, ...] = LEARNERS,
) -> dict[str, Tensor]:
    """Predictions (B, n) of the transformer (if given) and each baseline on ``prompts``."""
    out: dict[str, Tensor] = {}
    if model is not None:
        out["transformer"] = (
            predict(model, prompts) if queries is None else predict_with_queries(model, prompts, queries)
        )
    for name in learners:
        out[name] = baseline_predictions(prompts, name, queries=queries, ridge_lambda=ridge_lambda)
    return out
