"""Intruder dimensions (Definition 3.1 / Algorithm 1 of Shuttleworth et al.) and the intervention of Sec. 6.

With W0 = U0 S0 V0^T and W = U S V^T (reduced SVDs of the pre-trained and of the *merged* fine-tuned matrix, a torch
``Linear`` weight of shape (out, in)):

1. take the top ``k`` **left** singular vectors u_j of W (the output space of the layer);
2. compare each with *every* left singular vector of W0: score_j = max_i |cos(u_j, u0_i)|;
3. u_j is an intruder iff score_j < epsilon (paper default 0.5 with k = 10); counts are summed over matrices.

Intervention (Sec. 6, Fig. 8): W' = W + (lambda - 1) s_i u_i v_i^T for the top intruder i of each matrix (lambda < 1
shrinks it; 0 removes it); the control scales a neighbouring non-intruder (pre-trained) direction instead.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import scipy.linalg
import threadpoolctl
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.intruders import reduce_intruder_dimension
from torch import Tensor, nn

from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.finetune import FineTune
from phenomena.studies.lora_intruder_dimensions.model import Base, layer_index, matrix_type


def left_svd(W: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Reduced SVD W = U diag(S) Vh (float32): U (out, p), S (p,), Vh (p, in), p = min(out, in)."""
    return torch.linalg.svd(W.float(), full_matrices=False)


@functools.cache
def _blas() -> threadpoolctl.ThreadpoolController:
    """numpy / scipy's BLAS libraries (found once): :func:`top_left` runs their LAPACK on one thread."""
    return threadpoolctl.ThreadpoolController()


def top_left(W: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The top ``k`` left singular vectors U_k (out, k) and singular values S_k (k,) of W (out, in), as
    :func:`left_svd` gives them up to signs, ~3x faster on MiniLM's matrices (one CPU thread: 5-8 ms against
    11-46 ms): only the top ``k`` eigenpairs of the smaller Gram matrix in float64 (LAPACK ``syevr``), W W^T when
    out <= in, else W^T W, whose eigenvectors V_k give U_k = W V_k / S_k. Float64 keeps the squared condition
    number harmless for the top of the spectrum: the vectors agree with the SVD's to ~5e-7 in |cos|. LAPACK runs on
    one thread: scipy's OpenBLAS threads beside torch's made it 3x slower than the SVD on two cores."""
    W64 = W.detach().double().cpu().numpy()
    out, inp = W64.shape
    k = min(k, out, inp)
    with _blas().limit(limits=1, user_api="blas"):
        gram = W64 @ W64.T if out <= inp else W64.T @ W64
        n = gram.shape[0]
        evals, vecs = scipy.linalg.eigh(gram, subset_by_index=(n - k, n - 1), driver="evr")
        evals, vecs = evals[::-1], vecs[:, ::-1]  # descending
        S = np.sqrt(np.clip(evals, 0.0, None))
        if out <= inp:
            U = vecs
        else:
            U = W64 @ vecs
            U = U / np.maximum(np.linalg.norm(U, axis=0), np.finfo(np.float64).tiny)
    return torch.from_numpy(np.ascontiguousarray(U)).float(), torch.from_numpy(S.copy()).float()


def similarity(U: Tensor, U0: Tensor) -> Tensor:
    """|cos| between singular vectors: |U^T U0| (k, p0) for U (n, k), U0 (n, p0) with unit columns."""
    return (U.T @ U0).abs()


def intruder_scores(W0: Tensor | tuple[Tensor, ...], W: Tensor, k: int = 10) -> Tensor:
    """max_i |cos(u_j, u0_i)| for the top ``k`` left singular vectors u_j of W (k,). An intruder has a score below
    epsilon. ``W0`` may be a precomputed ``left_svd`` result."""
    U0 = (W0 if isinstance(W0, tuple) else left_svd(W0))[0]
    U = top_left(W, k)[0]
    return similarity(U, U0).max(dim=1).values


def check_epsilon(epsilon: float) -> float:
    if not 0.0 < float(epsilon) <= 1.0:
        raise ValueError(f"epsilon={epsilon!r} is out of range: must be in (0, 1]")
    return float(epsilon)


def effective_rank(S: Tensor) -> float:
    """Roy & Vetterli's effective rank exp(H(p)), p_i = s_i / sum(s), of singular values S (0 for a zero matrix)."""
    S = S.double().clamp_min(0)
    total = S.sum()
    if total <= 0:
        return 0.0
    p = S / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def base_svds(base: Base) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
    """``left_svd`` of every pre-trained adapted matrix W0 (computed once, reused for every run)."""
    return {n: left_svd(W) for n, W in base.W0.items()}


