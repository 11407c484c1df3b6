"""Null and oracle controls of the LoRA intruder-dimensions study (see :mod:`phenomena.controls`), through the
study's own intruder code and ``summarize`` -> ``claims``, on small synthetic matrices (no MiniLM).

Both build the :class:`experiment.Results` that ``summarize`` reads, run for run (:func:`config.iter_runs`), with
the study's own :func:`intruders.analyse`, :func:`experiment.run_row` (intruder counts), the intervention's
:func:`intruders.intervention_targets` / :func:`intruders.intervention_rows` and the choice of the intervened run
(:func:`experiment.choose_intervened`). The "model" is ``N_MATRICES`` matrices W0 = U0 diag(S0) V0^T (distinct
singular values 10 ... 1); its accuracy and forgetting are a *response* we construct from the weights:

- forgetting on the news probe = ``FORGET`` x the mean relative energy of the update *outside* W0's top-k output
  directions (new directions: what intruders are) plus ``DAMAGE`` x the energy of the change *inside* them (damage
  to pre-trained directions); the in-domain probe half of it;
- accuracy of a run = the accuracy we assign it, minus the mean relative change ||U0_k^T (W' - W)|| / ||W0|| of the
  pre-trained top-k output directions when the intervention edits W to W' (so scaling an intruder costs nothing,
  scaling a pre-trained direction does);
- the earlier task's accuracy in the sequential panel falls by the forgetting of the later task's update.

- null: W = W0 for every run (nothing learned); with nothing learned the head is untrained too, so every run,
  the head-only reference included, scores chance (1 / 3 on the stratified 3-class test set); no forgetting.
- oracle: planted intruders. A LoRA run adds, in some of the matrices, a rank-1 update 2 sigma_1 x y^T along a unit
  x spread over the bottom half of W0's left singular vectors (orthogonal to the top ones: max |cos| = 0.2 < eps),
  y W0's last right singular vector; r = 1 / 4 / 16 plant it in 3 / 2 / 1 matrices, r = 64 in none; along the lr
  sweep the number of planted matrices grows with the lr. The r = 16 run also scales W0's own top singular values
  by ``GROW`` (a large update that rotates nothing: update size and intruders part ways, as the forgetting-beyond-size
  row needs). Full FT (and r = 64) adds a small dense update that rotates nothing; full FT also scales W0's top
  singular values by 1 + ``FULL_GROW``: a larger update than LoRA's, damaging pre-trained directions without
  rotating any, so it has no intruders yet forgets more than the LoRA run at the rule (the paper's "LoRA forgets
  less"). Every run learned: head only 0.80, full FT 0.90, every LoRA run 0.895. In the sequential panel LoRA's
  second task plants one more intruder per matrix, full FT's is a small dense update again.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from phenomena.studies.lora_intruder_dimensions.config import Config, RunSpec, iter_runs
from phenomena.studies.lora_intruder_dimensions.experiment import (
    Results,
    choose_intervened,
    forgetting_of,
    run_null,
    run_row,
)
from phenomena.studies.lora_intruder_dimensions.intruders import (
    analyse,
    intervention_rows,
    intervention_targets,
    left_svd,
)
from phenomena.studies.lora_intruder_dimensions.summary import summarize

NULL = "W = W0 for every run (nothing learned: chance accuracy, no forgetting), on synthetic matrices"
ORACLE = (
    "planted intruders: rank-1 updates 2 sigma_1 x y^T with x orthogonal to W0's top left singular vectors (more "
    "matrices at lower rank and higher lr; none at r = 64; r = 16 also grows W0's top singular values, a large "
    "update without intruders), full FT a small dense update plus its top singular values grown x2.5 (no intruders, "
    "more forgetting than LoRA at the rule); accuracy and forgetting from a constructed response "
    "(forgetting = relative update energy outside W0's top-k directions + a tenth of the damage inside them; the "
    "intervention's accuracy cost = change of W0's top-k directions)"
)
ORACLE_CANNOT: dict[str, str] = {}

N_MATRICES, SIZE, FORGET, DAMAGE, GROW, TOP_K = 8, 48, 1.0, 0.1, 0.5, 10
#: full FT's growth of W0's top singular values: forgetting DAMAGE x 2.5^2 x 0.47 (their share of ||W0||^2) = 0.11,
#: above the rule run's planted intruders' 0.08
FULL_GROW = 1.5
CHANCE, HEAD, FULL, LORA = 1 / 3, 0.80, 0.90, 0.895
#: matrices with a planted intruder per LoRA rank at the paper's rule (Fig. 4: present for r <= 16, falling)
PLANTED_BY_RANK = {1: 3, 4: 2, 16: 1}
BASE_F = {
    "infonce": 1.0,
    "top1": 0.9,
    "drift": 0.0,
    "infonce_pydocs": 1.2,
    "top1_pydocs": 0.9,
    "drift_pydocs": 0.0,
}


def config() -> Config:
    """The full preset's runs (ranks 1 / 4 / 16, the lr sweep at r = 1, lambdas, epsilon 0.5, top 10): every row."""
    return Config.from_preset("full")


def base_matrices(seed: int = 0) -> dict[str, Tensor]:
    """``N_MATRICES`` float32 matrices W0 = U0 diag(10 ... 1) V0^T with random orthonormal factors."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(N_MATRICES):
        U0 = torch.linalg.qr(torch.randn(SIZE, SIZE, generator=gen, dtype=torch.float64))[0]
        V0 = torch.linalg.qr(torch.randn(SIZE, SIZE, generator=gen, dtype=torch.float64))[0]
        out[f"layer.{i}.dense"] = ((U0 * torch.linspace(10, 1, SIZE, dtype=torch.float64)) @ V0.T).float()
    return out


def plant(W0: Tensor, salt: int = 0) -> Tensor:
    """W0 + 2 sigma_1 x y^T: x spread over the bottom half of W0's left singular vectors (rotated by ``salt``, so
    plants of different tasks differ), y a bottom right singular vector: a new top direction, an intruder."""
    U0, S0, Vh0 = left_svd(W0)
    half = U0.shape[1] // 2
    w = torch.ones(U0.shape[1] - half)
    w[salt % len(w)] += 0.5  # a different direction in the same subspace (max |cos| with W0 still ~0.3)
    x = U0[:, half:] @ (w / w.norm())
    return W0 + 2 * S0[0] * torch.outer(x, Vh0[-1 - salt % half])


def dense(W0: Tensor, seed: int, rel: float = 0.02) -> Tensor:
    """W0 + a small dense random update (relative Frobenius norm ``rel``): rotates no top direction."""
    G = torch.randn(W0.shape, generator=torch.Generator().manual_seed(seed))
    return W0 + rel * W0.norm() * G / G.norm()


def forgetting(W: dict[str, Tensor], W0: dict[str, Tensor]) -> float:
    """The constructed forgetting response of weights ``W`` against reference weights ``W0``: ``FORGET`` x the mean
    relative energy of W - W0 outside W0's top-``TOP_K`` output directions + ``DAMAGE`` x that inside them."""
    total = 0.0
    for n in W0:
        U0k = left_svd(W0[n])[0][:, :TOP_K]
        dW = W[n] - W0[n]
        inside = U0k @ (U0k.T @ dW)
        scale = float(W0[n].norm()) ** 2
        total += (FORGET * float((dW - inside).norm()) ** 2 + DAMAGE * float(inside.norm()) ** 2) / scale
    return total / len(W0)


def grow(W0: Tensor, by: float = GROW) -> Tensor:
    """W0 with its top-``TOP_K`` singular values scaled by 1 + ``by``: a large update that rotates no direction."""
    U0, S0, Vh0 = left_svd(W0)
    return W0 + by * (U0[:, :TOP_K] * S0[:TOP_K]) @ Vh0[:TOP_K]


def accuracy_cost(W_new: dict[str, Tensor], W: dict[str, Tensor], W0: dict[str, Tensor], k: int) -> float:
    """The constructed accuracy response to an edit W -> W_new: mean relative change of W0's top-k directions."""
    cost = 0.0
    for n in W0:
        U0k = left_svd(W0[n])[0][:, :k]
        cost += float((U0k.T @ (W_new[n] - W[n])).norm() / W0[n].norm())
    return cost / len(W0)


def metrics_of(W: dict[str, Tensor], W0: dict[str, Tensor], acc: float, learned: bool) -> dict[str, float]:
    """What :meth:`Evaluator.evaluate` returns, from the constructed response."""
    f = forgetting(W, W0) if learned else 0.0
    return {
        "acc_a": acc,
        "infonce": BASE_F["infonce"] + f,
        "top1": BASE_F["top1"],
        "drift": f / 2,
        "infonce_pydocs": BASE_F["infonce_pydocs"] + f / 2,
        "top1_pydocs": BASE_F["top1_pydocs"],
        "drift_pydocs": f / 4,
    }


def _weights(
    cfg: Config, spec: RunSpec, W0: dict[str, Tensor], learned: bool, seed: int
) -> dict[str, Tensor]:
    """A run's weights: W0 (null); planted intruders in the first n matrices and a small dense update elsewhere."""
    if not learned:
        return dict(W0)
    if spec.method == "full":
        n = 0
    elif spec.family == "lr sweep" and spec.lr != cfg.headline_run().lr:
        factor = spec.lr / cfg.headline_run().lr
        n = min(len(W0), PLANTED_BY_RANK.get(spec.rank, 0) + math.ceil(factor))
    else:
        n = PLANTED_BY_RANK.get(spec.rank, 0)
    out = {name: plant(W) if i < n else dense(W, seed + i) for i, (name, W) in enumerate(W0.items())}
    if spec.method == "lora" and spec.rank == 16:  # a large update without intruders
        out = {name: W + grow(W0[name]) - W0[name] for name, W in out.items()}
    if spec.method == "full":  # larger still: full FT forgets more than LoRA at the rule, with no intruder
        out = {name: W + grow(W0[name], FULL_GROW) - W0[name] for name, W in out.items()}
    return out