def analyse(
    base_svd: dict[str, tuple[Tensor, Tensor, Tensor]],
    weights: dict[str, Tensor],
    W0: dict[str, Tensor],
    k: int,
) -> dict[str, dict[str, Any]]:
    """Per adapted matrix: ``scores`` (k,) = max |cos| of W's top-k left singular vectors to W0's, ``match``
    (k,) the index of the best-matching pre-trained vector, ``S`` (k,) W's top singular values, and for the
    update dW = W - W0 its Frobenius norm, relative norm ||dW|| / ||W0|| and effective rank."""
    out: dict[str, dict[str, Any]] = {}
    for n, W in weights.items():
        U0 = base_svd[n][0]
        U, S = top_left(W, k)
        sim = similarity(U, U0)
        best = sim.max(dim=1)
        dW = (W - W0[n]).float()
        S_d = torch.linalg.svdvals(dW)
        norm = float(dW.norm())
        out[n] = {
            "scores": best.values,
            "match": best.indices,
            "S": S,
            "dw_norm": norm,
            "dw_rel_norm": norm / float(W0[n].norm()),
            "dw_erank": effective_rank(S_d),
            "dw_top_sv": S_d[: min(64, len(S_d))],
        }
    return out


def count_intruders(analysis: dict[str, dict[str, Any]], epsilon: float, k: int | None = None) -> int:
    """Number of intruder dimensions summed over every matrix of one model at ``epsilon``."""
    check_epsilon(epsilon)
    return int(sum(int((a["scores"][:k] < epsilon).sum()) for a in analysis.values()))


#: singular values of an update below this fraction of its largest are rounding, not rank (see :func:`random_update`)
NULL_RTOL = 1e-5


def haar_orthonormal(n: int, p: int, gen: torch.Generator) -> Tensor:
    """A Haar-random (n, p) matrix with orthonormal columns (p <= n): QR of a Gaussian, signs fixed by R's diagonal."""
    Q, R = torch.linalg.qr(torch.randn(n, p, generator=gen))
    return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, torch.ones(()))


def random_update(dW: Tensor, gen: torch.Generator, S: Tensor | None = None) -> Tensor:
    """The random-direction null of an update dW (out, in): dW's own singular values on Haar-random left and right
    singular vectors. It has dW's rank (r for a rank-r LoRA update, full rank for full fine-tuning), Frobenius norm
    and spectrum; only the directions are random. ``S``: dW's singular values if already computed (the same for
    every draw)."""
    S = torch.linalg.svdvals(dW.float()) if S is None else S
    S = S[S[0] * NULL_RTOL < S]  # dW's numerical rank: r for LoRA (its other singular values are rounding)
    if not len(S) or S[0] <= 0:  # an unchanged matrix: no update, no null
        return torch.zeros(dW.shape)
    out, inp = dW.shape
    U, V = haar_orthonormal(out, len(S), gen), haar_orthonormal(inp, len(S), gen)
    return (U * S) @ V.T


def null_intruders(
    base_svd: dict[str, tuple[Tensor, Tensor, Tensor]],
    weights: dict[str, Tensor],
    W0: dict[str, Tensor],
    k: int,
    epsilons: Sequence[float],
    draws: int,
    seed: int,
) -> dict[float, float]:
    """Intruders that a random update of each matrix's size, rank and spectrum scores (:func:`random_update`
    added to W0, counted with the same top-``k`` and epsilon as the run): per epsilon, the count summed over
    matrices and averaged over ``draws`` draws (a generator seeded with ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    totals = dict.fromkeys(epsilons, 0.0)
    spectra = {n: torch.linalg.svdvals((W - W0[n]).float()) for n, W in weights.items()} if draws else {}
    for _ in range(draws):
        for n, W in weights.items():
            dW = random_update(W - W0[n], gen, spectra[n])
            scores = intruder_scores(base_svd[n], W0[n] + dW, k)
            for eps in epsilons:
                totals[eps] += int((scores < check_epsilon(eps)).sum())
    return {eps: t / draws for eps, t in totals.items()}


def intruders_by(
    analysis: dict[str, dict[str, Any]], epsilon: float, key: Literal["layer", "type"]
) -> dict[Any, int]:
    """Intruder counts at ``epsilon`` grouped by layer index or matrix type."""
    out: dict[Any, int] = {}
    for n, a in analysis.items():
        g = layer_index(n) if key == "layer" else matrix_type(n)
        out[g] = out.get(g, 0) + int((a["scores"] < epsilon).sum())
    return out


def similarity_matrix(W0: Tensor, W: Tensor, n: int = 32) -> Tensor:
    """|cos| between the top ``n`` left singular vectors of W (rows) and of W0 (columns): (n, n). For W = W0 it
    is the identity pattern (up to rotations inside repeated singular values)."""
    U0, U = left_svd(W0)[0][:, :n], left_svd(W)[0][:, :n]
    return similarity(U, U0)


def scale_direction(W: Tensor, svd: tuple[Tensor, Tensor, Tensor], i: int, lam: float) -> Tensor:
    """W + (lam - 1) s_i u_i v_i^T: the i-th singular value of W scaled by ``lam`` (0 removes the direction)."""
    U, S, Vh = svd
    return W + (lam - 1.0) * S[i] * torch.outer(U[:, i], Vh[i])


def intervention_targets(
    weights: dict[str, Tensor], analysis: dict[str, dict[str, Any]], epsilon: float
) -> dict[str, tuple[int, int]]:
    """For every matrix with an intruder among its top-k: (index of the top intruder, index of the control).

    The control is the neighbouring non-intruder direction (rank i - 1 or i + 1, whichever singular value is
    closer to the intruder's), i.e. a pre-trained direction of comparable magnitude."""
    out = {}
    for n, a in analysis.items():
        is_intruder = a["scores"] < epsilon
        if not bool(is_intruder.any()):
            continue
        i = int(torch.nonzero(is_intruder)[0])
        S = a["S"]
        k = len(S)
        cands = [j for j in (i - 1, i + 1) if 0 <= j < k and not bool(is_intruder[j])]
        if not cands:  # both neighbours are intruders: the nearest pre-trained direction in rank
            cands = [j for j in range(k) if not bool(is_intruder[j])] or [min(i + 1, k - 1)]
            cands = [min(cands, key=lambda j: abs(j - i))]
        j = min(cands, key=lambda j: abs(float(S[j] - S[i])))
        out[n] = (i, j)
    return out


#: the edits of the intervention (Sec. 6) and the label of each in its rows: the top intruder scaled by lambda, the
#: paper's control (the neighbouring pre-trained direction scaled by lambda) and a matched-norm control (the same
#: Frobenius change as the intervention, |lambda - 1| s_i, along that pre-trained direction)
DIRECTIONS: dict[str, str] = {
    "intruder": "top intruder",
    "neighbour": "neighbour (control)",
    "matched": "matched norm (control)",
}


def intervene(
    weights: dict[str, Tensor],
    targets: dict[str, tuple[int, int]],
    lam: float,
    *,
    direction: Literal["intruder", "neighbour", "matched"] = "intruder",
    svds: dict[str, tuple[Tensor, Tensor, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """The weights with each target matrix (top intruder i, control j) edited by lam (see :data:`DIRECTIONS`):

    - ``intruder``: W + (lam - 1) s_i u_i v_i^T (the paper's intervention);
    - ``neighbour``: W + (lam - 1) s_j u_j v_j^T (the paper's control);
    - ``matched``: W + (lam - 1) s_i u_j v_j^T, the intervention's own Frobenius change along the control direction,
      so a difference from the intervention is about the direction, not the size of the edit.

    ``svds``: the targets' ``left_svd`` if already computed (the same for every lambda)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not allowed: expected one of {list(DIRECTIONS)}")
    out = dict(weights)
    for n, (i, j) in targets.items():
        U, S, Vh = svds[n] if svds is not None else left_svd(weights[n])
        k = i if direction == "intruder" else j
        size = S[j] if direction == "neighbour" else S[i]
        out[n] = weights[n] + (lam - 1.0) * size * torch.outer(U[:, k], Vh[k])
    return out


def intervention_rows(
    weights: dict[str, Tensor],
    targets: dict[str, tuple[int, int]],
    lambdas: Sequence[float],
    evaluate: Callable[[dict[str, Tensor]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per (lambda, direction of :data:`DIRECTIONS`) -- the controls at lambda != 1 only, where they differ
    from the unedited model -- with what ``evaluate(edited weights)`` returns (accuracy, forgetting, ...)."""
    svds = {n: left_svd(weights[n]) for n in targets}  # computed once for every lambda
    rows = []
    for lam in lambdas:
        for direction, label in DIRECTIONS.items():
            if direction != "intruder" and lam == 1.0:
                continue
            edited = intervene(weights, targets, lam, direction=direction, svds=svds)  # type: ignore[arg-type]
            rows.append({"lambda": lam, "direction": label, **evaluate(edited)})
    return rows


def peft_reduce_intruders(
    base: Base, ft: FineTune, cfg: Config, lam: float
) -> dict[str, Tensor]:  # cross-check of the paper's intervention
    """Weights after peft's ``reduce_intruder_dimension`` (top_k, threshold_epsilon, mitigation_lambda=lam) on a
    LoRA run: peft scales *every* intruder among the top k by ``lam`` and refits a rank-r adapter by SVD."""

    if ft.lora is None:
        raise ValueError("peft_reduce_intruders needs a LoRA run")
    spec = ft.spec
    encoder = copy.deepcopy(base.encoder)
    model = get_peft_model(
        encoder,
        LoraConfig(
            r=spec.rank,
            lora_alpha=spec.alpha,
            use_rslora=spec.rslora,
            target_modules=cfg.target_modules,
            lora_dropout=0.0,
        ),
    )
    _load_lora(model, ft.lora)
    reduce_intruder_dimension(
        model, top_k=cfg.top_k, threshold_epsilon=cfg.epsilon, mitigation_lambda=lam, logging_sink=None
    )
    merged = model.merge_and_unload()
    mods = dict(merged.named_modules())
    return {n: mods[n].weight.detach().clone() for n in base.modules}


def _load_lora(peft_model: nn.Module, factors: dict[str, dict[str, Any]], adapter: str = "default") -> None:
    with torch.no_grad():
        for name, m in peft_model.named_modules():
            key = name.removeprefix("base_model.model.")
            if key in factors and hasattr(m, "lora_A"):
                m.lora_A[adapter].weight.copy_(factors[key]["A"])
                m.lora_B[adapter].weight.copy_(factors[key]["B"])