def results(cfg: Config, learned: bool) -> Results:
    """The study's :class:`Results` from synthetic runs (``learned=False``: the null; True: the oracle)."""
    W0 = base_matrices(cfg.seed)
    svd = {n: left_svd(W) for n, W in W0.items()}
    base_f = {**BASE_F, "acc_head_only": HEAD if learned else CHANCE}
    task = {"task": cfg.task, "examples": 0, "test": 225, "classes": {}, "chance_uniform": CHANCE}
    known = {"base_metrics": base_f, "task": task}
    rows, analyses, weights = [], {}, {}
    for i, spec in enumerate(iter_runs(cfg)):
        W = _weights(cfg, spec, W0, learned, seed=100 * i)
        acc = (FULL if spec.method == "full" else LORA) if learned else CHANCE
        an = analyse(svd, W, W0, cfg.top_k)
        null = run_null(svd, W, W0, cfg, i)
        rows.append(run_row(spec, metrics_of(W, W0, acc, learned), an, cfg, base_f, 0.0, null))
        analyses[spec.name], weights[spec.name] = an, W
    # the intervention, on the run run_study picks (the headline run at the paper's rule), as run_study does it
    intervened = choose_intervened(cfg, rows, known)
    targets: dict[str, Any] = {}
    inter: list[dict[str, Any]] = []
    if intervened:
        W = weights[intervened]
        acc = next(r["acc"] for r in rows if r["run"] == intervened)
        found = intervention_targets(W, analyses[intervened], cfg.epsilon)

        def measure(edited: dict[str, Tensor]) -> dict[str, Any]:
            m = metrics_of(edited, W0, acc - accuracy_cost(edited, W, W0, cfg.top_k), learned)
            news = {k: v for k, v in m.items() if not k.endswith("_pydocs")}  # NEWS only, as run_study
            return {"acc": m["acc_a"], **forgetting_of(news, base_f)}

        inter = intervention_rows(W, found, cfg.lambdas, measure)
        targets = {n: list(v) for n, v in found.items()}
    return Results(
        base=None,  # type: ignore[arg-type]  # summarize does not read the encoder
        finetunes={},
        base_metrics=base_f,
        task=task,
        seq_tasks={t: {} for t in cfg.seq_tasks},
        rows=rows,
        analyses=analyses,
        steps=[],
        intervened=intervened,
        targets=targets,
        intervention=inter,
        peft=[],
        sequence=_sequence(cfg, weights, W0, learned),
        compute_s=0.0,
    )


def _sequence(
    cfg: Config, weights: dict[str, dict[str, Tensor]], W0: dict[str, Tensor], learned: bool
) -> list:
    """The sequential panel: after each later task the earlier task's accuracy falls by the relative energy of the
    later update (the constructed response); LoRA's later update plants one intruder per matrix, full FT's is dense.
    Empty without ``seq_tasks`` (no sequential panel), as in :func:`experiment.run_study`."""
    out: list = []
    if not cfg.seq_tasks:
        return out
    for spec in (cfg.full_run(), cfg.headline_run()):
        method = "full FT" if spec.method == "full" else f"LoRA r={spec.rank}"
        W = weights[spec.name]
        acc = (FULL if spec.method == "full" else LORA) if learned else CHANCE
        for stage in range(1, len(cfg.seq_tasks) + 2):
            if stage > 1 and learned:
                W_next = {
                    n: plant(Wn, salt=stage) if spec.method == "lora" else dense(Wn, 1000 * stage + i)
                    for i, (n, Wn) in enumerate(W.items())
                }
                acc -= forgetting(W_next, W) / FORGET
                W = W_next
            row = {"method": method, "stage": stage, "trained_on": [cfg.task, *cfg.seq_tasks][stage - 1]}
            later = {
                f"acc_seq{j}": (FULL if spec.method == "full" else LORA) if learned else CHANCE
                for j in range(1, stage)
            }  # each later task's accuracy with its own head
            out.append({**row, "acc_a": acc, **later, "forgetting": forgetting(W, W0)})
    return out


def null(cfg: Config) -> dict[str, Any]:
    """Metrics with W = W0 for every run (nothing learned)."""
    return summarize(cfg, results(cfg, learned=False))


def oracle(cfg: Config) -> dict[str, Any]:
    """Metrics of the planted-intruder runs with the constructed response (see the module docstring)."""
    return summarize(cfg, results(cfg, learned=True))
